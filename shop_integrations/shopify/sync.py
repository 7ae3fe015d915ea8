"""Initial backfill of a Shopify store into commerce, with bulk operations.

Backfill, per shop: one SyncJob per kind (customers, orders with line items and fulfillments, products with
their collections), each driven through PENDING -> RUNNING (Shopify prepares the export) -> DOWNLOADING
(rows written) -> COMPLETED / FAILED by `sync_job_run`, one step after another. Any worker may run any step:
- a worker claims a job with a conditional UPDATE of its lease (`lease_until`), renewed after every batch,
  so two workers never write the same job at once, and a job whose worker died is taken over once the
  lease runs out (the periodic `resume_stalled_sync_jobs`, or the bulk_operations/finish webhook);
- the download resumes from `bytes_done`, committed with each batch (see shop_integrations.shopify.bulk).
Reference: https://shopify.dev/docs/api/usage/bulk-operations/queries

Reconciliation lives in shop_integrations.shopify.reconcile.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable

from celery import shared_task
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from retention_app.commerce.models import SyncJob
from retention_app.shops.models import Shop
from shop_integrations.shopify import bulk, normalize, tracking_history
from shop_integrations.shopify.client import ShopifyClient
from shop_integrations.shopify.documents import load
from shop_integrations.shopify.http import ShopifyPermanentError, ShopifyRetryableError

logger = logging.getLogger(__name__)

BULK_DOCUMENTS = {
    SyncJob.Kind.CUSTOMERS: "bulk_customers",
    SyncJob.Kind.ORDERS: "bulk_orders",
    # The catalog (recommendations on the tracking page).
    SyncJob.Kind.PRODUCTS: "bulk_products",
}
# How long a worker owns a job without renewing it (renewed after every batch and poll). A killed worker's
# job is taken over after this; the environment may shorten it (end-to-end tests).
LEASE = dt.timedelta(seconds=float(os.environ.get("SYNC_JOB_LEASE_SECONDS") or 20))
# How long one task run keeps polling a bulk operation before handing over to a later run.
POLL_BUDGET_SECONDS = 240.0

ProgressCallback = Callable[[SyncJob], None]


# --- starting ---------------------------------------------------------------------------------------

# Shipments whose tracking events the backfill reads (one GraphQL query per 15 fulfillments).
TRACKING_HISTORY_DAYS = 60


def backfill_start(*, shop: Shop) -> list[SyncJob]:
    """Create (or find) the active customers, orders and products backfill jobs of the shop (in that order)
    and enqueue them on commit. Idempotent: an already active job is returned, not duplicated (unique active
    job per kind)."""
    jobs = []
    for kind in BULK_DOCUMENTS:
        with transaction.atomic():
            job = SyncJob.objects.filter(shop=shop, kind=kind, status__in=SyncJob.ACTIVE_STATUSES).first()
            if job is None:
                try:
                    with transaction.atomic():
                        job = SyncJob.objects.create(shop=shop, kind=kind)
                except IntegrityError:
                    job = SyncJob.objects.get(shop=shop, kind=kind, status__in=SyncJob.ACTIVE_STATUSES)
            job_id = job.pk
            transaction.on_commit(lambda job_id=job_id: run_sync_job.delay(job_id))
        jobs.append(job)
    return jobs


def on_shop_installed(sender, shop: Shop, reinstalled: bool = False, **kwargs) -> None:
    """Receiver of retention_app.shops.events.shop_installed: start the initial backfill. A reinstall
    starts one too (the store changed while we were away); the upserts make it harmless."""
    if shop.platform == Shop.Platform.SHOPIFY:
        backfill_start(shop=shop)


def bulk_operation_finished(*, shop: Shop, operation_gid: str) -> None:
    """bulk_operations/finish webhook: wake the job waiting on that operation (it also polls)."""
    if not operation_gid:
        return
    for job_id in SyncJob.objects.filter(
        shop=shop, bulk_operation_id=operation_gid, status__in=SyncJob.ACTIVE_STATUSES
    ).values_list("pk", flat=True):
        transaction.on_commit(lambda job_id=job_id: run_sync_job.delay(job_id))


# --- claiming ---------------------------------------------------------------------------------------


def _claim(job_id: int) -> SyncJob | None:
    """Take the job's lease when it is free (or expired); None when another worker holds it."""
    now = timezone.now()
    taken = (
        SyncJob.objects.filter(pk=job_id, status__in=SyncJob.ACTIVE_STATUSES)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .update(lease_until=now + LEASE, updated_at=now)
    )
    return SyncJob.objects.get(pk=job_id) if taken else None


