"""Scheduling from domain events: idempotent under redelivery, the right rules, cancellations."""

import datetime as dt

import pytest
import time_machine
from django.utils import timezone

from retention_app.automations import services
from retention_app.automations.models import Message
from retention_app.commerce.models import Customer, Fulfillment
from tests.automations.conftest import fire_customer, fire_fulfillment, fire_order, minutes_ago, only
from tests.factories import CustomerFactory, FulfillmentFactory, OrderFactory


def test_same_order_event_five_times_schedules_one_row_per_rule(shop, rules):
    order = OrderFactory(shop=shop, placed_at=minutes_ago(1))
    for _ in range(5):
        fire_order(order, created=True)  # even if every delivery claimed to be the first
    rows = Message.objects.filter(order=order)
    assert sorted(rows.values_list("rule__key", flat=True)) == ["order_confirmation", "thank_you"]
    thank_you = rows.get(rule__key="thank_you")
    assert thank_you.trigger_key == f"order:{order.platform_id}"
    assert thank_you.due_at == order.placed_at + dt.timedelta(minutes=30)
    assert thank_you.status == Message.Status.SCHEDULED and thank_you.is_marketing


def test_repeat_order_gets_no_thank_you(shop, rules):
    customer = CustomerFactory(shop=shop)
    OrderFactory(shop=shop, customer=customer, placed_at=minutes_ago(60 * 24 * 40))
    repeat = OrderFactory(shop=shop, customer=customer, placed_at=minutes_ago(1))
    fire_order(repeat)
    assert list(Message.objects.filter(order=repeat).values_list("rule__key", flat=True)) == [
        "order_confirmation"
    ]


def test_paused_rule_schedules_nothing(shop, rules):
    only(rules, "order_confirmation")
    order = OrderFactory(shop=shop, placed_at=minutes_ago(1))
    fire_order(order)
    assert list(Message.objects.values_list("rule__key", flat=True)) == ["order_confirmation"]


def test_old_or_guest_orders_trigger_nothing(shop, rules):
    fire_order(OrderFactory(shop=shop, placed_at=minutes_ago(60 * 24 * 10)))
    fire_order(OrderFactory(shop=shop, customer=None, placed_at=minutes_ago(1)))
    assert not Message.objects.exists()


def test_cancelled_or_refunded_order_cancels_its_pending_messages(shop, rules):
    order = OrderFactory(shop=shop, placed_at=minutes_ago(1))
    fire_order(order)
    order.financial_status = "refunded"
    order.save()
    fire_order(order, created=False)
    reasons = set(Message.objects.filter(order=order).values_list("status", "reason"))
    assert reasons == {("cancelled", "The order was refunded before the send time.")}

    other = OrderFactory(shop=shop, placed_at=minutes_ago(1))
    fire_order(other)
    other.cancelled_at = timezone.now()
    other.save()
    fire_order(other, created=False)
    assert set(Message.objects.filter(order=other).values_list("reason", flat=True)) == {
        "The order was cancelled before the send time."
    }


def test_unsubscribe_cancels_pending_marketing_only(shop, rules):
    order = OrderFactory(shop=shop, placed_at=minutes_ago(1))
    fire_order(order)
    customer = order.customer
    customer.marketing_state = Customer.MarketingState.UNSUBSCRIBED
    customer.save()
    fire_customer(customer, previous=Customer.MarketingState.SUBSCRIBED)
    thank_you = Message.objects.get(rule__key="thank_you")
    confirmation = Message.objects.get(rule__key="order_confirmation")
    assert thank_you.status == "cancelled"
    assert thank_you.reason == "The customer unsubscribed from email marketing."
    assert confirmation.status == "scheduled"  # transactional: still goes (without the discount)


def test_shipping_one_message_per_status_change(shop, rules):
    order = OrderFactory(shop=shop, placed_at=minutes_ago(60))
    f = FulfillmentFactory(order=order, shipment_status="")
    for _ in range(3):
        fire_fulfillment(f, created=True)
    f.shipment_status = "IN_TRANSIT"
    f.save()
    for _ in range(3):
        fire_fulfillment(f, created=False, previous="")
        fire_fulfillment(f, created=False, previous="IN_TRANSIT")  # redelivery after the change
    f.shipment_status = "LABEL_PRINTED"  # not a status customers are told about
    fire_fulfillment(f, created=False, previous="IN_TRANSIT")
    for status, previous in [("OUT_FOR_DELIVERY", "IN_TRANSIT"), ("DELIVERED", "OUT_FOR_DELIVERY")]:
        f.shipment_status = status
        f.save()
        fire_fulfillment(f, created=False, previous=previous)
        fire_fulfillment(f, created=False, previous=previous)
    keys = sorted(Message.objects.filter(rule__key="shipping_update").values_list("trigger_key", flat=True))
    p = f.platform_id
    assert keys == sorted(
        [f"fulfillment:{p}:SHIPPED", f"fulfillment:{p}:IN_TRANSIT", f"fulfillment:{p}:OUT_FOR_DELIVERY",
         f"fulfillment:{p}:DELIVERED"]
    )  # fmt: skip
    assert not Message.objects.filter(rule__key="shipping_update", is_marketing=True).exists()


