"""The processing task: dispatch through the topic table, idempotence, failures kept for a retry."""

from __future__ import annotations

import pytest
from celery import current_app
from django.db import OperationalError

from retention_app.ingress import services
from retention_app.ingress.dispatch import TopicHandler
from retention_app.ingress.models import WebhookDelivery
from retention_app.ingress.tasks import process_webhook_delivery
from retention_app.queues import Queue
from retention_app.shops.models import Shop
from shop_integrations.shopify import webhook_handlers
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

TOPIC = "orders/create"


def _delivery(shop, *, topic=TOPIC, payload=None, webhook_id="wh-1", **extra) -> WebhookDelivery:
    return WebhookDelivery.objects.create(
        shop=shop,
        topic=topic,
        shop_domain=shop.domain,
        webhook_id=webhook_id,
        payload=payload or {"id": 1},
        **extra,
    )


class Recorder:
    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[str] = []
        self.error = error

    def __call__(self, shop, payload, delivery) -> None:
        self.calls.append(delivery.webhook_id)
        CustomerFactory(shop=shop, platform_id=f"written-by-{delivery.webhook_id}-{len(self.calls)}")
        if self.error is not None:
            raise self.error


@pytest.fixture
def install(monkeypatch):
    def _install(handler, *, when_uninstalled=False, topic=TOPIC):
        monkeypatch.setitem(
            webhook_handlers.TOPIC_HANDLERS, topic, TopicHandler(handler, when_uninstalled=when_uninstalled)
        )
        return handler

    return _install


def test_the_task_is_idempotent_late_acked_and_on_the_webhooks_queue():
    assert process_webhook_delivery.acks_late is True
    assert process_webhook_delivery.reject_on_worker_lost is True
    route = current_app.amqp.router.route({}, process_webhook_delivery.name, (), {})
    assert route["queue"].name == Queue.WEBHOOKS


def test_a_delivery_is_dispatched_to_its_topic_handler_once(shop, install):
    handler = install(Recorder())
    delivery = _delivery(shop)
    process_webhook_delivery.delay(delivery.pk)
    process_webhook_delivery.delay(delivery.pk)  # a redelivered task message
    delivery.refresh_from_db()
    assert handler.calls == ["wh-1"]
    assert delivery.status == WebhookDelivery.Status.PROCESSED
    assert delivery.processed_at is not None
    assert delivery.attempts == 1


def test_a_permanent_handler_failure_keeps_the_delivery_with_its_error_and_no_partial_writes(shop, install):
    install(Recorder(error=ValueError("payload has no line_items")))
    delivery = _delivery(shop)
    assert services.webhook_delivery_process(delivery_id=delivery.pk) == WebhookDelivery.Status.FAILED
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "payload has no line_items" in delivery.last_error
    assert delivery.attempts == 1
    # The handler's own writes were rolled back with it.
    assert not shop.customers.exists()


