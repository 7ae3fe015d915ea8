from django.apps import AppConfig


class IngressConfig(AppConfig):
    name = "retention_app.ingress"
    label = "ingress"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from retention_app.shops.models import Shop

        def forget(sender, instance, **kwargs) -> None:
            from retention_app.ingress.services import forget_shop_id

            forget_shop_id(platform=instance.platform, domain=instance.domain)

        # The webhook receiver caches shop ids per process: drop an entry when its shop changes here.
        post_save.connect(forget, sender=Shop, dispatch_uid="ingress-forget-shop-id-save", weak=False)
        post_delete.connect(forget, sender=Shop, dispatch_uid="ingress-forget-shop-id-delete", weak=False)
