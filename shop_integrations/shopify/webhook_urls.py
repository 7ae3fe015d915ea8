"""/webhooks/… routes. The do-nothing baseline view for the benchmark exists only with DEBUG or BENCH."""

from django.conf import settings
from django.urls import path

from shop_integrations.shopify import views_webhooks

urlpatterns = [
    path("shopify", views_webhooks.shopify_webhook, name="shopify-webhook"),
]

if settings.DEBUG or getattr(settings, "BENCH", False):
    urlpatterns.append(path("_bench/noop", views_webhooks.bench_noop, name="webhook-bench-noop"))
