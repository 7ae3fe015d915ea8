"""Backfill write rate: a bulk-operation JSONL file of N orders through the real backfill writer, beside
PostgreSQL's own COPY of the same rows, in one run.

`python -m bench backfill` (needs DATABASE_URL=postgres://…; migrates that database first):
1. generates a JSONL file shaped like Shopify's bulk result of `bulk_orders.graphql` (an order line with
   `customer{id}` and embedded fulfillments, then its line item lines with `__parentId`), and the same rows as
   COPY text files (untimed);
2. baseline: `COPY commerce_order` + `COPY commerce_lineitem` of those rows into the real, indexed tables
   (the physical limit: no parsing, no conflict handling);
3. ours: a fresh Python process runs shop_integrations.shopify.bulk.load_jsonl on the file (orjson parse ->
   normalize to the neutral dataclasses -> for orders not stored yet, as here: ids from the sequence and
   binary COPY data made in the parsing thread, sent by the writer thread straight into the tables; stored
   ones go through temp tables and INSERT … ON CONFLICT; batches of SYNC_BULK_BATCH_ROWS with the resume
   offset committed per batch), and reports its peak RSS and CPU seconds.
It prints orders/s for both, the ratio, peak RSS and the load average, for 100k and then 1M orders
(BENCH_BACKFILL_SIZES, default "100000,1000000"). Targets: >= 20,000 orders/s and >= 40 % of COPY; RSS flat
as the file grows. The machine's other work slows either side: read the ratio beside the load average.
The line source is the file read in 1 MiB chunks (the same splitting as the HTTP stream), not HTTP.
Rows are written for a dedicated shop (bench-backfill.myshopify.com) and deleted after each step.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.support import ensure_postgres_database, load_average

ROOT = Path(__file__).resolve().parents[1]
BENCH_SHOP = "bench-backfill.myshopify.com"
CUSTOMERS = 50_000
ITEMS_PER_ORDER = 2
RATE_TARGET = 20_000
RATIO_TARGET = 0.40
ID_BASE = 4_000_000_000  # explicit ids for the COPY baseline, far above real ones


def _setup_django() -> None:
    ensure_postgres_database(os.environ["DATABASE_URL"])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention_app.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()


def _generate(
    n: int, folder: Path, shop_id: int, customer_ids: dict[str, int], order_id_base: int
) -> tuple[Path, Path, Path]:
    """Write the JSONL file and the two COPY text files for `n` orders."""
    jsonl = folder / f"orders-{n}.jsonl"
    orders_copy = folder / f"orders-{n}.copy"
    items_copy = folder / f"items-{n}.copy"
    with open(jsonl, "w") as fj, open(orders_copy, "w") as fo, open(items_copy, "w") as fi:
        for i in range(1, n + 1):
            gid = f"gid://shopify/Order/{i}"
            cust = str(1 + i % CUSTOMERS)
            total = f"{(i % 500) + 10}.90"
            created = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:15:00Z"
            updated = created.replace(":15:00Z", ":45:00Z")
            order = {
                "id": gid, "name": f"#{1000 + i}", "email": f"c{cust}@example.com", "createdAt": created,
                "updatedAt": updated, "cancelledAt": None, "cancelReason": None, "currencyCode": "USD",
                "totalPriceSet": {"shopMoney": {"amount": total}},
                "subtotalPriceSet": {"shopMoney": {"amount": total}},
                "totalDiscountsSet": {"shopMoney": {"amount": "0.0"}},
                "displayFinancialStatus": "PAID", "displayFulfillmentStatus": "FULFILLED",
                "discountCodes": [],
                "customerLocale": "en", "customerAcceptsMarketing": False, "test": False,
                "customer": {"id": f"gid://shopify/Customer/{cust}"}, "fulfillments": [],
            }  # fmt: skip
            fj.write(json.dumps(order, separators=(",", ":")))
            fj.write("\n")
            oid = order_id_base + i
            fo.write(
                f"{oid}\t{shop_id}\t{customer_ids[cust]}\t{i}\t#{1000 + i}\tc{cust}@example.com\tUSD\t"
                f"{total}\t{total}\t0\tpaid\tfulfilled\t[]\ten\tf\tf\t\\N\t\t{created}\t{updated}\t{created}\t{created}\n"
            )
            for j in range(ITEMS_PER_ORDER):
                item = {
                    "id": f"gid://shopify/LineItem/{i * 10 + j}", "title": "Jasmine Tea", "sku": "JT-100",
                    "quantity": 1, "originalUnitPriceSet": {"shopMoney": {"amount": "5.45"}},
                    "product": {"id": "gid://shopify/Product/632910392"},
                    "variant": {"id": "gid://shopify/ProductVariant/808950810"}, "__parentId": gid,
                }  # fmt: skip
                fj.write(json.dumps(item, separators=(",", ":")))
                fj.write("\n")
                fi.write(
                    f"{shop_id}\t{oid}\t{i * 10 + j}\t632910392\t808950810\tJasmine Tea\tJT-100\t1\t5.45\n"
                )
    return jsonl, orders_copy, items_copy


def _shop():
    from retention_app.shops.models import Shop

    shop, _ = Shop.objects.get_or_create(
        platform=Shop.Platform.SHOPIFY,
        domain=BENCH_SHOP,
        defaults={"name": "Bench backfill", "status": "installed"},
    )
    return shop


def _customers(shop) -> dict[str, int]:
    from retention_app.commerce.models import Customer

    existing = dict(Customer.objects.filter(shop=shop).values_list("platform_id", "id"))
    if len(existing) < CUSTOMERS:
        Customer.objects.bulk_create(
            [
                Customer(shop=shop, platform_id=str(i), email=f"c{i}@example.com")
                for i in range(1, CUSTOMERS + 1)
                if str(i) not in existing
            ],
            batch_size=5000,
        )
        existing = dict(Customer.objects.filter(shop=shop).values_list("platform_id", "id"))
    return existing


def _clear(shop) -> None:
    from django.db import connection

    with connection.cursor() as c:
        c.execute("DELETE FROM commerce_lineitem WHERE shop_id = %s", [shop.pk])
        c.execute("DELETE FROM commerce_fulfillment WHERE shop_id = %s", [shop.pk])
        c.execute("DELETE FROM commerce_order WHERE shop_id = %s", [shop.pk])
        c.execute("VACUUM ANALYZE commerce_order")
        c.execute("VACUUM ANALYZE commerce_lineitem")


def _copy_baseline(shop, orders_copy: Path, items_copy: Path) -> float:
    from django.db import connection, transaction

    order_cols = (
        "id, shop_id, customer_id, platform_id, name, email, currency, total_price, subtotal_price,"
        " total_discounts, financial_status, fulfillment_status, discount_codes, customer_locale,"
        " buyer_accepts_marketing, is_test, cancelled_at, cancel_reason, placed_at, platform_updated_at,"
        " created_at, updated_at"
    )
    item_cols = (
        "shop_id, order_id, platform_id, product_platform_id, variant_platform_id, title, sku, quantity,"
    )
    item_cols += " price"
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as c:
        for path, table, cols in (
            (orders_copy, "commerce_order", order_cols),
            (items_copy, "commerce_lineitem", item_cols),
        ):
            with open(path, "rb") as fh, c.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
    return time.perf_counter() - started


def _file_lines(path: Path):
    offset = 0
    pending = b""
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            data = pending + chunk
            lines = data.split(b"\n")
            pending = lines.pop()
            for line in lines:
                offset += len(line) + 1
                if line:
                    yield line, offset


def _load_child(path: str, shop_id: int) -> None:
    """In a fresh process: the real writer over the file; prints JSON with seconds, rows and peak RSS."""
    _setup_django()
    from django.conf import settings

    from shop_integrations.shopify import bulk

    batch = int(getattr(settings, "SYNC_BULK_BATCH_ROWS", bulk.DEFAULT_BATCH_ROWS))
    started = time.perf_counter()
    rows = bulk.load_jsonl(
        shop_id=shop_id, lines=_file_lines(Path(path)), batch_rows=batch, on_batch=lambda r, o: None
    )
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print(json.dumps({"seconds": seconds, "rows": rows, "rss_mb": usage.ru_maxrss / 1024, "cpu_s": cpu}))


def main() -> None:
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres", "pgsql")):
        print("backfill: needs DATABASE_URL=postgres://… (COPY is the baseline); skipped")
        return
    _setup_django()
    from django.core.management import call_command

    from retention_app.commerce.models import LineItem, Order

    call_command("migrate", verbosity=0)
    sizes = [int(x) for x in os.environ.get("BENCH_BACKFILL_SIZES", "100000,1000000").split(",") if x]
    shop = _shop()
    customer_ids = _customers(shop)
    print(f"backfill: {ITEMS_PER_ORDER} line items per order, {CUSTOMERS:,} customers already stored")
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        for n in sizes:
            t0 = time.perf_counter()
            jsonl, orders_copy, items_copy = _generate(n, Path(tmp), shop.pk, customer_ids, ID_BASE)
            size_mb = jsonl.stat().st_size / 1e6
            print(f"  {n:>9,} orders: generated {size_mb:,.0f} MB JSONL in {time.perf_counter() - t0:.0f}s")
            _clear(shop)
            load_before = load_average()
            copy_s = _copy_baseline(shop, orders_copy, items_copy)
            assert Order.objects.filter(shop=shop).count() == n
            _clear(shop)
            child = subprocess.run(
                [sys.executable, "-m", "bench.backfill", "_load", str(jsonl), str(shop.pk)],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if child.returncode != 0:
                print(child.stderr[-3000:])
                raise SystemExit("backfill: the writer failed")
            result = json.loads(child.stdout.strip().splitlines()[-1])
            orders = Order.objects.filter(shop=shop).count()
            items = LineItem.objects.filter(shop=shop).count()
            assert orders == n and items == n * ITEMS_PER_ORDER, (orders, items)
            assert not Order.objects.filter(shop=shop, customer__isnull=True).exists()
            ours_rate = n / result["seconds"]
            copy_rate = n / copy_s
            ratio = ours_rate / copy_rate
            ok = "OK" if ours_rate >= RATE_TARGET and ratio >= RATIO_TARGET else "BELOW TARGET"
            print(
                f"  {n:>9,} orders: COPY {copy_rate:>9,.0f} orders/s ({copy_s:.1f}s) | backfill writer "
                f"{ours_rate:>9,.0f} orders/s ({result['seconds']:.1f}s) | ratio {ratio:.0%} | "
                f"writer peak RSS {result['rss_mb']:.0f} MB, Python CPU {result['cpu_s']:.1f}s | {ok}"
                f" | load {load_before} before, {load_average()} after"
            )
            _clear(shop)
            for path in (jsonl, orders_copy, items_copy):
                path.unlink()
    print(
        f"  targets: >= {RATE_TARGET:,} orders/s and >= {RATIO_TARGET:.0%} of COPY;"
        " peak RSS flat across sizes"
    )


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "_load":
        _load_child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
