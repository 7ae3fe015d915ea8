"""GraphQL pacing (issue 4): the share of the dev store's restore rate the GraphQL client uses while never
being throttled, against a dev store with a small bucket, with several workers sharing the shop's budget.

    python -m bench graphql_pacing        (BENCH_SECONDS=20 by default; REDIS_URL set: worker processes
                                           share the budget through Redis; unset: threads, local bucket)

Figures, measured in the same run:
- baseline: a naive client (sends back to back, sleeps 0.5 s after a THROTTLED answer), its share of the
  restore rate and how often it was throttled;
- the app's ShopifyClient (paced from throttleStatus), same workers, same duration, on its own shop.
Share = cost points the store actually charged / (bucket size + restore rate x duration), the most any
client can get in that time. Target: >= 90 % with zero THROTTLED answers.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
API_KEY, API_SECRET = "dev-boomerang-client-id", "dev-boomerang-client-secret"
BUCKET_SIZE, RESTORE_RATE = 100, 50
QUERY = "query BenchCustomers { customers(first: 20) { nodes { id email } } }"


def start_devstore(data_dir: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shop_integrations.devstore",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data",
            data_dir,
            "--api-key",
            API_KEY,
            "--api-secret",
            API_SECRET,
            "--auto-approve",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    for line in proc.stdout:
        match = re.search(r"devstore ready on (http://\S+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, match.group(1)
    raise RuntimeError("dev store did not start")


def _setup_django(base_url: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention_app.settings")
    os.environ["DEBUG"] = "1"
    os.environ["SHOPIFY_STORE_URL_TEMPLATE"] = f"{base_url}/s/{{shop}}"
    os.environ["SHOPIFY_DEV_SHOP_SUFFIX"] = ".devstore.test"
    import django

    django.setup()


def _paced_thread(shop: str, token: str, deadline: float, out: list) -> None:
    from shop_integrations.shopify.client import ShopifyClient

    client = ShopifyClient.with_token(shop, token)
    charged = calls = 0
    first = time.time()
    while time.time() < deadline:
        client.execute(QUERY)
        if time.time() <= deadline:  # only what the store served inside the window counts
            charged += (client.last_cost or {}).get("actualQueryCost") or 0
            calls += 1
    out.append((charged, calls, client.throttled_count, first))


def paced_worker(
    base_url: str, shop: str, token: str, start_at: float, deadline: float, threads: int
) -> tuple:
    """One worker process: `threads` clients from start_at until the deadline (wall clock, so every
    process starts together after importing Django). Returns (charged, calls, throttled, first send)."""
    _setup_django(base_url)
    time.sleep(max(0.0, start_at - time.time()))
    out: list = []
    pool = [threading.Thread(target=_paced_thread, args=(shop, token, deadline, out)) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return (*(sum(x[i] for x in out) for i in range(3)), min(x[3] for x in out))


def naive_thread(url: str, token: str, deadline: float, out: list) -> None:
    session = requests.Session()
    charged = calls = throttled = 0
    first = time.time()
    while time.time() < deadline:
        body = session.post(url, json={"query": QUERY}, headers={"X-Shopify-Access-Token": token}).json()
        calls += 1
        if any((e.get("extensions") or {}).get("code") == "THROTTLED" for e in body.get("errors") or []):
            throttled += 1
            time.sleep(0.5)  # the naive client's fixed back-off
            continue
        if time.time() <= deadline:
            charged += body["extensions"]["cost"]["actualQueryCost"]
    out.append((charged, calls, throttled, first))


def main() -> None:
    seconds = float(os.environ.get("BENCH_SECONDS", "20"))
    redis_url = os.environ.get("REDIS_URL", "")
    processes, threads = (3, 2) if redis_url else (1, 6)
    data_dir = tempfile.mkdtemp(prefix="bench-pacing-")
    proc, base_url = start_devstore(data_dir)
    try:
        from shop_integrations.devstore.control import DevStoreControl

        control = DevStoreControl(base_url)
        control.settings(bucket_size=BUCKET_SIZE, restore_rate=RESTORE_RATE)
        deadline = time.monotonic() + 120
        while not control.health().get("schema_ready"):  # the store builds its schema at start
            if time.monotonic() > deadline:
                raise RuntimeError("dev store schema not ready")
            time.sleep(0.2)
        shops = {}
        for kind in ("naive", "paced"):
            shop = f"bench-{kind}-{os.getpid()}.devstore.test"
            control.create_shop(shop, name=f"Bench {kind}")
            control.seed(shop, customers=30, orders=0)
            shops[kind] = (shop, control.grant_token(shop)["access_token"])
        limit = BUCKET_SIZE + RESTORE_RATE * seconds
        print(
            f"GraphQL pacing: dev store bucket {BUCKET_SIZE} points, restore {RESTORE_RATE}/s, "
            f"{seconds:.0f} s, {processes} process(es) x {threads} thread(s), "
            f"budget shared via {'Redis' if redis_url else 'an in-process bucket'}"
        )
        print(
            f"  most any client can use in {seconds:.0f} s: {limit:.0f} points "
            "(share below = points charged / (bucket + rate x measured window))"
        )

        # Baseline: naive client
        shop, token = shops["naive"]
        url = f"{base_url}/s/{shop}/admin/api/2026-01/graphql.json"
        deadline = time.time() + seconds
        out: list = []
        pool = [
            threading.Thread(target=naive_thread, args=(url, token, deadline, out))
            for _ in range(processes * threads)
        ]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
        n_charged, n_calls, n_throttled = (sum(x[i] for x in out) for i in range(3))
        n_limit = BUCKET_SIZE + RESTORE_RATE * (deadline - min(x[3] for x in out))
        print(
            f"  naive client:   {n_charged:6.0f} points = {n_charged / n_limit:6.1%} of the restore rate, "
            f"{n_calls} calls, {n_throttled} THROTTLED"
        )

        # The app's client
        shop, token = shops["paced"]
        if redis_url:
            import redis

            redis.Redis.from_url(redis_url).delete(
                f"boomerang:shopify:cost-bucket:{shop}", f"boomerang:shopify:cost-bucket:{shop}:inflight"
            )
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(processes) as workers:
            # Worker processes import Django first, then start together; the window opens at the first
            # request sent.
            start_at = time.time() + 15
            deadline = start_at + seconds
            args = (base_url, shop, token, start_at, deadline, threads)
            results = workers.starmap(paced_worker, [args] * processes)
        p_charged, p_calls, p_throttled = (sum(x[i] for x in results) for i in range(3))
        window = deadline - min(x[3] for x in results)
        store_throttled = control.stats(shop).get("throttled", 0)
        share = p_charged / (BUCKET_SIZE + RESTORE_RATE * window)
        print(
            f"  ShopifyClient:  {p_charged:6.0f} points = {share:6.1%} of the restore rate, "
            f"{p_calls} calls, {p_throttled} THROTTLED (store counted {store_throttled})"
        )
        print(
            f"  ratio paced/naive points: {p_charged / max(n_charged, 1):.2f}; "
            f"target >= 90% with 0 THROTTLED: {'met' if share >= 0.9 and store_throttled == 0 else 'NOT met'}"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
