"""App Bridge session tokens: signature, aud, exp/nbf with leeway, iss/dest, and token exchange."""

from __future__ import annotations

import time

import jwt
import pytest
import responses

from retention_app.shops.models import Shop, ShopCredential
from shop_integrations.shopify.session_tokens import (
    LEEWAY_SECONDS,
    SessionTokenError,
    decode_session_token,
    shop_for_session_token,
    shop_from_session_token,
)
from tests.shopify.fake_store import FakeStore

SHOP = "acme.myshopify.com"
# The dev app secret is shorter than 32 bytes; Shopify's real secrets are not.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


@pytest.fixture(autouse=True)
def _production_like_urls(settings):
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"


def make_token(settings, *, secret=None, algorithm="HS256", **overrides) -> str:
    now = int(time.time())
    claims = {
        "iss": f"https://{SHOP}/admin",
        "dest": f"https://{SHOP}",
        "aud": settings.SHOPIFY_API_KEY,
        "sub": "1",
        "exp": now + 60,
        "nbf": now,
        "iat": now,
        "jti": "j1",
        "sid": "s1",
    }
    claims.update(overrides)
    # "now+60" / "now-60": relative to when the token is made (parameters are built at collection time)
    claims = {
        k: (now + int(v[3:]) if isinstance(v, str) and v.startswith("now") else v)
        for k, v in claims.items()
        if v is not None
    }
    return jwt.encode(claims, secret or settings.SHOPIFY_API_SECRET, algorithm=algorithm)


def test_valid_token_decodes(settings):
    claims = decode_session_token(make_token(settings))
    assert claims["dest"] == f"https://{SHOP}"


def test_small_clock_skew_is_tolerated(settings):
    now = int(time.time())
    decode_session_token(make_token(settings, exp=now - LEEWAY_SECONDS + 3, nbf=now + LEEWAY_SECONDS - 3))


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"aud": "another-app"}, "aud"),
        ({"exp": "now-60"}, "expired"),
        ({"nbf": "now+60"}, "nbf"),
        ({"iss": "https://other.myshopify.com/admin"}, "iss and dest"),
        ({"dest": "https://evil.com", "iss": "https://evil.com/admin"}, "dest is not a shop domain"),
        ({"dest": "https://acme.myshopify.com.evil.com"}, "dest is not a shop domain"),
        ({"dest": "http://acme.myshopify.com"}, "dest is not an https shop URL"),
        ({"dest": "https://x@acme.myshopify.com"}, "dest is not an https shop URL"),
        ({"dest": None}, "rejected"),
        ({"exp": None}, "rejected"),
    ],
)
def test_forged_or_stale_claims_are_rejected(settings, overrides, message):
    with pytest.raises(SessionTokenError, match=message):
        decode_session_token(make_token(settings, **overrides))


def test_bad_signature_is_rejected(settings):
    with pytest.raises(SessionTokenError, match="signature"):
        decode_session_token(make_token(settings, secret="not-the-app-secret-but-long-enough-for-hs256"))


def test_other_algorithms_are_rejected(settings):
    unsigned = jwt.encode(
        {
            "aud": settings.SHOPIFY_API_KEY,
            "dest": f"https://{SHOP}",
            "iss": f"https://{SHOP}/admin",
            "exp": int(time.time()) + 60,
            "nbf": int(time.time()),
        },
        key=None,
        algorithm="none",
    )
    with pytest.raises(SessionTokenError):
        decode_session_token(unsigned)


@pytest.mark.parametrize("garbage", ["", "a.b.c", "not a jwt", None])
def test_garbage_is_rejected(garbage):
    with pytest.raises(SessionTokenError):
        decode_session_token(garbage)


@pytest.mark.django_db
def test_installed_shop_is_returned_without_calling_the_store(settings, shop, store_credential):
    store_credential(shop)
    with responses.RequestsMock():  # any HTTP call would fail the test
        assert shop_from_session_token(make_token(settings)) == shop


@pytest.mark.django_db
def test_token_exchange_installs_a_shop_without_a_redirect(settings, django_capture_on_commit_callbacks):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        store = FakeStore(SHOP).install(rsps)
        token = make_token(settings)
        with django_capture_on_commit_callbacks(execute=True):
            shop = shop_from_session_token(token)
    assert store.token_requests == [
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "client_secret": settings.SHOPIFY_API_SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
            "expiring": "1",
        }
    ]
    assert shop.domain == SHOP and shop.status == Shop.Status.INSTALLED
    assert ShopCredential.objects.get(shop=shop).access_token == "shpat_1"
    assert len(store.subscriptions) > 0


@pytest.mark.django_db
def test_uninstalled_shop_is_reinstalled_by_token_exchange(settings, shop):
    Shop.objects.filter(pk=shop.pk).update(status=Shop.Status.UNINSTALLED)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(SHOP).install(rsps)
        assert shop_from_session_token(make_token(settings)).pk == shop.pk
    shop.refresh_from_db()
    assert shop.status == Shop.Status.INSTALLED


@pytest.mark.django_db
def test_panel_hook_returns_none_for_invalid_tokens(settings):
    assert shop_for_session_token(make_token(settings, aud="x")) is None
    assert shop_for_session_token("") is None


@pytest.mark.django_db
def test_failed_token_exchange_is_a_session_token_error(settings):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        store = FakeStore(SHOP).install(rsps)
        store.token_status = 400
        with pytest.raises(SessionTokenError, match="token exchange"):
            shop_from_session_token(make_token(settings))
    assert not Shop.objects.filter(domain=SHOP).exists()


@pytest.mark.django_db
def test_embedded_entry_logs_the_merchant_in(client, settings, shop, store_credential):
    store_credential(shop)
    response = client.get("/shopify/embedded", {"id_token": make_token(settings)})
    assert response.status_code == 302 and response["Location"] == "/app/"
    assert client.session["shop_id"] == shop.pk


@pytest.mark.django_db
def test_embedded_entry_with_a_bad_token_is_401(client, settings):
    response = client.get("/shopify/embedded", {"id_token": make_token(settings, aud="x")})
    assert response.status_code == 401 and b"aud" in response.content
    assert "shop_id" not in client.session
