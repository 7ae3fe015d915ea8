"""Retention metrics, computed in the database (selectors: reads only).

Definitions (the same in the panel, the API and the `retention_report` command):

- Only *metric orders* count: orders of the shop with a customer, not cancelled, not test orders.
- Every date is a calendar date of the shop's time zone; a date means local midnight of that day. The
  period ``[start, end)`` runs from local midnight of ``start`` to local midnight of ``end``.
- A customer is *active at t* when they have an order with ``t − W ≤ placed_at < t`` (W = activity window
  in days, the shop's ``activity_window_days`` unless given). For a boundary date ``d``, ``t − W`` is local
  midnight of the date ``d − W days`` (calendar days, so a DST change inside the window moves nothing).
- S = customers active at start, E = customers active at end, N = customers whose first-ever order falls in
  ``[start, end)``.
- retention rate = (E − N) / S × 100; churn rate = |active at start and not active at end| / S × 100;
  repeat purchase rate = among customers with an order in the period, the share whose number of orders
  placed before ``end`` is ≥ 2, × 100. Rates are percentages rounded half-up to 2 decimals, None when the
  denominator is 0.
- AOV = revenue of the period's orders / number of those orders (shop currency per order); purchase
  frequency = orders in the period / customers with an order in the period (orders per customer per
  period); average customer lifespan = 1 / churn rate, in periods of the same length as ``[start, end)``
  (None when nobody churned); CLV = AOV × frequency × lifespan (shop currency per customer).
- Cohorts: customers grouped by the month (shop time zone) of their first order, over the shop's whole
  history; cell k = share of the cohort with an order in the k-th calendar month after the first one
  (cell 0 = 100 %), up to the last month in which the shop has any (metric) order.

Everything is aggregated by the database (conditional aggregates over one scan of the orders, a window
function for cohorts); Python only formats the few resulting numbers. Works on PostgreSQL and SQLite.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    IntegerField,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, ExtractMonth, ExtractYear
from django.utils import timezone

from retention_app.commerce.models import Customer, Order
from retention_app.shops.models import Shop

TWO_PLACES = Decimal("0.01")


class MetricsInputError(ValueError):
    """Bad metric parameters (dates, window): the message is safe to show to the merchant."""


def metric_orders(*, shop: Shop) -> QuerySet[Order]:
    """The orders every metric uses: the shop's non-cancelled, non-test orders that have a customer."""
    return Order.objects.filter(shop=shop, cancelled_at__isnull=True, is_test=False, customer__isnull=False)


