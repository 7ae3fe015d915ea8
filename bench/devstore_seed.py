"""Dev store: seconds to seed 100,000 orders (baseline: 10,000 in the same run), and peak Python memory of
a bulk export (JSONL with __parentId rows) of 10,000 vs 100,000 orders: streaming means the ratio stays
near 1 while the number of orders grows 10x.

    python -m bench devstore_seed            (DEVSTORE_BENCH_ORDERS=20000 for a quicker run)
"""

from __future__ import annotations

import os
import tempfile
import time

BULK_QUERY = """{ orders { edges { node { id name updatedAt displayFinancialStatus
  totalPriceSet { shopMoney { amount currencyCode } } customer { id }
  lineItems { edges { node { id title quantity } } } } } } }"""


def _devstore(data_dir: str):
    from shop_integrations.devstore.server import Config, DevStore

    ds = DevStore(Config(data=data_dir, api_key="bench", api_secret="bench-secret"))  # noqa: S106 (a throwaway store)
    ds.graphql._build()  # synchronously, once
    return ds


def _shop(ds, name: str) -> str:
    from shop_integrations.devstore.actions import ensure_catalog

    domain = f"{name}.devstore.test"
    with ds.store.tx() as c:
        c.execute(
            "INSERT INTO shops(domain, name, email, currency, timezone, created_at) VALUES(?,?,?,?,?,?)",
            (domain, name, f"owner@{domain}", "USD", "UTC", "2026-01-01T00:00:00Z"),
        )
    ensure_catalog(ds, domain)
    return domain


def _seed(ds, shop: str, orders: int) -> float:
    from shop_integrations.devstore.seed import seed_shop

    start = time.perf_counter()
    seed_shop(ds, shop, customers=max(10, orders // 4), orders=orders, months=18, seed=7)
    return time.perf_counter() - start


def _vm(name: str) -> int:
    """A memory figure (KiB) from /proc/self/status, 0 where unavailable."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _bulk_child(data_dir: str, shop: str) -> None:
    """Run in a fresh process: one bulk export; print seconds, RSS before/after (KiB) and lines as JSON."""
    import json
    import resource

    from shop_integrations.devstore.bulk import run_bulk

    ds = _devstore(data_dir)
    with ds.store.tx() as c:
        op_id = c.execute(
            "INSERT INTO bulk_operations(shop, client_id, query, status, created_at) VALUES(?,?,?,?,?)",
            (shop, "bench", BULK_QUERY, "CREATED", "2026-01-01T00:00:00Z"),
        ).lastrowid
    import gc

    gc.collect()
    before = _vm("VmRSS")
    try:  # reset the peak RSS (VmHWM) so it measures the export only (Linux >= 4.0)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    start = time.perf_counter()
    run_bulk(ds, op_id, "read_orders,read_customers,read_products")
    seconds = time.perf_counter() - start
    after = _vm("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    row = ds.store.one("SELECT status, object_count FROM bulk_operations WHERE id=?", (op_id,))
    assert row["status"] == "COMPLETED", row["status"]
    print(json.dumps({"seconds": seconds, "before": before, "after": after, "lines": row["object_count"]}))


def _bulk_run(data_dir: str, shop: str) -> dict:
    """A bulk export in its own process, so its peak RSS is its own."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "bench.devstore_seed", "--bulk-child", data_dir, shop],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    big = int(os.environ.get("DEVSTORE_BENCH_ORDERS", "100000"))
    small = big // 10
    with tempfile.TemporaryDirectory(prefix="devstore-bench-") as data_dir:
        ds = _devstore(data_dir)
        shop_small, shop_big = _shop(ds, "bench-small"), _shop(ds, "bench-big")
        seed_small = _seed(ds, shop_small, small)
        seed_big = _seed(ds, shop_big, big)
        ds.webhooks.stop()
        print(f"devstore seed {small:>7,} orders: {seed_small:6.2f} s (baseline)")
        print(
            f"devstore seed {big:>7,} orders: {seed_big:6.2f} s  ratio {seed_big / seed_small:.1f}x "
            f"for {big // small}x the orders"
        )
        runs = [
            (small, _bulk_run(data_dir, shop_small), "(baseline)"),
            (big, _bulk_run(data_dir, shop_big), ""),
        ]
        for orders, run, note in runs:
            growth = (run["after"] - run["before"]) / 1024
            print(
                f"bulk export {orders:>7,} orders: {run['seconds']:6.1f} s, {run['lines']:>8,} JSONL lines, "
                f"peak RSS {run['after'] / 1024:6.1f} MiB (+{growth:5.1f} MiB during the export) {note}"
            )
        ratio = runs[1][1]["after"] / runs[0][1]["after"]
        print(
            f"bulk export peak RSS ratio {ratio:.2f}x for {big // small}x the orders (streamed: stays near 1)"
        )


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--bulk-child"]:
        _bulk_child(sys.argv[2], sys.argv[3])
    else:
        main()
