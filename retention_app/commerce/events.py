"""Domain events sent by `retention_app.commerce.services` after a change is committed.

Automations, tracking and other domains subscribe in their AppConfig.ready(); commerce never imports them.
Events are sent from `transaction.on_commit`, so a receiver sees committed rows and may enqueue tasks.
Bulk writes (backfill, CSV import, reconciliation of history) send no events: history must not trigger
automations. Receivers must be idempotent: the same event can be sent again when a webhook is redelivered.

- order_upserted(sender, order: Order, created: bool, was_cancelled: bool)
    after an order is created or changed. `created` is True the first time the app sees the order;
    `was_cancelled` is the cancellation state before this change.
- fulfillment_upserted(sender, fulfillment: Fulfillment, created: bool, previous_shipment_status: str)
    after a fulfillment or one of its tracking events is created or changed.
- customer_upserted(sender, customer: Customer, created: bool, previous_marketing_state: str)
    after a customer is created or changed (including consent).
"""

from django.dispatch import Signal

order_upserted = Signal()
fulfillment_upserted = Signal()
customer_upserted = Signal()
