"""Webhook ingress throughput and latency, beside a bare Django view, in one run.

`python -m bench webhook_ingress` starts gunicorn serving the app (DEBUG off, BENCH on) on PostgreSQL when
DATABASE_URL is set (else SQLite in a temporary folder) and on Redis as Celery broker when REDIS_URL is set
(else the filesystem broker), then drives with wrk, one after the other:

- baseline: POST /webhooks/_bench/noop, a Django view that does nothing (same middleware stack);
- ingress:  POST /webhooks/shopify with a real orders/create body, a valid HMAC and a unique
  X-Shopify-Webhook-Id per request (wrk Lua script), so every request stores a row and enqueues a task.

It prints requests/s and p99 latency of both and the ratio ingress/baseline, and the CPU time per request
of each (gunicorn, the PostgreSQL backends of the benchmark database, Redis, wrk: read from /proc, so it
hardly depends on other work on the machine, unlike requests/s). Commerce deliveries are answered from the
Redis buffer (retention_app/ingress/buffer.py): afterwards the benchmark drains it as the worker would,
prints the drain's CPU per delivery, and checks that every delivery became one row.
Targets: ingress p99 <= 25 ms and ingress throughput >= 60 % of the baseline's.

Both endpoints are measured in alternating slices (BENCH_ROUNDS), so a change of load from other work on
the machine weighs on both alike; p50/p99 are the medians of the slices' percentiles.

Knobs (environment): BENCH_SECONDS (default 8 per endpoint), BENCH_ROUNDS (4), BENCH_CONNECTIONS (4),
BENCH_WORKERS (2), BENCH_THREADS (2, gunicorn gthread threads per worker). No Celery worker runs: the queued
tasks are deleted afterwards, and so are the benchmark shop's delivery rows (the shop row stays for the
next run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
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
BENCH_SHOP = "bench-ingress.myshopify.com"
SECRET = "bench-webhook-secret"  # noqa: S105 (a throwaway app secret for the benchmark server)
TOPIC = "orders/create"
P99_TARGET_MS = 25.0
RATIO_TARGET = 0.60

LUA = r"""
-- One unique webhook id per request: thread number (given by setup) + a per-thread counter.
local thread_no = 0
function setup(thread)
  thread_no = thread_no + 1
  thread:set("tid", thread_no)
end

local counter = 0
local body = nil
function init(args)
  local f = assert(io.open(args[1], "rb"))
  body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  if args[2] then
    wrk.headers["X-Shopify-Hmac-Sha256"] = args[2]
    wrk.headers["X-Shopify-Topic"] = args[3]
    wrk.headers["X-Shopify-Shop-Domain"] = args[4]
    wrk.headers["X-Shopify-API-Version"] = "2026-01"
  end
  run_id = args[5] or "run"
end

function request()
  counter = counter + 1
  wrk.headers["X-Shopify-Webhook-Id"] = run_id .. "-" .. tid .. "-" .. counter
  return wrk.format(nil, nil, nil, body)
end

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


def _env(tmp: Path) -> dict[str, str]:
    env = production_like_env(tmp, BENCH="1", SHOPIFY_API_SECRET=SECRET, SHOPIFY_API_SECRET_PREVIOUS="")
    if not env.get("REDIS_URL"):
        broker = tmp / "broker"
        (broker / "processed").mkdir(parents=True, exist_ok=True)
        env["BOOMERANG_BROKER_DIR"] = str(broker)
    return env


SHOP_SCRIPT = """
from retention_app.shops.models import Shop
from django.utils import timezone
import sys
action = sys.argv[-1]
if action == "create":
    Shop.objects.update_or_create(
        platform="shopify", domain="{domain}",
        defaults={"name": "Bench", "status": "installed", "installed_at": timezone.now()},
    )
    print("created")
elif action == "count":
    from retention_app.ingress.models import WebhookDelivery
    print(WebhookDelivery.objects.filter(shop__domain="{domain}").count())
elif action == "drain":
    # What the worker's drain_webhook_buffer task does, run here to measure its cost per delivery.
    import json, os, time
    from django.db import connection
    from retention_app.ingress import buffer
    def backend_cpu():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        if connection.vendor != "postgresql":
            return 0.0
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    backlog = buffer.backlog()
    pg0, t0 = backend_cpu(), time.process_time()
    stored = 0
    for _ in range(10_000):
        if not buffer.backlog():
            break
        stored += buffer.drain()
    t1, pg1 = time.process_time(), backend_cpu()
    print(json.dumps({"backlog": backlog, "stored": stored, "python_s": t1 - t0, "postgres_s": pg1 - pg0}))
else:
    from retention_app.ingress.models import WebhookDelivery
    print(WebhookDelivery.objects.filter(shop__domain="{domain}").delete()[0])
"""


