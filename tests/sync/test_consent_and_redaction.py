"""Compliance rules of the commerce upserts: consent is never silently re-subscribed (a newer local consent
change wins over an older store payload, whatever its updated_at), and a redacted customer's personal data
never comes back (webhooks, reconciliation pages, bulk batches)."""

import copy
import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from retention_app.commerce import services
from retention_app.commerce.models import Customer, Fulfillment, FulfillmentEvent, Order
from retention_app.ingress.services import customer_personal_data_erase
from shop_integrations.shopify import normalize
from tests.sync.conftest import load_fixture

pytestmark = pytest.mark.django_db

CUSTOMER_ID = "706405506930370084"
ORDER_ID = "820982911946154508"


def subscribed_customer(shop) -> Customer:
    services.customer_upsert(
        shop=shop, data=normalize.customer_from_rest(load_fixture("customers_create__subscribed.json"))
    )
    return Customer.objects.get(shop=shop, platform_id=CUSTOMER_ID)


def unsubscribe_through_boomerang(customer: Customer, at: dt.datetime) -> None:
    # What messaging.customer_unsubscribe writes (the write-back to the store has not happened yet).
    Customer.objects.filter(pk=customer.pk).update(
        marketing_state=Customer.MarketingState.UNSUBSCRIBED, marketing_state_updated_at=at
    )


def delayed_store_payload(**changes) -> dict:
    """A customers/update sent later than the unsubscribe (newer updated_at: a name change), but carrying
    the store's older consent (still subscribed since 2026-01-10)."""
    body = load_fixture("customers_create__subscribed.json")
    body["updated_at"] = "2026-03-05T00:00:00Z"
    body["first_name"] = "Ploy"
    body.update(changes)
    return body


def test_normalizers_carry_the_consent_timestamp():
    rest = normalize.customer_from_rest(load_fixture("customers_update__unsubscribed.json"))
    assert rest.marketing_state_updated_at == dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
    node = load_fixture("graphql_order__node.json")["customer"]
    gql = normalize.customer_from_graphql(node)
    assert gql.marketing_state == "SUBSCRIBED"
    assert gql.marketing_state_updated_at == dt.datetime(2026, 1, 10, 15, 0, tzinfo=dt.UTC)


