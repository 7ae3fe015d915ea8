"""End to end over real HTTP: the dev store signs and delivers webhooks to the app (live_server), the app
verifies, stores and processes them. Processing runs eagerly on commit inside the live server."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from retention_app.ingress.models import WebhookDelivery
from retention_app.shops.models import Shop
from shop_integrations.shopify.documents import load
from tests.factories import ShopFactory
from tests.fixtures.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _subscribe(devstore, shop_domain: str, topic: str, uri: str) -> None:
    token = devstore.control.grant_token(shop_domain)["access_token"]
    answer = devstore.control.graphql(
        shop_domain, token, load("webhook_subscription_create"), {"topic": topic, "uri": uri}
    ).json()
    assert answer["data"]["webhookSubscriptionCreate"]["userErrors"] == [], answer


def test_the_dev_store_uninstall_webhook_is_delivered_verified_and_processed(
    devstore_settings, devstore_shop, live_server
):
    devstore = devstore_settings
    shop = ShopFactory(domain=devstore_shop, installed_at=timezone.now() - dt.timedelta(days=1))
    bystander = ShopFactory(domain="rival.myshopify.com")
    _subscribe(devstore, devstore_shop, "APP_UNINSTALLED", f"{live_server.url}/webhooks/shopify")

    devstore.control.uninstall_app(devstore_shop)
    devstore.control.flush_webhooks()

    sent = devstore.control.webhooks(devstore_shop, "app/uninstalled")
    assert [(w["status"], w["last_status"]) for w in sent] == [("delivered", "200")]
    delivery = wait_until(
        lambda: WebhookDelivery.objects.filter(
            webhook_id=sent[0]["webhook_id"], status=WebhookDelivery.Status.PROCESSED
        ).first(),
        timeout=30,
        what="the delivery processed",
    )
    assert delivery.topic == "app/uninstalled"
    assert delivery.shop_id == shop.pk
    shop.refresh_from_db()
    assert shop.status == Shop.Status.UNINSTALLED
    bystander.refresh_from_db()
    assert bystander.status == Shop.Status.INSTALLED


def test_a_dev_store_signing_with_another_secret_is_refused(
    devstore_settings, devstore_shop, live_server, settings
):
    devstore = devstore_settings
    ShopFactory(domain=devstore_shop)
    settings.SHOPIFY_API_SECRET = "a-rotated-secret-the-store-does-not-know"
    _subscribe(devstore, devstore_shop, "APP_UNINSTALLED", f"{live_server.url}/webhooks/shopify")

    devstore.control.uninstall_app(devstore_shop)
    devstore.control.flush_webhooks()

    sent = devstore.control.webhooks(devstore_shop, "app/uninstalled")
    assert sent and all(w["last_status"] == "401" for w in sent)
    assert not WebhookDelivery.objects.exists()


def test_dev_store_orders_delivered_twice_are_stored_and_processed_once_then_redactable(
    devstore_settings, devstore_shop, live_server, settings
):
    import json

    import requests

    from retention_app.commerce.models import Customer, Order
    from shop_integrations.shopify.webhooks import sign_webhook_body
    from tests.ingress.test_compliance import find_personal_data

    devstore = devstore_settings
    ShopFactory(domain=devstore_shop)
    endpoint = f"{live_server.url}/webhooks/shopify"
    for topic in ("ORDERS_CREATE", "CUSTOMERS_CREATE"):
        _subscribe(devstore, devstore_shop, topic, endpoint)
    devstore.control.settings(webhook_mode={"duplicate": True})

    # Given: an order placed on the store; the store delivers every webhook twice (same webhook id).
    email = "e2e.buyer@example.com"
    order = devstore.control.place_order(devstore_shop, email=email, first_name="Kanya", last_name="Srisuk")
    devstore.control.flush_webhooks()

    sent = devstore.control.webhooks(devstore_shop, "orders/create")
    assert len(sent) == 2 and len({w["webhook_id"] for w in sent}) == 1
    stored = wait_until(
        lambda: WebhookDelivery.objects.filter(
            topic="orders/create", status=WebhookDelivery.Status.PROCESSED
        ).count(),
        timeout=30,
        what="orders/create processed",
    )
    assert stored == 1
    placed = Order.objects.get(shop__domain=devstore_shop)
    assert placed.email == email
    assert find_personal_data([email, "Srisuk"])  # it is there now, in commerce and in stored bodies

    # When: Shopify asks to erase that customer (sent over real HTTP, signed with the app secret).
    customer = Customer.objects.get(shop__domain=devstore_shop, email=email)
    order_id = order.get("id") or placed.platform_id
    body = json.dumps(
        {
            "shop_id": 1,
            "shop_domain": devstore_shop,
            "customer": {"id": int(customer.platform_id), "email": email, "phone": None},
            "orders_to_redact": [int(order_id)],
        }
    ).encode()
    response = requests.post(
        endpoint,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Shopify-Hmac-Sha256": sign_webhook_body(body, settings.SHOPIFY_API_SECRET),
            "X-Shopify-Topic": "customers/redact",
            "X-Shopify-Shop-Domain": devstore_shop,
            "X-Shopify-Webhook-Id": "e2e-redact-1",
        },
        timeout=10,
    )
    assert response.status_code == 200

    # Then: nothing personal about them is left anywhere.
    wait_until(
        lambda: WebhookDelivery.objects.filter(
            webhook_id="e2e-redact-1", status=WebhookDelivery.Status.PROCESSED
        ).exists(),
        timeout=30,
        what="customers/redact processed",
    )
    assert find_personal_data([email, "Srisuk", "Kanya"]) == []
