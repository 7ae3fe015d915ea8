"""discount_code_issue: exactly one code on the store per (shop, rule, customer, trigger), the input sent
to discountCodeBasicCreate, failures, the storefront URL, the order metafield."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
import time_machine
from django.db import connection, connections
from django.utils import timezone

from retention_app.discounts.models import DiscountCode
from retention_app.discounts.services import (
    DiscountCodeIssueError,
    PlatformRetryableError,
    discount_code_issue,
    discount_code_write_order_metafield,
)
from tests.conftest import requires_postgres
from tests.factories import CustomerFactory, OrderFactory


def issue(shop, customer, **overrides):
    kwargs = dict(
        shop=shop,
        customer=customer,
        rule_key="order_confirmation",
        trigger_key="order:5001",
        value_type="percentage",
        value=Decimal("15"),
        expires_in_days=30,
        minimum_order=Decimal("40.00"),
    )
    kwargs.update(overrides)
    return discount_code_issue(**kwargs)


@pytest.mark.django_db
def test_issue_creates_one_customer_bound_single_use_code(shop, fake_shopify):
    customer = CustomerFactory(shop=shop, platform_id="7001")
    with time_machine.travel(dt.datetime(2026, 11, 23, 5, 0, tzinfo=dt.UTC), tick=False):
        code = issue(shop, customer)

    assert code.status == DiscountCode.Status.ACTIVE
    assert code.platform_discount_id == "gid://shopify/DiscountCodeNode/1000"
    assert code.code.startswith("NEXT-") and len(code.code) == len("NEXT-") + 8
    assert code.expires_at == dt.datetime(2026, 12, 23, 5, 0, tzinfo=dt.UTC)
    assert code.currency == "USD"
    [sent] = fake_shopify.variables("discountCodeBasicCreate")
    data = sent["basicCodeDiscount"]
    assert data["code"] == code.code
    assert data["usageLimit"] == 1
    assert data["appliesOncePerCustomer"] is True
    assert data["context"] == {"customers": {"add": ["gid://shopify/Customer/7001"]}}
    assert data["customerGets"] == {"value": {"percentage": 0.15}, "items": {"all": True}}
    assert data["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "40"}}
    assert data["startsAt"].startswith("2026-11-23T05:00:00")
    assert data["endsAt"].startswith("2026-12-23T05:00:00")
    assert set(data["combinesWith"]) == {"orderDiscounts", "productDiscounts", "shippingDiscounts"}


@pytest.mark.django_db
def test_fixed_amount_and_no_minimum(shop, fake_shopify):
    customer = CustomerFactory(shop=shop)
    issue(
        shop,
        customer,
        rule_key="win_back",
        value_type="fixed_amount",
        value=Decimal("10.50"),
        minimum_order=None,
    )
    [sent] = fake_shopify.variables("discountCodeBasicCreate")
    assert sent["basicCodeDiscount"]["customerGets"]["value"] == {
        "discountAmount": {"amount": "10.5", "appliesOnEachItem": False}
    }
    assert "minimumRequirement" not in sent["basicCodeDiscount"]
    assert sent["basicCodeDiscount"]["code"].startswith("BACK-")


@pytest.mark.django_db
def test_calling_twice_returns_the_same_code_with_one_platform_call(shop, fake_shopify):
    customer = CustomerFactory(shop=shop)
    first = issue(shop, customer)
    second = issue(shop, customer)
    assert first.pk == second.pk and first.code == second.code
    assert fake_shopify.count("discountCodeBasicCreate") == 1
    assert DiscountCode.objects.count() == 1
    # Another trigger (a later order) is another code.
    third = issue(shop, customer, trigger_key="order:5002")
    assert third.code != first.code
    assert fake_shopify.count("discountCodeBasicCreate") == 2


@pytest.mark.django_db
def test_retry_after_a_lost_answer_adopts_the_code_already_on_the_store(shop, fake_shopify):
    """The store created the code but the answer never arrived: the retry must not create a second one."""
    customer = CustomerFactory(shop=shop)
    created = fake_shopify.handlers["discountCodeBasicCreate"]

    def lose_answer(variables):
        created(variables)  # the store did it …
        return (503, {"errors": "unavailable"})  # … but we only see a server error

    fake_shopify.handlers["discountCodeBasicCreate"] = lose_answer
    with pytest.raises(PlatformRetryableError):
        issue(shop, customer)
    row = DiscountCode.objects.get()
    assert row.status == DiscountCode.Status.PENDING
    assert len(fake_shopify.discounts) == 1

    fake_shopify.handlers["discountCodeBasicCreate"] = created
    code = issue(shop, customer)
    assert code.pk == row.pk and code.status == DiscountCode.Status.ACTIVE
    assert code.platform_discount_id == fake_shopify.discounts[code.code]
    assert len(fake_shopify.discounts) == 1  # still one discount on the store
    assert fake_shopify.count("codeDiscountNodeByCode") == 1


@pytest.mark.django_db
def test_store_refusal_is_permanent_and_recorded(shop, fake_shopify):
    customer = CustomerFactory(shop=shop)
    fake_shopify.handlers["discountCodeBasicCreate"] = lambda v: {
        "discountCodeBasicCreate": {
            "codeDiscountNode": None,
            "userErrors": [
                {"field": ["basicCodeDiscount", "endsAt"], "code": "INVALID", "message": "Ends at is bad"}
            ],
        }
    }
    with pytest.raises(DiscountCodeIssueError, match="Ends at is bad"):
        issue(shop, customer)
    row = DiscountCode.objects.get()
    assert row.status == DiscountCode.Status.FAILED
    assert "Ends at is bad" in row.last_error


@pytest.mark.django_db
def test_invalid_arguments_are_refused_before_anything_is_written(shop, other_shop, fake_shopify):
    theirs = CustomerFactory(shop=other_shop)
    with pytest.raises(ValueError):
        issue(shop, theirs)
    mine = CustomerFactory(shop=shop)
    with pytest.raises(ValueError):
        issue(shop, mine, value=Decimal("150"))
    with pytest.raises(ValueError):
        issue(shop, mine, value_type="free")
    assert DiscountCode.objects.count() == 0
    assert fake_shopify.calls == []


@pytest.mark.django_db
def test_shop_without_platform_connection_fails_cleanly(shop):
    shop.platform = shop.Platform.IMPORT
    shop.save()
    with pytest.raises(DiscountCodeIssueError):
        issue(shop, CustomerFactory(shop=shop))
    assert DiscountCode.objects.get().status == DiscountCode.Status.FAILED


@pytest.mark.django_db
def test_url_uses_the_storefront_or_the_store_base_url(shop, settings):
    customer = CustomerFactory(shop=shop)
    row = DiscountCode.objects.create(
        shop=shop,
        customer=customer,
        rule_key="win_back",
        trigger_key="t",
        code="BACK-7QX2KDAB",
        value_type="percentage",
        value=10,
        currency="USD",
        starts_at=timezone.now(),
    )
    shop.storefront_url = "https://acme-tea.example/"
    assert row.url == "https://acme-tea.example/discount/BACK-7QX2KDAB"
    shop.storefront_url = ""
    settings.SHOPIFY_STORE_URL_TEMPLATE = "http://127.0.0.1:8100/s/{shop}"
    assert row.url == "http://127.0.0.1:8100/s/acme.myshopify.com/discount/BACK-7QX2KDAB"


@pytest.mark.django_db
def test_order_metafield_write(shop, fake_shopify):
    customer = CustomerFactory(shop=shop)
    order = OrderFactory(shop=shop, customer=customer, platform_id="820982911946154508")
    code = issue(shop, customer)
    discount_code_write_order_metafield(order=order, discount_code=code)
    [sent] = fake_shopify.variables("metafieldsSet")
    assert sent["metafields"] == [
        {
            "ownerId": "gid://shopify/Order/820982911946154508",
            "namespace": "boomerang",
            "key": "next_order_code",
            "type": "single_line_text_field",
            "value": code.code,
        }
    ]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issue_makes_one_platform_call(shop, fake_shopify):
    """Two workers issue the same code at once: the second waits on the row lock while the first is in the
    platform call, then returns the same active code. One discountCodeBasicCreate in total."""
    customer = CustomerFactory(shop=shop)
    in_call, release = threading.Event(), threading.Event()
    created = fake_shopify.handlers["discountCodeBasicCreate"]

    def slow_create(variables):
        in_call.set()
        release.wait(timeout=30)
        return created(variables)

    fake_shopify.handlers["discountCodeBasicCreate"] = slow_create
    results: dict[str, DiscountCode] = {}
    errors: list[BaseException] = []

    def worker(name):
        try:
            results[name] = issue(shop, customer)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=worker, args=("first",))
    first.start()
    assert in_call.wait(timeout=30)
    second = threading.Thread(target=worker, args=("second",))
    second.start()

    def second_waits_on_a_lock():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            return cursor.fetchone()[0] >= 1

    from tests.fixtures.processes import wait_until

    wait_until(second_waits_on_a_lock, timeout=30, what="the second worker to wait on the row lock")
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert not errors
    assert results["first"].code == results["second"].code
    assert results["second"].status == DiscountCode.Status.ACTIVE
    assert fake_shopify.count("discountCodeBasicCreate") == 1
    assert DiscountCode.objects.count() == 1
