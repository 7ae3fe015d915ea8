"""Tracking-page fixtures: a shipment with events, and a clean cache (rate limits and caches are per test)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.utils import timezone

from retention_app.commerce.models import FulfillmentEvent
from tests.factories import CustomerFactory, FulfillmentFactory, LineItemFactory, OrderFactory


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
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
