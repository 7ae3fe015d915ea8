"""Tracking-page fixtures: a shipment with events, and a clean cache (rate limits and caches are per test)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from retention_app.commerce.events import fulfillment_upserted
from retention_app.commerce.models import FulfillmentEvent
from tests.factories import CustomerFactory, FulfillmentFactory, LineItemFactory, OrderFactory


@pytest.fixture(autouse=True)
def _clean_cache(settings):
    from retention_app.tracking import pagecache

    # Tests assert immediate updates: no process-local page layer (production keeps pages 2 s per process).
    settings.TRACKING_PAGE_LOCAL_CACHE_SECONDS = 0
    cache.clear()
    pagecache.local_clear()
    yield
    pagecache.flush_local_views()
    cache.clear()


def add_event(fulfillment, status: str, *, hours_ago: float, message: str = "", eta=None, city: str = ""):
    return FulfillmentEvent.objects.create(
        shop=fulfillment.shop,
        fulfillment=fulfillment,
        platform_id=f"ev-{fulfillment.pk}-{FulfillmentEvent.objects.count() + 1}",
        status=status,
        happened_at=timezone.now() - dt.timedelta(hours=hours_ago),
        message=message,
        city=city,
        estimated_delivery_at=eta,
    )


def make_shipment(
    shop, *, status: str = "IN_TRANSIT", customer_kwargs=None, items=("Green tea",), **order_kwargs
):
    customer = CustomerFactory(shop=shop, **(customer_kwargs or {}))
    order = OrderFactory(shop=shop, customer=customer, **order_kwargs)
    for i, title in enumerate(items):
        LineItemFactory(order=order, title=title, product_platform_id=f"{shop.pk}-p{i}")
    fulfillment = FulfillmentFactory(
        order=order,
        shipment_status=status,
        tracking_url="https://carrier.example/track?n=1",
    )
    return fulfillment


@pytest.fixture
def shipment(shop):
    return make_shipment(shop)


def changed(fulfillment):
    """What commerce sends on commit after a fulfillment or one of its events changed."""
    fulfillment_upserted.send(
        sender=None, fulfillment=fulfillment, created=False, previous_shipment_status=""
    )


def flush_views():
    """Buffered page views (Redis) into rows; a no-op without Redis (views were INSERTed directly)."""
    from retention_app.tracking.services import tracking_page_views_flush

    tracking_page_views_flush()
