"""`python -m bench messages`: N automation emails due at the same moment, delivered by real Celery workers.

What runs (all on this machine):
- an SMTP sink that only counts, in its own process: Postfix's `smtp-sink` (unpacked from Debian's
  package into var/ when not installed), else aiosmtpd;
- baseline: one `smtplib` connection sending the same N messages (the same rendered bytes) in a loop;
- the engine: N `Message` rows due at the same instant (thank-you rule, real conditions, real templates
  rendered by messaging, fenced claims, SMTP commit point, outcome recorded), dispatched by the periodic
  dispatcher (run here every 10 s, as celery beat would) plus the send tasks' own refill, and sent by a real
  `celery worker` (prefork) to the same sink.
Figures: messages/s for both, lateness after the due time (sent_at - due_at) p50/p99/max, the ratio.
Targets (issue 5): lateness p99 <= 60 s, throughput >= 50 % of the raw loop.

Environment: DATABASE_URL (a scratch database: the bench deletes and recreates its own shop
"bench-messages.myshopify.com"), REDIS_URL (broker; without it a filesystem broker), BENCH_MESSAGES_N
(default 100000), BENCH_MESSAGES_CONCURRENCY (worker processes, default 4).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOP_DOMAIN = "bench-messages.myshopify.com"


# --- the sink (a separate process, so it never shares a GIL with the senders) ------------------------------
def sink_main(port: int, count_file: str) -> None:
    from aiosmtpd.controller import Controller

    state = {"n": 0}

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
            state["n"] += 1
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    while not stop.is_set():
        Path(count_file).write_text(str(state["n"]))
        stop.wait(0.2)
    Path(count_file).write_text(str(state["n"]))
    controller.stop()


def smtp_sink_binary() -> list[str] | None:
    """Postfix's `smtp-sink` (C): a counting SMTP sink that costs ~85 µs of CPU per message here, where
    aiosmtpd costs ~630 µs, so the sink does not eat the core the senders need. From PATH, or unpacked
    (not installed: no mail server is configured or started) from Debian's postfix package into var/."""
    found = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if found:
        return [found]
    root = ROOT / "var" / "bench-tools" / "postfix"
    binary = root / "usr" / "sbin" / "smtp-sink"
    if not binary.exists() and shutil.which("apt-get") and shutil.which("dpkg"):
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", "postfix"], cwd=root.parent, capture_output=True)
        for deb in sorted(root.parent.glob("postfix_*.deb")):
            subprocess.run(["dpkg", "-x", str(deb), str(root)], capture_output=True)
    if not binary.exists():
        return None
    return ["env", f"LD_LIBRARY_PATH={root / 'usr' / 'lib' / 'postfix'}", str(binary)]


class Sink:
    """A local SMTP sink in its own process that counts the messages it accepts: Postfix's smtp-sink when
    it can be had (see smtp_sink_binary), else aiosmtpd (then the sink itself needs most of a core)."""

    def __init__(self) -> None:
        from tests.fixtures.processes import free_port

        self.port = free_port()
        self.count_file = tempfile.NamedTemporaryFile(prefix="bench-sink-", delete=False).name  # noqa: SIM115
        command = smtp_sink_binary()
        if command is not None:
            self.kind = "postfix smtp-sink"
            user = ["-u", "nobody"] if os.geteuid() == 0 else []
            with open(self.count_file, "wb") as out:
                self.proc = subprocess.Popen(
                    [*command, "-c", *user, f"127.0.0.1:{self.port}", "1000"], stdout=out, stderr=out
                )
        else:
            self.kind = "aiosmtpd (smtp-sink not available)"
            Path(self.count_file).write_text("-1")
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bench.messages", "sink", str(self.port), self.count_file], cwd=ROOT
            )
        deadline = time.monotonic() + 30
        while not self._accepting():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"SMTP sink did not start: {Path(self.count_file).read_text()[-500:]}")
            time.sleep(0.1)

    def _accepting(self) -> bool:
        try:
            smtplib.SMTP("127.0.0.1", self.port, timeout=2).quit()
        except OSError:
            return False
        return self.count() >= 0

    def count(self) -> int:
        """Messages accepted so far (smtp-sink -c prints a running `mesg=N`; aiosmtpd's writes the number)."""
        with open(self.count_file, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 200))
            tail = f.read().decode("ascii", "replace")
        if self.kind.startswith("postfix"):
            found = re.findall(r"mesg=(\d+)", tail)
            return int(found[-1]) if found else 0
        try:
            return int(tail or -1)
        except ValueError:
            return -1

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


