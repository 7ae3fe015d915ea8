"""Dashboard benchmark: the whole merchant dashboard (all metrics, a 24-month cohort table, a 12-month
retention/churn series, customers at risk, VIPs) on PostgreSQL, side by side with pandas computing the
same numbers from the same table (read included), in the same run.

    python -m bench dashboard

Data: BENCH_DASHBOARD_ORDERS orders (default 1,000,000) for BENCH_DASHBOARD_CUSTOMERS customers (default
250,000), written with COPY into the database BENCH_DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/boomerang_bench; created and migrated if missing, never the app's
DATABASE_URL). The data is generated once and reused while the sizes match (BENCH_DASHBOARD_REGENERATE=1
forces it). Shop time zone Asia/Bangkok; ~2 % cancelled and ~1 % test orders. Each side is timed
BENCH_DASHBOARD_REPEAT times (default 3) and the best run is reported; the numbers of both sides are
compared and the run fails loudly if they differ.

The dashboard's rollup reads the orders in customer order; it is an index-only scan when commerce_order has
the covering partial index proposed for commerce (see retention_app/metrics/dashboard.py). Until commerce
has it, BENCH_DASHBOARD_COVERING_INDEX=create builds it by hand in the bench database (=drop removes it),
so both states can be measured; the run prints which state it measured, and the load average.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import sys
import time
from decimal import Decimal
from zoneinfo import ZoneInfo

from bench.support import ensure_postgres_database

DOMAIN = "bench-dashboard.myshopify.com"
TZ = "Asia/Bangkok"
TODAY = dt.date(2026, 11, 15)  # the dashboard's "today" (fixed: the data is generated relative to it)
PERIOD = (dt.date(2026, 10, 1), dt.date(2026, 11, 1))
WINDOW = 180
VIP_SHARE = Decimal("10")
HISTORY_START = dt.date(2024, 5, 1)  # ~30 months of history


def _setup_django() -> None:
    url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/boomerang_bench")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("BENCH_DATABASE_URL must be a PostgreSQL URL")
    ensure_postgres_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention_app.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


# --- data ------------------------------------------------------------------------------------------------


def _ensure_data(n_orders: int, n_customers: int):
    from retention_app.commerce.models import Customer, Order
    from retention_app.shops.models import Shop

    shop = Shop.objects.filter(domain=DOMAIN).first()
    if (
        shop is not None
        and os.environ.get("BENCH_DASHBOARD_REGENERATE") != "1"
        and Order.objects.filter(shop=shop).count() == n_orders
        and Customer.objects.filter(shop=shop).count() == n_customers
    ):
        print(f"reusing {n_orders:,} orders / {n_customers:,} customers in {DOMAIN}")
        return shop
    if shop is not None:
        Shop.objects.filter(pk=shop.pk).delete()
    shop = Shop.objects.create(domain=DOMAIN, name="Bench", timezone=TZ, activity_window_days=WINDOW)
    t0 = time.perf_counter()
    _copy_rows(shop, n_orders, n_customers)
    # An established table has its hint bits and visibility map set: measure that state, not the first read.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) commerce_order")
        cursor.execute("VACUUM (ANALYZE) commerce_customer")
    print(
        f"generated {n_orders:,} orders / {n_customers:,} customers with COPY "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    return shop


def _copy_rows(shop, n_orders: int, n_customers: int) -> None:
    from django.db import connection, transaction

    from retention_app.commerce.models import Customer, Order

    rng = random.Random(20261115)
    zone = ZoneInfo(TZ)
    start = dt.datetime.combine(HISTORY_START, dt.time.min, tzinfo=zone).timestamp()
    end = dt.datetime.combine(TODAY, dt.time.min, tzinfo=zone).timestamp()
    now = dt.datetime.now(dt.UTC)
    # Orders per customer: everyone has one, the rest go preferentially to a loyal minority.
    counts = [1] * n_customers
    for _ in range(n_orders - n_customers):
        counts[int(n_customers * rng.random() ** 2.5)] += 1

    def defaults(model, given: dict) -> list[tuple[str, object]]:
        cols = []
        for f in model._meta.concrete_fields:
            if f.primary_key:
                continue
            if f.attname in given:
                cols.append((f.column, given[f.attname]))
            elif getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                cols.append((f.column, now))
            else:
                value = f.get_default()
                if f.get_internal_type() == "JSONField":
                    value = "[]" if value == [] else "{}" if value == {} else value
                cols.append((f.column, value))
        return cols

    with transaction.atomic(), connection.cursor() as cursor:
        pg = cursor.cursor  # the psycopg cursor (COPY)
        sample = defaults(Customer, {"shop_id": shop.pk, "platform_id": "x"})
        columns = [c for c, _ in sample]
        with pg.copy(f"COPY {Customer._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
            for i in range(n_customers):
                row = dict(sample)
                row.update(
                    platform_id=str(1_000_000 + i),
                    email=f"c{i}@bench.example",
                    first_name=f"C{i}",
                    marketing_state="SUBSCRIBED",
                )
                copy.write_row([row[c] for c in columns])
        table = Customer._meta.db_table
        pg.execute(f"SELECT id FROM {table} WHERE shop_id = %s ORDER BY id", [shop.pk])  # noqa: S608
        ids = [r[0] for r in pg.fetchall()]
        sample = defaults(
            Order,
            {
                "shop_id": shop.pk,
                "customer_id": None,
                "platform_id": "x",
                "currency": "USD",
                "total_price": 0,
                "placed_at": now,
            },
        )
        columns = [c for c, _ in sample]
        base = [v for _, v in sample]
        at = {c: i for i, c in enumerate(columns)}
        n = 0
        with pg.copy(f"COPY {Order._meta.db_table} ({', '.join(columns)}) FROM STDIN") as copy:
            for customer_id, k in zip(ids, counts, strict=True):
                first = rng.uniform(start, end - 86400)
                times = [first] + [rng.uniform(first, end) for _ in range(k - 1)]
                for ts in times:
                    n += 1
                    placed = dt.datetime.fromtimestamp(ts, dt.UTC)
                    u = rng.random()
                    row = base.copy()
                    row[at["customer_id"]] = customer_id
                    row[at["platform_id"]] = str(n)
                    row[at["name"]] = f"#{n}"
                    row[at["total_price"]] = Decimal(int(rng.lognormvariate(3.8, 0.6) * 100)) / 100
                    row[at["placed_at"]] = placed
                    row[at["financial_status"]] = "paid"
                    row[at["cancelled_at"]] = placed + dt.timedelta(hours=2) if u < 0.02 else None
                    row[at["is_test"]] = 0.02 <= u < 0.03
                    copy.write_row(row)
        pg.execute(f"ANALYZE {Order._meta.db_table}")
        pg.execute(f"ANALYZE {Customer._meta.db_table}")


# --- the two sides ---------------------------------------------------------------------------------------


def _server(shop):
    from retention_app.metrics.automation import automation_results
    from retention_app.metrics.dashboard import dashboard_data
    from retention_app.metrics.selectors import local_midnight

    zone = ZoneInfo(TZ)
    # The automation panel too (the bench shop has no messages: it measures the query shapes only).
    automation_results(shop=shop, start=local_midnight(PERIOD[0], zone), end=local_midnight(PERIOD[1], zone))
    data = dashboard_data(
        shop=shop,
        start=PERIOD[0],
        end=PERIOD[1],
        window_days=WINDOW,
        vip_share_percent=VIP_SHARE,
        cohort_months=24,
        series_months=12,
        today=TODAY,
    )
    r = data.report
    return {
        "S": r.S,
        "E": r.E,
        "N": r.N,
        "churned": r.churned,
        "retention_rate": r.retention_rate,
        "churn_rate": r.churn_rate,
        "repeat_purchase_rate": r.repeat_purchase_rate,
        "aov": r.average_order_value,
        "orders": r.orders_in_period,
        "customers": r.customers_in_period,
        "cohorts": [(c.cohort, c.size, c.retention) for c in data.cohorts],
        "series": [(s["S"], s["E"], s["N"], s["churned"]) for s in data.series],
        "at_risk": [c.pk for c in data.at_risk],
        "vips": [c.pk for c in data.vips],
    }


def _pandas(shop):
    """The same numbers with pandas, starting from a read of the orders table."""
    import numpy as np
    import pandas as pd
    from django.db import connection

    from retention_app.commerce.models import Order
    from retention_app.metrics.selectors import percent

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT customer_id, placed_at, total_price::float8 FROM {Order._meta.db_table} "  # noqa: S608
            "WHERE shop_id = %s AND cancelled_at IS NULL AND NOT is_test AND customer_id IS NOT NULL",
            [shop.pk],
        )
        rows = cursor.fetchall()
    df = pd.DataFrame(rows, columns=["customer_id", "placed_at", "total"])
    df["placed_at"] = pd.to_datetime(df["placed_at"], utc=True)
    zone = ZoneInfo(TZ)

    def ts(day):
        return pd.Timestamp(dt.datetime.combine(day, dt.time.min, tzinfo=zone))

    def active(at_day, before=None):
        t = ts(at_day)
        w = ts(at_day - dt.timedelta(days=WINDOW))
        return set(df.loc[(df.placed_at >= w) & (df.placed_at < t), "customer_id"].unique())

    s_day, e_day = PERIOD
    s_t, e_t = ts(s_day), ts(e_day)
    first = df.groupby("customer_id").placed_at.min()
    a_s, a_e = active(s_day), active(e_day)
    new = set(first[(first >= s_t) & (first < e_t)].index)
    in_p = df[(df.placed_at >= s_t) & (df.placed_at < e_t)]
    buyers = in_p.customer_id.unique()
    upto = df[df.placed_at < e_t].groupby("customer_id").size()
    repeat = int((upto.reindex(buyers) >= 2).sum())
    churned = len(a_s - a_e)
    out = {
        "S": len(a_s),
        "E": len(a_e),
        "N": len(new),
        "churned": churned,
        "retention_rate": percent(len(a_e) - len(new), len(a_s)),
        "churn_rate": percent(churned, len(a_s)),
        "repeat_purchase_rate": percent(repeat, len(buyers)),
        "aov": (Decimal(str(round(in_p.total.sum(), 2))) / len(in_p)).quantize(Decimal("0.01")),
        "orders": len(in_p),
        "customers": len(buyers),
    }
    # Cohorts (local months), last 24 cohort months.
    local = df.placed_at.dt.tz_convert(TZ)
    mi = (local.dt.year * 12 + local.dt.month - 1).to_numpy()
    cm = pd.DataFrame({"c": df.customer_id.to_numpy(), "m": mi}).drop_duplicates()
    cm["fm"] = cm.groupby("c").m.transform("min")
    last = int(mi.max())
    cm = cm[cm.fm >= last - 23]
    table = cm.groupby(["fm", cm.m - cm.fm]).size()
    cohorts = []
    for fm in sorted(cm.fm.unique()):
        size = int(table.get((fm, 0), 0))
        cohorts.append(
            (
                f"{fm // 12:04d}-{fm % 12 + 1:02d}",
                size,
                [percent(int(table.get((fm, k), 0)), size) for k in range(last - fm + 1)],
            )
        )
    out["cohorts"] = cohorts
    # 12-month series.
    months = []
    y, m = TODAY.year, TODAY.month
    for _ in range(13):
        months.append(dt.date(y, m, 1))
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    months.reverse()
    series = []
    for a, b in zip(months, months[1:], strict=False):
        sa, sb = active(a), active(b)
        n = int(((first >= ts(a)) & (first < ts(b))).sum())
        series.append((len(sa), len(sb), n, len(sa - sb)))
    out["series"] = series
    # At risk and VIPs as of the period end.
    as_of = min(e_t, ts(TODAY + dt.timedelta(days=1)))
    before = df[df.placed_at < as_of]
    per = before.groupby("customer_id").agg(spend=("total", "sum"), last=("placed_at", "max"))
    per["spend"] = per.spend.round(4)
    risk = per[per["last"] < as_of - pd.Timedelta(days=WINDOW)]
    risk = risk.reset_index().sort_values(["spend", "last", "customer_id"], ascending=[False, False, True])
    out["at_risk"] = risk.customer_id.head(10).tolist()
    top = int(np.ceil(len(per) * float(VIP_SHARE) / 100))
    vips = per.reset_index().sort_values(["spend", "customer_id"], ascending=[False, True]).head(top)
    out["vips"] = vips.customer_id.head(10).tolist()
    return out


COVERING_INDEX = "bench_order_metrics_cover"
COVERING_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {COVERING_INDEX} ON commerce_order (shop_id, customer_id, placed_at) "
    "INCLUDE (total_price) WHERE cancelled_at IS NULL AND NOT is_test"
)


def _covering_index() -> str:
    """Apply BENCH_DASHBOARD_COVERING_INDEX (create / drop) and say whether such an index exists."""
    from django.db import connection

    wanted = os.environ.get("BENCH_DASHBOARD_COVERING_INDEX", "")
    with connection.cursor() as cursor:
        if wanted == "create":
            cursor.execute(COVERING_INDEX_SQL)
            cursor.execute("VACUUM (ANALYZE) commerce_order")
        elif wanted == "drop":
            cursor.execute(f"DROP INDEX IF EXISTS {COVERING_INDEX}")
            cursor.execute("ANALYZE commerce_order")
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'commerce_order'"
            " AND indexdef LIKE '%%(shop_id, customer_id, placed_at) INCLUDE (total_price)%%'"
        )
        found = [r[0] for r in cursor.fetchall()]
    return f"present ({', '.join(found)})" if found else "absent (heap read in customer order)"


def _best(fn, shop, repeat: int):
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn(shop)
        best = min(best, time.perf_counter() - t0)
    return best, result


def main() -> None:
    n_orders = int(os.environ.get("BENCH_DASHBOARD_ORDERS", "1000000"))
    n_customers = int(os.environ.get("BENCH_DASHBOARD_CUSTOMERS", "250000"))
    repeat = int(os.environ.get("BENCH_DASHBOARD_REPEAT", "3"))
    _setup_django()
    shop = _ensure_data(n_orders, n_customers)
    index_state = _covering_index()
    server_s, server = _best(_server, shop, repeat)
    pandas_s, frame = _best(_pandas, shop, repeat)
    diffs = [k for k in server if server[k] != frame[k]]
    print(
        f"dashboard on PostgreSQL: {n_orders:,} orders, {n_customers:,} customers, 24-month cohorts, "
        f"best of {repeat}"
    )
    print(f"  covering index on orders: {index_state}")
    print("  load average (1/5/15 min) at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    print(f"  server (SQL via the ORM):   {server_s * 1000:8.0f} ms   target <= 1000 ms")
    print(f"  pandas (read + compute):    {pandas_s * 1000:8.0f} ms   baseline")
    print(f"  ratio pandas / server:      {pandas_s / server_s:8.2f} x  (> 1 means the server is faster)")
    print(
        f"  S={server['S']} E={server['E']} N={server['N']} retention={server['retention_rate']} "
        f"churn={server['churn_rate']} repeat={server['repeat_purchase_rate']}"
    )
    if diffs:
        for k in diffs:
            print(f"  MISMATCH {k}: server={server[k]!r:.300} pandas={frame[k]!r:.300}")
        raise SystemExit("server and pandas disagree")
    print("  both sides computed identical numbers")


if __name__ == "__main__":
    main()
