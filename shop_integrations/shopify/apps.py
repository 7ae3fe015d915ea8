from django.apps import AppConfig


class ShopifyIntegrationConfig(AppConfig):
    name = "shop_integrations.shopify"
    label = "shopify_integration"

    def ready(self):
        from shop_integrations.shopify import checks  # noqa: F401 (registers the Shopify system checks)

        connect_sync()


def connect_sync() -> None:
    """Sync (issue 4): the initial backfill starts when a shop is installed; importing the modules registers
    their Celery tasks in every process (web, worker, beat)."""
    from retention_app.shops.events import shop_installed
    from shop_integrations.shopify import reconcile, sync  # noqa: F401

    shop_installed.connect(sync.on_shop_installed, dispatch_uid="shopify-sync-backfill-on-install")
