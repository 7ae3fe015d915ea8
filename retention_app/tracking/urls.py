"""Public tracking routes, mounted at /t/ by the root URL map. See retention_app/tracking/views.py."""

from django.urls import path

from retention_app.tracking import views

app_name = "tracking"

urlpatterns = [
    path("lookup/<str:shop_domain>/", views.tracking_lookup, name="lookup"),
    path("<str:token>/", views.tracking_page, name="page"),
    path("<str:token>/status.json", views.tracking_status, name="status"),
    path("<str:token>/p/<str:product_id>/", views.tracking_product_redirect, name="product"),
    path("<str:token>/code/", views.tracking_code_redirect, name="code"),
]
