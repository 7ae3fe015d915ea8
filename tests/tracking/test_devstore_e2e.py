"""End to end with the dev store over real HTTP: an order placed and shipped on the store, synced the way
the webhook handlers do it (REST body normalized and upserted, events sent on commit), shows on the
tracking page; each new tracking event from the store shows at once; the store links lead to the store."""

from __future__ import annotations

import pytest
import requests
from django.utils import translation

from retention_app.commerce.services import fulfillment_event_upsert, fulfillment_upsert, order_upsert
from retention_app.tracking import presentation as P
from retention_app.tracking.selectors import storefront_base
from retention_app.tracking.services import tracking_page_path
from shop_integrations.shopify.normalize import (
    fulfillment_event_from_rest,
    fulfillment_from_rest,
    order_from_rest,
)
from tests.factories import ShopFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def h1(body: str) -> str:
    return body.split("<h1", 1)[1].split(">", 1)[1].split("</h1>", 1)[0].strip()


def test_page_follows_a_dev_store_shipment(devstore_settings, devstore_shop, client):
    control = devstore_settings.control
    shop = ShopFactory(domain=devstore_shop, name="Test Tea Shop", storefront_url="")
    buyer = control.create_customer(devstore_shop, email="ana@example.com", first_name="Ana")
    placed = control.place_order(devstore_shop, customer_id=buyer["id"])
    order_upsert(shop=shop, data=order_from_rest(placed))
    shipped = control.fulfill_order(
        devstore_shop,
        int(placed["id"]),
        tracking_number="1Z999E2E",
        tracking_url="https://ups.example/1Z999E2E",
    )
    # fulfillments/create (the order's own updated_at may not move within the same second)
    fulfillment = fulfillment_upsert(shop=shop, data=fulfillment_from_rest(shipped["fulfillment"])).obj
    order = fulfillment.order
    path = tracking_page_path(fulfillment)

    body = client.get(path).content.decode()
    assert "1Z999E2E" in body and order.name in body and 'href="https://ups.example/1Z999E2E"' in body

    for status in ("in_transit", "delayed", "out_for_delivery", "delivered"):
        event = control.add_tracking_event(
            devstore_shop, int(shipped["fulfillment"]["id"]), status=status, message=f"store says {status}"
        )["event"]
        fulfillment_event_upsert(shop=shop, data=fulfillment_event_from_rest(event))
        body = client.get(path).content.decode()
        with translation.override("en"):
            assert h1(body) == str(P.status_words(status.upper()))
        assert f"store says {status}" in body

    # The store links on the page lead to the store's real storefront.
    assert f'href="{storefront_base(shop)}/"' in body
    assert requests.get(storefront_base(shop) + "/", timeout=10).status_code == 200