def _save(job: SyncJob, *fields: str, renew: bool = True) -> None:
    if renew:
        job.lease_until = timezone.now() + LEASE
        fields = (*fields, "lease_until")
    job.save(update_fields=[*fields, "updated_at"])


def _release(job: SyncJob) -> None:
    SyncJob.objects.filter(pk=job.pk).update(lease_until=None, updated_at=timezone.now())


# --- running ------------------------------------------------------------------------------------------


def sync_job_run(
    *,
    job_id: int,
    client: ShopifyClient | None = None,
    progress: ProgressCallback | None = None,
    sleep: Callable[[float], None] = time.sleep,
    poll_budget: float = POLL_BUDGET_SECONDS,
) -> str:
    """Advance a backfill job as far as it goes. Returns "completed", "failed", "busy" (another worker
    holds it), "waiting" (Shopify still preparing after `poll_budget` seconds: run again later) or
    "done" (nothing to do). Raises ShopifyRetryableError after releasing the lease (retry later)."""
    job = _claim(job_id)
    if job is None:
        job = SyncJob.objects.filter(pk=job_id).first()
        return "busy" if job is not None and job.status in SyncJob.ACTIVE_STATUSES else "done"
    client = client or ShopifyClient.for_shop(job.shop)
    try:
        if job.status == SyncJob.Status.PENDING:
            _start_bulk(job, client)
        if job.status == SyncJob.Status.RUNNING:
            deadline = time.monotonic() + poll_budget
            interval = 0.2
            while job.status == SyncJob.Status.RUNNING:
                _poll_bulk(job, client)
                if progress:
                    progress(job)
                if job.status != SyncJob.Status.RUNNING:
                    break
                if time.monotonic() > deadline:
                    _release(job)
                    return "waiting"
                sleep(interval)
                interval = min(interval * 2, 5.0)
                _save(job)  # renew the lease while waiting
        if job.status == SyncJob.Status.DOWNLOADING:
            _download(job, progress)
            if job.kind == SyncJob.Kind.ORDERS and job.status == SyncJob.Status.COMPLETED:
                # The bulk export cannot carry the shipments' tracking events: read them now.
                shop_id = job.shop_id
                transaction.on_commit(lambda: backfill_tracking_history.delay(shop_id))
    except ShopifyRetryableError:
        _release(job)
        raise
    except (ShopifyPermanentError, normalize.PayloadError) as exc:
        _fail(job, str(exc))
        return "failed"
    if progress:
        progress(job)
    return "completed" if job.status == SyncJob.Status.COMPLETED else job.status


def _fail(job: SyncJob, message: str) -> None:
    logger.error("sync job %s (%s, shop %s) failed: %s", job.pk, job.kind, job.shop_id, message)
    job.status = SyncJob.Status.FAILED
    job.error = message[:2000]
    job.finished_at = timezone.now()
    job.lease_until = None
    job.save(update_fields=["status", "error", "finished_at", "lease_until", "updated_at"])


def _start_bulk(job: SyncJob, client: ShopifyClient) -> None:
    # Reference: https://shopify.dev/docs/api/admin-graphql/latest/mutations/bulkOperationRunQuery
    data = client.execute(load("bulk_operation_run_query"), {"query": load(BULK_DOCUMENTS[job.kind])})
    payload = data.get("bulkOperationRunQuery") or {}
    errors = payload.get("userErrors") or []
    if errors:
        message = "; ".join(str(e.get("message")) for e in errors)
        if any(str(e.get("code") or "").upper() == "OPERATION_IN_PROGRESS" for e in errors):
            raise ShopifyRetryableError(f"bulkOperationRunQuery: {message}")
        raise ShopifyPermanentError(f"bulkOperationRunQuery: {message}")
    operation = payload.get("bulkOperation") or {}
    if not operation.get("id"):
        raise ShopifyPermanentError("bulkOperationRunQuery answered without an operation id")
    job.bulk_operation_id = operation["id"]
    job.status = SyncJob.Status.RUNNING
    job.started_at = job.started_at or timezone.now()
    job.attempts += 1
    _save(job, "bulk_operation_id", "status", "started_at", "attempts")


