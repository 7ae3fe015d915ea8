"""Receivers of commerce and privacy events (connected in TrackingConfig.ready()).

- order_upserted: bump the customer's recommendations version (what they bought changed) and enqueue the
  attribution of the order to a tracking-page click (idempotent task, on commit).
- fulfillment_upserted: drop the fulfillment's cached pages, so new tracking events show at once (open
  pages poll a version string once a minute and offer a reload).
- customer_redact / customer_data_export: the customer's clicks.
"""

from __future__ import annotations

from django.db import transaction
from django.dispatch import receiver

from retention_app.commerce.events import fulfillment_upserted, order_upserted
from retention_app.shops.events import customer_data_export, customer_redact


@receiver(order_upserted, dispatch_uid="tracking.order_upserted")
def _on_order_upserted(sender, order, created: bool = False, **kwargs) -> None:
    from retention_app.tracking.services import tracking_customer_recs_invalidate
    from retention_app.tracking.tasks import tracking_attribute_order_task

    if order.customer_id is None:
        return
    tracking_customer_recs_invalidate(customer_id=order.customer_id)
    order_id = order.pk
    transaction.on_commit(lambda: tracking_attribute_order_task.delay(order_id))


@receiver(fulfillment_upserted, dispatch_uid="tracking.fulfillment_upserted")
def _on_fulfillment_upserted(sender, fulfillment, **kwargs) -> None:
    from retention_app.tracking.services import tracking_page_cache_invalidate

    tracking_page_cache_invalidate(fulfillment_id=fulfillment.pk)


@receiver(customer_redact, dispatch_uid="tracking.customer_redact")
def _on_customer_redact(sender, shop, customer=None, **kwargs) -> None:
    from retention_app.tracking.services import tracking_customer_redact

    tracking_customer_redact(shop=shop, customer=customer)


@receiver(customer_data_export, dispatch_uid="tracking.customer_data_export")
def _on_customer_data_export(sender, shop, customer=None, **kwargs) -> dict:
    from retention_app.tracking.selectors import tracking_customer_data_export

    return tracking_customer_data_export(shop=shop, customer=customer)
