"""/shopify/… : OAuth install, callback, embedded-admin entry."""

from django.urls import path

from shop_integrations.shopify import views_oauth

app_name = "shopify_oauth"

urlpatterns = [
    path("install", views_oauth.install, name="install"),
    path("callback", views_oauth.callback, name="callback"),
    path("embedded", views_oauth.embedded, name="embedded"),
]
