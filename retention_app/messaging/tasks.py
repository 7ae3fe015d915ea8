"""Thin Celery entry points of messaging: ids in, services do the work."""

from __future__ import annotations

from celery import shared_task

from shop_integrations.gateway import PlatformRetryableError

from . import services


@shared_task(
    name="messaging.consent_write_back",
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(PlatformRetryableError,),
    retry_backoff=10,
    retry_backoff_max=900,
    retry_jitter=True,
    max_retries=8,
    ignore_result=True,
)
def consent_write_back(consent_change_id: int) -> None:
    """Write an unsubscribe back to the store (customerEmailMarketingConsentUpdate). Idempotent."""
    services.consent_change_write_back(consent_change_id=consent_change_id)


@shared_task(name="messaging.consent_write_back_requeue", ignore_result=True)
def consent_write_back_requeue() -> int:
    """Periodic: enqueue again write-backs left unsynced (lost task, flushed broker, retries exhausted)."""
    return services.consent_changes_requeue_unsynced()
