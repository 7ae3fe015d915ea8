"""Commerce upserts: idempotent, stale payloads ignored, out-of-order deliveries, events on commit."""

import copy
import datetime as dt
from decimal import Decimal

import pytest

from retention_app.commerce import services
from retention_app.commerce.models import Customer, Fulfillment, FulfillmentEvent, LineItem, Order
from shop_integrations.shopify import normalize
from tests.conftest import requires_postgres
from tests.sync.conftest import load_fixture

pytestmark = pytest.mark.django_db


def upsert_order(shop, name, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return services.order_upsert(shop=shop, data=normalize.order_from_rest(load_fixture(name)))


def test_order_create_stores_order_customer_line_items_and_sends_events(
    shop, captured_events, django_capture_on_commit_callbacks
):
    result = upsert_order(shop, "orders_create__basic.json", django_capture_on_commit_callbacks)
    order = Order.objects.get(shop=shop, platform_id="820982911946154508")
    assert result.created and order.total_price == Decimal("1290.00") and order.currency == "THB"
    assert order.customer.first_name == "พลอย"
    assert order.customer.marketing_state == Customer.MarketingState.SUBSCRIBED
    assert order.line_items.count() == 2
    assert order.discount_codes == ["BACK-7QX2"]
    names = [name for name, _ in captured_events]
    assert names == ["customer_upserted", "order_upserted"]
    assert captured_events[1][1]["created"] is True and captured_events[1][1]["was_cancelled"] is False


def test_same_webhook_twice_is_a_no_op(shop, captured_events, django_capture_on_commit_callbacks):
    upsert_order(shop, "orders_create__basic.json", django_capture_on_commit_callbacks)
    captured_events.clear()
    result = upsert_order(shop, "orders_create__basic.json", django_capture_on_commit_callbacks)
    assert not result.created and not result.changed
    assert captured_events == []
    assert Order.objects.count() == 1 and LineItem.objects.count() == 2 and Customer.objects.count() == 1


def test_updated_before_create_and_stale_create_is_ignored(
    shop, captured_events, django_capture_on_commit_callbacks
):
    # given orders/updated (newer, one line item removed) arrives first
    first = upsert_order(
        shop, "orders_updated__refunded_item_removed.json", django_capture_on_commit_callbacks
    )
    assert first.created
    # when the older orders/create arrives afterwards
    late = upsert_order(shop, "orders_create__basic.json", django_capture_on_commit_callbacks)
    # then it changes nothing
    assert not late.changed
    order = Order.objects.get()
    assert order.financial_status == "partially_refunded"
    assert order.line_items.count() == 1
    assert [n for n, _ in captured_events].count("order_upserted") == 1


def test_newer_update_replaces_line_items_and_cancellation_is_recorded(
    shop, captured_events, django_capture_on_commit_callbacks
):
    upsert_order(shop, "orders_create__basic.json", django_capture_on_commit_callbacks)
    upsert_order(shop, "orders_updated__refunded_item_removed.json", django_capture_on_commit_callbacks)
    assert LineItem.objects.filter(order__shop=shop).count() == 1
    captured_events.clear()
    upsert_order(shop, "orders_cancelled__customer.json", django_capture_on_commit_callbacks)
    order = Order.objects.get()
    assert order.cancelled_at is not None and order.cancel_reason == "customer"
    assert not order.counts_for_metrics
    (event,) = [kw for n, kw in captured_events if n == "order_upserted"]
    assert event["was_cancelled"] is False and event["created"] is False
    # a stale update after the cancellation does not un-cancel
    upsert_order(shop, "orders_updated__refunded_item_removed.json", django_capture_on_commit_callbacks)
    assert Order.objects.get().cancelled_at is not None


def test_customer_consent_change_sends_previous_state(
    shop, captured_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.customer_upsert(
            shop=shop, data=normalize.customer_from_rest(load_fixture("customers_create__subscribed.json"))
        )
        services.customer_upsert(
            shop=shop, data=normalize.customer_from_rest(load_fixture("customers_update__unsubscribed.json"))
        )
        # older again: ignored
        services.customer_upsert(
            shop=shop, data=normalize.customer_from_rest(load_fixture("customers_create__subscribed.json"))
        )
    customer = Customer.objects.get()
    assert customer.marketing_state == Customer.MarketingState.UNSUBSCRIBED
    assert [(kw["created"], kw["previous_marketing_state"]) for _, kw in captured_events] == [
        (True, ""),
        (False, "SUBSCRIBED"),
    ]


def test_customer_without_consent_info_keeps_stored_state(shop, django_capture_on_commit_callbacks):
    services.customer_upsert(
        shop=shop, data=normalize.customer_from_rest(load_fixture("customers_create__subscribed.json"))
    )
    body = load_fixture("customers_create__subscribed.json")
    body.pop("email_marketing_consent")
    body["updated_at"] = "2026-04-01T00:00:00Z"
    body["first_name"] = "Ploy"
    services.customer_upsert(shop=shop, data=normalize.customer_from_rest(body))
    customer = Customer.objects.get()
    assert customer.first_name == "Ploy" and customer.marketing_state == "SUBSCRIBED"


def test_fulfillment_and_tracking_events_move_shipment_status(
    shop, captured_events, django_capture_on_commit_callbacks
):
    upsert_order(shop, "orders_create__basic.json", django_capture_on_commit_callbacks)
    captured_events.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.fulfillment_upsert(
            shop=shop, data=normalize.fulfillment_from_rest(load_fixture("fulfillments_create__basic.json"))
        )
        services.fulfillment_upsert(
            shop=shop,
            data=normalize.fulfillment_from_rest(load_fixture("fulfillments_update__in_transit.json")),
        )
        # delivered arrives before out_for_delivery: the latest by time wins
        services.fulfillment_event_upsert(
            shop=shop,
            data=normalize.fulfillment_event_from_rest(
                load_fixture("fulfillment_events_create__delivered.json")
            ),
        )
        services.fulfillment_event_upsert(
            shop=shop,
            data=normalize.fulfillment_event_from_rest(
                load_fixture("fulfillment_events_create__out_for_delivery.json")
            ),
        )
        # duplicate delivery of the same event: no-op
        dup = services.fulfillment_event_upsert(
            shop=shop,
            data=normalize.fulfillment_event_from_rest(
                load_fixture("fulfillment_events_create__delivered.json")
            ),
        )
    assert not dup.changed
    fulfillment = Fulfillment.objects.get()
    assert fulfillment.shipment_status == Fulfillment.ShipmentStatus.DELIVERED
    assert fulfillment.delivered_at == dt.datetime(2026, 2, 5, 8, 30, tzinfo=dt.UTC)
    assert FulfillmentEvent.objects.count() == 2
    statuses = [
        (kw["created"], kw["previous_shipment_status"])
        for n, kw in captured_events
        if n == "fulfillment_upserted"
    ]
    assert statuses == [(True, ""), (False, ""), (False, "IN_TRANSIT"), (False, "DELIVERED")]


def test_fulfillment_before_its_order_raises_missing_parent(shop):
    with pytest.raises(services.MissingParent):
        services.fulfillment_upsert(
            shop=shop, data=normalize.fulfillment_from_rest(load_fixture("fulfillments_create__basic.json"))
        )
    with pytest.raises(services.MissingParent):
        services.fulfillment_event_upsert(
            shop=shop,
            data=normalize.fulfillment_event_from_rest(
                load_fixture("fulfillment_events_create__delivered.json")
            ),
        )


def test_same_platform_ids_in_two_shops_stay_apart(shop, other_shop, django_capture_on_commit_callbacks):
    upsert_order(shop, "orders_create__basic.json", django_capture_on_commit_callbacks)
    upsert_order(other_shop, "orders_create__basic.json", django_capture_on_commit_callbacks)
    assert Order.objects.filter(shop=shop).count() == 1 and Order.objects.filter(shop=other_shop).count() == 1
    assert Order.objects.get(shop=other_shop).customer.shop == other_shop


def test_bulk_write_is_idempotent_and_never_overwrites_newer_rows(
    shop, captured_events, django_capture_on_commit_callbacks
):
    newer = normalize.order_from_rest(load_fixture("orders_cancelled__customer.json"))
    services.order_upsert(shop=shop, data=newer)
    captured_events.clear()
    older = normalize.order_from_graphql(load_fixture("graphql_order__node.json"))
    other = copy.deepcopy(load_fixture("graphql_order__node.json"))
    other["id"] = "gid://shopify/Order/42"
    other["customer"] = {"id": "gid://shopify/Customer/77"}
    other_order = normalize.order_from_graphql(other)
    for _ in range(2):
        batch = services.BulkBatch.empty()
        batch.orders.extend([older, other_order])
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            services.commerce_bulk_write(shop_id=shop.pk, batch=batch)
        assert callbacks == []
    assert Order.objects.get(platform_id="820982911946154508").cancelled_at is not None  # newer kept
    created = Order.objects.get(platform_id="42")
    assert created.customer.platform_id == "77"  # stub customer created for the link
    assert created.line_items.count() == 2 and created.fulfillments.get().shipment_status == "IN_TRANSIT"
    assert Order.objects.count() == 2 and LineItem.objects.count() == 4
    assert captured_events == []  # bulk writes send no events


def _bulk_order(platform_id: str, *, customer="77", name="#1001", updated="2026-02-01T10:00:00Z"):
    node = copy.deepcopy(load_fixture("graphql_order__node.json"))
    node.update(id=f"gid://shopify/Order/{platform_id}", name=name, updatedAt=updated)
    node["customer"] = {"id": f"gid://shopify/Customer/{customer}"}
    return normalize.order_from_graphql(node)


def test_bulk_write_keeps_tabs_newlines_and_backslashes_in_text(shop):
    """The PostgreSQL path formats COPY text itself: special characters must arrive unchanged."""
    tricky = "tab\there\nnew line\r\\N back\\slash é"
    node = copy.deepcopy(load_fixture("graphql_order__node.json"))
    node.update(id="gid://shopify/Order/5", name="#5\t\\", email="a\\b@example.com")
    node["discountCodes"] = ['say "hi"\\', "tab\t"]
    node["lineItems"]["nodes"][0].update(title=tricky, sku="\\N")
    batch = services.BulkBatch.empty()
    batch.orders.append(normalize.order_from_graphql(node))
    services.commerce_bulk_write(shop_id=shop.pk, batch=batch)
    order = Order.objects.get(shop=shop, platform_id="5")
    assert (order.name, order.email) == ("#5\t\\", "a\\b@example.com")
    assert order.discount_codes == ['SAY "HI"\\', "TAB\t"]
    item = order.line_items.get(platform_id=normalize.platform_id(node["lineItems"]["nodes"][0]["id"]))
    assert (item.title, item.sku) == (tricky, "\\N")
    assert order.subtotal_price is not None and order.cancelled_at is None  # NULL and non-NULL both right


@requires_postgres
def test_bulk_write_falls_back_to_upserts_when_an_order_appears_after_the_check(shop, monkeypatch):
    """An order stored by another writer between the existence check and the COPY (simulated by a check that
    sees nothing) fails the COPY on the unique constraint; the batch is then written by the upsert path,
    which keeps the newer stored row."""
    services.order_upsert(shop=shop, data=_bulk_order("1", name="#newer", updated="2026-03-01T00:00:00Z"))
    monkeypatch.setattr(services, "_pg_stored_order_ids", lambda raw, shop_id, orders: set())
    batch = services.BulkBatch.empty()
    batch.orders.extend([_bulk_order("1", name="#older"), _bulk_order("2", customer="78")])
    services.commerce_bulk_write(shop_id=shop.pk, batch=batch)
    assert Order.objects.get(shop=shop, platform_id="1").name == "#newer"
    assert Order.objects.get(shop=shop, platform_id="2").customer.platform_id == "78"
    assert LineItem.objects.filter(order__platform_id="2").count() == 2
    assert Order.objects.filter(shop=shop).count() == 2
