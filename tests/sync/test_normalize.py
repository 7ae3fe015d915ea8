"""Both Shopify shapes (REST webhook JSON and GraphQL / bulk JSONL) normalize to the same dataclasses."""

import datetime as dt
import json
from decimal import Decimal

import pytest

from shop_integrations.shopify import normalize
from tests.sync.conftest import FIXTURES, load_fixture


def test_rest_order_with_embedded_customer_and_line_items():
    order = normalize.order_from_rest(load_fixture("orders_create__basic.json"))
    assert order.platform_id == "820982911946154508"
    assert order.currency == "THB"
    assert order.total_price == Decimal("1290.00")
    assert order.total_discounts == Decimal("100.00")
    assert order.financial_status == "paid"
    assert order.fulfillment_status == ""
    assert order.discount_codes == ("BACK-7QX2",)
    assert order.placed_at == dt.datetime(2026, 2, 1, 17, 0, tzinfo=dt.UTC)
    assert order.customer_platform_id == "706405506930370084"
    assert order.customer.first_name == "พลอย"
    assert order.customer.marketing_state == "SUBSCRIBED"
    assert order.customer.tags == ("vip", "tea")
    assert [li.platform_id for li in order.line_items] == ["866550311766439020", "141249953214522974"]
    assert order.line_items[1].quantity == 2
    assert order.line_items[1].price == Decimal("350.00")
    assert order.line_items[0].product_platform_id == "632910392"
    assert order.fulfillments == ()
    assert order.cancelled_at is None


def test_rest_and_graphql_order_normalize_to_the_same_values():
    rest = normalize.order_from_rest(load_fixture("orders_create__basic.json"))
    gql = normalize.order_from_graphql(load_fixture("graphql_order__node.json"))
    for field in (
        "platform_id",
        "name",
        "email",
        "currency",
        "total_price",
        "subtotal_price",
        "total_discounts",
        "financial_status",
        "discount_codes",
        "customer_locale",
        "buyer_accepts_marketing",
        "placed_at",
        "customer_platform_id",
    ):
        assert getattr(rest, field) == getattr(gql, field), field
    assert [(li.platform_id, li.quantity, li.price, li.product_platform_id) for li in rest.line_items] == [
        (li.platform_id, li.quantity, li.price, li.product_platform_id) for li in gql.line_items
    ]
    assert rest.customer.email == gql.customer.email == "ploy@example.co.th"
    assert rest.customer.marketing_state == gql.customer.marketing_state == "SUBSCRIBED"
    (fulfillment,) = gql.fulfillments
    assert fulfillment.shipment_status == "IN_TRANSIT"
    assert fulfillment.status == "success"
    assert fulfillment.tracking_number == "KEX123456789TH"
    assert fulfillment.order_platform_id == rest.platform_id


def test_rest_cancelled_order_records_cancellation():
    order = normalize.order_from_rest(load_fixture("orders_cancelled__customer.json"))
    assert order.cancelled_at == dt.datetime(2026, 2, 2, 14, 0, tzinfo=dt.UTC)
    assert order.cancel_reason == "customer"


def test_guest_order_has_no_customer():
    order = normalize.order_from_rest(load_fixture("orders_create__guest.json"))
    assert order.customer is None and order.customer_platform_id == ""
    assert order.email == "guest@example.com"


def test_rest_customer_consent_states():
    assert (
        normalize.customer_from_rest(load_fixture("customers_create__subscribed.json")).marketing_state
        == "SUBSCRIBED"
    )
    updated = normalize.customer_from_rest(load_fixture("customers_update__unsubscribed.json"))
    assert updated.marketing_state == "UNSUBSCRIBED"
    assert updated.marketing_state_updated_at == dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    legacy = normalize.customer_from_rest(
        {"id": 1, "accepts_marketing": False, "updated_at": "2026-01-01T00:00:00Z"}
    )
    assert legacy.marketing_state == "NOT_SUBSCRIBED"
    silent = normalize.customer_from_rest({"id": 1})
    assert silent.marketing_state is None


