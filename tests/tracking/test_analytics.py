"""Analytics for the panel: views, unique visitors, clicks, attribution (window, idempotency), privacy."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from retention_app.commerce.events import order_upserted
from retention_app.shops.events import customer_data_export, customer_redact
from retention_app.tracking import pagecache
from retention_app.tracking.models import TrackingAttribution, TrackingClick, TrackingPageView
from retention_app.tracking.selectors import (
    tracking_stats_for_shop,
    tracking_stats_per_fulfillment,
    tracking_top_shipments,
    tracking_views_per_order,
)
from retention_app.tracking.services import tracking_page_path, tracking_page_views_flush
from tests.conftest import requires_redis
from tests.factories import OrderFactory, ProductFactory
from tests.tracking.conftest import flush_views, make_shipment

pytestmark = pytest.mark.django_db


def view(client, f, ua="Phone", ip="10.0.0.1"):
    return client.get(tracking_page_path(f), HTTP_USER_AGENT=ua, REMOTE_ADDR=ip)


def test_views_and_unique_visitors(client, shop, other_shop):
    f1, f2 = make_shipment(shop), make_shipment(shop)
    rival = make_shipment(other_shop)
    view(client, f1)
    view(client, f1)
    view(client, f1, ua="Desktop")
    view(client, f2)
    view(client, rival)
    flush_views()
    stats = tracking_stats_for_shop(shop=shop)
    assert (stats.page_views, stats.unique_visitors) == (4, 3)
    one = tracking_stats_per_fulfillment(shop=shop, fulfillment=f1)
    assert (one.page_views, one.unique_visitors) == (3, 2)
    assert tracking_views_per_order(shop=shop, order=f1.order) == {"page_views": 3, "unique_visitors": 2}
    top = tracking_top_shipments(shop=shop)
    assert [r["fulfillment_id"] for r in top] == [f1.pk, f2.pk] and top[0]["page_views"] == 3
    assert tracking_stats_for_shop(shop=other_shop).page_views == 1
    with pytest.raises(Exception):  # noqa: B017 (another shop's fulfillment)
        tracking_stats_per_fulfillment(shop=other_shop, fulfillment=f1)


def test_same_browser_is_a_new_visitor_the_next_day(client, shop):
    f = make_shipment(shop)
    with time_machine.travel(dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC)):
        view(client, f)
    with time_machine.travel(dt.datetime(2026, 5, 2, 10, tzinfo=dt.UTC)):
        view(client, f)
    flush_views()
    assert tracking_stats_for_shop(shop=shop).unique_visitors == 2


@pytest.fixture
def clicked(client, shop):
    """A customer clicked a recommendation on their tracking page at 2026-05-01 10:00 UTC."""
    f = make_shipment(shop)
    ProductFactory(shop=shop, platform_id="p-rec", handle="rec")
    with time_machine.travel(dt.datetime(2026, 5, 1, 10, tzinfo=dt.UTC), tick=False):
        token = tracking_page_path(f).split("/")[2]
        assert client.get(f"/t/{token}/p/p-rec/").status_code == 302
    return f


def place(shop, customer, placed_at, total="80.00", captured=None):
    order = OrderFactory(shop=shop, customer=customer, placed_at=placed_at, total_price=Decimal(total))
    with captured(execute=True):
        order_upserted.send(sender=None, order=order, created=True, was_cancelled=False)
    return order


def test_order_within_window_is_attributed_once(shop, clicked, django_capture_on_commit_callbacks):
    customer = clicked.order.customer
    order = place(
        shop, customer, dt.datetime(2026, 5, 5, tzinfo=dt.UTC), captured=django_capture_on_commit_callbacks
    )
    with django_capture_on_commit_callbacks(execute=True):  # a redelivered webhook
        order_upserted.send(sender=None, order=order, created=False, was_cancelled=False)
    attribution = TrackingAttribution.objects.get()
    assert attribution.order == order and attribution.revenue == Decimal("80.00")
    stats = tracking_stats_for_shop(shop=shop)
    assert stats.attributed_orders == 1 and stats.attributed_revenue == Decimal("80.00")
    assert stats.recommendation_clicks == 1 and stats.code_clicks == 0 and stats.attribution_window_days == 7


def test_order_after_window_or_by_someone_else_is_not_attributed(
    shop, clicked, django_capture_on_commit_callbacks
):
    place(
        shop,
        clicked.order.customer,
        dt.datetime(2026, 5, 9, tzinfo=dt.UTC),
        captured=django_capture_on_commit_callbacks,
    )
    other = make_shipment(shop).order.customer
    place(shop, other, dt.datetime(2026, 5, 2, tzinfo=dt.UTC), captured=django_capture_on_commit_callbacks)
    place(
        shop,
        clicked.order.customer,
        dt.datetime(2026, 4, 30, tzinfo=dt.UTC),
        captured=django_capture_on_commit_callbacks,
    )
    assert TrackingAttribution.objects.count() == 0


def test_cancelled_attributed_order_is_not_counted(shop, clicked, django_capture_on_commit_callbacks):
    order = place(
        shop,
        clicked.order.customer,
        dt.datetime(2026, 5, 3, tzinfo=dt.UTC),
        captured=django_capture_on_commit_callbacks,
    )
    order.cancelled_at = timezone.now()
    order.save()
    assert tracking_stats_for_shop(shop=shop).attributed_revenue == Decimal("0")


def test_customer_redact_unlinks_clicks_and_export_lists_them(shop, clicked):
    customer = clicked.order.customer
    responses = customer_data_export.send(sender=None, shop=shop, customer=customer, customer_platform_id="x")
    section = next(r for _, r in responses if isinstance(r, dict) and r.get("section") == "tracking")
    assert len(section["data"]["clicks"]) == 1 and section["data"]["clicks"][0]["kind"] == "recommendation"
    generation = pagecache.generations([pagecache.customer_generation_key(customer.pk)])
    customer_redact.send(
        sender=None, shop=shop, customer=customer, customer_platform_id="x", order_platform_ids=[]
    )
    assert TrackingClick.objects.get().customer_id is None
    # Their cached pages are re-rendered from the (redacted) rows.
    assert pagecache.generations([pagecache.customer_generation_key(customer.pk)]) != generation
    customer_redact.send(
        sender=None, shop=shop, customer=customer, customer_platform_id="x", order_platform_ids=[]
    )


@requires_redis
def test_buffered_views_are_flushed_into_rows_with_their_time(client, shop):
    f = make_shipment(shop)
    with time_machine.travel(dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC), tick=False):
        view(client, f)
        view(client, f, ua="Other")
    assert TrackingPageView.objects.count() == 0  # buffered in Redis, not yet in the database
    assert tracking_page_views_flush() == 2
    assert tracking_page_views_flush() == 0
    rows = list(TrackingPageView.objects.order_by("id"))
    assert [r.created_at for r in rows] == [dt.datetime(2026, 6, 1, 8, tzinfo=dt.UTC)] * 2
    assert len({r.visitor_hash for r in rows}) == 2 and rows[0].day == dt.date(2026, 6, 1)


@requires_redis
def test_flush_drops_views_of_deleted_fulfillments(client, shop):
    f = make_shipment(shop)
    view(client, f)
    f.delete()
    assert tracking_page_views_flush() == 0
