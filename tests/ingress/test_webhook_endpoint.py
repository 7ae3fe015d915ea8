"""POST /webhooks/shopify: forged and good deliveries, duplicates, unknown topics and shops."""

from __future__ import annotations

import logging

import pytest

from retention_app.ingress.dispatch import TopicHandler
from retention_app.ingress.models import ComplianceAuditRecord, WebhookDelivery
from shop_integrations.shopify import webhook_handlers
from tests.conftest import requires_postgres
from tests.fixtures.shopify_payloads import load_payload
from tests.ingress.conftest import OLD_SECRET

pytestmark = pytest.mark.django_db

TEST_TOPIC = "orders/create"


@pytest.fixture
def handled(monkeypatch):
    """Register a recording handler for orders/create (the commerce handler belongs to issue 4)."""
    calls: list[tuple[int, dict, str]] = []

    def record(shop, payload, delivery):
        calls.append((shop.pk, payload, delivery.webhook_id))

    monkeypatch.setitem(webhook_handlers.TOPIC_HANDLERS, TEST_TOPIC, TopicHandler(record))
    return calls


def test_a_signed_delivery_is_stored_and_processed_after_commit(
    shop, webhooks, handled, django_capture_on_commit_callbacks
):
    payload = load_payload("orders/create")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = webhooks.post(TEST_TOPIC, payload, webhook_id="wh-1")
    assert response.status_code == 200
    assert response.json() == {"status": "stored"}
    assert len(callbacks) == 1  # processing enqueued on commit, not before
    delivery = WebhookDelivery.objects.get(webhook_id="wh-1")
    assert delivery.shop == shop
    assert delivery.topic == TEST_TOPIC
    assert delivery.api_version == "2026-01"
    assert delivery.triggered_at is not None
    assert delivery.payload == payload
    assert delivery.status == WebhookDelivery.Status.PROCESSED
    assert handled == [(shop.pk, payload, "wh-1")]


def test_nothing_is_enqueued_when_the_transaction_does_not_commit(shop, webhooks, handled):
    # Under the test transaction on_commit never fires: the handler must not have run inside the request.
    response = webhooks.post(TEST_TOPIC, load_payload("orders/create"))
    assert response.status_code == 200
    assert handled == []
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.PENDING


def test_a_wrong_hmac_is_401_and_stores_nothing(shop, webhooks, handled):
    response = webhooks.post(TEST_TOPIC, {"id": 1}, secret="not-the-app-secret")
    assert response.status_code == 401
    assert "X-Shopify-Hmac-Sha256" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_a_missing_hmac_is_401(shop, webhooks):
    response = webhooks.post(TEST_TOPIC, {"id": 1}, omit=("X-Shopify-Hmac-Sha256",))
    assert response.status_code == 401
    assert not WebhookDelivery.objects.exists()


def test_a_garbage_hmac_is_401_not_500(shop, webhooks):
    response = webhooks.post(TEST_TOPIC, {"id": 1}, hmac_header="%%%not-base64%%%")
    assert response.status_code == 401


def test_the_previous_secret_is_rejected_without_a_rotation_window(shop, webhooks):
    response = webhooks.post(TEST_TOPIC, {"id": 1}, secret=OLD_SECRET)
    assert response.status_code == 401


def test_the_previous_secret_is_accepted_during_a_rotation_window(shop, webhooks, webhook_settings, handled):
    webhook_settings.SHOPIFY_API_SECRET_PREVIOUS = OLD_SECRET
    response = webhooks.post(TEST_TOPIC, {"id": 1}, secret=OLD_SECRET)
    assert response.status_code == 200
    assert WebhookDelivery.objects.count() == 1
    # ...and the current secret still works during the window.
    assert webhooks.post(TEST_TOPIC, {"id": 2}).status_code == 200


@pytest.mark.parametrize("header", ["X-Shopify-Topic", "X-Shopify-Shop-Domain", "X-Shopify-Webhook-Id"])
def test_a_missing_shopify_header_is_400(shop, webhooks, handled, header):
    response = webhooks.post(TEST_TOPIC, {"id": 1}, omit=(header,))
    assert response.status_code == 400
    assert header in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


