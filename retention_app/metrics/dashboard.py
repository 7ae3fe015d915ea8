"""Everything the panel's dashboard shows, from ONE scan of the orders (the panel view and
bench/dashboard.py both call `dashboard_data`, so the benchmark times exactly what a merchant waits for).

How: the ORM builds a per-customer rollup of the shop's metric orders (activity flags at every boundary the
dashboard needs, period counts, spend, last order, and the set of months with an order, as bit masks via
WIDTH_BUCKET/BIT_OR on PostgreSQL), and ONE statement uses it as a CTE for every result: the period report
and the retention/churn series (over activity patterns), the cohort table (over month patterns), the
customers at risk and the VIPs, returned together in one round trip (UNION ALL of rows of one wide shape).
No temporary table: writing ~250k rollup rows and reading them back four times cost more than the rest.

Performance (bench/dashboard.py): the rollup is a streaming GroupAggregate over orders read in customer
order. With a covering partial index on commerce_order (shop_id, customer_id, placed_at) INCLUDE
(total_price) WHERE cancelled_at IS NULL AND NOT is_test, that read is an index-only scan of ~46 MB instead
of ~160 MB of heap (the orders count uses placed_at, not id, so the index covers every column).
Definitions are those of `selectors` (tests check both give the same numbers).
"""

from __future__ import annotations

import datetime as dt
import math
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
            orders_in_p=Count("placed_at", filter=in_period),  # placed_at: never NULL, in the index
            revenue_in_p=Sum("total_price", filter=in_period),
            spend=Sum("total_price", filter=Q(placed_at__lt=as_of)),
            last_at=Max("placed_at", filter=Q(placed_at__lt=as_of)),
        )
        .order_by()
    )
    rollup_sql, rollup_params = rollup.query.sql_with_params()

    def before(instant) -> int:
        # Bits of every bucket before `instant`.
        return (1 << (instants.index(instant) + 1)) - 1

    def active(day) -> str:
        return f"(amask & {_mask_between(instants, bounds[day].window_start, bounds[day].at)}) <> 0"

    def first_in(a, b) -> str:
        # The lowest bit of amask is the bucket of the customer's first order.
        return f"((amask & -amask) & {_mask_between(instants, bounds[a].at, bounds[b].at)}) <> 0"

    recent = _mask_between(instants, risk_from, as_of)
    totals_part = _totals_part(active, first_in, start, end, series_days, before(s_at), before(as_of))
    width = last_month - base + 1 if last_month is not None else 0
    parts = [totals_part, _cohorts_part(width)] if width else [totals_part]
    limit = max(0, int(list_limit))
    parts += [
        _top_part(
            "R",
            f"(amask & {before(as_of)}) <> 0 AND (amask & {recent}) = 0",
            "spend DESC, last_at DESC, customer_id",
            limit,
        ),
        # VIPs: the first min(ceil(buyers × share), limit) of this list (buyers comes from the totals).
        _top_part("V", f"(amask & {before(as_of)}) <> 0", "spend DESC, customer_id", limit),
    ]
    layout = _Layout(len(totals_part.columns), width)
    # ONE statement: the rollup is computed once (a CTE used by every branch; PostgreSQL materializes it
    # in memory) and every result comes back in one round trip, as rows of one wide shape.
    sql = f"WITH per AS ({rollup_sql}) " + " UNION ALL ".join(layout.select(part) for part in parts)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # JIT compilation (its cost threshold is near this statement's estimate) takes ~0.2 s and
            # saves less. work_mem stays at its default on purpose: with more, the planner swaps the
            # streaming GroupAggregate over customer-ordered index entries for a hash of ~250k numeric
            # aggregate states (130 MB for 1M orders), which is slower.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, rollup_params)
        fetched = cursor.fetchall()
    by_kind: dict[str, list] = {}
    for row in fetched:
        by_kind.setdefault(row[0], []).append(layout.values(row))
    totals, series = _totals_from_row(by_kind["T"][0], totals_part, series_days)
    cohorts = _cohorts_from_rows(by_kind.get("C", []), base, last_month) if width else []
    # UNION ALL keeps no order: sort the (few) listed customers again exactly as the branches did.
    risk_rows = sorted(
        by_kind.get("R", []), key=lambda r: (-Decimal(str(r[1])), -_datetime(r[2]).timestamp(), int(r[0]))
    )
    vip_rows = sorted(by_kind.get("V", []), key=lambda r: (-Decimal(str(r[1])), int(r[0])))
    at_risk = _customers(risk_rows, shop=shop, as_of=as_of)
    buyers = int(totals.pop("buyers"))
    vip_count = math.ceil(buyers * Decimal(str(vip_share_percent)) / 100) if buyers else 0
    vips = _customers(vip_rows[: min(vip_count, limit)], shop=shop, as_of=as_of)
    report = metrics.report_from_totals(
        shop=shop, start=start, end=end, window_days=window, totals=totals, cohorts=[]
    )
    return DashboardData(report=report, cohorts=cohorts, series=series, at_risk=at_risk, vips=vips)