def test_delayed_webhook_does_not_resubscribe_after_local_unsubscribe(shop):
    customer = subscribed_customer(shop)
    unsubscribe_through_boomerang(customer, dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    result = services.customer_upsert(shop=shop, data=normalize.customer_from_rest(delayed_store_payload()))
    customer.refresh_from_db()
    assert result.changed and customer.first_name == "Ploy"  # the rest of the payload is applied
    assert customer.marketing_state == "UNSUBSCRIBED"
    assert customer.marketing_state_updated_at == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def test_reconciliation_node_does_not_resubscribe(shop):
    customer = subscribed_customer(shop)
    unsubscribe_through_boomerang(customer, dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    node = copy.deepcopy(load_fixture("graphql_order__node.json")["customer"])
    node["updatedAt"] = "2026-03-05T00:00:00Z"
    services.customer_upsert(shop=shop, data=normalize.customer_from_graphql(node))
    assert Customer.objects.get(pk=customer.pk).marketing_state == "UNSUBSCRIBED"


def test_payload_without_consent_time_cannot_resubscribe_but_can_unsubscribe(shop):
    customer = subscribed_customer(shop)
    unsubscribe_through_boomerang(customer, dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    body = delayed_store_payload(accepts_marketing=True)
    body.pop("email_marketing_consent")
    services.customer_upsert(shop=shop, data=normalize.customer_from_rest(body))
    assert Customer.objects.get(pk=customer.pk).marketing_state == "UNSUBSCRIBED"
    # the other way round: locally subscribed, an undated "no" from the store lowers it
    Customer.objects.filter(pk=customer.pk).update(marketing_state="SUBSCRIBED")
    body = delayed_store_payload(accepts_marketing=False, updated_at="2026-03-06T00:00:00Z")
    body.pop("email_marketing_consent")
    services.customer_upsert(shop=shop, data=normalize.customer_from_rest(body))
    assert Customer.objects.get(pk=customer.pk).marketing_state == "NOT_SUBSCRIBED"


def test_newer_explicit_subscription_on_the_store_wins(shop):
    customer = subscribed_customer(shop)
    unsubscribe_through_boomerang(customer, dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    body = delayed_store_payload()
    body["email_marketing_consent"] = {"state": "subscribed", "consent_updated_at": "2026-03-04T00:00:00Z"}
    services.customer_upsert(shop=shop, data=normalize.customer_from_rest(body))
    customer.refresh_from_db()
    assert customer.marketing_state == "SUBSCRIBED"
    assert customer.marketing_state_updated_at == dt.datetime(2026, 3, 4, tzinfo=dt.UTC)


def test_order_with_embedded_old_consent_does_not_resubscribe(shop):
    customer = subscribed_customer(shop)
    unsubscribe_through_boomerang(customer, dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    body = load_fixture("orders_create__basic.json")
    body["updated_at"] = body["customer"]["updated_at"] = "2026-03-05T00:00:00Z"
    services.order_upsert(shop=shop, data=normalize.order_from_rest(body))
    assert Customer.objects.get(pk=customer.pk).marketing_state == "UNSUBSCRIBED"


@pytest.mark.parametrize("newer", [False, True])
def test_bulk_batch_follows_the_same_consent_rule(shop, newer):
    customer = subscribed_customer(shop)
    unsubscribe_through_boomerang(customer, dt.datetime(2026, 3, 2, tzinfo=dt.UTC))
    node = copy.deepcopy(load_fixture("graphql_order__node.json")["customer"])
    node["updatedAt"] = "2026-03-05T00:00:00Z"
    node["firstName"] = "Ploy"
    if newer:
        node["defaultEmailAddress"]["marketingUpdatedAt"] = "2026-03-04T00:00:00Z"
    batch = services.BulkBatch.empty()
    batch.customers.append(normalize.customer_from_graphql(node))
    services.commerce_bulk_write(shop_id=shop.pk, batch=batch)
    customer.refresh_from_db()
    assert customer.first_name == "Ploy"
    assert customer.marketing_state == ("SUBSCRIBED" if newer else "UNSUBSCRIBED")


# --- redaction ----------------------------------------------------------------------------------------


def redacted_store(shop):
    """Order, customer, fulfillment and a tracking event stored, then customers/redact processed."""
    services.order_upsert(
        shop=shop, data=normalize.order_from_rest(load_fixture("orders_create__basic.json"))
    )
    services.fulfillment_upsert(
        shop=shop, data=normalize.fulfillment_from_rest(load_fixture("fulfillments_create__basic.json"))
    )
    event = load_fixture("fulfillment_events_create__delivered.json")
    event["city"], event["province"] = "Bangkok", "Bangkok"
    services.fulfillment_event_upsert(shop=shop, data=normalize.fulfillment_event_from_rest(event))
    customer_personal_data_erase(
        shop=shop, webhook_id="redact-1", customer_platform_id=CUSTOMER_ID, order_platform_ids=[ORDER_ID]
    )
    customer = Customer.objects.get(shop=shop, platform_id=CUSTOMER_ID)
    order = Order.objects.get(shop=shop, platform_id=ORDER_ID)
    assert customer.redacted_at and order.redacted_at and customer.email == "" and order.email == ""
    return event


def assert_still_redacted(shop, total: Decimal | None = None):
    customer = Customer.objects.get(shop=shop, platform_id=CUSTOMER_ID)
    order = Order.objects.get(shop=shop, platform_id=ORDER_ID)
    assert (customer.email, customer.first_name, customer.last_name, customer.phone) == ("", "", "", "")
    assert customer.tags == [] and customer.locale == ""
    assert customer.marketing_state == "REDACTED"
    assert (order.email, order.customer_locale) == ("", "")
    assert order.customer_id == customer.pk  # ids kept
    if total is not None:
        assert order.total_price == total  # amounts still updated
    return customer, order


def test_later_webhooks_do_not_write_personal_data_back(shop):
    event = redacted_store(shop)
    body = load_fixture("orders_updated__refunded_item_removed.json")
    body["updated_at"] = body["customer"]["updated_at"] = timezone.now().isoformat()
    body["total_price"] = "999.00"
    body["customer"]["email_marketing_consent"] = {
        "state": "subscribed",
        "consent_updated_at": timezone.now().isoformat(),
    }
    services.order_upsert(shop=shop, data=normalize.order_from_rest(body))
    customer_body = load_fixture("customers_update__unsubscribed.json")
    customer_body["updated_at"] = timezone.now().isoformat()
    services.customer_upsert(shop=shop, data=normalize.customer_from_rest(customer_body))
    # a tracking event delivered again carries the address again
    event["message"] = "redelivered"
    services.fulfillment_event_upsert(shop=shop, data=normalize.fulfillment_event_from_rest(event))
    assert_still_redacted(shop, Decimal("999.00"))
    assert list(FulfillmentEvent.objects.values_list("city", "province")) == [("", "")]
    assert Fulfillment.objects.get().order.platform_id == ORDER_ID


def test_reconciliation_and_bulk_pages_do_not_write_personal_data_back(shop):
    redacted_store(shop)
    node = copy.deepcopy(load_fixture("graphql_order__node.json"))
    node["updatedAt"] = node["customer"]["updatedAt"] = timezone.now().isoformat()
    node["customer"]["defaultEmailAddress"]["marketingUpdatedAt"] = timezone.now().isoformat()
    node["totalPriceSet"] = {"shopMoney": {"amount": "777.00"}}
    services.order_upsert(shop=shop, data=normalize.order_from_graphql(node))  # reconciliation path
    assert_still_redacted(shop, Decimal("777.00"))
    node["updatedAt"] = node["customer"]["updatedAt"] = (timezone.now() + dt.timedelta(hours=1)).isoformat()
    node["totalPriceSet"] = {"shopMoney": {"amount": "888.00"}}
    batch = services.BulkBatch.empty()
    batch.customers.append(normalize.customer_from_graphql(node["customer"]))
    batch.orders.append(normalize.order_from_graphql(node))
    services.commerce_bulk_write(shop_id=shop.pk, batch=batch)  # backfill path (COPY on PostgreSQL)
    assert_still_redacted(shop, Decimal("888.00"))