def shop_zone(shop: Shop) -> ZoneInfo:
    try:
        return ZoneInfo(shop.timezone or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def local_midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """Local midnight of `day` in `zone`, as an aware datetime."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)


def percent(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    """numerator / denominator × 100 rounded half-up to 2 decimals; None when the denominator is 0."""
    if not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)


def validate_period(*, start: dt.date, end: dt.date, window_days: int) -> None:
    if end <= start:
        raise MetricsInputError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
    if window_days < 1 or window_days > 3660:
        raise MetricsInputError("window_days must be between 1 and 3660")


def parse_date(value: str | None, *, name: str) -> dt.date:
    if not value:
        raise MetricsInputError(f"{name} is required (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise MetricsInputError(f"{name} must be a date YYYY-MM-DD, got {value!r}") from None


# --- activity at boundaries -----------------------------------------------------------------------------


def _flag(condition: Q) -> Max:
    """1 when the customer has at least one order matching `condition`, else 0 (per customer group)."""
    return Max(Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField()))


def _in(lo: dt.datetime, hi: dt.datetime) -> Q:
    return Q(placed_at__gte=lo, placed_at__lt=hi)


@dataclass(frozen=True)
class Boundary:
    day: dt.date
    at: dt.datetime  # local midnight of `day`
    window_start: dt.datetime  # local midnight of `day` − W days


def boundaries_for(*, days: list[dt.date], zone: ZoneInfo, window_days: int) -> list[Boundary]:
    return [
        Boundary(
            day=d,
            at=local_midnight(d, zone),
            window_start=local_midnight(d - dt.timedelta(days=window_days), zone),
        )
        for d in days
    ]


def activity_counts(*, shop: Shop, boundaries: list[Boundary]) -> list[dict]:
    """For consecutive boundaries (b0, b1), (b1, b2) … : S, E, N and the churned count, in ONE query.

    One scan of the metric orders placed before the last boundary, grouped by customer with conditional
    flags (active at each boundary, first order), then aggregated over customers.
    """
    if len(boundaries) < 2:
        return []
    last = boundaries[-1].at
    per_customer = (
        metric_orders(shop=shop)
        .filter(placed_at__lt=last)
        .values("customer_id")
        .annotate(
            first_at=Min("placed_at"),
            **{f"a{i}": _flag(_in(b.window_start, b.at)) for i, b in enumerate(boundaries)},
        )
    )
    aggregates: dict = {}
    for i, b in enumerate(boundaries):
        aggregates[f"active{i}"] = Coalesce(Sum(f"a{i}"), 0)
        if i + 1 < len(boundaries):
            nxt = boundaries[i + 1]
            aggregates[f"new{i}"] = Count("customer_id", filter=Q(first_at__gte=b.at, first_at__lt=nxt.at))
            aggregates[f"churned{i}"] = Count("customer_id", filter=Q(**{f"a{i}": 1, f"a{i + 1}": 0}))
    totals = per_customer.aggregate(**aggregates)
    rows = []
    for i in range(len(boundaries) - 1):
        rows.append(
            {
                "start": boundaries[i].day,
                "end": boundaries[i + 1].day,
                "S": totals[f"active{i}"],
                "E": totals[f"active{i + 1}"],
                "N": totals[f"new{i}"],
                "churned": totals[f"churned{i}"],
            }
        )
    return rows


# --- the period report ----------------------------------------------------------------------------------


@dataclass
class CohortRow:
    cohort: str  # "YYYY-MM"
    size: int
    retention: list[Decimal]  # percent for month 0, 1, …


@dataclass
class RetentionReport:
    shop_domain: str
    currency: str
    timezone: str
    start: dt.date
    end: dt.date
    window_days: int
    S: int
    E: int
    N: int
    churned: int
    retention_rate: Decimal | None
    churn_rate: Decimal | None
    repeat_purchase_rate: Decimal | None
    customers_in_period: int
    repeat_customers: int
    orders_in_period: int
    revenue_in_period: Decimal
    average_order_value: Decimal | None
    purchase_frequency: Decimal | None
    lifespan_periods: Decimal | None
    customer_lifetime_value: Decimal | None
    cohorts: list[CohortRow] = field(default_factory=list)

    @property
    def period_days(self) -> int:
        return (self.end - self.start).days

    @property
    def lifespan_days(self) -> Decimal | None:
        if self.lifespan_periods is None:
            return None
        return (self.lifespan_periods * self.period_days).quantize(TWO_PLACES, rounding=ROUND_HALF_UP)

    def contract_dict(self) -> dict:
        """The exact JSON contract of `retention_report --json` and GET /api/v1/metrics/retention."""
        return {
            "S": self.S,
            "E": self.E,
            "N": self.N,
            "retention_rate": _num(self.retention_rate),
            "churn_rate": _num(self.churn_rate),
            "repeat_purchase_rate": _num(self.repeat_purchase_rate),
            "cohorts": [
                {"cohort": c.cohort, "size": c.size, "retention": [_num(p) for p in c.retention]}
                for c in self.cohorts
            ],
        }

    def value_dict(self) -> dict:
        """Every figure of the report (contract keys plus value metrics), JSON-friendly."""
        data = self.contract_dict()
        data.update(
            {
                "shop": self.shop_domain,
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "window_days": self.window_days,
                "timezone": self.timezone,
                "currency": self.currency,
                "churned": self.churned,
                "customers_in_period": self.customers_in_period,
                "repeat_customers": self.repeat_customers,
                "orders_in_period": self.orders_in_period,
                "revenue_in_period": str(self.revenue_in_period),
                "average_order_value": _str(self.average_order_value),
                "purchase_frequency": _str(self.purchase_frequency),
                "lifespan_periods": _str(self.lifespan_periods),
                "lifespan_days": _str(self.lifespan_days),
                "customer_lifetime_value": _str(self.customer_lifetime_value),
                "units": {
                    "average_order_value": f"{self.currency} per order",
                    "purchase_frequency": f"orders per customer per {self.period_days}-day period",
                    "lifespan_periods": f"periods of {self.period_days} days (1 / churn rate)",
                    "customer_lifetime_value": f"{self.currency} per customer",
                },
            }
        )
        return data


def _num(value: Decimal | None) -> float | int | None:
    if value is None:
        return None
    if value == value.to_integral_value():
        return float(value)
    return float(value)


def _str(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def period_activity(*, shop: Shop, start: dt.date, end: dt.date, window_days: int) -> dict:
    """S, E, N, churned, repeat and value figures of one period, from ONE grouped scan of the orders."""
    zone = shop_zone(shop)
    b_start, b_end = boundaries_for(days=[start, end], zone=zone, window_days=window_days)
    s, e = b_start.at, b_end.at
    in_period = _in(s, e)
    per_customer = (
        metric_orders(shop=shop)
        .filter(placed_at__lt=e)
        .values("customer_id")
        .annotate(
            first_at=Min("placed_at"),
            act_s=_flag(_in(b_start.window_start, s)),
            act_e=_flag(_in(b_end.window_start, e)),
            in_p=_flag(in_period),
            orders_to_end=Count("id"),
            orders_in_p=Count("id", filter=in_period),
            revenue_in_p=Sum("total_price", filter=in_period),
        )
    )
    totals = per_customer.aggregate(
        S=Coalesce(Sum("act_s"), 0),
        E=Coalesce(Sum("act_e"), 0),
        N=Count("customer_id", filter=Q(first_at__gte=s, first_at__lt=e)),
        churned=Count("customer_id", filter=Q(act_s=1, act_e=0)),
        customers_in_period=Coalesce(Sum("in_p"), 0),
        repeat_customers=Count("customer_id", filter=Q(in_p=1, orders_to_end__gte=2)),
        orders_in_period=Coalesce(Sum("orders_in_p"), 0),
        revenue_in_period=Coalesce(
            Sum("revenue_in_p"),
            Value(Decimal("0")),
            output_field=DecimalField(max_digits=24, decimal_places=4),
        ),
    )
    return totals


def retention_report(
    *, shop: Shop, start: dt.date, end: dt.date, window_days: int | None = None, with_cohorts: bool = True
) -> RetentionReport:
    """Every period metric of the module docstring for `shop` and ``[start, end)``."""
    window = int(window_days if window_days is not None else shop.activity_window_days)
    validate_period(start=start, end=end, window_days=window)
    t = period_activity(shop=shop, start=start, end=end, window_days=window)
    return report_from_totals(
        shop=shop,
        start=start,
        end=end,
        window_days=window,
        totals=t,
        cohorts=cohort_table(shop=shop) if with_cohorts else [],
    )


def report_from_totals(
    *, shop: Shop, start: dt.date, end: dt.date, window_days: int, totals: dict, cohorts: list
) -> RetentionReport:
    """The report's rates and value metrics from the database's counts (keys of `period_activity`)."""
    t, window = totals, window_days
    S, E, N, churned = int(t["S"]), int(t["E"]), int(t["N"]), int(t["churned"])
    customers_in_period = int(t["customers_in_period"])
    orders_in_period = int(t["orders_in_period"])
    revenue = Decimal(t["revenue_in_period"] or 0)
    aov = (revenue / orders_in_period).quantize(TWO_PLACES, ROUND_HALF_UP) if orders_in_period else None
    frequency = (
        (Decimal(orders_in_period) / customers_in_period).quantize(Decimal("0.0001"), ROUND_HALF_UP)
        if customers_in_period
        else None
    )
    churn_rate = percent(churned, S)
    lifespan = (Decimal(S) / churned).quantize(Decimal("0.0001"), ROUND_HALF_UP) if S and churned else None
    clv = None
    if aov is not None and frequency is not None and lifespan is not None and orders_in_period:
        # Unrounded inputs, rounded result: AOV × frequency = revenue / customers.
        clv = (revenue / customers_in_period * Decimal(S) / churned).quantize(TWO_PLACES, ROUND_HALF_UP)
    return RetentionReport(
        shop_domain=shop.domain,
        currency=shop.currency,
        timezone=shop_zone(shop).key,
        start=start,
        end=end,
        window_days=window,
        S=S,
        E=E,
        N=N,
        churned=churned,
        retention_rate=percent(E - N, S),
        churn_rate=churn_rate,
        repeat_purchase_rate=percent(int(t["repeat_customers"]), customers_in_period),
        customers_in_period=customers_in_period,
        repeat_customers=int(t["repeat_customers"]),
        orders_in_period=orders_in_period,
        revenue_in_period=revenue.quantize(TWO_PLACES, ROUND_HALF_UP),
        average_order_value=aov,
        purchase_frequency=frequency,
        lifespan_periods=lifespan,
        customer_lifetime_value=clv,
        cohorts=cohorts,
    )


# --- cohorts --------------------------------------------------------------------------------------------


def _month_index(zone: ZoneInfo):
    """year × 12 + month − 1 of `placed_at` in the shop's time zone (an integer database expression)."""
    year = Cast(ExtractYear("placed_at", tzinfo=zone), IntegerField())
    month = Cast(ExtractMonth("placed_at", tzinfo=zone), IntegerField())
    return year * 12 + month - 1


def cohort_counts(*, shop: Shop, since_month: int | None = None) -> list[tuple[int, int, int]]:
    """(first month index, k, customers) for every cohort and month offset, aggregated in the database.

    The inner query (customer × local month, grouped) is built by the ORM, which knows how each backend
    converts a time to the shop's zone; the outer query is portable SQL: each customer's first month
    (MIN over their months) joined back to their months, then customers counted per (cohort, k).
    `since_month` keeps only cohorts whose first month index is ≥ it (e.g. the last 24 months).
    """
    zone = shop_zone(shop)
    inner = (
        metric_orders(shop=shop)
        .annotate(mi=_month_index(zone))
        .values("customer_id", "mi")
        .annotate(n=Count("id"))
        .order_by()
    )
    inner_sql, params = inner.query.sql_with_params()
    where = ""
    outer_params = list(params)
    if since_month is not None:
        where = "WHERE f.fm >= %s"
        outer_params.append(int(since_month))
    # Only ORM-compiled SQL and constants are interpolated; every value is a bound parameter.
    sql = (
        f"WITH cm AS ({inner_sql}) "  # noqa: S608
        "SELECT f.fm, cm.mi - f.fm AS k, COUNT(*) FROM cm "
        "JOIN (SELECT customer_id, MIN(mi) AS fm FROM cm GROUP BY customer_id) f "
        f"ON f.customer_id = cm.customer_id {where} "
        "GROUP BY f.fm, cm.mi - f.fm ORDER BY f.fm, k"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, outer_params)
        return [(int(fm), int(k), int(n)) for fm, k, n in cursor.fetchall()]


def cohort_table(*, shop: Shop, last_months: int | None = None) -> list[CohortRow]:
    """The cohort table: one row per first-order month, cells up to the shop's last month with an order.

    `last_months` limits the table to the cohorts of the last N months of the shop's history.
    """
    since = None
    if last_months is not None:
        last = metric_orders(shop=shop).aggregate(m=Max("placed_at"))["m"]
        if last is None:
            return []
        local = timezone.localtime(last, shop_zone(shop))
        since = local.year * 12 + local.month - 1 - (last_months - 1)
    counts = cohort_counts(shop=shop, since_month=since)
    if not counts:
        return []
    last_month = max(fm + k for fm, k, _ in counts)
    by_cohort: dict[int, dict[int, int]] = {}
    for fm, k, n in counts:
        by_cohort.setdefault(fm, {})[k] = n
    rows = []
    for fm in sorted(by_cohort):
        cells = by_cohort[fm]
        size = cells.get(0, 0)
        rows.append(
            CohortRow(
                cohort=f"{fm // 12:04d}-{fm % 12 + 1:02d}",
                size=size,
                retention=[percent(cells.get(k, 0), size) for k in range(last_month - fm + 1)],
            )
        )
    return rows


# --- series over time -----------------------------------------------------------------------------------


def month_starts(*, end_month_start: dt.date, months: int) -> list[dt.date]:
    """`months` + 1 first-of-month dates ending with `end_month_start`."""
    days = []
    y, m = end_month_start.year, end_month_start.month
    for _ in range(months + 1):
        days.append(dt.date(y, m, 1))
        m -= 1
        if m == 0:
            y, m = y - 1, 12
    return list(reversed(days))


def retention_series(*, shop: Shop, days: list[dt.date], window_days: int | None = None) -> list[dict]:
    """Retention and churn rate for each consecutive pair of `days` (e.g. month starts), in one query."""
    window = int(window_days if window_days is not None else shop.activity_window_days)
    rows = activity_counts(
        shop=shop, boundaries=boundaries_for(days=days, zone=shop_zone(shop), window_days=window)
    )
    for row in rows:
        row["retention_rate"] = percent(row["E"] - row["N"], row["S"])
        row["churn_rate"] = percent(row["churned"], row["S"])
    return rows


# --- customer lists -------------------------------------------------------------------------------------


def _customers_with_value(*, shop: Shop, before: dt.datetime) -> QuerySet[Customer]:
    valid = Q(
        orders__cancelled_at__isnull=True,
        orders__is_test=False,
        orders__placed_at__lt=before,
    )
    return (
        Customer.objects.filter(shop=shop)
        .annotate(
            spend=Sum("orders__total_price", filter=valid),
            order_count=Count("orders", filter=valid),
            last_order_at=Max("orders__placed_at", filter=valid),
            first_order_at=Min("orders__placed_at", filter=valid),
        )
        .filter(order_count__gt=0)
    )


def customers_at_risk(
    *, shop: Shop, as_of: dt.datetime | None = None, window_days: int | None = None, limit: int | None = 50
) -> QuerySet[Customer]:
    """Customers whose last order is more than W days before `as_of` (default now), most valuable first.

    Annotated with spend, order_count, last_order_at, first_order_at.
    """
    as_of = as_of or timezone.now()
    window = int(window_days if window_days is not None else shop.activity_window_days)
    qs = (
        _customers_with_value(shop=shop, before=as_of)
        .filter(last_order_at__lt=as_of - dt.timedelta(days=window))
        .order_by(F("spend").desc(nulls_last=True), "-last_order_at", "id")
    )
    return qs[:limit] if limit else qs


def vip_customers(
    *, shop: Shop, share_percent: Decimal | float | int = 10, as_of: dt.datetime | None = None
) -> QuerySet[Customer]:
    """The top `share_percent` % of customers (with at least one order) by total spend, biggest first.

    The count is ceil(customers × share / 100), at least 1 when the shop has customers with orders.
    """
    as_of = as_of or timezone.now()
    base = _customers_with_value(shop=shop, before=as_of)
    total = metric_orders(shop=shop).filter(placed_at__lt=as_of).values("customer_id").distinct().count()
    share = Decimal(str(share_percent))
    top = math.ceil(total * share / 100) if total else 0
    return base.order_by(F("spend").desc(nulls_last=True), "id")[:top]


def customer_value(*, shop: Shop) -> QuerySet[Customer]:
    """All customers of the shop with their spend / order figures (metric orders only)."""
    return _customers_with_value(shop=shop, before=timezone.now() + dt.timedelta(days=3650))
