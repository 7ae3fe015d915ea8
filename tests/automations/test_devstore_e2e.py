"""End to end with the dev store (real HTTP), a real Celery worker and a real SMTP server.

Store events reach commerce exactly as the webhook handlers feed it (the REST body normalized and upserted);
the engine schedules, the worker issues codes on the dev store and sends the emails:
- an order confirmation carries a single-use code that the dev store's checkout accepts once and refuses
  the second time;
- fulfillment status changes produce one shipping email each;
- a lapsed customer gets the win-back with a code of their own.
"""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from retention_app.automations import services
from retention_app.automations.models import Message
from retention_app.commerce.services import fulfillment_event_upsert, fulfillment_upsert, order_upsert
from retention_app.shops.services import AccessGrant, shop_credential_store
from shop_integrations.devstore.control import DevStoreError
from shop_integrations.shopify.normalize import (
    fulfillment_event_from_rest,
    fulfillment_from_rest,
    order_from_rest,
)
from tests.automations.conftest import only
from tests.factories import ShopFactory
from tests.fixtures.processes import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker_env(devstore_settings, monkeypatch):
    """The worker subprocess reads its settings from the environment: point it at the dev store."""
    monkeypatch.setenv("SHOPIFY_STORE_URL_TEMPLATE", devstore_settings.store_url_template)
    monkeypatch.setenv("SHOPIFY_DEV_SHOP_SUFFIX", ".devstore.test")
    return devstore_settings


# Codes and unsubscribe links are the real ones here (tests/automations/conftest.py fakes them otherwise).
REAL_BUILDING_BLOCKS = True


def sync_order(shop, payload: dict):
    """What the orders/* webhook handlers do with the body."""
    return order_upsert(shop=shop, data=order_from_rest(payload)).obj


def run_until_handled(what: str) -> None:
    services.messages_dispatch()
    wait_until(
        lambda: not Message.objects.filter(status__in=["scheduled", "sending"]).exists(),
        timeout=90,
        what=what,
    )


def test_codes_shipping_and_win_back_against_the_dev_store(
    worker_env, devstore_shop, smtp_server, celery_worker
):
    devstore = worker_env
    control = devstore.control
    local_shop = ShopFactory(domain=devstore_shop, name="Test Tea Shop", storefront_url="")
    token = control.grant_token(devstore_shop)["access_token"]
    shop_credential_store(shop=local_shop, grant=AccessGrant(access_token=token, scopes="write_discounts"))
    rules = {r.key: r for r in services.rules_install_defaults(shop=local_shop)}
    services.shop_settings_update(
        shop=local_shop, data={"quiet_hours_enabled": False, "frequency_cap_hours": 0}
    )
    only(rules, "order_confirmation", "shipping_update", "win_back")

    # --- order confirmation with a next-order code --------------------------------------------------------
    store_customer = control.create_customer(devstore_shop, email="ana@example.com", first_name="Ana")
    placed = control.place_order(devstore_shop, customer_id=store_customer["id"], accepts_marketing=True)
    order = sync_order(local_shop, placed)
    sync_order(local_shop, placed)  # the webhook again
    run_until_handled("order confirmation")
    confirmation = Message.objects.get(rule__key="order_confirmation")
    assert confirmation.status == "sent", confirmation.reason
    assert confirmation.discount_code is not None and confirmation.discount_code.status == "active"
    code = confirmation.discount_code.code
    wait_until(lambda: smtp_server.to("ana@example.com"), timeout=10, what="confirmation email")
    email = smtp_server.to("ana@example.com")[0]
    text = email.get_body(("plain",)).get_content()
    assert code in text and f"/discount/{code}" in text
    assert order.name in email["Subject"] or order.name in text

    accepted = control.place_order(devstore_shop, customer_id=store_customer["id"], discount_code=code)
    assert [d["code"].upper() for d in accepted["discount_codes"]] == [code]
    with pytest.raises(DevStoreError) as refused:
        control.place_order(devstore_shop, customer_id=store_customer["id"], discount_code=code)
    assert refused.value.status == 400

    # --- shipping updates: one email per status change ---------------------------------------------------
    smtp_server.messages.clear()
    shipped = control.fulfill_order(devstore_shop, int(placed["id"]), tracking_number="1Z999")
    # fulfillments/create (the orders/fulfilled body may carry the same updated_at second as the last one)
    fulfillment_upsert(shop=local_shop, data=fulfillment_from_rest(shipped["fulfillment"]))
    fulfillment_id = int(shipped["fulfillment"]["id"])
    for status in ("in_transit", "out_for_delivery", "delivered"):
        event = control.add_tracking_event(devstore_shop, fulfillment_id, status=status)["event"]
        for _ in range(2):  # fulfillment_events/create, delivered twice
            fulfillment_event_upsert(shop=local_shop, data=fulfillment_event_from_rest(event))
    run_until_handled("shipping emails")
    shipping = Message.objects.filter(rule__key="shipping_update")
    keys = sorted(re.sub(r"^fulfillment:\d+:", "", k) for k in shipping.values_list("trigger_key", flat=True))
    assert keys == ["DELIVERED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "SHIPPED"]
    assert set(shipping.values_list("status", flat=True)) == {"sent"}
    wait_until(lambda: len(smtp_server.to("ana@example.com")) == 4, timeout=10, what="4 shipping emails")
    assert all(m["List-Unsubscribe"] is None for m in smtp_server.to("ana@example.com"))

    # --- win-back: a customer whose last order is 200 days old -------------------------------------------
    smtp_server.messages.clear()
    lapsed = control.create_customer(devstore_shop, email="bo@example.com", first_name="Bo")
    old = control.place_order(
        devstore_shop, customer_id=lapsed["id"], accepts_marketing=True,
        created_at=(timezone.now() - dt.timedelta(days=200)).isoformat(),
    )  # fmt: skip
    sync_order(local_shop, old)
    assert not Message.objects.filter(customer__email="bo@example.com").exists()  # too old for order rules
    assert services.winback_schedule_lapsed(shop=local_shop) == 1
    assert services.winback_schedule_lapsed(shop=local_shop) == 0
    run_until_handled("win-back")
    win_back = Message.objects.get(rule__key="win_back")
    assert win_back.status == "sent", win_back.reason
    assert win_back.trigger_key == f"winback:{old['id']}"
    wait_until(lambda: smtp_server.to("bo@example.com"), timeout=10, what="win-back email")
    winback_email = smtp_server.to("bo@example.com")[0]
    assert win_back.discount_code.code in winback_email.get_body(("plain",)).get_content()
    assert winback_email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
