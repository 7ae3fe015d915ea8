"""Every rule condition, matched and not matched, and the schema's refusal of bad input."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from retention_app.automations.conditions import RuleConditions, conditions_evaluate
from retention_app.commerce.models import Customer
from tests.factories import CustomerFactory, LineItemFactory, OrderFactory, ProductFactory


def check(conditions, customer, order=None):
    return conditions_evaluate(conditions=conditions, customer=customer, order=order)


def test_no_conditions_match_everything(shop):
    customer = CustomerFactory(shop=shop)
    assert check({}, customer).matched


def test_first_order_only(shop):
    customer = CustomerFactory(shop=shop)
    first = OrderFactory(shop=shop, customer=customer, placed_at="2026-01-01T10:00Z")
    second = OrderFactory(shop=shop, customer=customer, placed_at="2026-02-01T10:00Z")
    assert check({"first_order_only": True}, customer, first).matched
    result = check({"first_order_only": True}, customer, second)
    assert not result.matched and result.reason == "Not the customer's first order."


def test_min_order_total(shop):
    customer = CustomerFactory(shop=shop)
    order = OrderFactory(shop=shop, customer=customer, total_price=Decimal("49.99"))
    assert not check({"min_order_total": "50"}, customer, order).matched
    order.total_price = Decimal("50.00")
    assert check({"min_order_total": "50"}, customer, order).matched


def test_contains_product_and_collection(shop):
    customer = CustomerFactory(shop=shop)
    order = OrderFactory(shop=shop, customer=customer)
    product = ProductFactory(shop=shop, platform_id="111", collection_ids=["c-tea"])
    LineItemFactory(order=order, product_platform_id=product.platform_id)
    assert check({"contains_product_ids": ["111"]}, customer, order).matched
    assert not check({"contains_product_ids": ["222"]}, customer, order).matched
    assert check({"contains_collection_ids": ["c-tea"]}, customer, order).matched
    assert not check({"contains_collection_ids": ["c-coffee"]}, customer, order).matched


def test_collection_of_another_shop_does_not_count(shop, other_shop):
    customer = CustomerFactory(shop=shop)
    order = OrderFactory(shop=shop, customer=customer)
    ProductFactory(shop=other_shop, platform_id="111", collection_ids=["c-tea"])
    LineItemFactory(order=order, product_platform_id="111")
    assert not check({"contains_collection_ids": ["c-tea"]}, customer, order).matched


def test_customer_tags_case_insensitive(shop):
    customer = CustomerFactory(shop=shop, tags=["VIP", "wholesale"])
    assert check({"customer_tags": ["vip"]}, customer).matched
    assert not check({"customer_tags": ["newsletter"]}, customer).matched


def test_order_count_range_and_total_spent(shop):
    customer = CustomerFactory(shop=shop)
    OrderFactory(shop=shop, customer=customer, total_price=Decimal("30"))
    OrderFactory(shop=shop, customer=customer, total_price=Decimal("40"))
    OrderFactory(shop=shop, customer=customer, total_price=Decimal("999"), cancelled_at="2026-01-01T00:00Z")
    assert check({"min_order_count": 2}, customer).matched
    assert not check({"min_order_count": 3}, customer).matched  # the cancelled order does not count
    assert not check({"max_order_count": 1}, customer).matched
    assert check({"min_total_spent": "70"}, customer).matched
    assert not check({"min_total_spent": "70.01"}, customer).matched


def test_accepts_marketing(shop):
    yes = CustomerFactory(shop=shop, marketing_state=Customer.MarketingState.SUBSCRIBED)
    no = CustomerFactory(shop=shop, marketing_state=Customer.MarketingState.UNSUBSCRIBED)
    assert check({"accepts_marketing": True}, yes).matched
    assert not check({"accepts_marketing": True}, no).matched


@pytest.mark.parametrize(
    "bad",
    [
        {"min_order_total": "-1"},
        {"first_order_only": "sometimes"},
        {"unknown_condition": True},
        {"min_order_count": 5, "max_order_count": 1},
        {"contains_product_ids": ["x" * 300]},
    ],
)
def test_schema_refuses_bad_conditions(bad):
    with pytest.raises(ValidationError):
        RuleConditions.model_validate(bad)


def test_schema_round_trip_is_canonical():
    c = RuleConditions.model_validate({"min_order_total": "25.5", "customer_tags": [" vip ", "vip", ""]})
    assert c.to_json() == {"min_order_total": "25.5", "customer_tags": ["vip"]}
