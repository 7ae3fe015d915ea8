"""Automation results: messages by status, codes issued/redeemed and attributed orders, per rule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from retention_app.discounts.models import DiscountCode
from retention_app.metrics.automation import automation_results
from tests.metrics.conftest import History
from tests.panel.factories import MessageFactory, RuleFactory

pytestmark = pytest.mark.django_db


def code(shop, customer, rule_key, created, redeemed=None, status=DiscountCode.Status.ACTIVE, n=[0]):  # noqa: B006
    n[0] += 1
    row = DiscountCode.objects.create(
        shop=shop,
        customer=customer,
        rule_key=rule_key,
        trigger_key=f"t{n[0]}",
        code=f"BACK-{n[0]}",
        value_type="percentage",
        value=Decimal("10"),
        currency="USD",
        starts_at=created,
        status=DiscountCode.Status.REDEEMED if redeemed else status,
        redeemed_at=redeemed,
    )
    DiscountCode.objects.filter(pk=row.pk).update(created_at=created)


def test_results_per_rule(shop, other_shop, history):
    thanks = RuleFactory(shop=shop, key="thank_you", name="Thanks")
    winback = RuleFactory(shop=shop, key="win_back", name="Win-back", trigger="customer_lapsed")
    a, b = history.customer("A"), history.customer("B")
    sent_at = history.at("2026-03-05 10:00")
    MessageFactory(shop=shop, rule=thanks, customer=a, status="sent", sent_at=sent_at)
    MessageFactory(
        shop=shop, rule=winback, customer=b, status="cancelled", reason="no consent", due_at=sent_at
    )
    MessageFactory(shop=shop, rule=winback, customer=a, status="sent", sent_at=sent_at)
    history.order("A", "2026-03-10 10:00", "80.00")  # 5 days after both messages: attributed to both
    history.order("A", "2026-04-20 10:00", "99.00")  # 46 days later: outside the 30-day window
    history.order("B", "2026-03-11 10:00", "30.00")  # B got nothing that was sent
    history.order("A", "2026-03-12 10:00", "70.00", cancelled=True)
    code(shop, a, "win_back", sent_at, redeemed=history.at("2026-03-10 10:00"))
    code(shop, b, "win_back", sent_at, status=DiscountCode.Status.FAILED)
    # Another shop's rows never count.
    rival = History(other_shop)
    rival_rule = RuleFactory(shop=other_shop, key="thank_you")
    MessageFactory(
        shop=other_shop, rule=rival_rule, customer=rival.customer("Z"), status="sent", sent_at=sent_at
    )
    rival.order("Z", "2026-03-10 10:00")
    code(other_shop, rival.customer("Z"), "win_back", sent_at)

    results = automation_results(
        shop=shop, start=history.at("2026-03-01 00:00"), end=history.at("2026-04-01 00:00")
    )
    by_key = {r.key: r for r in results["rules"]}
    assert (by_key["thank_you"].sent, by_key["thank_you"].cancelled) == (1, 0)
    assert (by_key["win_back"].sent, by_key["win_back"].cancelled) == (1, 1)
    assert by_key["thank_you"].attributed_orders == 1 and by_key["thank_you"].attributed_revenue == Decimal(
        "80"
    )
    assert by_key["win_back"].attributed_orders == 1
    assert (by_key["win_back"].codes_issued, by_key["win_back"].codes_redeemed) == (1, 1)
    assert by_key["thank_you"].codes_issued == 0
    assert results["attributed_orders"] == 1 and results["attributed_revenue"] == Decimal("80")
    assert results["attribution_days"] == 30


def test_message_created_outside_period_is_not_counted(shop, history):
    rule = RuleFactory(shop=shop)
    MessageFactory(
        shop=shop,
        rule=rule,
        customer=history.customer("A"),
        status="sent",
        sent_at=history.at("2026-05-01 10:00"),
    )
    results = automation_results(
        shop=shop, start=history.at("2020-03-01 00:00"), end=history.at("2020-04-01 00:00")
    )
    assert results["rules"][0].sent == 0


def test_attributed_revenue_by_month(shop, history):
    from retention_app.metrics.automation import attributed_revenue_by_month

    rule = RuleFactory(shop=shop)
    a = history.customer("A")
    MessageFactory(shop=shop, rule=rule, customer=a, status="sent", sent_at=history.at("2026-02-25 10:00"))
    history.order("A", "2026-02-27 10:00", "10.00")
    history.order("A", "2026-03-02 10:00", "15.00")
    history.order("A", "2026-03-30 10:00", "99.00")  # more than 30 days after the message
    rows = attributed_revenue_by_month(
        shop=shop, start=history.at("2026-01-01 00:00"), end=history.at("2026-04-01 00:00")
    )
    assert [(r["month"].strftime("%Y-%m"), r["orders"], r["revenue"]) for r in rows] == [
        ("2026-02", 1, Decimal("10.00")),
        ("2026-03", 1, Decimal("15.00")),
    ]


def test_tracking_results(shop, other_shop, history):
    from retention_app.metrics.automation import tracking_results
    from retention_app.tracking.models import TrackingAttribution, TrackingClick, TrackingPageView
    from tests.factories import FulfillmentFactory

    def track(target, name, day_hashes, when):
        order = (
            History(target).order(name, "2026-03-03 10:00")
            if target != shop
            else history.order(name, "2026-03-03 10:00")
        )
        fulfillment = FulfillmentFactory(order=order)
        for day, visitor in day_hashes:
            TrackingPageView.objects.create(
                shop=target,
                fulfillment=fulfillment,
                day=dt.date.fromisoformat(day),
                visitor_hash=visitor,
                created_at=when,
            )
        click = TrackingClick.objects.create(
            shop=target,
            fulfillment=fulfillment,
            customer=order.customer,
            kind="discount_code",
            discount_code="BACK-1",
        )
        TrackingClick.objects.filter(pk=click.pk).update(created_at=when)
        TrackingAttribution.objects.create(
            shop=target, order=order, click=click, revenue=Decimal("42.50"), currency="USD"
        )
        TrackingAttribution.objects.filter(order=order).update(created_at=when)

    when = history.at("2026-03-04 10:00")
    track(
        shop,
        "A",
        [("2026-03-04", "v1"), ("2026-03-04", "v1"), ("2026-03-04", "v2"), ("2026-03-05", "v1")],
        when,
    )
    track(other_shop, "Z", [("2026-03-04", "z1")], when)
    got = tracking_results(
        shop=shop, start=history.at("2026-03-01 00:00"), end=history.at("2026-04-01 00:00")
    )
    assert got == {"views": 4, "visitors": 3, "clicks": 1, "orders": 1, "revenue": Decimal("42.50")}
