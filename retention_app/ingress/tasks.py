"""Thin Celery entry points of the webhook ingress: ids in, services do the work."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from retention_app.ingress import services

logger = logging.getLogger(__name__)


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    # A database connection lost outside the handler's savepoint is transient too.
    autoretry_for=(services.TransientProcessingError, OperationalError, InterfaceError),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
    ignore_result=True,
)
def process_webhook_delivery(delivery_id: int) -> None:
    """Process one stored webhook delivery (idempotent: a processed delivery is skipped).

    Transient handler errors are retried with exponential backoff and jitter (8 times, up to 10 min
    apart); the delivery row records every failure, so nothing is lost when retries run out."""
    services.webhook_delivery_process(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def requeue_stale_webhook_deliveries() -> int:
    """Periodic: drain the Redis buffer (deliveries a lost drain left there), then enqueue again deliveries
    left pending (lost enqueue, retries exhausted by a crash)."""
    from retention_app.ingress import buffer

    try:
        buffer.drain()
    except Exception:
        logger.exception("draining the webhook buffer failed; pending deliveries are requeued anyway")
    return services.webhook_deliveries_requeue_stale()


@shared_task(ignore_result=True)
def purge_old_webhook_deliveries() -> int:
    """Periodic: delete handled deliveries past the retention period (they contain personal data)."""
    return services.webhook_deliveries_purge()


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=20,
    ignore_result=True,
)
def drain_webhook_buffer() -> int:
    """Store the commerce deliveries buffered in Redis (retention_app/ingress/buffer.py) and queue their
    processing. Queued by the webhook request that finds no drain queued, and by the periodic sweep."""
    from retention_app.ingress import buffer

    return buffer.drain()
