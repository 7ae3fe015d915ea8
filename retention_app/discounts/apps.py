from django.apps import AppConfig


class DiscountsConfig(AppConfig):
    name = "retention_app.discounts"
    label = "discounts"

    def ready(self) -> None:
        from retention_app.commerce import events as commerce_events
        from retention_app.shops import events as shop_events

        from . import receivers

        commerce_events.order_upserted.connect(receivers.on_order_upserted, dispatch_uid="discounts.redeem")
        shop_events.customer_data_export.connect(
            receivers.on_customer_data_export, dispatch_uid="discounts.data_export"
        )
        shop_events.customer_redact.connect(receivers.on_customer_redact, dispatch_uid="discounts.redact")
