"""Reads of the commerce copy and of sync progress (for the panel, the CLI and the API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Sum
from django.utils import timezone

from retention_app.commerce.models import Customer, Order, SyncJob


@dataclass(frozen=True)
class SyncProgress:
    """Progress of one sync job as the panel shows it. `rows_total` is None while unknown (Shopify has not
    finished preparing the export); `rate` is rows/s since writing started; `eta` None when unknown."""

    job_id: int
    kind: str
    kind_label: str
    status: str
    status_label: str
    rows_done: int
    rows_total: int | None
    percent: float | None
    rate: float | None
    eta: dt.timedelta | None
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    error: str

    @property
    def is_active(self) -> bool:
        return self.status in SyncJob.ACTIVE_STATUSES


def sync_job_progress(*, job: SyncJob, now: dt.datetime | None = None) -> SyncProgress:
    now = now or timezone.now()
    total = job.rows_total
    done = job.rows_done
    rate = None
    eta = None
    if job.writing_started_at is not None:
        end = job.finished_at or now
        elapsed = (end - job.writing_started_at).total_seconds()
        written = done - job.rows_done_at_writing_start
        if elapsed > 0 and written > 0:
            rate = written / elapsed
            if total is not None and job.status in SyncJob.ACTIVE_STATUSES:
                eta = dt.timedelta(seconds=max(0, total - done) / rate)
    percent = None
    if total:
        percent = min(100.0, 100.0 * done / total)
    elif job.status == SyncJob.Status.COMPLETED:
        percent = 100.0
    return SyncProgress(
        job_id=job.pk,
        kind=job.kind,
        kind_label=job.get_kind_display(),
        status=job.status,
        status_label=job.get_status_display(),
        rows_done=done,
        rows_total=total,
        percent=percent,
        rate=rate,
        eta=eta,
        started_at=job.started_at,
        finished_at=job.finished_at,
        error=job.error,
    )


def sync_progress_for_shop(*, shop, now: dt.datetime | None = None) -> list[SyncProgress]:
    """The latest job of each kind for the shop (the panel's "sync status" card), backfill kinds first."""
    latest: dict[str, SyncJob] = {}
    for job in SyncJob.objects.filter(shop=shop).order_by("-created_at", "-id")[:50]:
        latest.setdefault(job.kind, job)
    order = [k.value for k in SyncJob.Kind]
    return [sync_job_progress(job=latest[k], now=now) for k in order if k in latest]


def sync_job_latest(*, shop, kind: str) -> SyncJob | None:
    return SyncJob.objects.filter(shop=shop, kind=kind).order_by("-created_at", "-id").first()


def commerce_totals_by_customer(*, shop) -> dict[str, tuple[int, str]]:
    """{customer platform id: (number of orders, total spent as a string)} over non-cancelled orders — the
    figure end-to-end tests compare with the store's own copy."""
    rows = (
        Order.objects.filter(shop=shop, customer__isnull=False, cancelled_at__isnull=True)
        .values("customer__platform_id")
        .annotate(n=Count("id"), total=Sum("total_price"))
    )
    return {r["customer__platform_id"]: (r["n"], f"{r['total']:.2f}") for r in rows}


def customer_get_by_platform_id(*, shop, platform_id: str) -> Customer | None:
    return Customer.objects.filter(shop=shop, platform_id=platform_id).first()


def order_get_by_platform_id(*, shop, platform_id: str) -> Order | None:
    return Order.objects.filter(shop=shop, platform_id=platform_id).first()
