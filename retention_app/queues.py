"""Every Celery queue, and which task goes to which, in one place (settings.CELERY_TASK_ROUTES).

A task not listed runs on `default`. Glob patterns match task names (Celery's task_routes)."""

from enum import StrEnum


class Queue(StrEnum):
    # Moving buffered webhook deliveries from Redis into PostgreSQL (short tasks). A queue of its own: a
    # backlog of processing on `webhooks` never delays the moment a delivery becomes durable.
    INGRESS = "ingress"
    WEBHOOKS = "webhooks"  # processing of stored webhook deliveries
    SYNC = "sync"  # backfill, reconciliation, GraphQL-heavy work
    MESSAGES = "messages"  # rendering and sending emails
    DEFAULT = "default"  # everything else


ALL_QUEUES = ",".join(q.value for q in Queue)

TASK_ROUTES = {
    "automations.messages_send_batch": {"queue": Queue.MESSAGES.value},
    "retention_app.ingress.tasks.process_webhook_delivery": {"queue": Queue.WEBHOOKS.value},
    "retention_app.ingress.tasks.drain_webhook_buffer": {"queue": Queue.INGRESS.value},
    "retention_app.ingress.tasks.requeue_stale_webhook_deliveries": {"queue": Queue.WEBHOOKS.value},
    "shop_integrations.shopify.sync.*": {"queue": Queue.SYNC.value},
    "shop_integrations.shopify.reconcile.*": {"queue": Queue.SYNC.value},
}
