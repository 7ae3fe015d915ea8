"""Task routing (retention_app/queues.py): each task lands on the queue its worker pool is sized for."""

from __future__ import annotations

import pytest
from celery import current_app

from retention_app.queues import Queue


def _queue_of(task_name: str) -> str:
    return current_app.amqp.router.route({}, task_name, (), {})["queue"].name


@pytest.fixture(scope="module")
def tasks():
    current_app.loader.import_default_modules()
    return {name for name in current_app.tasks if not name.startswith("celery.")}


@pytest.mark.parametrize(
    ("task_name", "queue"),
    [
        ("automations.messages_send_batch", Queue.MESSAGES),
        ("automations.messages_dispatch", Queue.DEFAULT),
        ("retention_app.ingress.tasks.process_webhook_delivery", Queue.WEBHOOKS),
        ("retention_app.ingress.tasks.drain_webhook_buffer", Queue.INGRESS),
        ("shop_integrations.shopify.sync.run_sync_job", Queue.SYNC),
        ("shop_integrations.shopify.reconcile.reconcile_shop_task", Queue.SYNC),
        ("tracking.flush_page_views", Queue.DEFAULT),
    ],
)
def test_tasks_are_routed_to_their_queue(tasks, task_name, queue):
    assert task_name in tasks
    assert _queue_of(task_name) == queue


def test_every_task_lands_on_a_known_queue(tasks):
    known = {q.value for q in Queue}
    assert {name: _queue_of(name) for name in tasks if _queue_of(name) not in known} == {}
