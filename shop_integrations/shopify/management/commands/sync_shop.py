"""`python manage.py sync_shop --shop DOMAIN`: run (or resume) the shop's backfill in this process, with a
progress bar. Safe beside the workers: each job is leased, so a job a worker is running shows "busy"."""

from __future__ import annotations

import sys
import time

from django.core.management.base import BaseCommand, CommandError

from retention_app.commerce.models import SyncJob
from retention_app.commerce.selectors import sync_job_progress
from retention_app.shops.models import Shop
from shop_integrations.shopify import sync
from shop_integrations.shopify.http import ShopifyError


def render_bar(job: SyncJob, width: int = 30) -> str:
    p = sync_job_progress(job=job)
    if p.rows_total:
        filled = int(width * min(1.0, p.rows_done / p.rows_total))
        bar = "#" * filled + "-" * (width - filled)
        count = f"{p.rows_done:,}/{p.rows_total:,} ({p.percent:.0f}%)"
    else:
        bar = "." * width
        count = f"{p.rows_done:,} rows"
    rate = f" {p.rate:,.0f} rows/s" if p.rate else ""
    eta = f" ETA {int(p.eta.total_seconds())}s" if p.eta is not None else ""
    return f"{p.kind_label:<20} [{bar}] {count}{rate}{eta} {p.status_label}"


class Command(BaseCommand):
    help = "Backfill a shop's customers, orders and fulfillments from its store (resumes an interrupted run)."

    def add_arguments(self, parser):
        parser.add_argument("--shop", required=True, help="the shop's domain, e.g. acme.myshopify.com")
        parser.add_argument(
            "--restart", action="store_true", help="start a new backfill even after a complete one"
        )

    def handle(self, *args, **options):
        shop = Shop.objects.filter(
            domain=options["shop"].strip().lower(), platform=Shop.Platform.SHOPIFY
        ).first()
        if shop is None:
            raise CommandError(f"no Shopify shop {options['shop']!r} is installed here")
        if not shop.is_installed:
            raise CommandError(f"{shop.domain} is not installed (status {shop.status})")
        active = SyncJob.objects.filter(shop=shop, status__in=SyncJob.ACTIVE_STATUSES)
        done = SyncJob.objects.filter(shop=shop, status=SyncJob.Status.COMPLETED, kind=SyncJob.Kind.ORDERS)
        if not active.exists() and (options["restart"] or not done.exists()):
            sync.backfill_start(shop=shop)
        jobs = list(active.order_by("kind"))
        if not jobs:
            self.stdout.write(f"{shop.domain}: backfill already complete (use --restart to run it again)")
            return
        tty = sys.stderr.isatty()
        last_draw = [0.0]

        def progress(job: SyncJob) -> None:
            now = time.monotonic()
            if now - last_draw[0] < 0.2 and job.status in SyncJob.ACTIVE_STATUSES:
                return
            last_draw[0] = now
            line = render_bar(job)
            self.stderr.write(("\r" + line) if tty else line, ending="" if tty else "\n")

        failed = False
        for job in jobs:
            try:
                outcome = sync.sync_job_run(job_id=job.pk, progress=progress, poll_budget=3600)
            except ShopifyError as exc:
                raise CommandError(
                    f"{job.get_kind_display()}: {exc} (run the command again to resume)"
                ) from None
            job.refresh_from_db()
            self.stderr.write(("\r" if tty else "") + render_bar(job))
            if outcome == "busy":
                self.stdout.write(f"{job.get_kind_display()}: a worker is running it right now")
            failed = failed or job.status == SyncJob.Status.FAILED
        if failed:
            raise CommandError("a backfill job failed; see the errors above")
        self.stdout.write(f"{shop.domain}: backfill complete")
