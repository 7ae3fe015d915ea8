"""`make demo`: the whole product on one machine with nothing but Python.

Starts, as separate processes: the local dev store (a Shopify-compatible server), the app (Django), a
Celery worker with the periodic scheduler, and a local SMTP server that keeps every email as a file. Then it
creates a dev store with sample data and installs the app into it through the real OAuth flow, and prints
the URLs to open. Ctrl-C stops everything.

Runs on the embedded default (SQLite, filesystem broker) unless DATABASE_URL / REDIS_URL are set.
`--exit-after-setup` stops once the install is done (used by the demo smoke test).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import requests

from retention_app.queues import ALL_QUEUES

ROOT = Path(__file__).resolve().parent.parent
DEMO_SHOP = "demo.devstore.test"


def _log(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


class Processes:
    """Child processes that die with the demo."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 (lives as long as the child)
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.children.append((name, proc))
        return proc

    def check(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise SystemExit(f"[demo] {name} exited with {proc.returncode}; its log ends with:\n{tail}")

    def stop(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for _name, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def _wait_http(url: str, procs: Processes, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        try:
            requests.get(url, timeout=2, allow_redirects=False)
            return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit(f"[demo] {what} did not answer at {url} within {timeout:.0f}s")


def _start_mail_catcher(folder: Path, port: int):
    """A real SMTP server that stores each message as an .eml file (what customers would receive)."""
    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    folder.mkdir(parents=True, exist_ok=True)

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            slug = re.sub(r"[^A-Za-z0-9]+", "-", str(msg["Subject"] or "message"))[:40]
            (folder / f"{time.time_ns()}-{slug}.eml").write_bytes(envelope.content)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def _wait_for(predicate, procs: Processes, what: str, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check()
        result = predicate()
        if result:
            return result
        time.sleep(0.5)
    raise SystemExit(
        f"[demo] gave up after {timeout:.0f}s waiting for {what}; see the logs in {procs.log_dir}"
    )


def _wait_for_backfill(procs: Processes):
    from retention_app.commerce.models import Customer, Order, Product, SyncJob
    from retention_app.shops.models import Shop

    shop = Shop.objects.get(domain=DEMO_SHOP)

    def finished() -> bool:
        backfills = [SyncJob.Kind.CUSTOMERS, SyncJob.Kind.ORDERS, SyncJob.Kind.PRODUCTS]
        jobs = list(SyncJob.objects.filter(shop=shop, kind__in=backfills))
        failed = [j for j in jobs if j.status == SyncJob.Status.FAILED]
        if failed:
            raise SystemExit(f"[demo] the backfill failed: {failed[0].error}")
        return bool(jobs) and all(j.status == SyncJob.Status.COMPLETED for j in jobs)

    _wait_for(finished, procs, "the initial sync")
    counts = [model.objects.filter(shop=shop).count() for model in (Customer, Order, Product)]
    _log("synced {} customers, {} orders and {} products".format(*counts))
    return shop


def _create_merchant_login(shop) -> str:
    """A standalone panel login for the demo merchant (the OAuth link above logs in too)."""
    from django.contrib.auth import get_user_model

    from retention_app.panel.models import ShopMembership

    username, password = "merchant@demo.test", "boomerang-demo"
    user, _ = get_user_model().objects.get_or_create(username=username, defaults={"email": username})
    user.set_password(password)
    user.save()
    ShopMembership.objects.get_or_create(user=user, shop=shop)
    return f"user {username}, password {password}"


def _live_journey(control, shop, procs: Processes) -> str:
    """A new Thai customer buys for the first time, the order ships and moves: the webhooks reach the app,
    the automations schedule the thank-you (due in 30 minutes) and send the confirmation with a next-order
    code and the shipping updates to the mail catcher."""
    from retention_app.commerce.models import Fulfillment
    from retention_app.tracking.services import tracking_page_url

    order = control.place_order(
        DEMO_SHOP, email="somchai@example.com", first_name="สมชาย", last_name="ใจดี", locale="th",
        accepts_marketing=True,
    )  # fmt: skip
    order_id = order.get("id") or order.get("order", {}).get("id")
    fulfillment = control.fulfill_order(
        DEMO_SHOP, order_id, tracking_company="Kerry Express", tracking_number="KEX123456789TH"
    )
    fulfillment_id = fulfillment.get("id") or fulfillment.get("fulfillment", {}).get("id")
    control.add_tracking_event(DEMO_SHOP, fulfillment_id, status="in_transit", city="Bangkok", country="TH")
    control.flush_webhooks()
    row = _wait_for(
        lambda: (
            Fulfillment.objects.filter(
                shop=shop, platform_id=str(fulfillment_id), shipment_status="IN_TRANSIT"
            )
            .select_related("order")
            .first()
        ),
        procs,
        "the live order's shipment to reach the app",
        timeout=120,
    )
    _log(f"live order {row.order.name} placed, fulfilled and in transit; emails go to the mail catcher")
    return tracking_page_url(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app-port", type=int, default=int(os.environ.get("DEMO_APP_PORT", 8000)))
    parser.add_argument("--store-port", type=int, default=int(os.environ.get("DEMO_STORE_PORT", 8100)))
    parser.add_argument("--smtp-port", type=int, default=int(os.environ.get("DEMO_SMTP_PORT", 1025)))
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--exit-after-setup", action="store_true")
    args = parser.parse_args(argv)

    var = Path(os.environ.get("BOOMERANG_VAR_DIR", ROOT / "var"))
    log_dir = var / "demo-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    app_url = f"http://127.0.0.1:{args.app_port}"
    store_url = f"http://127.0.0.1:{args.store_port}"

    env = dict(os.environ)
    env.update(
        DEBUG="1",
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="retention_app.settings",
        APP_URL=app_url,
        SHOPIFY_STORE_URL_TEMPLATE=f"{store_url}/s/{{shop}}",
        SHOPIFY_DEV_SHOP_SUFFIX=".devstore.test",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(args.smtp_port),
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    _log("migrating the database")
    call_command("migrate", interactive=False, verbosity=0)

    mail_dir = var / "demo-mail"
    mail = _start_mail_catcher(mail_dir, args.smtp_port)
    procs = Processes(log_dir)
    py = sys.executable
    try:
        procs.start(
            "devstore",
            [py, "-m", "shop_integrations.devstore", "serve", "--host", "127.0.0.1",
             "--port", str(args.store_port), "--data", str(var / "devstore"),
             "--api-key", settings.SHOPIFY_API_KEY, "--api-secret", settings.SHOPIFY_API_SECRET,
             "--app-url", app_url, "--auto-approve"],
            env,
        )  # fmt: skip
        procs.start("web", [py, "manage.py", "runserver", f"127.0.0.1:{args.app_port}", "--noreload"], env)
        procs.start(
            "worker",
            [py, "-m", "celery", "-A", "retention_app", "worker", "--beat", "--concurrency", "2",
             "-Q", ALL_QUEUES, "--loglevel", "INFO",
             "--schedule", str(var / "celerybeat-schedule")],
            env,
        )  # fmt: skip
        _wait_http(f"{store_url}/_devstore/", procs, "the dev store")
        _wait_http(f"{app_url}/app/", procs, "the app")

        from shop_integrations.devstore.control import DevStoreControl

        control = DevStoreControl(store_url)
        _log(f"creating the dev store {DEMO_SHOP} with {args.customers} customers and {args.orders} orders")
        control.create_shop(DEMO_SHOP, name="Bangkok Tea House", currency="THB", timezone="Asia/Bangkok")
        control.seed(DEMO_SHOP, customers=args.customers, orders=args.orders)

        _log("installing Boomerang into the store through OAuth")
        browser = requests.Session()
        answer = browser.get(f"{app_url}/shopify/install?{urlencode({'shop': DEMO_SHOP})}", timeout=60)
        if answer.status_code != 200 or not answer.url.startswith(f"{app_url}/app"):
            raise SystemExit(f"[demo] install did not land in the panel: {answer.status_code} {answer.url}")
        _log("installed; waiting for the initial sync (bulk backfill) to finish in the worker")
        shop = _wait_for_backfill(procs)
        login = _create_merchant_login(shop)
        tracking_url = _live_journey(control, shop, procs)

        print(
            "\n"
            f"  Merchant panel (logs in through OAuth): {app_url}/shopify/install?shop={DEMO_SHOP}\n"
            f"  Merchant panel (standalone login):      {app_url}/app/login/  {login}\n"
            f"  A customer's tracking page:             {tracking_url}\n"
            f"  Dev store admin (orders, fulfilment):   {store_url}/_devstore/\n"
            f"  Dev store storefront:                   {store_url}/s/{DEMO_SHOP}/\n"
            f"  Emails customers received (.eml):       {mail_dir}\n"
            f"  Logs:                                   {log_dir}\n",
            flush=True,
        )
        if args.exit_after_setup:
            return 0
        _log("running; press Ctrl-C to stop")
        while True:
            procs.check()
            time.sleep(1)
    except KeyboardInterrupt:
        return 0
    finally:
        procs.stop()
        mail.stop()


if __name__ == "__main__":
    raise SystemExit(main())
