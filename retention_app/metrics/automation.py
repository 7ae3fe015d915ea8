"""Automation results for the dashboard: what the rules sent and what it brought, per rule and over time.

- Messages by status (scheduled, sent, failed, cancelled) per rule, counted by the database.
- Discount codes issued (created in the period, not failed) and redeemed (redeemed in the period) per rule.
- Attributed orders and revenue: a metric order (not cancelled, not test) placed by a customer within
  ATTRIBUTION_DAYS days after a message of the rule was sent to them (sent_at ≤ placed_at < sent_at + window).
  An order that follows messages of two rules counts for each rule; the shop total counts it once.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Count, DecimalField, Exists, OuterRef, Q, Sum, Value
from django.db.models.functions import Coalesce, TruncMonth

from retention_app.automations.models import Message, Rule
from retention_app.discounts.models import DiscountCode
from retention_app.metrics.selectors import metric_orders, shop_zone
from retention_app.shops.models import Shop

ATTRIBUTION_DAYS = 30
_MONEY = DecimalField(max_digits=24, decimal_places=4)


def _attributed_orders(*, shop: Shop, start: dt.datetime, end: dt.datetime, rule_id: int | None = None):
    sent = Message.objects.filter(
        shop=shop,
        status=Message.Status.SENT,
        customer_id=OuterRef("customer_id"),
        sent_at__lte=OuterRef("placed_at"),
        sent_at__gt=OuterRef("placed_at") - dt.timedelta(days=ATTRIBUTION_DAYS),
    )
    if rule_id is not None:
        sent = sent.filter(rule_id=rule_id)
    return metric_orders(shop=shop).filter(placed_at__gte=start, placed_at__lt=end).filter(Exists(sent))


def automation_results(*, shop: Shop, start: dt.datetime, end: dt.datetime) -> dict:
    """Per-rule and total figures for [start, end): messages sent in it (or due in it, when not sent),
    codes issued / redeemed in it, attributed orders placed in it."""
    # A sent message counts when it was sent; the others when they were (or are) due.
    in_period = Q(
        messages__status=Message.Status.SENT, messages__sent_at__gte=start, messages__sent_at__lt=end
    ) | (~Q(messages__status=Message.Status.SENT) & Q(messages__due_at__gte=start, messages__due_at__lt=end))
    rules = list(
        Rule.objects.filter(shop=shop)
        .annotate(
            scheduled=Count("messages", filter=in_period & Q(messages__status=Message.Status.SCHEDULED)),
            sent=Count("messages", filter=in_period & Q(messages__status=Message.Status.SENT)),
            failed=Count("messages", filter=in_period & Q(messages__status=Message.Status.FAILED)),
            cancelled=Count("messages", filter=in_period & Q(messages__status=Message.Status.CANCELLED)),
        )
        .order_by("id")
    )
    for rule in rules:
        figures = _attributed_orders(shop=shop, start=start, end=end, rule_id=rule.pk).aggregate(
            orders=Count("id"), revenue=Coalesce(Sum("total_price"), Value(Decimal("0")), output_field=_MONEY)
        )
        rule.attributed_orders = figures["orders"]
        rule.attributed_revenue = figures["revenue"]
    issued = dict(
        DiscountCode.objects.filter(shop=shop, created_at__gte=start, created_at__lt=end)
        .exclude(status=DiscountCode.Status.FAILED)
        .values("rule_key")
        .annotate(n=Count("id"))
        .values_list("rule_key", "n")
    )
    redeemed = dict(
        DiscountCode.objects.filter(shop=shop, redeemed_at__gte=start, redeemed_at__lt=end)
        .values("rule_key")
        .annotate(n=Count("id"))
        .values_list("rule_key", "n")
    )
    for rule in rules:
        rule.codes_issued = issued.get(rule.key, 0)
        rule.codes_redeemed = redeemed.get(rule.key, 0)
    total = _attributed_orders(shop=shop, start=start, end=end).aggregate(
        orders=Count("id"), revenue=Coalesce(Sum("total_price"), Value(Decimal("0")), output_field=_MONEY)
    )
    return {
        "rules": rules,
        "attributed_orders": total["orders"],
        "attributed_revenue": total["revenue"],
        "attribution_days": ATTRIBUTION_DAYS,
    }


def messages_sent_by_month(*, shop: Shop, since: dt.datetime) -> list[dict]:
    """[{month: date, sent: n}] of messages sent since `since`, months in the shop's time zone."""
    return list(
        Message.objects.filter(shop=shop, status=Message.Status.SENT, sent_at__gte=since)
        .annotate(month=TruncMonth("sent_at", tzinfo=shop_zone(shop)))
        .values("month")
        .annotate(sent=Count("id"))
        .order_by("month")
        .values("month", "sent")
    )


def attributed_revenue_by_month(*, shop: Shop, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """[{month: date, orders: n, revenue: Decimal}] of attributed orders placed in [start, end), by month
    of the shop's time zone (months without attributed orders are absent)."""
    return list(
        _attributed_orders(shop=shop, start=start, end=end)
        .annotate(month=TruncMonth("placed_at", tzinfo=shop_zone(shop)))
        .values("month")
        .annotate(orders=Count("id"), revenue=Sum("total_price"))
        .order_by("month")
        .values("month", "orders", "revenue")
    )


def tracking_results(*, shop: Shop, start: dt.datetime, end: dt.datetime) -> dict:
    """Branded tracking pages in [start, end): views, unique visitors (per day), clicks, and the orders
    and revenue the tracking domain attributed to those clicks (its own window, last click wins)."""
    from retention_app.tracking.models import TrackingAttribution, TrackingClick, TrackingPageView

    views = TrackingPageView.objects.filter(shop=shop, created_at__gte=start, created_at__lt=end)
    attributed = TrackingAttribution.objects.filter(
        shop=shop, created_at__gte=start, created_at__lt=end
    ).aggregate(
        orders=Count("id"), revenue=Coalesce(Sum("revenue"), Value(Decimal("0")), output_field=_MONEY)
    )
    return {
        "views": views.count(),
        "visitors": views.values("day", "visitor_hash").distinct().count(),
        "clicks": TrackingClick.objects.filter(shop=shop, created_at__gte=start, created_at__lt=end).count(),
        "orders": attributed["orders"],
        "revenue": attributed["revenue"],
    }
