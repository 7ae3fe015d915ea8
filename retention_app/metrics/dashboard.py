"""Everything the panel's dashboard shows, from ONE scan of the orders (the panel view and
bench/dashboard.py both call `dashboard_data`, so the benchmark times exactly what a merchant waits for).

How: the ORM builds a per-customer rollup of the shop's metric orders (first order, activity flags at every
boundary the dashboard needs, period counts, spend, last order, and the set of months with an order as a
bit mask), which is stored in a temporary table; four small portable SQL queries over those rows then give
the period report, the retention/churn series, the cohort table, the customers at risk and the VIPs.
Definitions are those of `selectors` (tests check both give the same numbers).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    Func,
    IntegerField,
    Max,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Cast
from django.utils import timezone

from retention_app.commerce.models import Customer
from retention_app.metrics import selectors as metrics
from retention_app.shops.models import Shop

# Months and activity intervals are bits of 64-bit masks.
MAX_COHORT_MONTHS = 32
MAX_SERIES_MONTHS = 24


@dataclass
class DashboardData:
    report: metrics.RetentionReport
    cohorts: list[metrics.CohortRow]
    series: list[dict]
    at_risk: list[Customer]  # annotated: spend, order_count, last_order_at
    vips: list[Customer]


def _bucket(instants: list[dt.datetime]):
    """Per order: how many of the sorted `instants` are ≤ placed_at (0 … len), i.e. which interval between
    consecutive instants the order falls in. PostgreSQL: WIDTH_BUCKET (a binary search); elsewhere a CASE."""
    if connection.vendor == "postgresql":
        return Func(
            F("placed_at"), Value(list(instants)), function="WIDTH_BUCKET", output_field=IntegerField()
        )
    return Case(
        *[When(placed_at__lt=t, then=Value(i)) for i, t in enumerate(instants)],
        default=Value(len(instants)),
        output_field=IntegerField(),
    )


def _bits(bucket) -> Func:
    """Bitwise OR over the customer's orders of 1 << bucket (the set of intervals with an order)."""
    bit = Cast(Value(1), BigIntegerField()).bitleftshift(bucket)
    if connection.vendor == "postgresql":
        from django.contrib.postgres.aggregates import BitOr

        return BitOr(bit)
    # Elsewhere: the sum of the DISTINCT powers of two is their bitwise OR.
    return Sum(bit, distinct=True)


def _mask_between(instants: list[dt.datetime], lo: dt.datetime, hi: dt.datetime) -> int:
    """Bits of the buckets covering [lo, hi) (both are among `instants`)."""
    p, q = instants.index(lo), instants.index(hi)
    return sum(1 << j for j in range(p + 1, q + 1))


def _last_month_index(shop: Shop) -> int | None:
    last = metrics.metric_orders(shop=shop).aggregate(m=Max("placed_at"))["m"]
    if last is None:
        return None
    local = timezone.localtime(last, metrics.shop_zone(shop))
    return local.year * 12 + local.month - 1


