"""Tracking page throughput and latency, beside a static HTML file of the same size, in one run.

`python -m bench tracking_page` seeds a benchmark shop (catalog of 60 products, 400 past orders for the
recommendations, one shipment with 6 tracking events, branding), starts gunicorn serving the app (DEBUG
off) on PostgreSQL when DATABASE_URL is set (else SQLite in a temporary folder) and Redis as cache when
REDIS_URL is set (else the file cache), then drives it with wrk, alternating, in two rounds:

- static: GET /__bench_static__, the bytes of the rendered tracking page saved to a file, served by the same
  gunicorn workers through a tiny WSGI path in front of Django (read once, like a static-file middleware);
- page:   GET /t/<token>/, the real page through Django's whole middleware stack: token signature check,
  the cached render (process-local layer, then one Redis script call; a miss costs 4-5 queries), the page
  view batched for the Redis buffer.

It prints requests/s and p99 of both, the throughput ratio page/static, the page's query count and size.
Targets: page p99 <= 50 ms and page throughput >= 30 % of the static file's.

Figures are medians over the rounds (other work shares the CPUs, so single rounds swing widely).
Knobs (environment): BENCH_SECONDS (default 4 per endpoint and round), BENCH_ROUNDS (3),
BENCH_CONNECTIONS (4), BENCH_WORKERS (2), BENCH_THREADS (1; >1 uses gthread). The benchmark shop and its
rows are deleted at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.support import (
    ensure_postgres_database,
    free_port,
    load_average,
    manage,
    production_like_env,
    wrk,
)

ROOT = Path(__file__).resolve().parents[1]
BENCH_SHOP = "bench-tracking.myshopify.com"
STATIC_PATH = "/__bench_static__"
P99_TARGET_MS = 50.0
RATIO_TARGET = 0.30

LUA = r"""
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "BENCHJSON {\"requests\": %d, \"seconds\": %.3f, \"rps\": %.1f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, " ..
    "\"max_ms\": %.3f, \"non_2xx\": %d, \"socket_errors\": %d}\n",
    summary.requests, seconds, summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""

# --- the WSGI entry point gunicorn runs: a static path in front of the real app ------------------------

_django_app = None
_static_bytes: bytes | None = None


def application(environ, start_response):
    """gunicorn `bench.tracking_page:application`: BENCH_STATIC_FILE's bytes at STATIC_PATH, else Django."""
    global _django_app, _static_bytes
    if environ.get("PATH_INFO") == STATIC_PATH:
        if _static_bytes is None:
            _static_bytes = Path(os.environ["BENCH_STATIC_FILE"]).read_bytes()
        start_response(
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(_static_bytes)))],
        )
        return [_static_bytes]
    if _django_app is None:
        from django.core.wsgi import get_wsgi_application

        _django_app = get_wsgi_application()
    return _django_app(environ, start_response)


# --- seeding (runs in `manage.py shell`) -------------------------------------------------------------------

SEED = """
import datetime as dt, random
from decimal import Decimal
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.test import Client
from django.utils import timezone
from retention_app.shops.models import Shop
from retention_app.commerce.models import Customer, Product, Order, LineItem, Fulfillment, FulfillmentEvent
from retention_app.tracking.services import tracking_branding_update, tracking_page_path

Shop.objects.filter(domain="{domain}").delete()
shop = Shop.objects.create(domain="{domain}", name="Bench Tea", timezone="Europe/Warsaw", storefront_url="https://{domain}",
                           status="installed", installed_at=timezone.now(), primary_locale="pl")
tracking_branding_update(shop=shop, data={"brand_color": "#0f766e", "accent_color": "#fbbf24",
                                          "logo_url": "https://cdn.example/logo.png"})
rnd = random.Random(7)
products = Product.objects.bulk_create([
    Product(shop=shop, platform_id=f"p{i}", title=f"Tea blend {i}", handle=f"tea-{i}", price=Decimal("19.90"),
            currency="PLN", image_url=f"https://cdn.example/p{i}.jpg") for i in range(60)])
customers = Customer.objects.bulk_create([
    Customer(shop=shop, platform_id=f"c{i}", email=f"c{i}@example.com", locale="pl", timezone="Europe/Warsaw")
    for i in range(100)])
now = timezone.now()
orders = Order.objects.bulk_create([
    Order(shop=shop, customer=customers[i % 100], platform_id=f"o{i}", name=f"#{1000 + i}",
          email=f"c{i % 100}@example.com", currency="PLN", total_price=Decimal("59.70"),
          placed_at=now - dt.timedelta(days=rnd.randint(1, 80)))
    for i in range(400)])
items = []
for o in orders:
    for j, p in enumerate(rnd.sample(products, 3)):
        items.append(LineItem(shop=shop, order=o, platform_id=f"{o.platform_id}-{j}",
                              product_platform_id=p.platform_id, title=p.title,
                              quantity=rnd.randint(1, 3), price=p.price))
LineItem.objects.bulk_create(items)
order = orders[0]
f = Fulfillment.objects.create(shop=shop, order=order, platform_id="f1", status="success",
                               shipment_status="IN_TRANSIT",
                               tracking_company="InPost", tracking_number="620000000000000000000001",
                               tracking_url="https://inpost.pl/sledzenie-przesylek?number=620000000000000000000001",
                               estimated_delivery_at=now + dt.timedelta(days=2))
statuses = ["LABEL_PRINTED", "CONFIRMED", "IN_TRANSIT", "IN_TRANSIT", "IN_TRANSIT", "IN_TRANSIT"]
for k, status in enumerate(statuses):
    FulfillmentEvent.objects.create(shop=shop, fulfillment=f, platform_id=f"e{k}", status=status,
                                    happened_at=now - dt.timedelta(hours=40 - 6 * k), city=f"City {k}",
                                    country="PL",
                                    message="Parcel scanned at the sorting centre")
path = tracking_page_path(f)
client = Client()
client.get(path)  # fills the caches the way the first visitor does
with CaptureQueriesContext(connection) as ctx:
    client.get(path)
print("BENCHSEED " + path + " " + str(len(ctx.captured_queries)))
"""

