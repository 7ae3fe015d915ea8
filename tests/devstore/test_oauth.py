"""OAuth against the dev store over real HTTP: redirect signing, code exchange, expiring tokens with
refresh rotation, token exchange of App Bridge session tokens, and Shopify-like errors."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

CALLBACK = "http://127.0.0.1:9/shopify/callback"


def independent_hmac(params: dict[str, str], secret: str) -> str:
    """Shopify's documented redirect signature, re-implemented here in a few lines (not the store's code)."""
    message = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("hmac", "signature"))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def authorize(
    devstore, shop, *, state="nonce-123", scope="read_orders,read_customers", redirect_uri=CALLBACK
):
    return requests.get(
        f"{devstore.store_url(shop)}/admin/oauth/authorize",
        params={"client_id": devstore.api_key, "scope": scope, "redirect_uri": redirect_uri, "state": state},
        allow_redirects=False,
        timeout=10,
    )


def token_url(devstore, shop):
    return f"{devstore.store_url(shop)}/admin/oauth/access_token"


def install(devstore, shop, **body):
    resp = authorize(devstore, shop)
    code = dict(parse_qsl(urlsplit(resp.headers["Location"]).query))["code"]
    return requests.post(
        token_url(devstore, shop),
        json={"client_id": devstore.api_key, "client_secret": devstore.api_secret, "code": code, **body},
        timeout=10,
    )


def test_authorize_redirect_is_signed_like_shopify(devstore, devstore_shop):
    before = int(time.time())
    resp = authorize(devstore, devstore_shop, state="st&te=%x")

    assert resp.status_code == 302
    location = urlsplit(resp.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    params = dict(parse_qsl(location.query))
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert params["shop"] == devstore_shop
    assert params["state"] == "st&te=%x"
    assert base64.b64decode(params["host"]).decode() == f"{devstore_shop}/admin"
    assert before <= int(params["timestamp"]) <= int(time.time())
    # "%" and "&" in values are escaped before signing (Shopify's rule)
    escaped = {k: v.replace("%", "%25").replace("&", "%26") for k, v in params.items()}
    assert hmac.compare_digest(params["hmac"], independent_hmac(escaped, devstore.api_secret))
    assert params["hmac"] != independent_hmac(escaped, "another-secret")


def test_install_page_lists_scopes_and_install_button_posts(devstore, devstore_shop):
    devstore.control.settings(auto_approve=False)
    page = authorize(devstore, devstore_shop, scope="read_orders,write_discounts")
    assert page.status_code == 200
    assert "read_orders" in page.text and "write_discounts" in page.text
    assert "id='install'" in page.text

    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page.text)
    fields = {k: html.unescape(v) for k, v in hidden}
    resp = requests.post(
        f"{devstore.store_url(devstore_shop)}/admin/oauth/authorize",
        data=fields,
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 302
    assert "code=" in resp.headers["Location"]

    forged = requests.post(
        f"{devstore.store_url(devstore_shop)}/admin/oauth/authorize",
        data={**fields, "form_token": "0" * 64},
        allow_redirects=False,
        timeout=10,
    )
    assert forged.status_code == 400


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [("wrong-client", CALLBACK), (None, "javascript:alert(1)"), (None, "ftp://example.com/cb")],
)
def test_authorize_rejects_unknown_client_and_bad_redirect(devstore, devstore_shop, client_id, redirect_uri):
    resp = requests.get(
        f"{devstore.store_url(devstore_shop)}/admin/oauth/authorize",
        params={
            "client_id": client_id or devstore.api_key,
            "scope": "read_orders",
            "redirect_uri": redirect_uri,
            "state": "s",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert resp.status_code == 400
    assert "Location" not in resp.headers


def test_unknown_shop_is_404(devstore):
    assert authorize(devstore, "nope-never-created.devstore.test").status_code == 404


def test_code_exchange_gives_expiring_token_and_code_is_single_use(devstore, devstore_shop):
    resp = authorize(devstore, devstore_shop)
    code = dict(parse_qsl(urlsplit(resp.headers["Location"]).query))["code"]
    body = {
        "client_id": devstore.api_key,
        "client_secret": devstore.api_secret,
        "code": code,
        "expiring": "1",
    }

    first = requests.post(token_url(devstore, devstore_shop), json=body, timeout=10)
    assert first.status_code == 200
    data = first.json()
    assert data["access_token"].startswith("shpat_")
    assert data["scope"] == "read_orders,read_customers"
    assert data["expires_in"] == 3600 and data["refresh_token_expires_in"] == 2592000
    assert data["refresh_token"]

    again = requests.post(token_url(devstore, devstore_shop), json=body, timeout=10)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_request"


def test_code_exchange_accepts_form_body_and_non_expiring(devstore, devstore_shop):
    resp = authorize(devstore, devstore_shop)
    code = dict(parse_qsl(urlsplit(resp.headers["Location"]).query))["code"]
    data = requests.post(
        token_url(devstore, devstore_shop),
        data={"client_id": devstore.api_key, "client_secret": devstore.api_secret, "code": code},
        timeout=10,
    ).json()
    assert set(data) == {"access_token", "scope"}


def test_wrong_client_secret_is_rejected(devstore, devstore_shop):
    resp = install(devstore, devstore_shop, client_secret="not-the-secret")
    assert resp.status_code == 400
    assert resp.json() == {
        "error": "invalid_client",
        "error_description": resp.json()["error_description"],
    }


def graphql_status(devstore, shop, token):
    return devstore.control.graphql(shop, token, "{ shop { name } }").status_code


def test_expired_token_is_401_and_refresh_rotates(devstore, devstore_shop):
    tokens = install(devstore, devstore_shop, expiring="1").json()
    assert graphql_status(devstore, devstore_shop, tokens["access_token"]) == 200

    devstore.control.expire_tokens(devstore_shop)
    assert graphql_status(devstore, devstore_shop, tokens["access_token"]) == 401

    refresh_body = {
        "client_id": devstore.api_key,
        "client_secret": devstore.api_secret,
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
    }
    refreshed = requests.post(token_url(devstore, devstore_shop), json=refresh_body, timeout=10)
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["access_token"] != tokens["access_token"]
    assert new["refresh_token"] != tokens["refresh_token"]
    assert graphql_status(devstore, devstore_shop, new["access_token"]) == 200

    # the used refresh token stopped working (rotation)
    reused = requests.post(token_url(devstore, devstore_shop), json=refresh_body, timeout=10)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    assert devstore.control.stats(devstore_shop)["refreshes"] == 1


def test_short_token_lifetime_setting_expires_tokens(devstore, devstore_shop):
    devstore.control.settings(token_lifetime=0)
    tokens = install(devstore, devstore_shop, expiring="1").json()
    assert tokens["expires_in"] == 0
    assert graphql_status(devstore, devstore_shop, tokens["access_token"]) == 401


def exchange(devstore, shop, subject_token):
    return requests.post(
        token_url(devstore, shop),
        json={
            "client_id": devstore.api_key,
            "client_secret": devstore.api_secret,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "requested_token_type": "urn:shopify:params:oauth:token-type:offline-access-token",
            "expiring": "1",
        },
        timeout=10,
    )


def test_session_token_is_an_hs256_jwt_with_shopify_claims(devstore, devstore_shop):
    import jwt  # PyJWT: an independent verifier

    token = devstore.control.session_token(devstore_shop, user_id=42)
    claims = jwt.decode(token, devstore.api_secret, algorithms=["HS256"], audience=devstore.api_key)
    assert claims["iss"] == f"https://{devstore_shop}/admin"
    assert claims["dest"] == f"https://{devstore_shop}"
    assert claims["sub"] == "42"
    assert {"exp", "nbf", "iat", "jti", "sid"} <= set(claims)


def test_token_exchange(devstore, devstore_shop):
    resp = exchange(devstore, devstore_shop, devstore.control.session_token(devstore_shop))
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["expires_in"] == 3600 and data["refresh_token"]
    assert graphql_status(devstore, devstore_shop, data["access_token"]) == 200


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": "forged-secret"},
        {"lifetime": -60},
        {"client_id": "other-app"},
        {"claims": {"dest": "https://someone-else.devstore.test"}},
    ],
)
def test_token_exchange_rejects_bad_session_tokens(devstore, devstore_shop, kwargs):
    resp = exchange(devstore, devstore_shop, devstore.control.session_token(devstore_shop, **kwargs))
    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_subject_token"


def test_uninstall_revokes_tokens(devstore, devstore_shop):
    tokens = install(devstore, devstore_shop, expiring="1").json()
    devstore.control.uninstall_app(devstore_shop)
    assert graphql_status(devstore, devstore_shop, tokens["access_token"]) == 401
    assert all(not t["valid"] for t in devstore.control.tokens(devstore_shop))


def test_oauth_faults_only_when_asked(devstore, devstore_shop):
    tokens = install(devstore, devstore_shop, expiring="1").json()
    body = {
        "client_id": devstore.api_key,
        "client_secret": devstore.api_secret,
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
    }
    devstore.control.set_faults(fail_next=1)  # Admin API only: the token endpoint is untouched
    assert graphql_status(devstore, devstore_shop, tokens["access_token"]) == 503
    devstore.control.set_faults(fail_next=1, oauth=True)
    failed = requests.post(token_url(devstore, devstore_shop), json=body, timeout=10)
    assert failed.status_code == 503
    retried = requests.post(token_url(devstore, devstore_shop), json=body, timeout=10)
    assert retried.status_code == 200  # the failed attempt did not consume the refresh token
