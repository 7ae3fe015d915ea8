"""Thin Celery entry points of the tracking domain."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def tracking_attribute_order_task(order_id: int) -> None:
    """Attribute an order to a tracking-page click (idempotent: unique attribution per order)."""
    from retention_app.commerce.models import Order
    from retention_app.tracking.services import tracking_attribute_order

    order = Order.objects.filter(pk=order_id).first()
    if order is not None:
        tracking_attribute_order(order=order)


@shared_task(name="tracking.flush_page_views", acks_late=True, ignore_result=True)
def tracking_flush_page_views_task() -> None:
    """Periodic (retention_app/schedules.py): move buffered page views from Redis into the database."""
    from retention_app.tracking.services import tracking_page_views_flush

    tracking_page_views_flush()
