"""A real Celery worker processes what the webhook endpoint enqueues (on Redis: the direct LPUSH message of
retention_app/ingress/enqueue.py; without Redis: the filesystem broker through apply_async)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from retention_app.ingress.models import ComplianceAuditRecord, WebhookDelivery
from retention_app.shops.models import Shop
from tests.factories import CustomerFactory, ShopFactory
from tests.fixtures.processes import wait_until
from tests.fixtures.shopify_payloads import load_payload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_uninstall_and_redact_are_processed_by_a_real_worker(webhooks, celery_worker):
    shop = ShopFactory(domain="acme.myshopify.com", installed_at=timezone.now() - dt.timedelta(days=3))
    other = ShopFactory(domain="rival.myshopify.com")
    CustomerFactory(shop=shop, platform_id="7001001", email="somchai.data@example.com", phone="+66811110001")
    poster = webhooks

    assert (
        poster.post("customers/redact", load_payload("customers/redact"), webhook_id="w-redact").status_code
        == 200
    )
    assert (
        poster.post("app/uninstalled", load_payload("app/uninstalled"), webhook_id="w-uninst").status_code
        == 200
    )

    def all_processed():
        return (
            WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PROCESSED).count() == 2
            and not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.FAILED).exists()
        )

    wait_until(all_processed, timeout=60, what="both deliveries processed by the worker")
    shop.refresh_from_db()
    assert shop.status == Shop.Status.UNINSTALLED
    assert shop.customers.get().email == ""
    assert ComplianceAuditRecord.objects.filter(webhook_id="w-redact").exists()
    other.refresh_from_db()
    assert other.status == Shop.Status.INSTALLED
    assert "process_webhook_delivery" in celery_worker.log()
    # With Redis (CI) the messages went through the cheap LPUSH path, else through apply_async.
    from retention_app.celery import app
    from retention_app.ingress.enqueue import _fast_path_url

    assert (_fast_path_url(app) is not None) == app.conf.broker_url.startswith("redis")


def test_a_commerce_delivery_reaches_a_real_worker_through_the_buffer(webhooks, celery_worker):
    """With Redis (CI) orders/create is answered from the buffer, drained into PostgreSQL by the worker's
    drain_webhook_buffer task and processed there; without Redis it is stored in the request."""
    from retention_app.celery import app
    from retention_app.commerce.models import Order
    from retention_app.ingress import buffer

    shop = ShopFactory(domain="acme.myshopify.com", installed_at=timezone.now() - dt.timedelta(days=3))
    payload = load_payload("orders/create")
    uses_buffer = app.conf.broker_url.startswith("redis")

    answers = [webhooks.post("orders/create", payload, webhook_id="w-order").json() for _ in range(2)]

    assert (
        answers == [{"status": "accepted"}] * 2
        if uses_buffer
        else [{"status": "stored"}, {"status": "duplicate"}]
    )

    def processed():
        return WebhookDelivery.objects.filter(
            webhook_id="w-order", status=WebhookDelivery.Status.PROCESSED
        ).exists()

    wait_until(processed, timeout=60, what="the buffered delivery stored and processed by the worker")
    assert WebhookDelivery.objects.filter(webhook_id="w-order").count() == 1
    assert Order.objects.filter(shop=shop, platform_id=str(payload["id"])).exists()
    if uses_buffer:
        assert "drain_webhook_buffer" in celery_worker.log()
        assert buffer.backlog() == 0
