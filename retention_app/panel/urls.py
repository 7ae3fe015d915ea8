"""Merchant panel routes under /app/."""

from django.urls import include, path

from retention_app.panel import views

app_name = "panel"
urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("switch-shop/", views.switch_shop, name="switch_shop"),
    path("customers/", views.customers, name="customers"),
    path("customers/<int:customer_id>/", views.customer_detail, name="customer"),
    path("messages/", views.message_list, name="messages"),
    path("sync/", views.sync_status, name="sync"),
    path("settings/", views.settings_view, name="settings"),
    path("settings/api-tokens/", views.api_token_create_view, name="api_token_create"),
    path("settings/api-tokens/<int:token_id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
    path("i18n/", include("django.conf.urls.i18n")),
]
