"""Redemption attribution (order_upserted), the unused-code selector, privacy receivers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from retention_app.commerce.events import order_upserted
from retention_app.discounts.models import DiscountCode
from retention_app.discounts.selectors import discount_codes_for_shop, unused_code_for_customer
from retention_app.shops.events import customer_data_export, customer_redact
from tests.factories import CustomerFactory, OrderFactory


def make_code(shop, customer, code, **kwargs):
    defaults = dict(
        rule_key="order_confirmation",
        trigger_key=f"t-{code}",
        value_type="percentage",
        value=15,
        currency="USD",
        starts_at=timezone.now() - dt.timedelta(days=1),
        expires_at=timezone.now() + dt.timedelta(days=30),
        status=DiscountCode.Status.ACTIVE,
        platform_discount_id="gid://shopify/DiscountCodeNode/1",
    )
    defaults.update(kwargs)
    return DiscountCode.objects.create(shop=shop, customer=customer, code=code, **defaults)


def send_order(order):
    order_upserted.send(sender=None, order=order, created=True, was_cancelled=False)


@pytest.mark.django_db
def test_order_with_an_issued_code_marks_it_redeemed_once(shop):
    customer = CustomerFactory(shop=shop)
    code = make_code(shop, customer, "NEXT-AAAA2222")
    order = OrderFactory(shop=shop, customer=customer, discount_codes=["next-aaaa2222"])
    send_order(order)
    code.refresh_from_db()
    assert code.status == DiscountCode.Status.REDEEMED
    assert code.redeemed_order == order
    assert code.redeemed_at == order.placed_at

    # The same webhook again, and a later order that also lists the code: the first order keeps it.
    send_order(order)
    later = OrderFactory(shop=shop, customer=customer, discount_codes=["NEXT-AAAA2222"])
    send_order(later)
    code.refresh_from_db()
    assert code.redeemed_order == order


@pytest.mark.django_db
def test_other_shops_codes_and_unknown_codes_are_untouched(shop, other_shop):
    mine = make_code(shop, CustomerFactory(shop=shop), "NEXT-SAME2222")
    theirs_customer = CustomerFactory(shop=other_shop)
    order = OrderFactory(
        shop=other_shop, customer=theirs_customer, discount_codes=["NEXT-SAME2222", "SUMMER10"]
    )
    send_order(order)
    mine.refresh_from_db()
    assert mine.redeemed_at is None and mine.status == DiscountCode.Status.ACTIVE
    assert list(discount_codes_for_shop(shop=other_shop)) == []


@pytest.mark.django_db
def test_unused_code_for_customer(shop):
    customer = CustomerFactory(shop=shop)
    assert unused_code_for_customer(customer) is None
    make_code(shop, customer, "NEXT-OLD22222", expires_at=timezone.now() - dt.timedelta(minutes=1))
    make_code(shop, customer, "NEXT-PEND2222", status=DiscountCode.Status.PENDING)
    redeemed = make_code(shop, customer, "NEXT-USED2222")
    assert unused_code_for_customer(customer) == redeemed
    send_order(OrderFactory(shop=shop, customer=customer, discount_codes=["NEXT-USED2222"]))
    assert unused_code_for_customer(customer) is None
    fresh = make_code(shop, customer, "BACK-NEW22222", expires_at=None)
    assert unused_code_for_customer(customer) == fresh
    assert unused_code_for_customer(CustomerFactory(shop=shop)) is None


@pytest.mark.django_db
def test_data_export_and_redact(shop):
    customer = CustomerFactory(shop=shop)
    make_code(shop, customer, "NEXT-KEEP2222")
    make_code(shop, customer, "NEXT-PEND3333", status=DiscountCode.Status.PENDING)
    responses = customer_data_export.send(sender=None, shop=shop, customer=customer, customer_platform_id="x")
    [section] = [r for _, r in responses if r and r.get("section") == "discounts"]
    assert {row["code"] for row in section["data"]} == {"NEXT-KEEP2222", "NEXT-PEND3333"}

    customer_redact.send(
        sender=None, shop=shop, customer=customer, customer_platform_id="x", order_platform_ids=[]
    )
    assert list(DiscountCode.objects.values_list("code", flat=True)) == ["NEXT-KEEP2222"]


@pytest.mark.django_db
def test_orders_written_without_an_event_are_attributed_by_the_sweep(shop):
    from retention_app.discounts.services import discount_codes_redeem_recent_orders
    from retention_app.discounts.tasks import redeem_recent_orders

    customer = CustomerFactory(shop=shop)
    code = make_code(shop, customer, "NEXT-SWEP2222")
    OrderFactory(shop=shop, customer=customer, discount_codes=[])
    order = OrderFactory(shop=shop, customer=customer, discount_codes=["NEXT-SWEP2222"])  # no event sent
    code.refresh_from_db()
    assert code.redeemed_at is None
    assert discount_codes_redeem_recent_orders(since=timezone.now() + dt.timedelta(minutes=1)) == 0
    assert redeem_recent_orders.delay().get() == 1
    code.refresh_from_db()
    assert code.redeemed_order == order
    assert discount_codes_redeem_recent_orders(since=timezone.now() - dt.timedelta(hours=1)) == 0
