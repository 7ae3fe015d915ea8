"""Root URL map. Each area owns its own url module; add routes there, not here."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(url="/app/", permanent=False)),
    path("shopify/", include("shop_integrations.shopify.oauth_urls")),
    path("webhooks/", include("shop_integrations.shopify.webhook_urls")),
    path("app/", include("retention_app.panel.urls")),
    path("api/", include("retention_app.api.urls")),
    path("t/", include("retention_app.tracking.urls")),
    path("m/", include("retention_app.messaging.urls")),
    path("django-admin/", admin.site.urls),
]