def _shop(env: dict[str, str], action: str) -> str:
    code = SHOP_SCRIPT.replace("{domain}", BENCH_SHOP).replace("sys.argv[-1]", repr(action))
    return manage(env, "shell", "--no-imports", "-c", code).strip().splitlines()[-1]


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited early")
        try:
            urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=2)  # noqa: S310
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("gunicorn did not answer in time")


def _proc_cpu(pid: int, which: tuple[int, ...] = (11, 12)) -> float:
    """CPU seconds a process has used so far (user + system by default: fields 11 and 12 after the
    command name in /proc/<pid>/stat); 0 when it is gone or unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(fields[i]) for i in which) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by the server side of the benchmark: the gunicorn master and workers, the
    PostgreSQL backends connected to the benchmark database, and Redis (whole server: shared with other
    work, so an upper bound); plus wrk (children of this process). Read from /proc and INFO, so the figure
    per request hardly depends on how busy the machine is, unlike requests/s."""

    def __init__(self, env: dict[str, str], gunicorn_pid: int) -> None:
        self.gunicorn_pid = gunicorn_pid
        self.database_url = env["DATABASE_URL"] if env["DATABASE_URL"].startswith("postgres") else ""
        self.redis_url = env.get("REDIS_URL", "")

    def _gunicorn_pids(self) -> list[int]:
        pids = [self.gunicorn_pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.gunicorn_pid:
                    pids.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        return pids

    def _backend_pids(self) -> list[int]:
        if not self.database_url:
            return []
        import psycopg

        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return [row[0] for row in rows]

    def _redis_cpu(self) -> float:
        if not self.redis_url:
            return 0.0
        import redis

        info = redis.Redis.from_url(self.redis_url).info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def sample(self) -> dict[str, float]:
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        gunicorn = self._gunicorn_pids()
        return {
            "gunicorn user": sum(_proc_cpu(pid, (11,)) for pid in gunicorn),
            "gunicorn sys": sum(_proc_cpu(pid, (12,)) for pid in gunicorn),
            "postgres": sum(_proc_cpu(pid) for pid in self._backend_pids()),
            "redis": self._redis_cpu(),
            "wrk": children.ru_utime + children.ru_stime,
        }


def _cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}


def _purge_queue(env: dict[str, str]) -> None:
    if env.get("REDIS_URL"):
        import redis

        redis.Redis.from_url(env["REDIS_URL"]).delete("webhooks")


