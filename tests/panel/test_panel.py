"""Merchant panel: login paths, every page renders, tenant isolation on every URL, CSRF, languages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from retention_app.api.models import ShopApiToken
from retention_app.panel.models import PanelSettings, ShopMembership
from tests.factories import CustomerFactory, OrderFactory
from tests.panel.factories import MessageFactory, RuleFactory

pytestmark = pytest.mark.django_db


def merchant(shop, username="mai", password="s3cret-pass!"):  # noqa: S107
    user = get_user_model().objects.create_user(username=username, password=password)
    ShopMembership.objects.create(user=user, shop=shop)
    return user


@pytest.fixture
def panel(shop):
    client = Client()
    merchant(shop)
    assert client.login(username="mai", password="s3cret-pass!")
    return client


def oauth_client(shop) -> Client:
    """A session as left by the OAuth callback (no Django user)."""
    client = Client()
    session = client.session
    session["shop_id"] = shop.pk
    session.save()
    return client


def test_login_page_and_standalone_login(shop):
    merchant(shop)
    client = Client(enforce_csrf_checks=True)
    page = client.get("/app/login/")
    assert page.status_code == 200 and b"csrfmiddlewaretoken" in page.content
    token = page.cookies["csrftoken"].value
    bad = client.post("/app/login/", {"username": "mai", "password": "wrong", "csrfmiddlewaretoken": token})
    assert bad.status_code == 200 and b"Wrong username or password" in bad.content
    ok = client.post(
        "/app/login/",
        {
            "username": "mai",
            "password": "s3cret-pass!",
            "csrfmiddlewaretoken": token,
            "next": "/app/customers/",
        },
    )
    assert ok.status_code == 302 and ok["Location"] == "/app/customers/"
    assert client.get("/app/").status_code == 200


def test_login_refuses_open_redirect_and_csrfless_post(shop):
    merchant(shop)
    client = Client()
    response = client.post(
        "/app/login/", {"username": "mai", "password": "s3cret-pass!", "next": "https://evil.example/"}
    )
    assert response["Location"] == "/app/"
    strict = Client(enforce_csrf_checks=True)
    assert strict.post("/app/login/", {"username": "mai", "password": "s3cret-pass!"}).status_code == 403


def test_user_without_shop_cannot_log_in(db):
    get_user_model().objects.create_user(username="lonely", password="s3cret-pass!")
    response = Client().post("/app/login/", {"username": "lonely", "password": "s3cret-pass!"})
    assert b"not linked to any shop" in response.content


def test_anonymous_is_sent_to_login(db):
    response = Client().get("/app/customers/?q=x")
    assert response.status_code == 302
    assert response["Location"].startswith("/app/login/?next=")


def test_oauth_session_opens_the_panel(shop):
    response = oauth_client(shop).get("/app/")
    assert response.status_code == 200
    assert "frame-ancestors 'self' https://acme.myshopify.com" in response["Content-Security-Policy"]
    assert "X-Frame-Options" not in response


def test_embedded_session_token_through_the_hook(shop, settings):
    settings.PANEL_SESSION_TOKEN_VERIFIER = "tests.panel.test_panel.fake_verifier"
    client = Client()
    assert client.get("/app/", {"id_token": "not-valid"}).status_code == 302
    response = client.get("/app/", {"id_token": "valid-for-acme"})
    assert response.status_code == 200
    assert client.get("/app/customers/").status_code == 200  # the session now holds the shop
    bearer = Client().get("/app/sync/", HTTP_AUTHORIZATION="Bearer a.valid-for-acme.sig")
    assert bearer.status_code == 200


def fake_verifier(token: str):
    from retention_app.shops.models import Shop

    if "valid-for-acme" in token:
        return Shop.objects.get(domain="acme.myshopify.com")
    raise ValueError("bad token")


def test_every_page_renders(panel, shop):
    customer = CustomerFactory(shop=shop)
    OrderFactory(shop=shop, customer=customer, discount_codes=["BACK-1"])
    MessageFactory(shop=shop, customer=customer, reason="no consent", status="cancelled")
    for url in [
        "/app/",
        "/app/customers/",
        f"/app/customers/{customer.pk}/",
        "/app/messages/",
        "/app/sync/",
        "/app/privacy/",
        "/app/settings/",
        "/app/?start=2026-01-01&end=2026-02-01&window_days=90",
    ]:
        response = panel.get(url)
        assert response.status_code == 200, url
    detail = panel.get(f"/app/customers/{customer.pk}/").content.decode()
    assert "BACK-1" in detail and "no consent" in detail


def test_dashboard_bad_period_shows_error_not_500(panel):
    response = panel.get("/app/?start=2026-02-01&end=2026-01-01")
    assert response.status_code == 200
    assert "The end must be after the start" in response.content.decode()
    assert panel.get("/app/?start=garbage&end=x&window_days=-4").status_code == 200


def test_tenant_isolation_on_every_url(panel, shop, other_shop):
    rival_customer = CustomerFactory(shop=other_shop, first_name="Zed", email="zed@rival.example")
    OrderFactory(shop=other_shop, customer=rival_customer, name="#RIVAL-1")
    rival_rule = RuleFactory(shop=other_shop, name="Rival rule")
    MessageFactory(shop=other_shop, rule=rival_rule, customer=rival_customer, subject="Rival subject")
    token = ShopApiToken.objects.create(shop=other_shop, name="rival", prefix="abc", token_hash="0" * 64)
    # Objects of the other shop: 404.
    assert panel.get(f"/app/customers/{rival_customer.pk}/").status_code == 404
    assert panel.post(f"/app/settings/api-tokens/{token.pk}/revoke/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None
    # Lists: never the other shop's data.
    for url in [
        "/app/",
        "/app/customers/",
        "/app/customers/?q=zed",
        "/app/messages/",
        "/app/sync/",
        "/app/privacy/",
        "/app/settings/",
    ]:
        body = panel.get(url).content.decode()
        for secret in ("Zed", "zed@rival", "#RIVAL-1", "Rival rule", "Rival subject", "rival"):
            assert secret not in body, (url, secret)


def test_switch_shop_requires_membership(panel, shop, other_shop):
    assert panel.post("/app/switch-shop/", {"shop_id": other_shop.pk}).status_code == 404
    user = get_user_model().objects.get(username="mai")
    ShopMembership.objects.create(user=user, shop=other_shop)
    assert panel.post("/app/switch-shop/", {"shop_id": other_shop.pk}).status_code == 302
    assert "Rival Coffee" in panel.get("/app/").content.decode()


def test_logged_in_user_cannot_use_a_foreign_session_shop(panel, other_shop):
    session = panel.session
    session["shop_id"] = other_shop.pk
    session.save()
    body = panel.get("/app/").content.decode()
    assert "Rival Coffee" not in body and "Acme Tea" in body


def test_settings_save_north_star_vip_and_window(panel, shop):
    response = panel.post(
        "/app/settings/",
        {"north_star_metric": "churn_rate", "vip_share_percent": "5", "activity_window_days": "90"},
    )
    assert response.status_code == 302
    row = PanelSettings.objects.get(shop=shop)
    assert row.north_star_metric == "churn_rate" and str(row.vip_share_percent) == "5.00"
    shop.refresh_from_db()
    assert shop.activity_window_days == 90
    dashboard = panel.get("/app/").content.decode()
    assert "★ Churn rate" in dashboard
    bad = panel.post(
        "/app/settings/", {"north_star_metric": "nope", "vip_share_percent": "0", "activity_window_days": "0"}
    )
    assert bad.status_code == 200
    assert bad.content.decode().count('class="errorlist"') == 3


def test_api_token_shown_once_then_hashed(panel, shop):
    panel.post("/app/settings/api-tokens/", {"name": "Zapier"})
    first = panel.get("/app/settings/").content.decode()
    assert "data-new-token" in first
    assert "data-new-token" not in panel.get("/app/settings/").content.decode()
    token = ShopApiToken.objects.get(shop=shop)
    assert token.name == "Zapier"


def test_csrf_is_enforced_on_panel_forms(shop):
    merchant(shop)
    client = Client(enforce_csrf_checks=True)
    client.login(username="mai", password="s3cret-pass!")
    assert client.post("/app/settings/", {"north_star_metric": "churn_rate"}).status_code == 403
    assert client.post("/app/settings/api-tokens/", {"name": "x"}).status_code == 403
    assert client.post("/app/logout/").status_code == 403


@pytest.mark.parametrize(
    ("lang", "word"),
    [
        ("th", "แดชบอร์ด"),
        ("vi", "Bảng điều khiển"),
        ("pl", "Pulpit"),
        ("zh-hant", "儀表板"),
        ("en", "Dashboard"),
    ],
)
def test_languages(panel, lang, word):
    response = panel.post("/app/i18n/setlang/", {"language": lang, "next": "/app/"})
    assert response.status_code == 302
    body = panel.get("/app/").content.decode()
    assert word in body
    assert f'lang="{lang}"' in body


def test_logout(panel):
    assert panel.post("/app/logout/").status_code == 302
    assert panel.get("/app/").status_code == 302


def test_dashboard_shows_the_numbers(panel, shop):
    from tests.metrics.conftest import History
    from tests.metrics.test_definitions import basic_history

    basic_history(History(shop))
    body = panel.get("/app/?start=2026-03-01&end=2026-04-01&window_days=30").content.decode()
    assert (
        'data-metric="retention_rate"><div class="label">Retention rate</div><div class="value">100.00 %'
        in body
    )
    assert 'data-metric="churn_rate"><div class="label">Churn rate</div><div class="value">50.00 %' in body
    assert 'data-metric="S"><div class="label">Active at start (S)</div><div class="value">2<' in body
    assert "<svg" in body and 'data-table="cohorts"' in body


def test_sync_page_shows_progress_webhooks_and_errors(panel, shop, other_shop):
    from retention_app.commerce.models import SyncJob
    from retention_app.ingress.models import WebhookDelivery

    kind = SyncJob.Kind.values[0]
    SyncJob.objects.create(shop=shop, kind=kind, status=SyncJob.Status.RUNNING, rows_total=200, rows_done=50)
    SyncJob.objects.create(
        shop=other_shop, kind=kind, status=SyncJob.Status.FAILED, rows_total=9, rows_done=1, error="RIVAL-ERR"
    )
    WebhookDelivery.objects.create(
        shop=shop, webhook_id="w1", topic="orders/create", shop_domain=shop.domain, payload={}
    )
    WebhookDelivery.objects.create(
        shop=shop,
        webhook_id="w2",
        topic="orders/updated",
        shop_domain=shop.domain,
        payload={},
        status=WebhookDelivery.Status.FAILED,
        last_error="handler exploded: bad total",
    )
    WebhookDelivery.objects.create(
        shop=other_shop,
        webhook_id="w3",
        topic="customers/update",
        shop_domain=other_shop.domain,
        payload={},
        status=WebhookDelivery.Status.FAILED,
        last_error="RIVAL-WEBHOOK",
    )
    body = panel.get("/app/sync/").content.decode()
    assert 'aria-valuenow="25"' in body and "50 / 200" in body
    assert "handler exploded: bad total" in body and "orders/" in body
    assert "RIVAL-ERR" not in body and "RIVAL-WEBHOOK" not in body and "customers/update" not in body


def _session_token(domain: str, *, secret: str | None = None, aud: str | None = None) -> str:
    import time

    import jwt
    from django.conf import settings

    now = int(time.time())
    claims = {
        "iss": f"https://{domain}/admin",
        "dest": f"https://{domain}",
        "aud": aud or settings.SHOPIFY_API_KEY,
        "sub": "42",
        "exp": now + 60,
        "nbf": now - 5,
        "iat": now - 5,
        "jti": "t1",
        "sid": "s1",
    }
    return jwt.encode(claims, secret or settings.SHOPIFY_API_SECRET, algorithm="HS256")


def test_embedded_with_a_real_app_bridge_token(shop, other_shop):
    """The default hook (the platform's session-token verifier) opens the panel of the token's shop only."""
    from retention_app.shops.models import ShopCredential

    ShopCredential.objects.create(shop=shop, access_token="shpat_test")
    client = Client()
    response = client.get("/app/", {"id_token": _session_token(shop.domain)})
    assert response.status_code == 200 and "Acme Tea" in response.content.decode()
    # A forged token (wrong secret) or one for another app does not log anyone in.
    for bad in (_session_token(shop.domain, secret="x" * 32), _session_token(shop.domain, aud="other-app")):
        assert Client().get("/app/", {"id_token": bad}).status_code == 302