@dataclass
class _Part:
    """One branch of the dashboard statement: `kind` tags its rows, `columns` are its SELECT expressions,
    `source` the rest of the SELECT (FROM …); it reads the per-customer rollup `per`."""

    kind: str
    columns: list[str]
    source: str


# Column groups of the statement's wide rows and their SQL types (explicit, so UNION ALL never has to guess
# the type of a padding NULL).
_TOP_TYPES = ["BIGINT", "NUMERIC", "TIMESTAMP WITH TIME ZONE"]  # customer_id, spend, last_at


class _Layout:
    """Every branch returns the same wide row: kind, the totals' columns, the cohorts' columns, then the
    customer lists' columns; a branch fills its own group and pads the others with typed NULLs."""

    def __init__(self, n_totals: int, cohort_width: int):
        self.groups = {
            "T": ["NUMERIC"] * n_totals,
            "C": ["BIGINT"] * (2 + cohort_width) if cohort_width else [],
            "X": _TOP_TYPES,
        }

    @staticmethod
    def _group(kind: str) -> str:
        return "X" if kind in ("R", "V") else kind

    def select(self, part: _Part) -> str:
        own = self._group(part.kind)
        cols = [f"'{part.kind}'"]
        for group, types in self.groups.items():
            if group == own:
                cols += [
                    expr if t.startswith("TIMESTAMP") else f"CAST({expr} AS {t})"
                    for expr, t in zip(part.columns, types, strict=True)
                ]
            else:
                cols += [f"CAST(NULL AS {t})" for t in types]
        return f"SELECT {', '.join(cols)} {part.source}"

    def values(self, row) -> list:
        kind = row[0]
        offset = 1
        for group, types in self.groups.items():
            if group == self._group(kind):
                return list(row[offset : offset + len(types)])
            offset += len(types)
        raise AssertionError(kind)


