"""REST API: token auth per shop, the retention endpoint's parity with the command, tenant isolation."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from retention_app.api.models import ShopApiToken
from retention_app.api.services import api_token_create, api_token_revoke
from tests.factories import CustomerFactory, OrderFactory
from tests.metrics.conftest import History
from tests.metrics.test_definitions import basic_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for():
    def make(shop):
        _, plain = api_token_create(shop=shop, name="test")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
        return client

    return make


@pytest.fixture
def api(shop, client_for):
    return client_for(shop)


def test_token_is_stored_hashed(shop):
    token, plain = api_token_create(shop=shop, name="ci")
    assert plain.startswith(f"bmr_{token.prefix}_")
    secret = plain.split("_", 2)[2]
    assert secret not in token.token_hash and len(token.token_hash) == 64
    assert ShopApiToken.objects.filter(token_hash__contains=secret).count() == 0


@pytest.mark.parametrize(
    "header", [None, "Bearer nope", "Bearer bmr_abc_def", "Token bmr_x", "Bearer a b", "Basic Zm9vOmJhcg=="]
)
def test_requests_without_a_valid_token_are_refused(shop, header):
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/customers/")
    assert response.status_code in (401, 403)


def test_wrong_secret_and_revoked_token_are_refused(shop):
    token, plain = api_token_create(shop=shop, name="t")
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=plain[:-2] + "xx" if not plain.endswith("xx") else plain[:-2] + "yy"
    )
    assert client.get("/api/v1/customers/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert client.get("/api/v1/customers/").status_code == 200
    assert api_token_revoke(shop=shop, token_id=token.pk)
    assert client.get("/api/v1/customers/").status_code == 401


def test_retention_endpoint_matches_the_command(shop, history, api):
    basic_history(history)
    out = io.StringIO()
    call_command(
        "retention_report",
        "--shop",
        shop.domain,
        "--start",
        "2026-03-01",
        "--end",
        "2026-04-01",
        "--window-days",
        "30",
        "--json",
        stdout=out,
    )
    response = api.get(
        "/api/v1/metrics/retention",
        {"shop": shop.domain, "start": "2026-03-01", "end": "2026-04-01", "window_days": "30"},
    )
    assert response.status_code == 200
    assert response.json() == json.loads(out.getvalue())
    assert response.json()["S"] == 2
    # Same parameters without window_days: the shop's W, also identical to the command.
    out2 = io.StringIO()
    call_command(
        "retention_report",
        "--shop",
        shop.domain,
        "--start",
        "2026-03-01",
        "--end",
        "2026-04-01",
        "--json",
        stdout=out2,
    )
    r2 = api.get(
        "/api/v1/metrics/retention", {"shop": shop.domain, "start": "2026-03-01", "end": "2026-04-01"}
    )
    assert r2.json() == json.loads(out2.getvalue())


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2026-03-01"}, "end"),
        ({"start": "2026-03-01", "end": "2026-02-01"}, "end must be after start"),
        ({"start": "yesterday", "end": "2026-02-01"}, "start"),
        ({"start": "2026-03-01", "end": "2026-04-01", "window_days": "0"}, "window_days"),
        ({"start": "2026-03-01", "end": "2026-04-01", "window_days": "x"}, "window_days"),
    ],
)
def test_retention_bad_params_are_400_with_message(shop, api, params, message):
    response = api.get("/api/v1/metrics/retention", params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


def test_retention_for_another_shop_is_404(shop, other_shop, api):
    History(other_shop).order("Z", "2026-03-10 10:00")
    response = api.get(
        "/api/v1/metrics/retention", {"shop": other_shop.domain, "start": "2026-03-01", "end": "2026-04-01"}
    )
    assert response.status_code == 404
    assert "Z" not in response.content.decode()


def test_customers_and_orders_lists_and_search(shop, api):
    ana = CustomerFactory(shop=shop, email="ana@example.com", first_name="Ana")
    CustomerFactory(shop=shop, email="bo@example.com", first_name="Bo")
    OrderFactory(shop=shop, customer=ana, total_price="30.00")
    OrderFactory(shop=shop, customer=ana, total_price="20.00", is_test=True)
    data = api.get("/api/v1/customers/", {"q": "ana@"}).json()
    assert [c["email"] for c in data["results"]] == ["ana@example.com"]
    assert data["results"][0]["order_count"] == 1 and data["results"][0]["spend"] == "30.00"
    orders = api.get("/api/v1/orders/", {"customer": ana.pk}).json()
    assert orders["count"] == 2
    assert api.get("/api/v1/orders/", {"customer": "x"}).status_code == 400


def test_tenant_isolation_on_every_endpoint(shop, other_shop, client_for):
    from tests.panel.factories import MessageFactory, RuleFactory

    rival_customer = CustomerFactory(shop=other_shop, email="secret@rival.example")
    rival_order = OrderFactory(shop=other_shop, customer=rival_customer)
    rival_rule = RuleFactory(shop=other_shop)
    rival_message = MessageFactory(shop=other_shop, rule=rival_rule, customer=rival_customer)
    api = client_for(shop)
    for url in [
        f"/api/v1/customers/{rival_customer.pk}/",
        f"/api/v1/orders/{rival_order.pk}/",
        f"/api/v1/rules/{rival_rule.pk}/",
        f"/api/v1/messages/{rival_message.pk}/",
    ]:
        response = api.get(url)
        assert response.status_code == 404, url
        assert "rival" not in response.content.decode()
    assert api.patch(f"/api/v1/rules/{rival_rule.pk}/", {"enabled": False}, format="json").status_code == 404
    rival_rule.refresh_from_db()
    assert rival_rule.enabled is True
    for url in ["/api/v1/customers/", "/api/v1/orders/", "/api/v1/rules/", "/api/v1/messages/"]:
        body = api.get(url).json()
        assert body["count"] == 0, url
    # and the owner sees them
    rival_api = client_for(other_shop)
    assert rival_api.get(f"/api/v1/customers/{rival_customer.pk}/").status_code == 200
    assert rival_api.get("/api/v1/messages/").json()["count"] == 1


def test_rule_pause_and_enable(shop, api):
    from tests.panel.factories import RuleFactory

    rule = RuleFactory(shop=shop)
    response = api.patch(f"/api/v1/rules/{rule.pk}/", {"enabled": False}, format="json")
    assert response.status_code == 200 and response.json()["enabled"] is False
    rule.refresh_from_db()
    assert rule.enabled is False
    # Other fields are read-only through the API.
    api.patch(f"/api/v1/rules/{rule.pk}/", {"enabled": True, "delay_minutes": 999}, format="json")
    rule.refresh_from_db()
    assert rule.enabled is True and rule.delay_minutes != 999


def test_schema_is_served(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/api/v1/metrics/retention" in body and "shopToken" in body


def test_api_token_create_command(shop):
    out = io.StringIO()
    call_command("api_token_create", "--shop", shop.domain, "--name", "ci", stdout=out)
    plain = out.getvalue().strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {plain}")
    assert client.get("/api/v1/rules/").status_code == 200
    assert ShopApiToken.objects.get(shop=shop).name == "ci"


def test_panel_session_can_call_the_api_but_writes_need_csrf(shop):
    from django.contrib.auth import get_user_model

    from retention_app.panel.models import ShopMembership
    from tests.panel.factories import RuleFactory

    user = get_user_model().objects.create_user(username="mai", password="s3cret-pass!")
    ShopMembership.objects.create(user=user, shop=shop)
    rule = RuleFactory(shop=shop)
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="mai", password="s3cret-pass!")
    assert client.get("/api/v1/rules/").json()["count"] == 1
    assert client.patch(f"/api/v1/rules/{rule.pk}/", {"enabled": False}, format="json").status_code == 403
    rule.refresh_from_db()
    assert rule.enabled is True
