"""Order lookup: right pair redirects, every wrong pair gets the same answer, CSRF, rate limits."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from retention_app.tracking.services import tracking_page_path
from tests.factories import OrderFactory
from tests.tracking.conftest import make_shipment

pytestmark = pytest.mark.django_db
URL = "/t/lookup/acme.myshopify.com/"


@pytest.fixture
def order_shipment(shop):
    return make_shipment(shop, name="#1042", customer_kwargs={"email": "ana@example.com"})


def lookup(client, number, email, ip="10.0.0.1"):
    return client.post(URL, {"order_number": number, "email": email}, REMOTE_ADDR=ip)


def test_form_renders_with_csrf_token(client, shop):
    r = client.get(URL)
    assert r.status_code == 200 and b"csrfmiddlewaretoken" in r.content and b"<form" in r.content


@pytest.mark.parametrize(("number", "email"), [("#1042", "ana@example.com"), ("1042", " Ana@Example.COM ")])
def test_right_pair_redirects_to_the_page(client, order_shipment, number, email):
    r = lookup(client, number, email)
    assert r.status_code == 302 and r["Location"] == tracking_page_path(order_shipment)


def test_every_wrong_pair_gets_the_same_answer(client, shop, other_shop, order_shipment):
    OrderFactory(shop=other_shop, name="#2001", email="rival@example.com")
    answers = set()
    for number, email in [
        ("#1042", "wrong@example.com"),  # existing order, wrong email
        ("#9999", "ana@example.com"),  # no such order, a real customer's email
        ("#9999", "nobody@example.com"),  # nothing right
        ("#2001", "rival@example.com"),  # right pair, but of another shop
    ]:
        r = lookup(client, number, email)
        # The only differences allowed: the echoed order number and the per-response masked CSRF token.
        body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", r.content.decode())
        body = body.replace(f'value="{number}"', 'value="NUMBER"')
        answers.add((r.status_code, body))
        assert "We could not find an order" in r.content.decode()
    assert len(answers) == 1


def test_csrf_is_enforced(shop, order_shipment):
    client = Client(enforce_csrf_checks=True)
    r = client.post(URL, {"order_number": "#1042", "email": "ana@example.com"})
    assert r.status_code == 403


def test_unknown_shop_is_404(client, db):
    assert client.get("/t/lookup/nope.myshopify.com/").status_code == 404


def test_missing_fields_is_400_with_message(client, shop):
    r = lookup(client, "", "")
    assert r.status_code == 400 and b"Enter your order number" in r.content


def test_rate_limited_per_ip(client, settings, order_shipment, monkeypatch):
    monkeypatch.setattr("retention_app.tracking.views.LOOKUP_LIMIT_PER_IP", (3, 600))
    for _ in range(3):
        assert lookup(client, "#1", "x@example.com").status_code == 404
    r = lookup(client, "#1042", "ana@example.com")  # even the right pair, once limited
    assert r.status_code == 429 and b"Too many attempts" in r.content
    assert lookup(client, "#1042", "ana@example.com", ip="10.0.0.2").status_code == 302


def test_rate_limited_per_shop_across_ips(client, order_shipment, monkeypatch):
    monkeypatch.setattr("retention_app.tracking.views.LOOKUP_LIMIT_PER_SHOP", (5, 600))
    codes = [lookup(client, f"#{i}", "x@example.com", ip=f"10.1.0.{i}").status_code for i in range(7)]
    assert codes == [404] * 5 + [429] * 2


def test_lookup_is_localized(client, order_shipment):
    r = client.post(
        URL + "?lang=vi", {"order_number": "#1", "email": "x@example.com"}, REMOTE_ADDR="10.9.9.9"
    )
    assert "Chúng tôi không tìm thấy đơn hàng" in r.content.decode() and r["Content-Language"] == "vi"
