"""The Redis stream buffer of commerce deliveries (retention_app/ingress/buffer.py), against a real Redis:
answered once appended, stored once by the drain (unique webhook id), nothing lost when a drainer dies
between reading and acknowledging, lifecycle/compliance topics and Redis failures on the synchronous path."""

from __future__ import annotations

import json
import os

import pytest
import redis

from retention_app.celery import app as celery_app
from retention_app.ingress import buffer, services
from retention_app.ingress.models import WebhookDelivery
from tests.conftest import requires_redis
from tests.factories import ShopFactory
from tests.fixtures.shopify_payloads import load_payload

pytestmark = [requires_redis, pytest.mark.django_db]

TOPIC = "orders/create"


@pytest.fixture
def redis_client():
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = (buffer.STREAM, buffer.DRAIN_FLAG, buffer.DEAD_LETTERS, "ingress", "webhooks")
    client.delete(*keys)
    yield client
    client.delete(*keys)


@pytest.fixture
def buffered(redis_client, webhook_settings):
    """Tasks no longer eager and the broker is the test Redis: the request path appends to the buffer."""
    old = {"task_always_eager": celery_app.conf.task_always_eager, "broker_url": celery_app.conf.broker_url}
    celery_app.conf.task_always_eager = False
    celery_app.conf.broker_url = os.environ["REDIS_URL"]
    webhook_settings.INGRESS_REDIS_BUFFER = True
    assert buffer.request_url() == os.environ["REDIS_URL"]
    yield redis_client
    for name, value in old.items():
        setattr(celery_app.conf, name, value)