def test_rest_fulfillment_and_events_use_upper_case_statuses():
    created = normalize.fulfillment_from_rest(load_fixture("fulfillments_create__basic.json"))
    assert created.shipment_status == ""  # REST null: the carrier said nothing yet
    assert created.order_platform_id == "820982911946154508"
    assert created.tracking_company == "Kerry Express"
    updated = normalize.fulfillment_from_rest(load_fixture("fulfillments_update__in_transit.json"))
    assert updated.shipment_status == "IN_TRANSIT"
    event = normalize.fulfillment_event_from_rest(
        load_fixture("fulfillment_events_create__out_for_delivery.json")
    )
    assert event.status == "OUT_FOR_DELIVERY"
    assert event.fulfillment_platform_id == "255858046"
    assert event.happened_at == dt.datetime(2026, 2, 5, 1, 0, tzinfo=dt.UTC)
    assert event.estimated_delivery_at == dt.datetime(2026, 2, 5, 11, 0, tzinfo=dt.UTC)


def test_bulk_jsonl_lines():
    lines = [
        json.loads(x)
        for x in (FIXTURES / "bulk_operations_finish__orders.jsonl").read_text("utf-8").splitlines()
    ]
    assert [normalize.bulk_line_kind(x) for x in lines] == [
        "Order",
        "LineItem",
        "LineItem",
        "Order",
        "LineItem",
    ]
    order = normalize.order_from_graphql(lines[0])
    assert order.line_items is None  # children come as their own lines
    assert order.customer is None and order.customer_platform_id == "706405506930370084"
    cancelled = normalize.order_from_graphql(lines[3])
    assert cancelled.cancel_reason == "declined" and cancelled.cancelled_at is not None
    item = normalize.line_item_from_graphql(lines[4])
    assert item.product_platform_id == "" and item.price == Decimal("500.0")
    customers = [
        json.loads(x)
        for x in (FIXTURES / "bulk_operations_finish__customers.jsonl").read_text("utf-8").splitlines()
    ]
    no_email = normalize.customer_from_graphql(customers[1])
    assert no_email.email == "" and no_email.marketing_state is None and no_email.first_name == "明"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("gid://shopify/Order/123", "123"), (123, "123"), ("gid://shopify/Customer/9?x=1", "9"), (None, "")],
)
def test_platform_id(value, expected):
    assert normalize.platform_id(value) == expected


def test_payload_without_id_or_bad_amount_is_rejected():
    with pytest.raises(normalize.PayloadError):
        normalize.order_from_rest({"created_at": "2026-01-01T00:00:00Z"})
    with pytest.raises(normalize.PayloadError):
        normalize.order_from_rest({"id": 1, "created_at": "2026-01-01T00:00:00Z", "total_price": "abc"})


def test_product_from_graphql_links_to_the_storefront_and_reads_media_price_and_collections():
    node = {
        "id": "gid://shopify/Product/632910392",
        "title": "Jasmine Green Tea",
        "handle": "jasmine-green-tea",
        "status": "ACTIVE",
        "updatedAt": "2026-02-02T00:00:00Z",
        "onlineStoreUrl": "https://primary.example/products/jasmine-green-tea",
        "featuredMedia": {"preview": {"image": {"url": "https://cdn.shopify.com/jasmine.jpg"}}},
        "priceRangeV2": {"minVariantPrice": {"amount": "350.00", "currencyCode": "THB"}},
        "collections": {"nodes": [{"id": "gid://shopify/Collection/7"}], "pageInfo": {"hasNextPage": False}},
    }
    product = normalize.product_from_graphql(node, storefront_url="https://shop.example.co.th/")
    assert product.url == "https://shop.example.co.th/products/jasmine-green-tea"
    assert product.image_url == "https://cdn.shopify.com/jasmine.jpg"
    assert (product.price, product.currency, product.collection_ids) == (Decimal("350.00"), "THB", ("7",))
    # storefront unknown: onlineStoreUrl; no media preview yet; collections not selected / partial: None
    node.update(featuredMedia={"preview": None})
    node["collections"]["pageInfo"]["hasNextPage"] = True
    other = normalize.product_from_graphql(node)
    assert other.url == "https://primary.example/products/jasmine-green-tea" and other.image_url == ""
    assert other.collection_ids is None
    del node["collections"]
    assert normalize.product_from_graphql(node).collection_ids is None