CLEANUP = """
from retention_app.shops.models import Shop
print(Shop.objects.filter(domain="{domain}").delete()[0])
"""


def _env(tmp: Path) -> dict[str, str]:
    return production_like_env(tmp)


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited early")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (local benchmark server)
                return response.read()
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not answer in time")


def _median(runs: list[dict], key: str) -> float:
    values = sorted(r[key] for r in runs)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    seconds = int(os.environ.get("BENCH_SECONDS", "4"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "4"))
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    threads = int(os.environ.get("BENCH_THREADS", "1"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-tracking-") as tmp_name:
        tmp = Path(tmp_name)
        env = _env(tmp)
        db = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
        cache = "Redis" if env.get("REDIS_URL") else "file"
        if db == "PostgreSQL":
            ensure_postgres_database(env["DATABASE_URL"])
        manage(env, "migrate", "--noinput")
        seed_out = manage(env, "shell", "--no-imports", "-c", SEED.replace("{domain}", BENCH_SHOP))
        seed_line = next(ln for ln in seed_out.splitlines() if ln.startswith("BENCHSEED "))
        _, page_path, queries = seed_line.split()
        lua = tmp / "report.lua"
        lua.write_text(LUA)
        static_file = tmp / "page.html"
        env["BENCH_STATIC_FILE"] = str(static_file)

        port = free_port()
        worker_args = ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "bench.tracking_page:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *worker_args,
             "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "gunicorn.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        page_url, static_url = base + page_path, base + STATIC_PATH
        try:
            body = _wait_ready(page_url, gunicorn)
            static_file.write_bytes(body)  # the same bytes, so the same size
            wrk(static_url, lua, 1, connections)  # warm-up: imports, DB and cache connections
            wrk(page_url, lua, 2, connections)
            static_runs, page_runs = [], []
            for _ in range(rounds):  # alternate, so drifting load from other work hits both alike
                static_runs.append(wrk(static_url, lua, seconds, connections))
                page_runs.append(wrk(page_url, lua, seconds, connections))
        finally:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
            manage(env, "shell", "--no-imports", "-c", CLEANUP.replace("{domain}", BENCH_SHOP))

    static_rps, page_rps = _median(static_runs, "rps"), _median(page_runs, "rps")
    page_p99 = _median(page_runs, "p99_ms")
    static_p99 = _median(static_runs, "p99_ms")
    ratio = page_rps / static_rps if static_rps else 0.0
    ok = ratio >= RATIO_TARGET and page_p99 <= P99_TARGET_MS
    mode = f"gthread x {threads} threads" if threads > 1 else "sync"
    lines = [
        f"tracking_page: gunicorn {workers} workers ({mode}); wrk 2 threads, {connections} connections, "
        f"{rounds} alternating rounds of {seconds}s per endpoint; {db}, {cache} cache; "
        f"page {len(body)} bytes, {queries} SQL queries per view (warm cache)",
        f"  machine: {os.cpu_count()} CPUs shared with other work; load average before {load_before}, "
        f"after {load_average()}",
        *(_figures(f"static file  round {i + 1}", r) for i, r in enumerate(static_runs)),
        *(_figures(f"tracking page round {i + 1}", r) for i, r in enumerate(page_runs)),
        f"  throughput ratio page/static (medians): {page_rps:.1f}/{static_rps:.1f} = {ratio:.0%} "
        f"(target >= {RATIO_TARGET:.0%}); page p99 (median of rounds) {page_p99:.2f} ms, static p99 "
        f"{static_p99:.2f} ms (target <= {P99_TARGET_MS:.0f} ms): {'OK' if ok else 'MISSED'}",
    ]
    print("\n".join(lines))


def _figures(label: str, run: dict) -> str:
    return (
        f"  {label}: {run['rps']:8.1f} req/s   p50 {run['p50_ms']:6.2f} ms   p99 {run['p99_ms']:6.2f} ms   "
        f"non-2xx {run['non_2xx']}  errors {run['socket_errors']}"
    )


if __name__ == "__main__":
    main()