def _month_start(index: int, zone) -> dt.datetime:
    return metrics.local_midnight(dt.date(index // 12, index % 12 + 1, 1), zone)


def dashboard_data(
    *,
    shop: Shop,
    start: dt.date,
    end: dt.date,
    window_days: int | None = None,
    vip_share_percent: Decimal | int = 10,
    cohort_months: int = 24,
    series_months: int = 12,
    list_limit: int = 10,
    today: dt.date | None = None,
) -> DashboardData:
    """The period report, the cohort table of the last `cohort_months` months (cells up to the shop's last
    month with an order), retention/churn for each of the last `series_months` complete months, the top
    `list_limit` customers at risk (as of the period end, or now if earlier) and VIPs."""
    window = int(window_days if window_days is not None else shop.activity_window_days)
    metrics.validate_period(start=start, end=end, window_days=window)
    cohort_months = max(1, min(int(cohort_months), MAX_COHORT_MONTHS))
    series_months = max(1, min(int(series_months), MAX_SERIES_MONTHS))
    zone = metrics.shop_zone(shop)
    today = today or timezone.localtime(timezone.now(), zone).date()
    as_of = min(metrics.local_midnight(end, zone), metrics.local_midnight(today + dt.timedelta(days=1), zone))
    series_days = metrics.month_starts(end_month_start=today.replace(day=1), months=series_months)
    bounds = {
        b.day: b
        for b in metrics.boundaries_for(
            days=sorted({start, end, *series_days}), zone=zone, window_days=window
        )
    }
    # Every activity question is "an order in [b − W, b)": bucket the orders by these instants once.
    risk_from = as_of - dt.timedelta(days=window)  # at risk: no order in [as_of − W, as_of)
    instants = sorted({t for b in bounds.values() for t in (b.at, b.window_start)} | {as_of, risk_from})
    s_at, e_at = bounds[start].at, bounds[end].at
    in_period = Q(placed_at__gte=s_at, placed_at__lt=e_at)
    last_month = _last_month_index(shop)
    newest = last_month if last_month is not None else today.year * 12 + today.month - 1
    base = newest - (cohort_months - 1)
    month_starts = [_month_start(base + j, zone) for j in range(cohort_months)]

    rollup = (
        metrics.metric_orders(shop=shop)
        .values("customer_id")
        .annotate(
            amask=_bits(_bucket(instants)),
            mmask=_bits(_bucket(month_starts)),
            orders_in_p=Count("id", filter=in_period),
            revenue_in_p=Sum("total_price", filter=in_period),
            spend=Sum("total_price", filter=Q(placed_at__lt=as_of)),
            last_at=Max("placed_at", filter=Q(placed_at__lt=as_of)),
        )
        .order_by()
    )
    rollup_sql, rollup_params = rollup.query.sql_with_params()
    table = f"metrics_rollup_{uuid.uuid4().hex[:12]}"

    def before(instant) -> int:
        # Bits of every bucket before `instant`.
        return (1 << (instants.index(instant) + 1)) - 1

    def active(day) -> str:
        return f"(amask & {_mask_between(instants, bounds[day].window_start, bounds[day].at)}) <> 0"

    def first_in(a, b) -> str:
        # The lowest bit of amask is the bucket of the customer's first order.
        return f"((amask & -amask) & {_mask_between(instants, bounds[a].at, bounds[b].at)}) <> 0"

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {table} AS {rollup_sql}", rollup_params)  # noqa: S608
        try:
            totals, series = _totals(
                cursor, table, active, first_in, start, end, series_days, before(s_at), before(as_of)
            )
            cohorts = _cohorts(cursor, table, base, last_month) if last_month is not None else []
            recent = _mask_between(instants, risk_from, as_of)
            at_risk = _top(
                cursor,
                table,
                f"(amask & {before(as_of)}) <> 0 AND (amask & {recent}) = 0"
                " ORDER BY spend DESC, last_at DESC, customer_id",
                list_limit,
                shop=shop,
                as_of=as_of,
            )
            buyers = totals.pop("buyers")
            vip_count = math.ceil(buyers * Decimal(str(vip_share_percent)) / 100) if buyers else 0
            vips = _top(
                cursor,
                table,
                f"(amask & {before(as_of)}) <> 0 ORDER BY spend DESC, customer_id",
                min(vip_count, list_limit),
                shop=shop,
                as_of=as_of,
            )
        finally:
            cursor.execute(f"DROP TABLE {table}")
    report = metrics.report_from_totals(
        shop=shop, start=start, end=end, window_days=window, totals=totals, cohorts=[]
    )
    return DashboardData(report=report, cohorts=cohorts, series=series, at_risk=at_risk, vips=vips)


def _totals(cursor, table, active, first_in, start, end, series_days, before_start: int, before_as_of: int):
    """Period counts and the series in one statement. Customers are first grouped by their activity
    pattern (amask: few distinct values), so the many conditional sums run over patterns, not customers.
    A customer's first order falls in [a, b) when the lowest bit of amask is among the buckets of [a, b)."""
    cols = [
        _weighted(active(start)),
        _weighted(active(end)),
        _weighted(first_in(start, end)),
        _weighted(f"{active(start)} AND NOT {active(end)}"),
        "SUM(in_p)",
        "SUM(repeaters)",
        "SUM(orders_in_p)",
        "SUM(revenue_in_p)",
        "SUM(buyers)",
    ]
    keys = [
        "S",
        "E",
        "N",
        "churned",
        "customers_in_period",
        "repeat_customers",
        "orders_in_period",
        "revenue_in_period",
        "buyers",
    ]
    pairs = list(zip(series_days, series_days[1:], strict=False))
    for a, b in pairs:
        cols += [
            _weighted(active(a)),
            _weighted(active(b)),
            _weighted(first_in(a, b)),
            _weighted(f"{active(a)} AND NOT {active(b)}"),
        ]
    cursor.execute(
        f"SELECT {', '.join(cols)} FROM ("  # noqa: S608
        "SELECT amask, COUNT(*) AS n, SUM(CASE WHEN orders_in_p > 0 THEN 1 ELSE 0 END) AS in_p,"
        # Two orders up to the end: two in the period, or one in it and one before it.
        " SUM(CASE WHEN orders_in_p >= 2 OR (orders_in_p = 1 AND (amask & %s) <> 0) THEN 1 ELSE 0 END)"
        " AS repeaters,"
        " SUM(orders_in_p) AS orders_in_p, SUM(revenue_in_p) AS revenue_in_p,"
        " SUM(CASE WHEN (amask & %s) <> 0 THEN 1 ELSE 0 END) AS buyers"
        f" FROM {table} GROUP BY amask) patterns",
        [before_start, before_as_of],
    )
    row = [v if v is not None else 0 for v in cursor.fetchone()]
    totals = {k: row[i] for i, k in enumerate(keys)}
    totals["revenue_in_period"] = Decimal(str(totals["revenue_in_period"]))
    series = []
    for j, (a, b) in enumerate(pairs):
        S, E, N, churned = (int(v) for v in row[len(keys) + 4 * j : len(keys) + 4 * j + 4])
        series.append(
            {
                "start": a,
                "end": b,
                "S": S,
                "E": E,
                "N": N,
                "churned": churned,
                "retention_rate": metrics.percent(E - N, S),
                "churn_rate": metrics.percent(churned, S),
            }
        )
    return totals, series


def _weighted(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN n ELSE 0 END)"


def _cohorts(cursor, table, base: int, last_month: int) -> list[metrics.CohortRow]:
    """mmask bit j ≥ 1 = an order in month base + j − 1; bit 0 = an order before the range, so the
    customer's cohort is older and they are left out. Customers are grouped by month pattern first; the
    lowest bit of a pattern is the cohort, `mmask / (mmask & -mmask)` shifts it to the cohort's month 0,
    and cell k sums the patterns with bit k set."""
    width = last_month - base + 1
    own = "(mmask / (mmask & -mmask))"
    cells = ", ".join(f"SUM((({own} >> {k}) & 1) * n)" for k in range(width))
    cursor.execute(
        f"SELECT mmask & -mmask, SUM(n), {cells} FROM ("  # noqa: S608
        f"SELECT mmask, COUNT(*) AS n FROM {table} WHERE mmask <> 0 AND (mmask & 1) = 0 GROUP BY mmask"
        ") patterns GROUP BY mmask & -mmask"
    )
    rows = []
    for fetched in sorted(cursor.fetchall(), key=lambda r: int(r[0])):
        fm = base + int(fetched[0]).bit_length() - 2  # bucket j (1-based) = month base + j − 1
        size = int(fetched[1])
        counts = [int(v or 0) for v in fetched[2:]]
        rows.append(
            metrics.CohortRow(
                cohort=f"{fm // 12:04d}-{fm % 12 + 1:02d}",
                size=size,
                retention=[metrics.percent(counts[k], size) for k in range(last_month - fm + 1)],
            )
        )
    return rows


def _top(cursor, table, where_order: str, limit: int, *, shop: Shop, as_of: dt.datetime) -> list[Customer]:
    """The first `limit` customers of the rollup by `where_order`, as Customer objects annotated with
    spend, order_count and last_order_at (orders before `as_of`)."""
    if limit <= 0:
        return []
    cursor.execute(
        f"SELECT customer_id, spend, last_at FROM {table} WHERE {where_order} LIMIT %s",  # noqa: S608
        [limit],
    )
    found = cursor.fetchall()
    ids = [r[0] for r in found]
    by_id = Customer.objects.in_bulk(ids)
    counts = dict(
        metrics.metric_orders(shop=shop)
        .filter(customer_id__in=ids, placed_at__lt=as_of)
        .values("customer_id")
        .annotate(n=Count("id"))
        .values_list("customer_id", "n")
    )
    out = []
    for customer_id, spend, last_at in found:
        customer = by_id[customer_id]
        customer.spend = Decimal(str(spend))
        customer.order_count = counts.get(customer_id, 0)
        customer.last_order_at = _datetime(last_at)
        out.append(customer)
    return out


def _datetime(value):
    if isinstance(value, str):  # SQLite returns the stored text
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return value