def main() -> None:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    seconds = int(os.environ.get("BENCH_SECONDS", "8"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "4"))
    workers = int(os.environ.get("BENCH_WORKERS", "2"))
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "4"))

    sys.path.insert(0, str(ROOT))
    from shop_integrations.shopify.webhooks import sign_webhook_body
    from tests.fixtures.shopify_payloads import payload_path

    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-ingress-") as tmp_name:
        tmp = Path(tmp_name)
        env = _env(tmp)
        db = "PostgreSQL" if env["DATABASE_URL"].startswith("postgres") else "SQLite"
        broker = "Redis" if env.get("REDIS_URL") else "filesystem"
        if db == "PostgreSQL":
            ensure_postgres_database(env["DATABASE_URL"])
        manage(env, "migrate", "--noinput")
        _shop(env, "create")

        body_path = tmp / "body.json"
        body_path.write_bytes(payload_path(TOPIC).read_bytes())
        signature = sign_webhook_body(body_path.read_bytes(), SECRET)
        lua = tmp / "ingress.lua"
        lua.write_text(LUA)

        port = free_port()
        gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "retention_app.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "gthread",
             "--threads", str(threads), "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "gunicorn.log", "wb"),  # noqa: SIM115
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(f"{base}/webhooks/_bench/noop", gunicorn)
            noop_url, ingress_url = f"{base}/webhooks/_bench/noop", f"{base}/webhooks/shopify"
            ingress_args = [str(body_path), signature, TOPIC, BENCH_SHOP]
            # Warm up both (imports, DB connections, broker connections) before measuring.
            wrk(noop_url, lua, 2, connections, [str(body_path)])
            wrk(ingress_url, lua, 2, connections, [*ingress_args, "warmup"])
            # Alternate short slices of both endpoints, so load from other work on this shared machine
            # weighs on both alike, then add the slices up.
            _shop(env, "drain")  # the warm-up's deliveries
            before = int(_shop(env, "count"))
            meter = CpuMeter(env, gunicorn.pid)
            baseline_runs, ingress_runs, loads = [], [], []
            baseline_cpu: dict[str, float] = {}
            ingress_cpu: dict[str, float] = {}
            for n in range(rounds):
                loads.append(os.getloadavg()[0])
                slice_seconds = max(1, seconds // rounds)
                start = meter.sample()
                baseline_runs.append(wrk(noop_url, lua, slice_seconds, connections, [str(body_path)]))
                middle = meter.sample()
                run_id = f"run{int(time.time())}-{n}"
                ingress_runs.append(
                    wrk(ingress_url, lua, slice_seconds, connections, [*ingress_args, run_id])
                )
                end = meter.sample()
                for total, delta in (
                    (baseline_cpu, _cpu_delta(start, middle)),
                    (ingress_cpu, _cpu_delta(middle, end)),
                ):
                    for name, value in delta.items():
                        total[name] = total.get(name, 0.0) + value
            # Commerce deliveries were answered once in the Redis buffer: drain them as the worker would
            # (no worker runs here) and count the rows.
            drained = json.loads(_shop(env, "drain"))
            stored = int(_shop(env, "count")) - before
            baseline, ingress = _combine(baseline_runs), _combine(ingress_runs)
        finally:
            gunicorn.terminate()
            gunicorn.wait(timeout=30)
            _shop(env, "delete")
            _purge_queue(env)

    ratio = ingress["rps"] / baseline["rps"] if baseline["rps"] else 0.0
    # Each round measures both endpoints back to back: the median of the per-round ratios is the figure
    # least moved by load from other work changing during the run.
    import statistics

    paired = statistics.median(
        i["rps"] / b["rps"] for b, i in zip(baseline_runs, ingress_runs, strict=True) if b["rps"]
    )
    bare_ms = _cpu_ms(baseline_cpu, baseline["requests"])
    ingress_ms = _cpu_ms(ingress_cpu, ingress["requests"])
    cpu_ratio = bare_ms / ingress_ms if ingress_ms else 0.0
    ok = ratio >= RATIO_TARGET and ingress["p99_ms"] <= P99_TARGET_MS
    lines = [
        f"webhook_ingress: gunicorn {workers} workers x {threads} threads (gthread); wrk 2 threads, "
        f"{connections} connections, {seconds}s per endpoint in {rounds} alternating slices; {db}, "
        f"{broker} broker",
        f"  machine: {os.cpu_count()} CPUs shared with other work; load average before {load_before}, "
        f"after {load_average()}; 1-min load at each round {[round(x, 1) for x in loads]}",
        _figures("bare Django view       ", baseline),
        _figures("POST /webhooks/shopify ", ingress) + f"   rows stored {stored}/{ingress['requests']}",
        f"  throughput ratio ingress/bare: {ratio:.0%} (target >= {RATIO_TARGET:.0%}); ingress p99 "
        f"{ingress['p99_ms']:.2f} ms (target <= {P99_TARGET_MS:.0f} ms): {'OK' if ok else 'MISSED'}",
        f"  median of the per-round ratios: {paired:.0%}; p50 ingress/bare "
        f"{ingress['p50_ms']:.2f}/{baseline['p50_ms']:.2f} ms",
        _cpu_line("bare Django view       ", baseline_cpu, baseline["requests"]),
        _cpu_line("POST /webhooks/shopify ", ingress_cpu, ingress["requests"]),
        f"  CPU per request bare/ingress: {cpu_ratio:.0%} (the throughput ratio a CPU-bound machine would "
        f"show, whatever other work runs on it)",
        f"  drain (worker side, not in the figures above): {drained['backlog']} buffered deliveries -> "
        f"{drained['stored']} rows, {_per_delivery(drained)}",
    ]
    print("\n".join(lines))


def _combine(runs: list[dict]) -> dict:
    """Slices of one endpoint as one run: throughput over all of them, median of their percentiles."""
    import statistics

    requests = sum(r["requests"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds if seconds else 0.0,
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "p99_each": [round(r["p99_ms"], 1) for r in runs],
        "non_2xx": sum(r["non_2xx"] for r in runs),
    }


def _cpu_ms(cpu: dict[str, float], requests: int) -> float:
    return 1000 * sum(cpu.values()) / requests if requests else 0.0


def _cpu_line(label: str, cpu: dict[str, float], requests: int) -> str:
    parts = ", ".join(f"{name} {1000 * value / requests:.3f}" for name, value in cpu.items() if requests)
    return f"  {label}: CPU {_cpu_ms(cpu, requests):.3f} ms per request ({parts}; redis is the whole server)"


def _per_delivery(drained: dict) -> str:
    n = drained["backlog"]
    if not n:
        return "nothing buffered (synchronous path)"
    return (
        f"{1000 * drained['python_s'] / n:.3f} ms Python + {1000 * drained['postgres_s'] / n:.3f} ms "
        "PostgreSQL CPU per delivery"
    )


def _figures(label: str, run: dict) -> str:
    return (
        f"  {label}: {run['rps']:8.1f} req/s   p50 {run['p50_ms']:6.2f} ms   p99 {run['p99_ms']:6.2f} ms   "
        f"non-2xx {run['non_2xx']}   (p99 per slice {run['p99_each']})"
    )


if __name__ == "__main__":
    main()