_TOTAL_KEYS = [
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


def _totals_part(active, first_in, start, end, series_days, before_start: int, before_as_of: int) -> _Part:
    """Period counts and the series in one branch. Customers are first grouped by their activity pattern
    (amask: few distinct values), so the many conditional sums run over patterns, not customers. A
    customer's first order falls in [a, b) when the lowest bit of amask is among the buckets of [a, b)."""
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
    for a, b in zip(series_days, series_days[1:], strict=False):
        cols += [
            _weighted(active(a)),
            _weighted(active(b)),
            _weighted(first_in(a, b)),
            _weighted(f"{active(a)} AND NOT {active(b)}"),
        ]
    source = (
        "FROM (SELECT amask, COUNT(*) AS n, SUM(CASE WHEN orders_in_p > 0 THEN 1 ELSE 0 END) AS in_p,"  # noqa: S608
        # Two orders up to the end: two in the period, or one in it and one before it.
        f" SUM(CASE WHEN orders_in_p >= 2 OR (orders_in_p = 1 AND (amask & {int(before_start)}) <> 0)"
        " THEN 1 ELSE 0 END) AS repeaters,"
        " SUM(orders_in_p) AS orders_in_p, SUM(revenue_in_p) AS revenue_in_p,"
        f" SUM(CASE WHEN (amask & {int(before_as_of)}) <> 0 THEN 1 ELSE 0 END) AS buyers"
        " FROM per GROUP BY amask) patterns"
    )
    return _Part("T", cols, source)


def _totals_from_row(values: list, part: _Part, series_days) -> tuple[dict, list[dict]]:
    row = [v if v is not None else 0 for v in values]
    keys = _TOTAL_KEYS
    totals = {k: (row[i] if k == "revenue_in_period" else int(row[i])) for i, k in enumerate(keys)}
    totals["revenue_in_period"] = Decimal(str(totals["revenue_in_period"]))
    series = []
    for j, (a, b) in enumerate(zip(series_days, series_days[1:], strict=False)):
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


def _cohorts_part(width: int) -> _Part:
    """mmask bit j ≥ 1 = an order in month base + j − 1; bit 0 = an order before the range, so the
    customer's cohort is older and they are left out. Customers are grouped by month pattern first; the
    lowest bit of a pattern is the cohort, `mmask / (mmask & -mmask)` shifts it to the cohort's month 0,
    and cell k sums the patterns with bit k set."""
    own = "(mmask / (mmask & -mmask))"
    cols = ["mmask & -mmask", "SUM(n)"] + [f"SUM((({own} >> {k}) & 1) * n)" for k in range(width)]
    source = (
        "FROM (SELECT mmask, COUNT(*) AS n FROM per WHERE mmask <> 0 AND (mmask & 1) = 0 GROUP BY mmask)"
        " patterns GROUP BY mmask & -mmask"
    )
    return _Part("C", cols, source)


def _cohorts_from_rows(fetched: list, base: int, last_month: int) -> list[metrics.CohortRow]:
    rows = []
    for values in sorted(fetched, key=lambda r: int(r[0])):
        fm = base + int(values[0]).bit_length() - 2  # bucket j (1-based) = month base + j − 1
        size = int(values[1])
        counts = [int(v or 0) for v in values[2:]]
        rows.append(
            metrics.CohortRow(
                cohort=f"{fm // 12:04d}-{fm % 12 + 1:02d}",
                size=size,
                retention=[metrics.percent(counts[k], size) for k in range(last_month - fm + 1)],
            )
        )
    return rows


def _top_part(kind: str, where: str, order: str, limit: int) -> _Part:
    """The first `limit` customers of the rollup matching `where` by `order` (customer_id, spend, last_at)."""
    source = (
        f"FROM (SELECT customer_id, spend, last_at FROM per WHERE {where} ORDER BY {order}"  # noqa: S608
        f" LIMIT {int(limit)}) {kind.lower()}_top"
    )
    return _Part(kind, ["customer_id", "spend", "last_at"], source)


def _customers(found: list, *, shop: Shop, as_of: dt.datetime) -> list[Customer]:
    """Customer objects for the rollup rows (customer_id, spend, last_at), in the order of `found`,
    annotated with spend, order_count and last_order_at (orders before `as_of`)."""
    if not found:
        return []
    ids = [int(r[0]) for r in found]
    by_id = Customer.objects.in_bulk(ids)
    counts = dict(
        metrics.metric_orders(shop=shop)
        .filter(customer_id__in=ids, placed_at__lt=as_of)
        .values("customer_id")
        .annotate(n=Count("*"))
        .values_list("customer_id", "n")
    )
    out = []
    for customer_id, spend, last_at in found:
        customer = by_id[int(customer_id)]
        customer.spend = Decimal(str(spend))
        customer.order_count = counts.get(int(customer_id), 0)
        customer.last_order_at = _datetime(last_at)
        out.append(customer)
    return out


def _datetime(value):
    if isinstance(value, str):  # SQLite returns the stored text
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return value