def test_hmac_is_checked_before_headers(shop, webhooks):
    response = webhooks.post(
        TEST_TOPIC, {"id": 1}, secret="forged", omit=("X-Shopify-Topic", "X-Shopify-Webhook-Id")
    )
    assert response.status_code == 401


@pytest.mark.parametrize("body", [b"not json", b'{"id": 1', b"\xff\xfe\x00garbage", b""])
def test_a_body_that_is_not_json_is_400(shop, webhooks, handled, body):
    response = webhooks.post(TEST_TOPIC, body)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"{not json}",
        b'{"id": 1,}',
        b'{"id": 1} {"id": 2}',
        b'{"id": NaN}',
        b'{"a": ' * 50_000 + b"1" + b"}" * 50_000,
    ],
)
def test_a_body_shaped_like_an_object_but_not_json_is_400(shop, webhooks, handled, body):
    # On PostgreSQL such a body reaches the INSERT (its jsonb cast is the JSON check): it must still be a
    # 400 with nothing stored, and the surrounding transaction must stay usable.
    response = webhooks.post(TEST_TOPIC, body, webhook_id="w-bad")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
    assert not WebhookDelivery.objects.exists()
    assert webhooks.post(TEST_TOPIC, {"id": 1}, webhook_id="w-bad").json()["status"] == "stored"


def test_a_non_json_body_for_an_unknown_shop_is_400(db, webhooks, handled):
    response = webhooks.post(TEST_TOPIC, b"{not json}", shop_domain="nobody.myshopify.com")
    assert response.status_code == 400


def test_a_json_body_that_is_not_an_object_is_400(shop, webhooks, handled):
    response = webhooks.post(TEST_TOPIC, [1, 2, 3])
    assert response.status_code == 400


def test_get_is_not_allowed(client, webhook_settings):
    assert client.get("/webhooks/shopify").status_code == 405


def test_csrf_protection_does_not_block_shopify(shop, webhook_settings, handled):
    from django.test import Client

    from tests.ingress.conftest import WebhookPoster

    poster = WebhookPoster(Client(enforce_csrf_checks=True))
    assert poster.post(TEST_TOPIC, {"id": 1}).status_code == 200


def test_a_delivery_sent_five_times_is_one_row_and_one_processing(
    shop, webhooks, handled, django_capture_on_commit_callbacks
):
    payload = load_payload("orders/create")
    answers = []
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for _ in range(5):
            answers.append(webhooks.post(TEST_TOPIC, payload, webhook_id="same-delivery"))
    assert [a.status_code for a in answers] == [200] * 5
    assert [a.json()["status"] for a in answers] == ["stored"] + ["duplicate"] * 4
    assert WebhookDelivery.objects.filter(webhook_id="same-delivery").count() == 1
    assert len(callbacks) == 1
    assert len(handled) == 1


def test_an_unknown_topic_is_200_logged_and_not_stored(shop, webhooks, caplog):
    with caplog.at_level(logging.WARNING):
        response = webhooks.post("products/teleport", {"id": 1}, webhook_id="wh-unknown")
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert not WebhookDelivery.objects.exists()
    assert any(
        "products/teleport" in r.getMessage() and "wh-unknown" in r.getMessage() for r in caplog.records
    )


def test_a_delivery_for_an_unknown_shop_is_200_logged_and_ignored(db, webhooks, handled, caplog):
    with caplog.at_level(logging.INFO):
        response = webhooks.post(TEST_TOPIC, {"id": 1}, shop_domain="nobody.myshopify.com")
    assert response.status_code == 200
    assert response.json()["status"] == "unknown_shop"
    assert not WebhookDelivery.objects.exists()
    assert handled == []
    assert any("nobody.myshopify.com" in r.getMessage() for r in caplog.records)