def _poll_bulk(job: SyncJob, client: ShopifyClient) -> None:
    # Reference: https://shopify.dev/docs/api/admin-graphql/latest/queries/bulkOperation
    operation = client.execute(load("bulk_operation"), {"id": job.bulk_operation_id}).get("bulkOperation")
    if not operation:
        raise ShopifyPermanentError(f"bulk operation {job.bulk_operation_id} not found")
    status = str(operation.get("status") or "").upper()
    if operation.get("objectCount") is not None:
        job.rows_total = int(operation["objectCount"])
    if status == "COMPLETED":
        job.result_url = operation.get("url") or ""
        job.bytes_total = int(operation["fileSize"]) if operation.get("fileSize") is not None else None
        job.status = SyncJob.Status.DOWNLOADING
        _save(job, "result_url", "bytes_total", "rows_total", "status")
    elif status in {"FAILED", "CANCELED", "CANCELLED", "EXPIRED"}:
        code = operation.get("errorCode") or ""
        raise ShopifyPermanentError(f"bulk operation {job.bulk_operation_id} {status.lower()} {code}".strip())
    else:
        _save(job, "rows_total")


def _download(job: SyncJob, progress: ProgressCallback | None) -> None:
    now = timezone.now()
    job.writing_started_at = now
    job.rows_done_at_writing_start = job.rows_done
    _save(job, "writing_started_at", "rows_done_at_writing_start")
    if job.result_url:
        # Rows per transaction (and per resume point); settings or the environment (tests shrink it).
        batch_rows = int(
            getattr(settings, "SYNC_BULK_BATCH_ROWS", None)
            or os.environ.get("SYNC_BULK_BATCH_ROWS")
            or bulk.DEFAULT_BATCH_ROWS
        )

        def on_batch(rows_done: int, bytes_done: int) -> None:
            # Inside the batch's transaction: rows and resume point commit together.
            job.rows_done = rows_done
            job.bytes_done = bytes_done
            _save(job, "rows_done", "bytes_done")
            if progress:
                transaction.on_commit(lambda: progress(job))

        bulk.load_jsonl(
            shop_id=job.shop_id,
            lines=bulk.stream_lines(job.result_url, start=job.bytes_done),
            on_batch=on_batch,
            rows_done=job.rows_done,
            batch_rows=batch_rows,
            storefront_url=job.shop.storefront_url,
        )
    job.status = SyncJob.Status.COMPLETED
    job.finished_at = timezone.now()
    job.lease_until = None
    if job.rows_total is None or job.rows_total < job.rows_done:
        job.rows_total = job.rows_done
    job.save(update_fields=["status", "finished_at", "lease_until", "rows_total", "updated_at"])


def resume_stalled() -> int:
    """Enqueue every active job nobody holds (a killed worker's lease ran out, a lost enqueue)."""
    now = timezone.now()
    ids = list(
        SyncJob.objects.filter(status__in=SyncJob.ACTIVE_STATUSES)
        .exclude(kind=SyncJob.Kind.RECONCILE)
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", flat=True)[:500]
    )
    for job_id in ids:
        run_sync_job.delay(job_id)
    return len(ids)


# --- Celery entry points (thin: ids in) ------------------------------------------------------------------
# Late ack (a killed worker's job runs again: the jobs resume), retried with backoff while Shopify throttles
# or is unreachable.
_SHOPIFY_TASK = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (ShopifyRetryableError,),
    "retry_backoff": 10,
    "retry_backoff_max": 600,
    "retry_jitter": True,
    "max_retries": 20,
}


@shared_task(**_SHOPIFY_TASK)
def run_sync_job(job_id: int) -> str:
    outcome = sync_job_run(job_id=job_id)
    if outcome == "waiting":
        run_sync_job.apply_async((job_id,), countdown=15)
    return outcome


@shared_task(**_SHOPIFY_TASK)
def backfill_tracking_history(shop_id: int) -> int:
    """After the orders backfill: the tracking events of the shipments of the last TRACKING_HISTORY_DAYS
    (older ones were delivered long ago; a shipment's later events arrive by webhook). Idempotent."""
    shop = Shop.objects.filter(pk=shop_id, status=Shop.Status.INSTALLED).first()
    if shop is None:
        return 0
    since = timezone.now() - dt.timedelta(days=TRACKING_HISTORY_DAYS)
    return tracking_history.backfill_tracking_events(
        shop=shop, client=ShopifyClient.for_shop(shop), since=since
    )


@shared_task
def resume_stalled_sync_jobs() -> int:
    return resume_stalled()
