"""The storefront over real HTTP: products, cart, /discount/CODE applying the code, checkout placing the
order (with the code checked), CSRF and no open redirect; plus the CLI and the control page."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import requests

from tests.fixtures.devstore import ROOT

DISCOUNT = """mutation($input: DiscountCodeBasicInput!) { discountCodeBasicCreate(basicCodeDiscount: $input) {
  codeDiscountNode { id } userErrors { message } } }"""


def make_code(admin, code, **extra):
    result = admin.data(
        DISCOUNT,
        {
            "input": {
                "title": code,
                "code": code,
                "startsAt": "2020-01-01T00:00:00Z",
                "customerGets": {"value": {"percentage": 0.2}, "items": {"all": True}},
                **extra,
            }
        },
    )
    assert result["discountCodeBasicCreate"]["userErrors"] == []


def checkout(browser, base, email):
    form = browser.get(f"{base}/checkout", timeout=10)
    assert form.status_code == 200
    token = re.search(r"name='csrf' value='([^']+)'", form.text).group(1)
    return browser.post(
        f"{base}/checkout",
        data={"csrf": token, "email": email, "first_name": "Mai", "locale": "th", "accepts_marketing": "1"},
        timeout=10,
    )


def test_customer_journey_with_discount_link(admin):
    make_code(admin, "WELCOME20", appliesOncePerCustomer=True)
    base = admin.control.store_url(admin.shop)
    browser = requests.Session()

    home = browser.get(f"{base}/", timeout=10)
    assert home.status_code == 200 and "/products/gift-box" in home.text
    assert "Add to cart" in browser.get(f"{base}/products/gift-box", timeout=10).text
    added = browser.post(f"{base}/cart/add", data={"handle": "gift-box", "quantity": "2"}, timeout=10)
    assert added.status_code == 200 and "Tasting Gift Box" in added.text  # followed to /cart

    applied = browser.get(f"{base}/discount/WELCOME20", allow_redirects=False, timeout=10)
    assert applied.status_code == 302 and applied.headers["Location"].endswith(f"/s/{admin.shop}/cart")
    cart = browser.get(f"{base}/cart", timeout=10).text
    assert "id='discount-code'>WELCOME20" in cart
    assert "id='discount-amount'>15.60" in cart and "id='total'>62.40" in cart

    done = checkout(browser, base, "mai@example.com")
    assert done.status_code == 200, done.text
    assert "id='total'>62.40" in done.text
    name = re.search(r"id='order-name'>([^<]+)<", done.text).group(1)
    (order,) = [
        o
        for o in admin.data("{ orders(first: 5) { nodes { name discountCodes customerLocale } } }")["orders"][
            "nodes"
        ]
        if o["name"] == name
    ]
    assert order == {"name": name, "discountCodes": ["WELCOME20"], "customerLocale": "th"}

    # the same buyer cannot use the code twice
    browser.post(f"{base}/cart/add", data={"handle": "earl-grey"}, timeout=10)
    browser.get(f"{base}/discount/WELCOME20", timeout=10)
    again = checkout(browser, base, "mai@example.com")
    assert again.status_code == 400 and "already used" in again.text


def test_discount_redirect_stays_in_the_shop(admin):
    base = admin.control.store_url(admin.shop)
    for target, expected in (
        ("/products/earl-grey", "/products/earl-grey"),
        ("//evil.example", "/cart"),
        ("https://evil.example/", "/cart"),
    ):
        resp = requests.get(
            f"{base}/discount/ANY", params={"redirect": target}, allow_redirects=False, timeout=10
        )
        assert resp.headers["Location"] == f"/s/{admin.shop}{expected}"


def test_checkout_requires_csrf_token(admin):
    base = admin.control.store_url(admin.shop)
    browser = requests.Session()
    browser.post(f"{base}/cart/add", data={"handle": "earl-grey"}, timeout=10)
    resp = browser.post(f"{base}/checkout", data={"email": "x@example.com"}, timeout=10)
    assert resp.status_code == 403
    assert admin.control.stats(admin.shop)["orders"] == 0


def test_unknown_shop_and_product_are_404(admin, devstore):
    assert requests.get(f"{devstore.base_url}/s/nope.devstore.test/", timeout=10).status_code == 404
    assert requests.get(f"{admin.control.store_url(admin.shop)}/products/nope", timeout=10).status_code == 404


def test_cli_actions_and_control_page(admin, devstore):
    def cli(*args):
        out = subprocess.run(
            [sys.executable, "-m", "shop_integrations.devstore", *args, "--base-url", devstore.base_url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(out.stdout)

    seeded = cli("seed", "--shop", admin.shop, "--json", '{"customers": 5, "orders": 12}')
    assert seeded["orders"] == 12 and seeded["customers"] == 5
    order = cli("place-order", "--shop", admin.shop, "--json", '{"email": "cli@example.com"}')
    cancelled = cli("cancel-order", "--shop", admin.shop, "--json", json.dumps({"order_id": order["id"]}))
    assert cancelled["cancelled_at"] and cancelled["cancel_reason"] == "customer"
    assert cli("stats", "--shop", admin.shop)["orders"] == 13

    page = requests.get(f"{devstore.base_url}/_devstore/", timeout=10)
    assert page.status_code == 200 and admin.shop in page.text


def test_control_api_rejects_bad_input(devstore):
    ctl = devstore.control
    for body in (
        {"domain": "evil.com"},
        {"domain": "x.devstore.test", "currency": "XXX"},
        {"domain": "y.devstore.test", "timezone": "Mars/Base"},
    ):
        resp = requests.post(f"{devstore.base_url}/_devstore/shops", json=body, timeout=10)
        assert resp.status_code == 400, body
    resp = requests.post(f"{devstore.base_url}/_devstore/settings", json={"nope": 1}, timeout=10)
    assert resp.status_code == 400
    shop = "t-bad-input.devstore.test"
    ctl.create_shop(shop)
    resp = requests.post(
        f"{devstore.base_url}/_devstore/shops/{shop}/orders",
        json={"items": [{"handle": "x"}], "email": "a@b.c"},
        timeout=10,
    )
    assert resp.status_code == 400 and "unknown product" in resp.json()["errors"]
    resp = requests.post(f"{devstore.base_url}/_devstore/shops/{shop}/cancel/999999", json={}, timeout=10)
    assert resp.status_code == 404


def test_control_page_drives_store_actions(admin, devstore):
    browser = requests.Session()
    url = f"{devstore.base_url}/_devstore/ui/{admin.shop}"
    page = browser.get(url, timeout=10)
    assert page.status_code == 200 and "Place order" in page.text
    token = re.search(r"name='csrf' value='([^']+)'", page.text).group(1)

    placed = browser.post(
        url,
        data={
            "csrf": token,
            "action": "orders",
            "email": "ui@example.com",
            "handle": "earl-grey",
            "quantity": "2",
        },
        timeout=10,
    )
    assert placed.status_code == 200 and "orders done" in placed.text
    (order,) = admin.data(
        "{ orders(first: 5) { nodes { id name lineItems(first: 5) { nodes { quantity } } } } }"
    )["orders"]["nodes"]
    assert order["lineItems"]["nodes"] == [{"quantity": 2}]
    order_id = order["id"].rsplit("/", 1)[1]
    fulfilled = browser.post(
        url,
        data={
            "csrf": token,
            "action": "fulfill",
            "obj_id": order_id,
            "tracking_company": "UPS",
            "tracking_number": "1ZUI",
        },
        timeout=10,
    )
    assert "fulfill done" in fulfilled.text and "1ZUI" in fulfilled.text

    forged = browser.post(url, data={"csrf": "nope", "action": "uninstall"}, timeout=10)
    assert forged.status_code == 403
    refused = browser.post(url, data={"csrf": token, "action": "cancel", "obj_id": "999999"}, timeout=10)
    assert "cancel refused" in refused.text
