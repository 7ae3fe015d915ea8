from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "retention_app.messaging"
    label = "messaging"

    def ready(self) -> None:
        from retention_app.shops import events as shop_events

        from . import receivers

        shop_events.customer_data_export.connect(
            receivers.on_customer_data_export, dispatch_uid="messaging.data_export"
        )
        shop_events.customer_redact.connect(receivers.on_customer_redact, dispatch_uid="messaging.redact")
