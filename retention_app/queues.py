"""Every Celery queue, in one place. Route a task with `@shared_task(queue=Queue.SYNC)`."""

from enum import StrEnum


class Queue(StrEnum):
    WEBHOOKS = "webhooks"  # processing of stored webhook deliveries
    SYNC = "sync"  # backfill, reconciliation, GraphQL-heavy work
    MESSAGES = "messages"  # rendering and sending emails
    DEFAULT = "default"  # everything else


ALL_QUEUES = ",".join(q.value for q in Queue)