def test_a_transient_failure_is_raised_for_a_retry_and_the_retry_succeeds(shop, install):
    handler = install(Recorder(error=OperationalError("could not connect to server")))
    delivery = _delivery(shop)
    with pytest.raises(services.TransientProcessingError):
        services.webhook_delivery_process(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "could not connect" in delivery.last_error

    handler.error = None  # the database is back
    assert services.webhook_delivery_process(delivery_id=delivery.pk) == WebhookDelivery.Status.PROCESSED
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.last_error == ""
    assert shop.customers.count() == 1


def test_errors_that_declare_themselves_retryable_are_transient():
    class ShopifyRetryableError(Exception):
        pass

    class Throttled(Exception):
        retryable = True

    assert services.is_transient(ShopifyRetryableError())
    assert services.is_transient(Throttled())
    assert services.is_transient(TimeoutError())
    assert not services.is_transient(ValueError())
    assert not services.is_transient(KeyError("id"))


def test_the_task_retries_transient_errors_only():
    assert services.TransientProcessingError in process_webhook_delivery.autoretry_for
    assert process_webhook_delivery.max_retries == 8
    assert process_webhook_delivery.retry_backoff


def test_a_failed_delivery_can_be_retried(shop, install, django_capture_on_commit_callbacks):
    handler = install(Recorder(error=ValueError("bug")))
    delivery = _delivery(shop)
    services.webhook_delivery_process(delivery_id=delivery.pk)
    handler.error = None  # the bug was fixed and deployed
    with django_capture_on_commit_callbacks(execute=True):
        services.webhook_delivery_retry(delivery=delivery)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PROCESSED


def test_a_delivery_whose_topic_lost_its_handler_is_ignored_not_failed(shop):
    delivery = _delivery(shop, topic="products/teleport")
    assert services.webhook_delivery_process(delivery_id=delivery.pk) == WebhookDelivery.Status.IGNORED
    delivery.refresh_from_db()
    assert delivery.last_error == "no handler for this topic"


def test_commerce_topics_of_an_uninstalled_shop_are_ignored(shop, install):
    handler = install(Recorder())
    Shop.objects.filter(pk=shop.pk).update(status=Shop.Status.UNINSTALLED)
    delivery = _delivery(shop)
    assert services.webhook_delivery_process(delivery_id=delivery.pk) == WebhookDelivery.Status.IGNORED
    assert handler.calls == []


def test_lifecycle_topics_still_run_for_an_uninstalled_shop(shop, install):
    handler = install(Recorder(), when_uninstalled=True)
    Shop.objects.filter(pk=shop.pk).update(status=Shop.Status.UNINSTALLED)
    delivery = _delivery(shop)
    assert services.webhook_delivery_process(delivery_id=delivery.pk) == WebhookDelivery.Status.PROCESSED
    assert handler.calls == ["wh-1"]


def test_a_redacted_delivery_is_never_processed(shop, install):
    handler = install(Recorder())
    delivery = _delivery(shop, payload={"redacted": True}, redacted_at="2026-11-23T00:00:00Z")
    assert services.webhook_delivery_process(delivery_id=delivery.pk) == WebhookDelivery.Status.IGNORED
    assert handler.calls == []


def test_commerce_handlers_from_the_sync_table_are_dispatched(shop, monkeypatch):
    calls = []
    monkeypatch.setitem(
        webhook_handlers.COMMERCE_TOPIC_HANDLERS, "orders/paid", lambda s, p: calls.append((s.pk, p["id"]))
    )
    monkeypatch.delitem(webhook_handlers.TOPIC_HANDLERS, "orders/paid", raising=False)
    delivery = _delivery(shop, topic="orders/paid", payload={"id": 42})
    services.webhook_delivery_process(delivery_id=delivery.pk)
    assert calls == [(shop.pk, 42)]
    assert webhook_handlers.is_known_topic("orders/paid")


def test_a_missing_delivery_is_nothing_to_do(db):
    assert services.webhook_delivery_process(delivery_id=987654) is None


def test_stale_pending_deliveries_are_enqueued_again(shop, install):
    import datetime as dt

    from django.utils import timezone

    handler = install(Recorder())
    old = _delivery(shop, webhook_id="old")
    fresh = _delivery(shop, webhook_id="fresh")
    WebhookDelivery.objects.filter(pk=old.pk).update(updated_at=timezone.now() - dt.timedelta(hours=1))
    assert services.webhook_deliveries_requeue_stale() == 1
    assert handler.calls == ["old"]
    fresh.refresh_from_db()
    assert fresh.status == WebhookDelivery.Status.PENDING


def test_old_handled_deliveries_are_purged_pending_ones_kept(shop):
    import datetime as dt

    from django.utils import timezone

    done = _delivery(shop, webhook_id="done", status=WebhookDelivery.Status.PROCESSED)
    waiting = _delivery(shop, webhook_id="waiting")
    long_ago = timezone.now() - dt.timedelta(days=services.DELIVERY_RETENTION_DAYS + 1)
    WebhookDelivery.objects.update(received_at=long_ago)
    assert services.webhook_deliveries_purge() == 1
    assert not WebhookDelivery.objects.filter(pk=done.pk).exists()
    assert WebhookDelivery.objects.filter(pk=waiting.pk).exists()
