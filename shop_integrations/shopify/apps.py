from django.apps import AppConfig


class ShopifyIntegrationConfig(AppConfig):
    name = "shop_integrations.shopify"
    label = "shopify_integration"

    def ready(self):
        from shop_integrations.shopify import checks  # noqa: F401 (registers the Shopify system checks)
