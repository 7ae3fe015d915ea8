"""Webhook delivery from the dev store to a tiny local HTTP receiver: real headers, HMAC over the raw body,
REST-shaped bodies, retries with backoff until 200, giving up, duplicates, and app/uninstalled."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fixtures.processes import wait_until


class Receiver:
    """Records every POST; answers the statuses queued in `.statuses` (then 200)."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server API)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/shopify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def topics(self) -> list[str]:
        with self.lock:
            return [r["headers"]["X-Shopify-Topic"] for r in self.received]

    def of(self, topic: str) -> list[dict]:
        with self.lock:
            return [r for r in self.received if r["headers"]["X-Shopify-Topic"] == topic]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def subscribe(admin, receiver, *topics: str) -> None:
    for topic in topics:
        result = admin.data(
            "mutation($t: WebhookSubscriptionTopic!, $u: String!) { webhookSubscriptionCreate(topic: $t, "
            "webhookSubscription: {uri: $u, format: JSON}) { userErrors { message } } }",
            {"t": topic, "u": receiver.url},
        )
        assert result["webhookSubscriptionCreate"]["userErrors"] == []


def independent_webhook_hmac(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_order_webhooks_have_shopify_headers_hmac_and_rest_body(admin, receiver, devstore):
    subscribe(admin, receiver, "ORDERS_CREATE", "ORDERS_PAID", "CUSTOMERS_CREATE")
    order = admin.control.place_order(
        admin.shop,
        email="Lan@Example.com",
        first_name="Lan",
        locale="vi",
        items=[{"handle": "earl-grey", "quantity": 2}],
        accepts_marketing=True,
    )
    assert admin.control.flush_webhooks()["pending"] == 0

    assert sorted(receiver.topics()) == ["customers/create", "orders/create", "orders/paid"]
    (delivery,) = receiver.of("orders/create")
    headers, body = delivery["headers"], delivery["body"]
    assert delivery["path"] == "/webhooks/shopify"
    assert hmac.compare_digest(
        headers["X-Shopify-Hmac-Sha256"], independent_webhook_hmac(body, devstore.api_secret)
    )
    assert headers["X-Shopify-Shop-Domain"] == admin.shop
    assert headers["X-Shopify-API-Version"] == "2026-01"
    assert (
        headers["X-Shopify-Webhook-Id"]
        and headers["X-Shopify-Event-Id"]
        and headers["X-Shopify-Triggered-At"]
    )
    assert headers["Content-Type"] == "application/json"

    payload = json.loads(body)
    assert payload["id"] == order["id"]
    assert payload["admin_graphql_api_id"] == f"gid://shopify/Order/{order['id']}"
    assert payload["name"].startswith("#") and payload["email"] == "lan@example.com"
    assert payload["currency"] == "USD" and payload["customer_locale"] == "vi"  # the shop's currency
    assert payload["presentment_currency"] == "VND"
    assert payload["financial_status"] == "paid" and payload["fulfillment_status"] is None
    assert payload["buyer_accepts_marketing"] is True
    assert payload["customer"]["email_marketing_consent"]["state"] == "subscribed"
    assert payload["line_items"][0]["quantity"] == 2 and payload["line_items"][0]["title"] == "Earl Grey"
    # REST times carry the shop's offset (America/New_York)
    assert payload["created_at"].endswith(("-05:00", "-04:00"))
    for key in (
        "total_price",
        "subtotal_price",
        "total_discounts",
        "discount_codes",
        "cancelled_at",
        "cancel_reason",
        "test",
        "updated_at",
        "fulfillments",
    ):
        assert key in payload


def test_fulfillment_and_tracking_webhooks(admin, receiver):
    subscribe(
        admin,
        receiver,
        "FULFILLMENTS_CREATE",
        "FULFILLMENTS_UPDATE",
        "FULFILLMENT_EVENTS_CREATE",
        "ORDERS_UPDATED",
        "ORDERS_CANCELLED",
    )
    ctl, shop = admin.control, admin.shop
    order = ctl.place_order(shop, email="f@example.com")
    done = ctl.fulfill_order(
        shop,
        order["id"],
        tracking_company="DHL Express",
        tracking_number="JD0001",
        estimated_delivery_at="2030-02-01T10:00:00Z",
    )
    ctl.add_tracking_event(
        shop,
        done["fulfillment"]["id"],
        status="out_for_delivery",
        city="Warsaw",
        country="PL",
        message="Courier is on the way",
    )
    other = ctl.place_order(shop, email="g@example.com")
    ctl.cancel_order(shop, other["id"], reason="customer")
    ctl.flush_webhooks()

    (created,) = [json.loads(d["body"]) for d in receiver.of("fulfillments/create")]
    assert created["order_id"] == order["id"] and created["tracking_company"] == "DHL Express"
    assert created["tracking_number"] == "JD0001" and created["tracking_numbers"] == ["JD0001"]
    assert created["tracking_urls"] == [created["tracking_url"]] and created["status"] == "success"
    (event,) = [json.loads(d["body"]) for d in receiver.of("fulfillment_events/create")]
    assert event["status"] == "out_for_delivery" and event["fulfillment_id"] == created["id"]
    assert event["order_id"] == order["id"] and event["city"] == "Warsaw" and event["happened_at"]
    (update,) = [json.loads(d["body"]) for d in receiver.of("fulfillments/update")]
    assert update["shipment_status"] == "out_for_delivery"
    (cancelled,) = [json.loads(d["body"]) for d in receiver.of("orders/cancelled")]
    assert cancelled["id"] == other["id"] and cancelled["cancel_reason"] == "customer"
    assert cancelled["cancelled_at"] and cancelled["financial_status"] == "refunded"


def test_failed_deliveries_are_retried_until_200(admin, receiver):
    subscribe(admin, receiver, "CUSTOMERS_UPDATE")
    customer = admin.control.create_customer(admin.shop, email="r@example.com")
    receiver.statuses = [500, 503]
    admin.control.set_consent(admin.shop, customer["id"], state="UNSUBSCRIBED")
    admin.control.flush_webhooks()

    attempts = receiver.of("customers/update")
    assert [a["status"] for a in attempts] == [500, 503, 200]
    assert len({a["headers"]["X-Shopify-Webhook-Id"] for a in attempts}) == 1  # same delivery, retried
    assert json.loads(attempts[-1]["body"])["email_marketing_consent"]["state"] == "unsubscribed"
    (row,) = admin.control.webhooks(admin.shop, topic="customers/update")
    assert row["status"] == "delivered" and row["attempts"] == 3


def test_delivery_gives_up_after_the_last_retry(admin, receiver):
    subscribe(admin, receiver, "CUSTOMERS_CREATE")
    receiver.statuses = [500] * 10
    admin.control.create_customer(admin.shop, email="gone@example.com")
    result = admin.control.flush_webhooks()
    assert result["pending"] == 0
    (row,) = admin.control.webhooks(admin.shop, topic="customers/create")
    assert row["status"] == "failed" and row["attempts"] == 4  # first try + 3 retries (test settings)
    assert admin.control.stats(admin.shop)["webhooks_failed"] == 1


def test_duplicate_mode_delivers_twice_with_the_same_id(admin, receiver):
    subscribe(admin, receiver, "CUSTOMERS_CREATE")
    admin.control.settings(webhook_mode={"duplicate": True})
    admin.control.create_customer(admin.shop, email="dup@example.com")
    admin.control.flush_webhooks()
    deliveries = receiver.of("customers/create")
    assert len(deliveries) == 2
    assert (
        deliveries[0]["headers"]["X-Shopify-Webhook-Id"] == deliveries[1]["headers"]["X-Shopify-Webhook-Id"]
    )


def test_reorder_mode_delivers_newest_first(admin, receiver):
    subscribe(admin, receiver, "CUSTOMERS_CREATE")
    admin.control.settings(webhook_mode={"reorder": True, "reorder_window": 1.0})
    for i in range(3):
        admin.control.create_customer(admin.shop, email=f"o{i}@example.com")
    admin.control.flush_webhooks()
    emails = [json.loads(d["body"])["email"] for d in receiver.of("customers/create")]
    assert emails == ["o2@example.com", "o1@example.com", "o0@example.com"]


def test_uninstall_fires_app_uninstalled_and_revokes(admin, receiver):
    subscribe(admin, receiver, "APP_UNINSTALLED")
    admin.control.uninstall_app(admin.shop)
    admin.control.flush_webhooks()
    (delivery,) = receiver.of("app/uninstalled")
    body = json.loads(delivery["body"])
    assert body["myshopify_domain"] == admin.shop and body["id"]
    assert admin.post("{ shop { name } }").status_code == 401


def test_bulk_finish_webhook(admin, receiver):
    subscribe(admin, receiver, "BULK_OPERATIONS_FINISH")
    admin.control.seed(admin.shop, customers=3, orders=4)
    op = admin.data(
        'mutation { bulkOperationRunQuery(query: "{ customers { edges { node { id email } } } }") '
        "{ bulkOperation { id } userErrors { message } } }"
    )["bulkOperationRunQuery"]["bulkOperation"]
    wait_until(lambda: receiver.of("bulk_operations/finish"), timeout=30, what="bulk_operations/finish")
    body = json.loads(receiver.of("bulk_operations/finish")[0]["body"])
    assert body["admin_graphql_api_id"] == op["id"]
    assert body["status"] == "completed" and body["type"] == "query" and body["error_code"] is None
    assert body["completed_at"] and body["created_at"]
