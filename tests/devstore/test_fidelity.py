"""Fidelity found running `make demo`: the shop's URL is the dev store's storefront (links the app builds
from it work), orders carry shop money in the shop's currency and the customer's currency only in the
presentment fields (REST bodies, GraphQL, bulk JSONL), and prices are plausible for each currency."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
import requests

from shop_integrations.devstore.control import DevStoreError
from tests.devstore.conftest import Admin
from tests.fixtures.processes import wait_until

DISCOUNT = """mutation($input: DiscountCodeBasicInput!) { discountCodeBasicCreate(basicCodeDiscount: $input) {
  codeDiscountNode { id } userErrors { message } } }"""
ORDER = """query($id: ID!) { order(id: $id) { currencyCode presentmentCurrencyCode
  totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
  subtotalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
  lineItems(first: 10) { nodes { quantity originalUnitPriceSet {
    shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } } } }
  customer { amountSpent { amount currencyCode } } } }"""
BULK_ORDERS = """{ orders { edges { node { id currencyCode presentmentCurrencyCode
  totalPriceSet { shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }
  lineItems { edges { node { id quantity originalUnitPriceSet {
    shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } } } } } } } } }"""


@pytest.fixture
def shop_in(devstore):
    """shop_in("THB") -> an Admin for a new shop selling in that currency."""
    made = []

    def make(currency: str, timezone: str = "Asia/Bangkok") -> Admin:
        domain = f"t-{uuid.uuid4().hex[:12]}.devstore.test"
        devstore.control.create_shop(domain, name="Tea", currency=currency, timezone=timezone)
        made.append(domain)
        return Admin(devstore, domain, devstore.control.grant_token(domain)["access_token"])

    yield make
    devstore.reset()


def D(value) -> Decimal:  # noqa: N802 (short helper for amounts)
    return Decimal(str(value))


# 1. the shop's URL is its storefront in the dev store ------------------------------------------------
def test_shop_url_is_the_reachable_storefront_and_app_built_links_work(admin, devstore):
    shop = admin.data("{ shop { url myshopifyDomain primaryDomain { host url } } }")["shop"]
    storefront = f"{devstore.base_url}/s/{admin.shop}"
    assert shop["url"] == storefront and shop["primaryDomain"]["url"] == storefront
    assert shop["primaryDomain"]["host"] == admin.shop == shop["myshopifyDomain"]

    created = admin.data(
        DISCOUNT,
        {
            "input": {
                "title": "Back",
                "code": "COMEBACK10",
                "startsAt": "2020-01-01T00:00:00Z",
                "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}},
            }
        },
    )
    assert created["discountCodeBasicCreate"]["userErrors"] == []
    browser = requests.Session()
    # the links the app writes: {storefront}/discount/CODE and {storefront}/products/{handle}
    landed = browser.get(f"{shop['url']}/discount/COMEBACK10", timeout=10)
    assert landed.status_code == 200 and landed.url.startswith(f"{storefront}/cart")
    assert "COMEBACK10" in landed.text
    product = browser.get(f"{shop['primaryDomain']['url']}/products/earl-grey", timeout=10)
    assert product.status_code == 200 and "Earl Grey" in product.text

    nodes = admin.data("{ products(first: 20) { nodes { handle onlineStoreUrl } } }")["products"]["nodes"]
    url = next(n["onlineStoreUrl"] for n in nodes if n["handle"] == "earl-grey")
    assert url == f"{storefront}/products/earl-grey"
    assert requests.get(url, timeout=10).status_code == 200


def test_rest_order_links_point_at_the_storefront(admin, devstore):
    order = admin.control.place_order(admin.shop, email="links@example.com", items=[{"handle": "earl-grey"}])
    storefront = f"{devstore.base_url}/s/{admin.shop}"
    assert order["order_status_url"].startswith(f"{storefront}/orders/")
    assert "https://" + admin.shop not in json.dumps(order)


# 2. shop money vs presentment money ---------------------------------------------------------------------
def test_order_in_another_currency_keeps_shop_money_in_the_shop_currency(shop_in):
    admin = shop_in("THB")
    order = admin.control.place_order(
        admin.shop,
        email="lan@example.com",
        locale="vi",  # pays in VND
        items=[{"handle": "jasmine-green-tea", "quantity": 2}, {"handle": "ceramic-teapot", "quantity": 1}],
    )
    # REST: currency/total_price/subtotal_price/total_discounts and shop_money in THB
    assert order["currency"] == "THB" and order["presentment_currency"] == "VND"
    items_thb = sum(D(li["price"]) * li["quantity"] for li in order["line_items"])
    assert D(order["total_price"]) == items_thb == D(order["total_price_set"]["shop_money"]["amount"])
    assert order["total_price_set"]["shop_money"]["currency_code"] == "THB"
    shown = order["total_price_set"]["presentment_money"]
    assert shown["currency_code"] == "VND"
    for li in order["line_items"]:
        assert li["price_set"]["shop_money"] == {"amount": li["price"], "currency_code": "THB"}
        assert li["price_set"]["presentment_money"]["currency_code"] == "VND"
    items_vnd = sum(
        D(li["price_set"]["presentment_money"]["amount"]) * li["quantity"] for li in order["line_items"]
    )
    assert D(shown["amount"]) == items_vnd
    # ~714 VND per THB (25000/35): the customer's amount is the shop amount converted, not the same number
    assert 600 < D(shown["amount"]) / D(order["total_price"]) < 830

    # GraphQL: currencyCode / shopMoney in THB, presentmentCurrencyCode / presentmentMoney in VND
    node = admin.data(ORDER, {"id": order["admin_graphql_api_id"]})["order"]
    assert node["currencyCode"] == "THB" and node["presentmentCurrencyCode"] == "VND"
    assert node["totalPriceSet"]["shopMoney"] == {"amount": order["total_price"], "currencyCode": "THB"}
    assert node["totalPriceSet"]["presentmentMoney"]["currencyCode"] == "VND"
    assert D(node["totalPriceSet"]["presentmentMoney"]["amount"]) == D(shown["amount"])
    assert {li["originalUnitPriceSet"]["shopMoney"]["currencyCode"] for li in node["lineItems"]["nodes"]} == {
        "THB"
    }
    assert node["customer"]["amountSpent"] == {"amount": order["total_price"], "currencyCode": "THB"}


def test_seeded_history_has_shop_money_in_the_shop_currency_in_graphql_and_bulk(shop_in):
    admin = shop_in("THB")
    admin.control.seed(admin.shop, customers=30, orders=120, months=3, seed=7)
    orders = admin.data(
        "{ orders(first: 120) { nodes { currencyCode presentmentCurrencyCode "
        "totalPriceSet { shopMoney { currencyCode } presentmentMoney { currencyCode } } } } }"
    )["orders"]["nodes"]
    assert {o["currencyCode"] for o in orders} == {"THB"}
    assert {o["totalPriceSet"]["shopMoney"]["currencyCode"] for o in orders} == {"THB"}
    presented = {o["presentmentCurrencyCode"] for o in orders}
    assert len(presented) >= 3 and "VND" in presented  # customers still pay in several currencies
    assert all(
        o["totalPriceSet"]["presentmentMoney"]["currencyCode"] == o["presentmentCurrencyCode"] for o in orders
    )
    spent = admin.data("{ customers(first: 30) { nodes { amountSpent { amount currencyCode } } } }")
    amounts = [c["amountSpent"] for c in spent["customers"]["nodes"]]
    assert {a["currencyCode"] for a in amounts} == {"THB"}
    # a repeat buyer's total is a THB total, not VND amounts added up (the "VIP who spent 2,493,571" bug)
    assert max(D(a["amount"]) for a in amounts) < 200_000

    started = admin.data(
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } "
        "userErrors { message } } }",
        {"q": BULK_ORDERS},
    )["bulkOperationRunQuery"]
    assert started["userErrors"] == []

    def finished():
        op = admin.data(
            "query($id: ID!) { bulkOperation(id: $id) { status url } }",
            {"id": started["bulkOperation"]["id"]},
        )["bulkOperation"]
        return op if op["status"] in ("COMPLETED", "FAILED") else None

    op = wait_until(finished, timeout=30, what="bulk export")
    assert op["status"] == "COMPLETED"
    lines = [json.loads(x) for x in requests.get(op["url"], timeout=10).text.splitlines()]
    rows = [r for r in lines if "__parentId" not in r]
    items = [r for r in lines if "__parentId" in r]
    assert len(rows) == 120 and items
    assert {r["currencyCode"] for r in rows} == {"THB"}
    assert {r["totalPriceSet"]["shopMoney"]["currencyCode"] for r in rows} == {"THB"}
    assert len({r["presentmentCurrencyCode"] for r in rows}) >= 3
    assert {i["originalUnitPriceSet"]["shopMoney"]["currencyCode"] for i in items} == {"THB"}
    for r in rows:
        assert r["totalPriceSet"]["presentmentMoney"]["currencyCode"] == r["presentmentCurrencyCode"]


# 3. prices plausible for the currency ---------------------------------------------------------------------
PRODUCTS = "{ products(first: 20) { nodes { handle variants(first: 1) { nodes { price } } } } }"


def prices(admin) -> dict[str, Decimal]:
    nodes = admin.data(PRODUCTS)["products"]["nodes"]
    return {n["handle"]: D(n["variants"]["nodes"][0]["price"]) for n in nodes}


def test_catalog_prices_are_plausible_for_the_shop_currency(shop_in, admin):
    usd = prices(admin)
    assert usd["jasmine-green-tea"] == D("12.50")  # the catalog's own prices in a USD shop
    thb = prices(shop_in("THB"))
    assert all(p >= 100 and p % 5 == 0 for p in thb.values()), thb  # no tea at ฿12.50
    assert 350 <= thb["jasmine-green-tea"] <= 500
    vnd = prices(shop_in("VND", "Asia/Ho_Chi_Minh"))
    assert all(p >= 100_000 and p % 1000 == 0 for p in vnd.values()), vnd  # large whole amounts
    jpy = prices(shop_in("JPY", "Asia/Tokyo"))
    assert all(p == p.to_integral_value() and p >= 500 for p in jpy.values()), jpy  # no decimals


def test_order_amounts_have_no_decimals_in_zero_decimal_currencies(shop_in):
    admin = shop_in("JPY", "Asia/Tokyo")
    admin.data(
        DISCOUNT,
        {
            "input": {
                "title": "Odd",
                "code": "ODD7",
                "startsAt": "2020-01-01T00:00:00Z",
                "customerGets": {"value": {"percentage": 0.07}, "items": {"all": True}},
            }
        },
    )
    order = admin.control.place_order(
        admin.shop,
        email="ha@example.com",
        locale="vi",
        discount_code="ODD7",
        items=[{"handle": "earl-grey", "quantity": 3}, {"handle": "tea-towel"}],
    )
    assert order["currency"] == "JPY" and order["presentment_currency"] == "VND"
    for key in ("total_price", "subtotal_price", "total_discounts"):
        assert D(order[key]) == D(order[key]).to_integral_value(), (key, order[key])
    for key in ("total_price_set", "subtotal_price_set", "total_discounts_set"):
        amount = D(order[key]["presentment_money"]["amount"])
        assert amount == amount.to_integral_value(), (key, amount)
    assert D(order["total_discounts"]) > 0
    assert D(order["total_price"]) == D(order["subtotal_price"])
    assert D(order["total_price"]) + D(order["total_discounts"]) == sum(
        D(li["price"]) * li["quantity"] for li in order["line_items"]
    )
    with pytest.raises(DevStoreError) as fractional:
        admin.control.refund_order(admin.shop, order["id"], amount="10.50")
    assert fractional.value.status == 400 and "no decimals" in str(fractional.value.body)
    refunded = admin.control.refund_order(admin.shop, order["id"], amount="100")
    assert D(refunded["current_total_price"]) == D(order["total_price"]) - 100
    shown = D(refunded["current_total_price_set"]["presentment_money"]["amount"])
    assert shown == shown.to_integral_value() and shown < D(
        order["total_price_set"]["presentment_money"]["amount"]
    )
    admin.control.seed(admin.shop, customers=10, orders=40, seed=5)
    totals = admin.data("{ orders(first: 50) { nodes { totalPriceSet { shopMoney { amount } } } } }")
    assert all(
        D(n["totalPriceSet"]["shopMoney"]["amount"])
        == D(n["totalPriceSet"]["shopMoney"]["amount"]).to_integral_value()
        for n in totals["orders"]["nodes"]
    )
