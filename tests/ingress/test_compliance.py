"""Compliance topics end to end through the endpoint (processing runs eagerly on commit):
customers/data_request, customers/redact, shop/redact. Each leaves an audit record without personal data."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.apps import apps
from django.db import connection, models
from django.utils import timezone

from retention_app.commerce.models import Customer, FulfillmentEvent, Order
from retention_app.ingress.dispatch import TopicHandler
from retention_app.ingress.models import ComplianceAuditRecord, CustomerDataExport, WebhookDelivery
from retention_app.ingress.selectors import (
    compliance_audit_records_for_shop,
    customer_data_export_get,
    customer_data_exports_for_shop,
)
from retention_app.shops import events as shop_events
from retention_app.shops.models import Shop
from shop_integrations.shopify import webhook_handlers
from tests.factories import CustomerFactory, FulfillmentFactory, LineItemFactory, OrderFactory, ShopFactory
from tests.fixtures.shopify_payloads import load_payload

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "somchai.data@example.com", "+66811110001"
FIRST, LAST = "Somchai", "Rattanakul"
PERSONAL = [EMAIL, PHONE, FIRST, LAST]
OTHER = {"email": "ana.other@example.com", "first": "Ana", "last": "Kowalska", "phone": "+48600000002"}


def _as_other_customer(payload: dict) -> dict:
    """The same payload shape about another customer (other ids, other personal data)."""
    text = json.dumps(payload)
    for old, new in [
        (EMAIL, OTHER["email"]), (PHONE, OTHER["phone"]), (FIRST, OTHER["first"]), (LAST, OTHER["last"]),
        ("7001001", "7002002"), ("5001001", "5002001"), ("8001001", "8002002"), ("30001001", "30002001"),
    ]:  # fmt: skip
        text = text.replace(old, new)
    return json.loads(text)


@pytest.fixture
def stored_topics(monkeypatch):
    """Commerce topics are handled by issue 4; here a no-op handler makes them stored deliveries."""
    for topic in ("orders/create", "customers/create", "fulfillments/create"):
        monkeypatch.setitem(webhook_handlers.TOPIC_HANDLERS, topic, TopicHandler(lambda s, p, d: None))


@pytest.fixture
def deliver(webhooks, django_capture_on_commit_callbacks):
    """Post a signed delivery and run what is enqueued on commit (eager Celery), like a worker would."""

    def _deliver(topic, payload, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            response = webhooks.post(topic, payload, **kwargs)
        assert response.status_code == 200, response.content
        return response

    return _deliver


@pytest.fixture
def somchai(shop):
    """The customer who asks for their data / for erasure, with orders, items, shipments."""
    customer = CustomerFactory(
        shop=shop, platform_id="7001001", email=EMAIL, first_name=FIRST, last_name=LAST, phone=PHONE,
        tags=["vip"], locale="th", timezone="Asia/Bangkok",
    )  # fmt: skip
    first = OrderFactory(shop=shop, customer=customer, platform_id="5001001", customer_locale="th")
    second = OrderFactory(shop=shop, customer=customer, platform_id="5001002")
    guest = OrderFactory(shop=shop, customer=None, platform_id="5001003", email=EMAIL.upper())
    LineItemFactory(order=first, title="Jasmine Green Tea")
    fulfillment = FulfillmentFactory(order=first)
    FulfillmentEvent.objects.create(
        shop=shop, fulfillment=fulfillment, platform_id="1", status="IN_TRANSIT",
        happened_at=timezone.now(), city="Bangkok", province="Bangkok",
    )  # fmt: skip
    return customer, [first, second, guest]


@pytest.fixture
def ana(shop):
    """Another customer of the same shop: must be untouched."""
    customer = CustomerFactory(
        shop=shop, platform_id="7002002", email=OTHER["email"], first_name=OTHER["first"],
        last_name=OTHER["last"], phone=OTHER["phone"],
    )  # fmt: skip
    OrderFactory(shop=shop, customer=customer, platform_id="5002001")
    return customer


def _text_columns(model) -> list[str]:
    return [
        f.attname
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
    ]


def find_personal_data(needles: list[str]) -> list[tuple[str, int, str]]:
    """Every (model, pk, needle) where a text or JSON column of any model holds one of the needles."""
    hits = []
    tables = set(connection.introspection.table_names())
    for model in apps.get_models():
        if not model._meta.managed or model._meta.proxy or model._meta.db_table not in tables:
            continue
        columns = _text_columns(model)
        if not columns:
            continue
        for row in model._default_manager.values_list("pk", *columns):
            text = json.dumps([str(v) for v in row[1:]], ensure_ascii=False).lower()
            hits.extend((model._meta.label, row[0], n) for n in needles if n.lower() in text)
    return hits


# --- customers/data_request ----------------------------------------------------------------------------


def test_data_request_exports_everything_held_about_the_customer(shop, somchai, ana, deliver):
    def from_other_domain(sender, shop, customer, customer_platform_id, **kwargs):
        return {"section": "messaging", "data": {"emails_sent": 2, "to": customer.email}}

    shop_events.customer_data_export.connect(from_other_domain, dispatch_uid="test-export")
    try:
        deliver("customers/data_request", load_payload("customers/data_request"), webhook_id="dr-1")
    finally:
        shop_events.customer_data_export.disconnect(dispatch_uid="test-export")

    export = customer_data_exports_for_shop(shop=shop).get()
    assert export.webhook_id == "dr-1"
    assert export.customer_platform_id == "7001001"
    assert export.data_request_id == "9999"
    data = export.data
    assert [c["email"] for c in data["customers"]] == [EMAIL]
    assert data["customers"][0]["phone"] == PHONE
    assert sorted(o["platform_id"] for o in data["orders"]) == ["5001001", "5001002", "5001003"]
    first = next(o for o in data["orders"] if o["platform_id"] == "5001001")
    assert first["line_items"][0]["title"] == "Jasmine Green Tea"
    assert first["fulfillments"][0]["events"][0]["city"] == "Bangkok"
    # Every subscribed domain answers; ours is among them.
    assert {"section": "messaging", "data": {"emails_sent": 2, "to": EMAIL}} in data["sections"]
    # Nothing about Ana.
    assert OTHER["email"] not in json.dumps(data)

    record = ComplianceAuditRecord.objects.get(webhook_id="dr-1")
    assert record.outcome == ComplianceAuditRecord.Outcome.EXPORTED
    assert record.counts == {"customers": 1, "orders": 3, "sections": len(data["sections"])}
    assert not [
        n for n in PERSONAL if n.lower() in json.dumps(list(record.__dict__.values()), default=str).lower()
    ]


def test_a_data_export_is_visible_to_its_merchant_only(shop, other_shop, somchai, deliver):
    deliver("customers/data_request", load_payload("customers/data_request"))
    export = customer_data_exports_for_shop(shop=shop).get()
    assert customer_data_export_get(shop=shop, export_id=export.pk) == export
    assert customer_data_export_get(shop=other_shop, export_id=export.pk) is None
    assert not customer_data_exports_for_shop(shop=other_shop).exists()
    assert compliance_audit_records_for_shop(shop=shop).count() == 1
    assert not compliance_audit_records_for_shop(shop=other_shop).exists()


def test_a_redelivered_data_request_makes_one_export(shop, somchai, deliver):
    payload = load_payload("customers/data_request")
    deliver("customers/data_request", payload, webhook_id="dr-same")
    deliver("customers/data_request", payload, webhook_id="dr-same")
    assert CustomerDataExport.objects.count() == 1


def test_a_data_request_for_a_customer_we_never_saw_is_an_empty_export(shop, deliver):
    deliver("customers/data_request", load_payload("customers/data_request"))
    export = CustomerDataExport.objects.get()
    assert export.data["customers"] == [] and export.data["orders"] == []


# --- customers/redact ----------------------------------------------------------------------------------


def test_after_customers_redact_nothing_personal_about_the_customer_is_left_in_any_table(
    shop, somchai, ana, deliver, stored_topics
):
    # Given: deliveries, an earlier data export and commerce rows all carrying the customer's data.
    deliver("customers/create", load_payload("customers/create"))
    deliver("orders/create", load_payload("orders/create"))
    deliver("fulfillments/create", load_payload("fulfillments/create"))
    deliver("customers/data_request", load_payload("customers/data_request"))
    deliver("orders/create", _as_other_customer(load_payload("orders/create")), webhook_id="ana-order")
    assert {n for _, _, n in find_personal_data(PERSONAL)} == set(PERSONAL)  # the scan does see them

    redacted = []
    shop_events.customer_redact.connect(
        lambda sender, **kw: redacted.append((kw["customer_platform_id"], kw["customer"].email)),
        dispatch_uid="test-redact", weak=False,
    )  # fmt: skip
    try:
        # When
        deliver("customers/redact", load_payload("customers/redact"), webhook_id="redact-1")
    finally:
        shop_events.customer_redact.disconnect(dispatch_uid="test-redact")

    # Then: no table holds the email, phone or names of that customer ...
    assert find_personal_data(PERSONAL) == []
    # ... other domains were told (while the row still had its email, so they can find their rows) ...
    assert redacted == [("7001001", EMAIL)]
    # ... the rows stay for the metrics, marked redacted ...
    customer, orders = somchai
    customer.refresh_from_db()
    assert customer.redacted_at is not None
    assert customer.marketing_state == Customer.MarketingState.REDACTED
    assert customer.orders.count() == 2
    assert Order.objects.filter(pk__in=[o.pk for o in orders], redacted_at__isnull=False).count() == 3
    assert FulfillmentEvent.objects.get().city == ""
    assert CustomerDataExport.objects.get().redacted_at is not None
    # ... the other customer is untouched ...
    ana = Customer.objects.get(platform_id="7002002", shop=shop)
    assert (ana.email, ana.first_name, ana.phone) == (OTHER["email"], OTHER["first"], OTHER["phone"])
    assert ana.orders.get().email == OTHER["email"]
    ana_delivery = WebhookDelivery.objects.get(webhook_id="ana-order")
    assert ana_delivery.redacted_at is None and ana_delivery.payload["email"] == OTHER["email"]
    # ... and the audit record says what was done, without personal data.
    record = ComplianceAuditRecord.objects.get(webhook_id="redact-1")
    assert record.outcome == ComplianceAuditRecord.Outcome.REDACTED
    assert record.customer_platform_id == "7001001"
    assert record.counts["customers"] == 1
    assert record.counts["orders"] == 3
    assert record.counts["webhook_deliveries_scrubbed"] == 5  # 3 commerce + data_request + the redact itself
    assert record.counts["data_exports_erased"] == 1


def test_customers_redact_in_one_shop_never_touches_another_shop(shop, other_shop, somchai, deliver):
    twin = CustomerFactory(
        shop=other_shop, platform_id="7001001", email=EMAIL, first_name=FIRST, last_name=LAST, phone=PHONE
    )
    twin_order = OrderFactory(shop=other_shop, customer=twin, platform_id="5001001")
    deliver("customers/redact", load_payload("customers/redact"))
    twin.refresh_from_db()
    twin_order.refresh_from_db()
    assert (twin.email, twin.first_name, twin.phone, twin.redacted_at) == (EMAIL, FIRST, PHONE, None)
    assert twin_order.email == EMAIL and twin_order.redacted_at is None
    assert Customer.objects.get(shop=shop, platform_id="7001001").email == ""


def test_customers_redact_is_honoured_after_uninstall(shop, somchai, deliver):
    Shop.objects.filter(pk=shop.pk).update(status=Shop.Status.UNINSTALLED)
    deliver("customers/redact", load_payload("customers/redact"))
    assert Customer.objects.get(platform_id="7001001").email == ""


def test_a_redact_payload_without_customer_fails_visibly(shop, deliver):
    deliver("customers/redact", {"shop_id": 1, "shop_domain": shop.domain}, webhook_id="broken")
    delivery = WebhookDelivery.objects.get(webhook_id="broken")
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert "no customer" in delivery.last_error


# --- shop/redact -----------------------------------------------------------------------------------------


def test_shop_redact_deletes_all_of_the_shops_data_and_nothing_else(shop, other_shop, somchai, deliver):
    rival_customer = CustomerFactory(shop=other_shop)
    OrderFactory(shop=other_shop, customer=rival_customer)
    Shop.objects.filter(pk=shop.pk).update(
        status=Shop.Status.UNINSTALLED, uninstalled_at=timezone.now() - dt.timedelta(hours=48)
    )

    deliver("shop/redact", load_payload("shop/redact"), webhook_id="shop-redact-1")

    assert not Shop.objects.filter(domain=shop.domain).exists()
    for model in (Customer, Order, WebhookDelivery, FulfillmentEvent):
        assert not model.objects.filter(shop_id=shop.pk).exists(), model
    assert Shop.objects.filter(pk=other_shop.pk).exists()
    assert Customer.objects.filter(shop=other_shop).count() == 1
    assert Order.objects.filter(shop=other_shop).count() == 1
    record = ComplianceAuditRecord.objects.get(webhook_id="shop-redact-1")
    assert record.outcome == ComplianceAuditRecord.Outcome.SHOP_DELETED
    assert record.shop_domain == "acme.myshopify.com"
    assert record.counts["commerce.Customer"] == 1
    assert record.counts["commerce.Order"] == 3
    assert find_personal_data(PERSONAL) == []


def test_a_redelivered_shop_redact_after_deletion_is_answered_and_recorded_once(shop, deliver):
    deliver("shop/redact", load_payload("shop/redact"), webhook_id="shop-redact-1")
    response = deliver("shop/redact", load_payload("shop/redact"), webhook_id="shop-redact-1")
    assert response.json()["status"] == "unknown_shop"
    assert ComplianceAuditRecord.objects.filter(webhook_id="shop-redact-1").count() == 1


def test_shop_redact_for_another_shop_leaves_this_one_alone(shop, other_shop, deliver):
    ShopFactory(domain="third.myshopify.com")
    deliver(
        "shop/redact", {"shop_id": 2, "shop_domain": "third.myshopify.com"}, shop_domain="third.myshopify.com"
    )
    assert set(Shop.objects.values_list("domain", flat=True)) == {shop.domain, other_shop.domain}
