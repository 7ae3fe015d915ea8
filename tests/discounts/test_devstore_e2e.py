"""End-to-end against the dev store over real HTTP (no mocks): a code issued through the real flow is
accepted by the store's checkout once and refused the second time; the order metafield is written; an
unsubscribe is written back to the store."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from retention_app.commerce.events import order_upserted
from retention_app.commerce.models import Customer
from retention_app.discounts.models import DiscountCode
from retention_app.discounts.services import discount_code_issue, discount_code_write_order_metafield
from retention_app.messaging.unsubscribe import unsubscribe_url
from retention_app.shops.services import AccessGrant, shop_credential_store
from shop_integrations.devstore.control import DevStoreError
from tests.factories import CustomerFactory, OrderFactory, ShopFactory

pytestmark = [pytest.mark.e2e]
# The dev store's Admin mutations (discounts, consent, metafields) and checkout arrive with the dev store
# work; until they are in the tree these tests skip instead of failing.
pytest.importorskip("shop_integrations.devstore.mutations")
pytest.importorskip("shop_integrations.devstore.commerce")


@pytest.fixture
def connected_shop(devstore_settings, devstore_shop):
    """The app's Shop row for a fresh dev-store shop, with a real access token from the dev store."""
    shop = ShopFactory(domain=devstore_shop, name="Test Tea Shop", storefront_url="")
    token = devstore_settings.control.grant_token(devstore_shop)["access_token"]
    shop_credential_store(shop=shop, grant=AccessGrant(access_token=token, scopes="write_discounts"))
    return shop


def store_customer(devstore, shop, email):
    payload = devstore.control.create_customer(shop.domain, email=email, first_name="Ana", locale="pl")
    return CustomerFactory(shop=shop, platform_id=str(payload["id"]), email=email, locale="pl")


@pytest.mark.django_db
def test_issued_code_is_accepted_once_then_refused(devstore_settings, connected_shop):
    devstore = devstore_settings
    customer = store_customer(devstore, connected_shop, "ana@example.com")
    kwargs = dict(
        shop=connected_shop,
        customer=customer,
        rule_key="order_confirmation",
        trigger_key="order:1",
        value_type="percentage",
        value=Decimal("15"),
        expires_in_days=30,
        minimum_order=None,
    )
    code = discount_code_issue(**kwargs)
    again = discount_code_issue(**kwargs)  # a retry: nothing new on the store
    assert again.code == code.code and code.status == DiscountCode.Status.ACTIVE
    on_store = [d for d in devstore.control.discounts(connected_shop.domain) if d.get("code") == code.code]
    assert len(on_store) == 1
    assert len(devstore.control.discounts(connected_shop.domain)) == 1
    assert code.url == f"{devstore.store_url(connected_shop.domain)}/discount/{code.code}"

    order = devstore.control.place_order(
        connected_shop.domain, customer_id=int(customer.platform_id), discount_code=code.code
    )
    assert [d["code"].upper() for d in order["discount_codes"]] == [code.code]
    with pytest.raises(DevStoreError) as refused:
        devstore.control.place_order(
            connected_shop.domain, customer_id=int(customer.platform_id), discount_code=code.code
        )
    assert refused.value.status == 400

    # Another customer cannot use it either (bound to the customer).
    other = store_customer(devstore, connected_shop, "bob@example.com")
    code2 = discount_code_issue(**{**kwargs, "trigger_key": "order:2"})
    with pytest.raises(DevStoreError):
        devstore.control.place_order(
            connected_shop.domain, customer_id=int(other.platform_id), discount_code=code2.code
        )

    # Redemption attribution from the order as the app stores it.
    local_order = OrderFactory(
        shop=connected_shop,
        customer=customer,
        platform_id=str(order["id"]),
        discount_codes=[d["code"] for d in order["discount_codes"]],
    )
    order_upserted.send(sender=None, order=local_order, created=True, was_cancelled=False)
    code.refresh_from_db()
    assert code.status == DiscountCode.Status.REDEEMED and code.redeemed_order == local_order

    # The code as an order metafield, readable from the store.
    discount_code_write_order_metafield(order=local_order, discount_code=code2)
    token = devstore.control.grant_token(connected_shop.domain)["access_token"]
    answer = devstore.control.graphql(
        connected_shop.domain,
        token,
        'query($id: ID!) { order(id: $id) { metafield(namespace: "boomerang", key: "next_order_code")'
        " { value } } }",
        {"id": f"gid://shopify/Order/{order['id']}"},
    ).json()
    assert answer["data"]["order"]["metafield"]["value"] == code2.code


@pytest.mark.django_db(transaction=True)
def test_unsubscribe_is_written_back_to_the_store(devstore_settings, connected_shop):
    devstore = devstore_settings
    customer = store_customer(devstore, connected_shop, "cleo@example.com")
    assert (
        devstore.control.customer(connected_shop.domain, int(customer.platform_id))[
            "email_marketing_consent"
        ]["state"]
        == "subscribed"
    )
    path = "/" + unsubscribe_url(customer).split("://", 1)[1].split("/", 1)[1]
    response = Client().post(
        path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.marketing_state == Customer.MarketingState.UNSUBSCRIBED
    # CELERY_TASK_ALWAYS_EAGER: the write-back ran on commit, over real HTTP.
    consent = devstore.control.customer(connected_shop.domain, int(customer.platform_id))[
        "email_marketing_consent"
    ]
    assert consent["state"] == "unsubscribed"
