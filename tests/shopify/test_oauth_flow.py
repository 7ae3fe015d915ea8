"""GET /shopify/install and /shopify/callback: every check with the good and the forged case. The store is
mocked at the HTTP boundary (FakeStore); tests/shopify/test_install_devstore.py does it over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses
from django.db import connection
from django.test import Client

from retention_app.shops import events
from retention_app.shops.models import Shop, ShopCredential
from retention_app.shops.services import shop_credentials_drop
from shop_integrations.shopify.oauth import WEBHOOK_TOPICS
from tests.shopify.fake_store import FakeStore

SHOP = "acme.myshopify.com"


@pytest.fixture(autouse=True)
def _production_like_urls(settings):
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"


@pytest.fixture
def store():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeStore(SHOP).install(rsps)


@pytest.fixture
def installed_events():
    received = []

    def receiver(sender, shop, reinstalled, **kwargs):
        received.append((shop.domain, reinstalled))

    events.shop_installed.connect(receiver)
    yield received
    events.shop_installed.disconnect(receiver)


def sign(params: dict, secret: str) -> str:
    # Independent of the code under test: the documented rule for plain params.
    message = "&".join(f"{k}={params[k]}" for k in sorted(params))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def start_install(client: Client, shop: str = SHOP) -> str:
    response = client.get("/shopify/install", {"shop": shop})
    assert response.status_code == 302
    return parse_qs(urlsplit(response["Location"]).query)["state"][0]


def callback_query(settings, state, *, shop=SHOP, timestamp=None, extra=None, secret=None) -> str:
    params = {
        "code": "auth-code-1",
        "host": "YWNtZS5teXNob3BpZnkuY29tL2FkbWlu",
        "shop": shop,
        "state": state,
        "timestamp": str(int(timestamp if timestamp is not None else time.time())),
        **(extra or {}),
    }
    params["hmac"] = sign(params, secret or settings.SHOPIFY_API_SECRET)
    return "/shopify/callback?" + urlencode(params)


# --- install ---------------------------------------------------------------------------------------------


def test_install_redirects_to_the_stores_authorize_page(client, settings, db):
    response = client.get("/shopify/install", {"shop": SHOP})
    assert response.status_code == 302
    url = urlsplit(response["Location"])
    assert (url.scheme, url.netloc, url.path) == ("https", SHOP, "/admin/oauth/authorize")
    query = parse_qs(url.query)
    assert query["client_id"] == [settings.SHOPIFY_API_KEY]
    assert "read_all_orders" in query["scope"][0].split(",")
    assert query["redirect_uri"] == [f"{settings.APP_URL}/shopify/callback"]
    assert len(query["state"][0]) >= 32
    assert client.session["shopify_oauth_state"]["nonce"] == query["state"][0]
    assert response.cookies["shopify_oauth_state"]["httponly"]


def test_each_install_gets_a_new_state(client, db):
    assert start_install(client) != start_install(client)


@pytest.mark.parametrize(
    "shop",
    [
        "evil.com",
        "x.myshopify.com.evil.com",
        "x.myshopify.com:443",
        "x.myshopify.com/path",
        "a@x.myshopify.com",
        "",
    ],
)
def test_install_rejects_bad_shop_domains_with_a_message(client, shop, db):
    response = client.get("/shopify/install", {"shop": shop})
    assert response.status_code == 400
    assert b"not valid" in response.content
    assert "Location" not in response


def test_install_without_shop_is_400(client, db):
    assert client.get("/shopify/install").status_code == 400


# --- callback: the good case -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_callback_installs_the_shop_and_logs_the_merchant_in(
    client, settings, store, installed_events, django_capture_on_commit_callbacks
):
    state = start_install(client)
    session_key_before = client.session.session_key
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(callback_query(settings, state))
    assert response.status_code == 302 and response["Location"] == "/app/"
    # code exchange asked for an expiring offline token
    assert store.token_requests == [
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "client_secret": settings.SHOPIFY_API_SECRET,
            "code": "auth-code-1",
            "expiring": "1",
        }
    ]
    shop = Shop.objects.get(domain=SHOP)
    assert (shop.name, shop.email, shop.currency, shop.timezone, shop.primary_locale) == (
        "Acme Tea",
        "owner@acme.test",
        "THB",
        "Asia/Bangkok",
        "th",
    )
    assert shop.status == Shop.Status.INSTALLED and shop.platform_shop_id == "42"
    assert shop.storefront_url == "https://acme-tea.test" and shop.owner_name == "Mai Chan"
    credential = ShopCredential.objects.get(shop=shop)
    assert (credential.access_token, credential.refresh_token) == ("shpat_1", "shprt_1")
    assert credential.access_token_expires_at is not None and credential.refresh_token_expires_at is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM shops_shopcredential WHERE id = %s", [credential.pk])
        assert "shpat_1" not in cursor.fetchone()[0]
    # every topic subscribed to our one endpoint, with the new token
    assert sorted(store.subscriptions) == sorted(
        (t, f"{settings.APP_URL}/webhooks/shopify") for t in WEBHOOK_TOPICS
    )
    assert {r["token"] for r in store.graphql_requests} == {"shpat_1"}
    assert installed_events == [(SHOP, False)]
    # logged into the panel, with a new session key
    assert client.session["shop_id"] == shop.pk
    assert client.session.session_key != session_key_before
    assert "shopify_oauth_state" not in client.session


@pytest.mark.django_db
def test_array_params_in_the_callback_are_verified(client, settings, store):
    state = start_install(client)
    params = {
        "code": "c",
        "shop": SHOP,
        "state": state,
        "timestamp": str(int(time.time())),
    }
    signed = {**params, "ids": '["2", "1"]'}
    message = "&".join(f"{k}={signed[k]}" for k in sorted(signed))
    params["hmac"] = hmac.new(
        settings.SHOPIFY_API_SECRET.encode(), message.encode(), hashlib.sha256
    ).hexdigest()
    query = urlencode(params) + "&ids%5B%5D=2&ids%5B%5D=1"
    assert client.get("/shopify/callback?" + query).status_code == 302


@pytest.mark.django_db
def test_optional_shop_fields_that_fail_do_not_stop_the_install(client, settings, store):
    store.optional_fields_fail = True
    response = client.get(callback_query(settings, start_install(client)))
    assert response.status_code == 302
    shop = Shop.objects.get(domain=SHOP)
    assert (shop.name, shop.owner_name, shop.primary_locale) == ("Acme Tea", "", "en")
    # asked once each, not retried (they must not hold up the install)
    optional = [r for r in store.graphql_requests if "ShopOwner" in r["query"] or "ShopLocales" in r["query"]]
    assert len(optional) == 2


# --- callback: forged and stale --------------------------------------------------------------------------


@pytest.mark.django_db
def test_bad_hmac_is_refused_before_any_call_to_the_store(client, settings, store):
    state = start_install(client)
    response = client.get(callback_query(settings, state, secret="not-the-app-secret"))
    assert response.status_code == 403 and b"hmac" in response.content
    assert store.token_requests == [] and not Shop.objects.filter(domain=SHOP).exists()


@pytest.mark.django_db
def test_replayed_state_is_refused(client, settings, store):
    state = start_install(client)
    url = callback_query(settings, state)
    assert client.get(url).status_code == 302
    replay = client.get(url)
    assert replay.status_code == 403 and b"not valid any more" in replay.content
    assert len(store.token_requests) == 1


@pytest.mark.django_db
def test_state_from_another_browser_is_refused(client, settings, store):
    state = start_install(client)
    response = Client().get(callback_query(settings, state))
    assert response.status_code == 403
    assert store.token_requests == []


@pytest.mark.django_db
def test_wrong_state_is_refused_and_consumes_the_issued_one(client, settings, store):
    state = start_install(client)
    assert client.get(callback_query(settings, "forged-" + state)).status_code == 403
    assert client.get(callback_query(settings, state)).status_code == 403  # single use
    assert store.token_requests == []


@pytest.mark.django_db
def test_state_without_the_signed_cookie_is_refused(client, settings, store):
    state = start_install(client)
    client.cookies.pop("shopify_oauth_state")
    assert client.get(callback_query(settings, state)).status_code == 403


@pytest.mark.django_db
def test_state_issued_for_another_shop_is_refused(client, settings, store):
    state = start_install(client, "other.myshopify.com")
    assert client.get(callback_query(settings, state, shop=SHOP)).status_code == 403


@pytest.mark.django_db
def test_stale_timestamp_is_refused(client, settings, store):
    state = start_install(client)
    old = time.time() - settings.SHOPIFY_OAUTH_MAX_AGE - 5
    response = client.get(callback_query(settings, state, timestamp=old))
    assert response.status_code == 403 and b"too old" in response.content
    assert store.token_requests == []


@pytest.mark.django_db
def test_future_timestamp_is_refused(client, settings, store):
    state = start_install(client)
    response = client.get(callback_query(settings, state, timestamp=time.time() + 3600))
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("shop", ["evil.com", "x.myshopify.com.evil.com", "", "x.myshopify.com%0a"])
def test_callback_with_bad_shop_is_400(client, settings, store, shop):
    state = start_install(client)
    response = client.get(callback_query(settings, state, shop=shop))
    assert response.status_code == 400
    assert store.token_requests == []


@pytest.mark.django_db
def test_callback_with_no_params_is_a_clear_4xx(client):
    response = client.get("/shopify/callback")
    assert response.status_code == 400


@pytest.mark.django_db
def test_store_refusing_the_code_is_502_and_stores_nothing(client, settings, store):
    store.token_status = 400
    state = start_install(client)
    response = client.get(callback_query(settings, state))
    assert response.status_code == 502 and b"did not complete" in response.content
    assert not Shop.objects.filter(domain=SHOP).exists()
    assert "shop_id" not in client.session


# --- reinstall -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reinstall_after_uninstall_keeps_no_stale_token(
    client, settings, store, installed_events, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        client.get(callback_query(settings, start_install(client)))
    shop = Shop.objects.get(domain=SHOP)
    # app/uninstalled (H3's handler): the shop is marked uninstalled and its tokens dropped
    Shop.objects.filter(pk=shop.pk).update(status=Shop.Status.UNINSTALLED)
    assert shop_credentials_drop(shop=shop) == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(callback_query(settings, start_install(client)))
    assert response.status_code == 302
    shop.refresh_from_db()
    assert shop.status == Shop.Status.INSTALLED and shop.uninstalled_at is None
    credential = ShopCredential.objects.get(shop=shop)
    assert (credential.access_token, credential.refresh_token) == ("shpat_2", "shprt_2")
    assert Shop.objects.filter(domain=SHOP).count() == 1
    assert installed_events == [(SHOP, False), (SHOP, True)]
    # the subscriptions already existed in the store: registration is idempotent
    assert len(store.subscriptions) == len(WEBHOOK_TOPICS)


@pytest.mark.django_db
def test_reinstall_over_a_live_install_replaces_the_token(client, settings, store):
    client.get(callback_query(settings, start_install(client)))
    client.get(callback_query(settings, start_install(client)))
    credential = ShopCredential.objects.get(shop__domain=SHOP)
    assert (credential.access_token, credential.refresh_token) == ("shpat_2", "shprt_2")
