from django.apps import AppConfig


class ShopifyIntegrationConfig(AppConfig):
    name = "shop_integrations.shopify"
    label = "shopify_integration"