# --- the run ------------------------------------------------------------------------------------------------
def main() -> None:
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "retention_app.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    n = int(os.environ.get("BENCH_MESSAGES_N", "100000"))
    concurrency = int(os.environ.get("BENCH_MESSAGES_CONCURRENCY", "4"))

    import django

    django.setup()
    import datetime as dt
    from decimal import Decimal

    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives
    from django.core.management import call_command
    from django.utils import timezone

    from retention_app.automations import integrations, services
    from retention_app.automations.models import Message, Rule
    from retention_app.commerce.models import Customer, Order
    from retention_app.shops.models import Shop

    call_command("migrate", verbosity=0)
    db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = "redis" if os.environ.get("REDIS_URL") else "filesystem"
    print(f"bench messages: N={n}, worker concurrency={concurrency}, db={db}, broker={broker}, "
          f"cpus={os.cpu_count()}, load average={os.getloadavg()[0]:.1f}")  # fmt: skip

    sink = Sink()
    print(f"  SMTP sink: {sink.kind}")
    try:
        # ---- setup: one shop, N customers each with one order, N thank-you messages due at T0 -------------
        Shop.objects.filter(domain=SHOP_DOMAIN).delete()
        shop = Shop.objects.create(
            domain=SHOP_DOMAIN, name="Bench Tea", owner_name="Mai", storefront_url="https://bench.example",
            installed_at=timezone.now(),
        )  # fmt: skip
        rules = {r.key: r for r in services.rules_install_defaults(shop=shop)}
        services.shop_settings_update(
            shop=shop, data={"quiet_hours_enabled": False, "frequency_cap_hours": 0}
        )
        rule = rules[Rule.Key.THANK_YOU]
        t_setup = time.monotonic()
        placed = timezone.now() - dt.timedelta(hours=1)
        chunk = 5000
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            customers = Customer.objects.bulk_create(
                [Customer(shop=shop, platform_id=f"b{start + i}", email=f"c{start + i}@bench.example",
                          first_name=f"Ana{start + i}", marketing_state="SUBSCRIBED") for i in range(size)]
            )  # fmt: skip
            orders = Order.objects.bulk_create(
                [Order(shop=shop, customer=c, platform_id=f"o{c.platform_id}", name=f"#{c.platform_id}",
                       currency="USD", total_price=Decimal("42.00"), placed_at=placed) for c in customers]
            )  # fmt: skip
            Message.objects.bulk_create(
                [Message(shop=shop, rule=rule, customer=o.customer, order=o, is_marketing=True,
                         trigger_key=f"order:{o.platform_id}", due_at=placed) for o in orders]
            )  # fmt: skip
        print(f"  setup: {n} customers, orders and scheduled messages in {time.monotonic() - t_setup:.1f} s")

        # ---- baseline: raw smtplib, one connection, the same rendered messages -------------------------
        sample = Message.objects.select_related("shop", "rule", "customer", "order").filter(shop=shop).first()
        ctx = services.message_context(sample, "en")
        rendered = integrations.render(shop=shop, rule_key=rule.key, locale="en", context=ctx)
        base_before = sink.count()
        smtp = smtplib.SMTP("127.0.0.1", sink.port)
        t0 = time.monotonic()
        for i in range(n):
            email = EmailMultiAlternatives(rendered.subject, rendered.text, "shop@bench.example",
                                           [f"c{i}@bench.example"])  # fmt: skip
            email.attach_alternative(rendered.html, "text/html")
            smtp.sendmail(
                "shop@bench.example", [f"c{i}@bench.example"], email.message().as_bytes(linesep="\r\n")
            )
        raw_seconds = time.monotonic() - t0
        smtp.quit()
        raw_rate = n / raw_seconds
        while sink.count() < base_before + n:
            time.sleep(0.1)
        print(f"  baseline raw smtplib loop: {n} in {raw_seconds:.1f} s = {raw_rate:,.0f} msg/s")

        # ---- the engine ----------------------------------------------------------------------------------
        engine_before = sink.count()
        env = dict(os.environ, EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                   EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(sink.port), LOG_LEVEL="WARNING",
                   DJANGO_SETTINGS_MODULE="retention_app.settings")  # fmt: skip
        broker_dir = None
        if not os.environ.get("REDIS_URL"):
            broker_dir = tempfile.mkdtemp(prefix="bench-broker-")
            env["BOOMERANG_BROKER_DIR"] = broker_dir
        else:
            import redis

            redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
        log = open(
            tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log", delete=False).name, "wb"
        )  # noqa: SIM115
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "retention_app", "worker", "--pool", "prefork",
             "--concurrency", str(concurrency), "-Q", "messages,default", "--without-gossip",
             "--without-mingle", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            log_path = Path(log.name)
            started = time.monotonic()
            while b"ready." not in log_path.read_bytes():
                if worker.poll() is not None or time.monotonic() - started > 120:
                    raise RuntimeError(f"worker did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            print(f"  worker ready in {time.monotonic() - started:.1f} s; all {n} messages due in 2 s")
            due = timezone.now() + dt.timedelta(seconds=2)
            Message.objects.filter(shop=shop).update(due_at=due)
            while timezone.now() < due:
                time.sleep(0.05)
            # The periodic dispatcher, as beat runs it (every 10 s), in this process.
            next_dispatch = 0.0
            last_report = time.monotonic()
            deadline = time.monotonic() + max(600, n / 20)
            while True:
                now_m = time.monotonic()
                if now_m >= next_dispatch:
                    services.messages_dispatch()
                    next_dispatch = now_m + 10
                done = Message.objects.filter(shop=shop).exclude(status__in=["scheduled", "sending"]).count()
                if done >= n:
                    break
                if now_m - last_report > 60:
                    print(f"    ... {done}/{n} handled, sink {sink.count() - engine_before}")
                    last_report = now_m
                if now_m > deadline:
                    print("  TIMEOUT: not all messages handled")
                    break
                time.sleep(2)
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=60)
            log.close()
        rows = list(Message.objects.filter(shop=shop, status="sent").values_list("due_at", "sent_at"))
        other = dict(
            Message.objects.filter(shop=shop).exclude(status="sent").values_list("status").annotate(
                c=__import__("django.db.models", fromlist=["Count"]).Count("id")
            ).values_list("status", "c")
        )  # fmt: skip
        lateness = sorted((s - d).total_seconds() for d, s in rows)
        last_sent = max(s for _, s in rows)
        engine_seconds = (last_sent - due).total_seconds()
        engine_rate = len(rows) / engine_seconds
        received = sink.count() - engine_before
        print(f"  engine: {len(rows)} sent (not sent: {other or 0}), sink received {received}, "
              f"{engine_seconds:.1f} s from due time to last send = {engine_rate:,.0f} msg/s")  # fmt: skip
        print(f"  lateness after due time: p50 {percentile(lateness, 50):.1f} s, "
              f"p99 {percentile(lateness, 99):.1f} s, max {lateness[-1]:.1f} s")  # fmt: skip
        ratio = engine_rate / raw_rate
        print(f"  throughput ratio engine/raw loop: {ratio:.0%} (target >= 50%); "
              f"p99 lateness <= 60 s: {'met' if percentile(lateness, 99) <= 60 else 'NOT met'}")  # fmt: skip
        if received != len(rows):
            print(f"  WARNING: sink count {received} != sent rows {len(rows)}")
        Shop.objects.filter(pk=shop.pk).delete()
    finally:
        sink.stop()


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "sink":
        sink_main(int(sys.argv[2]), sys.argv[3])
    else:
        main()