def test_no_shipping_email_for_shipment_already_delivered_when_first_seen(shop, rules):
    f = FulfillmentFactory(
        order=OrderFactory(shop=shop), shipment_status=Fulfillment.ShipmentStatus.DELIVERED
    )
    fire_fulfillment(f, created=True)
    assert not Message.objects.exists()


def test_winback_once_per_lapse_and_cancelled_by_new_order(shop, rules):
    lapsed = CustomerFactory(shop=shop)
    last = OrderFactory(shop=shop, customer=lapsed, placed_at=timezone.now() - dt.timedelta(days=200))
    recent = CustomerFactory(shop=shop)
    OrderFactory(shop=shop, customer=recent, placed_at=timezone.now() - dt.timedelta(days=20))
    unsubscribed = CustomerFactory(shop=shop, marketing_state=Customer.MarketingState.UNSUBSCRIBED)
    OrderFactory(shop=shop, customer=unsubscribed, placed_at=timezone.now() - dt.timedelta(days=400))

    assert services.winback_schedule_lapsed(shop=shop) == 1
    assert services.winback_schedule_lapsed(shop=shop) == 0  # the scan runs hourly: still one
    msg = Message.objects.get(rule__key="win_back")
    assert msg.customer == lapsed and msg.trigger_key == f"winback:{last.platform_id}"

    comeback = OrderFactory(shop=shop, customer=lapsed, placed_at=minutes_ago(1))
    fire_order(comeback)
    msg.refresh_from_db()
    assert msg.status == "cancelled" and msg.reason == "The customer ordered again before the send time."

    # 200 days after the new order the customer has lapsed again: a second win-back, bound to it.
    with time_machine.travel(timezone.now() + dt.timedelta(days=200), tick=False):
        assert services.winback_schedule_lapsed(shop=shop) == 2  # and `recent` has lapsed by then
    assert Message.objects.filter(
        rule__key="win_back", trigger_key=f"winback:{comeback.platform_id}"
    ).exists()


def test_shop_uninstalled_cancels_everything_pending(shop, rules):
    from retention_app.shops import events as shop_events

    fire_order(OrderFactory(shop=shop, placed_at=minutes_ago(1)))
    shop_events.shop_uninstalled.send(sender=None, shop=shop)
    assert set(Message.objects.values_list("status", "reason")) == {
        ("cancelled", "The app was uninstalled from the store.")
    }


def test_customer_redact_erases_message_records(shop, rules):
    from retention_app.shops import events as shop_events

    order = OrderFactory(shop=shop, placed_at=minutes_ago(1))
    fire_order(order)
    Message.objects.update(to_email="ana@example.com", subject="Thanks Ana")
    replies = shop_events.customer_data_export.send(
        sender=None, shop=shop, customer=order.customer, customer_platform_id=order.customer.platform_id
    )
    exported = [r for _, r in replies if r and r["section"] == "automations"][0]
    assert {row["to_email"] for row in exported["data"]} == {"ana@example.com"}
    shop_events.customer_redact.send(
        sender=None, shop=shop, customer=order.customer, customer_platform_id="x", order_platform_ids=[]
    )
    assert set(Message.objects.values_list("to_email", "subject", "status")) == {("", "", "cancelled")}


def test_catch_up_schedules_orders_whose_event_was_missed_but_not_history(shop, rules):
    shop.installed_at = timezone.now() - dt.timedelta(hours=1)
    shop.save()
    missed = OrderFactory(shop=shop, placed_at=minutes_ago(10))  # stored, but no event reached us
    history = OrderFactory(shop=shop, placed_at=minutes_ago(24 * 60))  # placed before the install
    assert services.automations_catch_up_orders() == 2  # thank-you + confirmation of `missed`
    assert services.automations_catch_up_orders() == 0
    assert set(Message.objects.values_list("order_id", flat=True)) == {missed.pk}
    assert not Message.objects.filter(order=history).exists()


def test_a_claim_token_is_held_exactly_while_sending(shop, rules):
    """The sender fences its writes by the claim token alone; the database holds the invariant."""
    from django.db import IntegrityError, transaction

    only(rules, "thank_you")
    fire_order(OrderFactory(shop=shop, placed_at=minutes_ago(31)))
    msg = Message.objects.get()
    for status, token in (("sending", ""), ("scheduled", "T"), ("sent", "T")):
        with pytest.raises(IntegrityError), transaction.atomic():
            Message.objects.filter(pk=msg.pk).update(status=status, claimed_by=token)
    assert services.messages_claim_due(limit=1, token="T") == [msg.pk]
    with pytest.raises(ValueError):
        services._fenced(msg, "")