def queued(client, task_suffix: str) -> list[list]:
    """Arguments of the Celery messages waiting in the ingress and webhooks queues for the task named
    `...task_suffix`."""
    import base64

    found = []
    for raw in client.lrange("ingress", 0, -1) + client.lrange("webhooks", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"].endswith(task_suffix):
            found.append(json.loads(base64.b64decode(message["body"]))[0])
    return found


def test_a_commerce_delivery_is_answered_from_the_buffer_and_stored_once_by_the_drain(
    shop, webhooks, buffered
):
    payload = load_payload(TOPIC)
    first = webhooks.post(TOPIC, payload, webhook_id="wh-buf-1")
    again = webhooks.post(TOPIC, payload, webhook_id="wh-buf-1")  # Shopify's redelivery of the same event

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json() == {"status": "accepted"}
    assert not WebhookDelivery.objects.exists()  # answered before the database write
    assert buffer.backlog() == 2
    # Only the first request found no drain queued: one drain task for both.
    assert queued(buffered, ".drain_webhook_buffer") == [[]]

    assert buffer.drain() == 1

    delivery = WebhookDelivery.objects.get()
    assert (delivery.webhook_id, delivery.topic, delivery.shop_id) == ("wh-buf-1", TOPIC, shop.pk)
    assert delivery.payload == payload
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert delivery.api_version == "2026-01"
    assert delivery.triggered_at is not None and delivery.event_id
    assert buffer.backlog() == 0  # acknowledged and deleted
    assert buffered.xpending(buffer.STREAM, buffer.GROUP)["pending"] == 0
    assert queued(buffered, ".process_webhook_delivery") == [[delivery.pk]]
    assert buffered.get(buffer.DRAIN_FLAG) is None  # the next delivery queues a new drain

    # Drained again later (e.g. a late redelivery): still one row, nothing more to process.
    webhooks.post(TOPIC, payload, webhook_id="wh-buf-1")
    assert buffer.drain() == 0
    assert WebhookDelivery.objects.count() == 1
    assert queued(buffered, ".process_webhook_delivery") == [[delivery.pk]]


@pytest.mark.parametrize(
    "topic", ["app/uninstalled", "customers/redact", "shop/redact", "customers/data_request"]
)
def test_lifecycle_and_compliance_topics_are_stored_before_the_answer(shop, webhooks, buffered, topic):
    response = webhooks.post(topic, load_payload(topic), webhook_id=f"wh-{topic}")

    assert response.json() == {"status": "stored"}
    assert WebhookDelivery.objects.filter(webhook_id=f"wh-{topic}").exists()
    assert buffer.backlog() == 0


def test_bad_deliveries_are_refused_or_ignored_without_touching_the_buffer(shop, webhooks, buffered):
    assert webhooks.post(TOPIC, b"not json").status_code == 400
    assert webhooks.post(TOPIC, b'{"total": NaN}').status_code == 400
    assert webhooks.post(TOPIC, b"[1, 2]").status_code == 400
    assert webhooks.post(TOPIC, {"id": 1}, hmac_header="forged").status_code == 401
    assert webhooks.post(TOPIC, {"id": 1}, omit=("X-Shopify-Webhook-Id",)).status_code == 400
    unknown = webhooks.post(TOPIC, {"id": 1}, shop_domain="nobody.myshopify.com")
    assert unknown.json() == {"status": "unknown_shop"}

    assert buffer.backlog() == 0
    assert not WebhookDelivery.objects.exists()


def test_nul_characters_are_dropped_when_drained(shop, webhooks, buffered):
    body = b'{"id": 5, "note": "a\\u0000b"}'
    assert webhooks.post(TOPIC, body, webhook_id="wh-nul").json() == {"status": "accepted"}

    assert buffer.drain() == 1
    assert WebhookDelivery.objects.get(webhook_id="wh-nul").payload == {"id": 5, "note": "ab"}


def test_entries_of_a_drainer_that_died_before_acknowledging_are_stored_by_the_next(shop, webhooks, buffered):
    for n in range(3):
        webhooks.post(TOPIC, {"id": n}, webhook_id=f"wh-dead-{n}")
    buffer._ensure_group(buffered)
    # A drainer reads all three, stores the first one (commits) and dies before queueing or acknowledging.
    entries = buffered.xreadgroup(buffer.GROUP, "dead-worker", {buffer.STREAM: ">"}, count=10)[0][1]
    assert len(entries) == 3
    (stored_id,), _ = services.webhook_deliveries_store_buffered([buffer._decode(entries[0][1])])
    assert buffer.drain(claim_idle_ms=60_000) == 0  # not idle long enough: still the dead drainer's
    assert WebhookDelivery.objects.count() == 1

    assert buffer.drain(claim_idle_ms=0) == 2

    assert sorted(WebhookDelivery.objects.values_list("webhook_id", flat=True)) == [
        "wh-dead-0",
        "wh-dead-1",
        "wh-dead-2",
    ]
    assert buffered.xpending(buffer.STREAM, buffer.GROUP)["pending"] == 0
    assert buffer.backlog() == 0
    # The row the dead drainer stored is queued for processing too (processing is idempotent).
    processing = sorted(args[0] for args in queued(buffered, ".process_webhook_delivery"))
    assert processing == sorted(WebhookDelivery.objects.values_list("pk", flat=True))
    assert stored_id in processing


def test_a_drain_that_failed_is_taken_up_at_once_by_its_retry(shop, webhooks, buffered, monkeypatch):
    from django.db import OperationalError

    webhooks.post(TOPIC, {"id": 1}, webhook_id="wh-retry")

    def database_down(rows, *, recovered=False):
        raise OperationalError("connection refused")

    with monkeypatch.context() as patch:
        patch.setattr(services, "webhook_deliveries_store_buffered", database_down)
        with pytest.raises(OperationalError):
            buffer.drain()
    assert buffered.xpending(buffer.STREAM, buffer.GROUP)["pending"] == 1  # read, not acknowledged

    assert buffer.drain() == 1  # same process: its own pending entry, without waiting CLAIM_IDLE_MS

    assert WebhookDelivery.objects.filter(webhook_id="wh-retry").exists()
    assert buffered.xpending(buffer.STREAM, buffer.GROUP)["pending"] == 0


def test_an_entry_that_cannot_be_stored_is_set_aside_and_the_rest_stored(shop, webhooks, buffered, caplog):
    webhooks.post(TOPIC, {"id": 1}, webhook_id="wh-good-1")
    buffered.xadd(buffer.STREAM, {"webhook_id": "wh-broken", "shop_id": "not a number", "body": "{}"})
    webhooks.post(TOPIC, {"id": 2}, webhook_id="wh-good-2")

    assert buffer.drain() == 2

    assert sorted(WebhookDelivery.objects.values_list("webhook_id", flat=True)) == ["wh-good-1", "wh-good-2"]
    assert buffer.backlog() == 0
    assert buffered.xpending(buffer.STREAM, buffer.GROUP)["pending"] == 0  # the next drain is not blocked
    ((_, dead),) = buffered.xrange(buffer.DEAD_LETTERS)
    assert dead[b"webhook_id"] == b"wh-broken" and dead[b"error"].startswith(b"KeyError")
    assert "wh-broken" in caplog.text


def test_a_long_backlog_is_drained_in_batches_and_the_rest_queued(shop, buffered):
    from django.utils import timezone

    url = buffer.request_url()
    for n in range(250):
        buffer.append(
            url,
            received_at=timezone.now(),
            webhook_id=f"wh-many-{n}",
            shop_id=shop.pk,
            platform="shopify",
            topic=TOPIC,
            shop_domain=shop.domain,
            event_id="",
            api_version="",
            triggered_at="",
            body=json.dumps({"id": n}),
        )
    buffered.delete("ingress", "webhooks")

    assert buffer.drain(batch_size=100, max_batches=2) == 200
    assert buffer.backlog() == 50
    assert queued(buffered, ".drain_webhook_buffer") == [[]]  # the rest is not left waiting for a request

    assert buffer.drain(batch_size=100, max_batches=2) == 50
    assert WebhookDelivery.objects.count() == 250
    assert buffer.backlog() == 0


def test_a_delivery_whose_shop_was_deleted_before_the_drain_is_dropped_or_moved(webhooks, buffered):
    gone = ShopFactory(domain="gone.myshopify.com")
    moved = ShopFactory(domain="moved.myshopify.com")
    assert webhooks.post(TOPIC, {"id": 1}, shop_domain=gone.domain, webhook_id="wh-gone").status_code == 200
    assert webhooks.post(TOPIC, {"id": 2}, shop_domain=moved.domain, webhook_id="wh-moved").status_code == 200
    gone.delete()
    moved.delete()
    reinstalled = ShopFactory(domain="moved.myshopify.com")

    assert buffer.drain() == 1

    assert list(WebhookDelivery.objects.values_list("webhook_id", "shop_id")) == [
        ("wh-moved", reinstalled.pk)
    ]
    assert buffer.backlog() == 0


def test_redis_unreachable_stores_the_delivery_in_the_database(shop, webhooks, buffered, caplog):
    from bench.support import free_port

    celery_app.conf.broker_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there

    response = webhooks.post(TOPIC, {"id": 9}, webhook_id="wh-no-redis")

    assert response.json() == {"status": "stored"}
    assert WebhookDelivery.objects.filter(webhook_id="wh-no-redis").exists()
    assert "webhook buffer unavailable" in caplog.text


def test_the_buffer_can_be_switched_off(shop, webhooks, buffered, webhook_settings):
    webhook_settings.INGRESS_REDIS_BUFFER = False

    assert webhooks.post(TOPIC, {"id": 3}, webhook_id="wh-off").json() == {"status": "stored"}
    assert buffer.backlog() == 0


def test_roundtrip_reads_every_reply_and_survives_a_dropped_connection(redis_client):
    from redis.exceptions import ResponseError

    from retention_app.ingress.enqueue import roundtrip

    url = os.environ["REDIS_URL"]
    key, items = "ingress-test:flag", "ingress-test:list"
    redis_client.delete(key, items)
    try:
        replies = roundtrip(
            url,
            ("SET", key, "1", "NX"),
            ("SET", key, "1", "NX"),
            ("LPUSH", items, "a", "b"),
            ("GET", "ingress-test:none"),
        )
        assert replies == ["OK", None, 2, None]
        with pytest.raises(ResponseError, match="WRONGTYPE"):
            roundtrip(url, ("PING",), ("GET", items))
        assert roundtrip(url, ("GET", key)) == [b"1"]  # every reply was read: the connection is in step

        (client_id,) = roundtrip(url, ("CLIENT", "ID"))
        assert (
            redis_client.client_kill_filter(_id=client_id) == 1
        )  # the server drops this thread's connection
        assert roundtrip(url, ("LPUSH", items, "c")) == [3]  # sent again on a fresh connection
    finally:
        redis_client.delete(key, items)
