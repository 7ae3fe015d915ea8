from django.apps import AppConfig


class AutomationsConfig(AppConfig):
    name = "retention_app.automations"
    label = "automations"
    verbose_name = "Automations"

    def ready(self) -> None:
        from retention_app.automations import receivers
        from retention_app.commerce import events as commerce_events
        from retention_app.shops import events as shop_events

        uid = "automations."
        commerce_events.order_upserted.connect(receivers.on_order_upserted, dispatch_uid=uid + "order")
        commerce_events.fulfillment_upserted.connect(
            receivers.on_fulfillment_upserted, dispatch_uid=uid + "fulfillment"
        )
        commerce_events.customer_upserted.connect(
            receivers.on_customer_upserted, dispatch_uid=uid + "customer"
        )
        shop_events.shop_installed.connect(receivers.on_shop_installed, dispatch_uid=uid + "installed")
        shop_events.shop_uninstalled.connect(receivers.on_shop_uninstalled, dispatch_uid=uid + "uninstalled")
        shop_events.customer_redact.connect(receivers.on_customer_redact, dispatch_uid=uid + "redact")
        shop_events.customer_data_export.connect(
            receivers.on_customer_data_export, dispatch_uid=uid + "export"
        )
