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