def test_a_compliance_request_for_an_unknown_shop_leaves_an_audit_record(db, webhooks):
    payload = load_payload("customers/redact")
    response = webhooks.post(
        "customers/redact", payload, shop_domain="gone.myshopify.com", webhook_id="wh-gone"
    )
    assert response.status_code == 200
    record = ComplianceAuditRecord.objects.get(webhook_id="wh-gone")
    assert record.outcome == ComplianceAuditRecord.Outcome.NO_DATA
    assert record.shop_domain == "gone.myshopify.com"
    assert record.customer_platform_id == "7001001"
    assert payload["customer"]["email"] not in str(record.__dict__)


def test_the_shop_domain_header_is_matched_case_insensitively(shop, webhooks, handled):
    response = webhooks.post(TEST_TOPIC, {"id": 1}, shop_domain="ACME.myshopify.com")
    assert response.json()["status"] == "stored"
    assert WebhookDelivery.objects.get().shop == shop


def test_a_delivery_is_stored_for_its_own_shop_only(shop, other_shop, webhooks, handled):
    webhooks.post(TEST_TOPIC, {"id": 1}, shop_domain=other_shop.domain)
    assert WebhookDelivery.objects.get().shop == other_shop
    assert not WebhookDelivery.objects.filter(shop=shop).exists()


def test_an_escaped_nul_character_is_stored_without_it_not_a_500(shop, webhooks, handled):
    # PostgreSQL jsonb refuses U+0000; the delivery must still be stored.
    response = webhooks.post(TEST_TOPIC, b'{"id": 1, "note": "a\\u0000b"}')
    assert response.status_code == 200
    assert WebhookDelivery.objects.get().payload == {"id": 1, "note": "ab"}


@pytest.mark.django_db(transaction=True)
def test_a_stale_cached_shop_id_is_looked_up_again(webhooks, handled):
    from retention_app.ingress import services
    from tests.factories import ShopFactory

    shop = ShopFactory(domain="acme.myshopify.com")
    # Another process cached the id of a shop deleted (and re-created) since.
    services._shop_ids[("shopify", shop.domain)] = (shop.pk + 1000, float("inf"))
    response = webhooks.post(TEST_TOPIC, {"id": 1})
    assert response.json()["status"] == "stored"
    assert WebhookDelivery.objects.get().shop_id == shop.pk


def test_a_new_shop_is_seen_at_once_and_a_deleted_one_forgotten(db, webhooks, handled):
    from tests.factories import ShopFactory

    assert (
        webhooks.post(TEST_TOPIC, {"id": 1}, shop_domain="new.myshopify.com").json()["status"]
        == "unknown_shop"
    )
    shop = ShopFactory(domain="new.myshopify.com")
    assert webhooks.post(TEST_TOPIC, {"id": 2}, shop_domain="new.myshopify.com").json()["status"] == "stored"
    shop.delete()
    assert (
        webhooks.post(TEST_TOPIC, {"id": 3}, shop_domain="new.myshopify.com").json()["status"]
        == "unknown_shop"
    )


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-11-23T05:00:00.123456Z", "2026-11-23T05:00:00.123456+00:00"),
        ("2026-11-23T12:00:00+07:00", "2026-11-23T12:00:00+07:00"),
        ("2026-11-23T05:00:00", "2026-11-23T05:00:00+00:00"),  # no offset: UTC, never a naive datetime
        ("yesterday", None),
        ("2026-13-45T99:00:00", None),
        ("", None),
    ],
)
def test_the_triggered_at_header_is_parsed_to_an_aware_time_or_none(value, expected):
    parsed = webhook_handlers.parse_triggered_at(value)
    assert (parsed.isoformat() if parsed else None) == expected


def test_a_deeply_nested_body_is_400_not_500(shop, webhooks, handled):
    response = webhooks.post(TEST_TOPIC, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400


@requires_postgres
@pytest.mark.parametrize("topic, expected", [(TEST_TOPIC, "off"), ("app/uninstalled", "on")])
def test_only_non_critical_deliveries_skip_the_wal_flush(shop, webhooks, handled, settings, topic, expected):
    # The test runs inside a transaction, so the transaction-local setting made by the INSERT is visible.
    from django.db import connection

    settings.INGRESS_ASYNC_COMMIT = True
    assert webhooks.post(topic, {"id": 1}).json()["status"] == "stored"
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == expected
