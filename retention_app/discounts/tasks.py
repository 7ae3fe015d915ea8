"""Thin Celery entry points of the discounts domain."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from retention_app.queues import Queue

from . import services


@shared_task(name="discounts.redeem_recent_orders", queue=Queue.DEFAULT, ignore_result=True)
def redeem_recent_orders() -> int:
    """Periodic: attribute codes used on orders that arrived without an order_upserted event."""
    return services.discount_codes_redeem_recent_orders(since=timezone.now() - dt.timedelta(hours=2))
