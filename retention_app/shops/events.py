"""Shop lifecycle and privacy events. Senders never import receivers; receivers connect in AppConfig.ready().

- shop_installed(sender, shop: Shop, reinstalled: bool)
    sent on commit after an install (OAuth callback or token exchange) stored a fresh token. The sync
    domain starts the initial backfill.
- shop_uninstalled(sender, shop: Shop)
    sent on commit after app/uninstalled: stop automations, cancel scheduled messages.
- customer_redact(sender, shop: Shop, customer: Customer | None, customer_platform_id: str,
                  order_platform_ids: list[str])
    compliance `customers/redact`: every domain that holds personal data about that customer erases it
    (names, emails, addresses, rendered message bodies …). Receivers must be idempotent.
- customer_data_export(sender, shop: Shop, customer: Customer | None, customer_platform_id: str)
    compliance `customers/data_request`: every domain holding data about the customer returns a
    JSON-serializable dict `{"section": "<domain>", "data": ...}`; the ingress collects the responses.
"""

from django.dispatch import Signal

shop_installed = Signal()
shop_uninstalled = Signal()
customer_redact = Signal()
customer_data_export = Signal()
