"""Thin Celery entry points of the discounts domain."""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.utils import timezone

from . import services


@shared_task(name="discounts.redeem_recent_orders", ignore_result=True)
def redeem_recent_orders() -> int:
    """Periodic: attribute codes used on orders that arrived without an order_upserted event."""
    return services.discount_codes_redeem_recent_orders(since=timezone.now() - dt.timedelta(hours=2))
