"""Shopify OAuth: callback verification, authorization-code grant, token refresh and token exchange, all
with expiring offline tokens, and `access_token_for(shop)` which every API call uses to get a valid token.

Public contract (used by checks outside the suite, keep the exact name and signature):
    verify_callback_hmac(params, secret) -> bool
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel, ValidationError

from retention_app.shops.models import Shop, ShopCredential
from retention_app.shops.services import AccessGrant, ShopDetails, shop_credential_store, shop_install
from shop_integrations.shopify.domains import require_shop_domain, store_base_url
from shop_integrations.shopify.http import (
    ShopifyError,
    ShopifyPermanentError,
    ShopifyUnauthorizedError,
    post_json,
)

logger = logging.getLogger(__name__)

# Refresh an access token this long before it expires, so a call never starts with a token about to die.
REFRESH_MARGIN = dt.timedelta(minutes=5)

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a grant type name, not a secret)
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105


# --- Callback verification ------------------------------------------------------------------------------


def _escape_key(key: str) -> str:
    return key.replace("%", "%25").replace("=", "%3D").replace("&", "%26")


def _escape_value(value: str) -> str:
    return value.replace("%", "%25").replace("&", "%26")


def callback_signing_message(params: Mapping[str, str | list[str] | tuple[str, ...]]) -> str:
    """The message Shopify signs for an OAuth/app-proxy style query: every parameter except `hmac` and
    `signature`, array parameters (`ids[]=2&ids[]=1`) as `ids=["2", "1"]`, `%`/`&` escaped in values and
    `%`/`&`/`=` in keys, sorted by key, joined with `&`."""
    pairs: list[tuple[str, str]] = []
    for raw_key, raw_value in params.items():
        key = str(raw_key)
        if key in ("hmac", "signature"):
            continue
        if key.endswith("[]") or isinstance(raw_value, list | tuple):
            if key.endswith("[]"):
                key = key[:-2]
            values = list(raw_value) if isinstance(raw_value, list | tuple) else [raw_value]
            # json.dumps' default separators give exactly Shopify's `["2", "1"]` (comma, space).
            value = json.dumps([str(v) for v in values])
        else:
            value = str(raw_value)
        pairs.append((_escape_key(key), _escape_value(value)))
    pairs.sort()
    return "&".join(f"{key}={value}" for key, value in pairs)


def verify_callback_hmac(params: Mapping[str, str | list[str]], secret: str) -> bool:
    """True when `params["hmac"]` is the HMAC-SHA256 (hex) of the query's signing message with `secret`.

    `params` maps query parameter names to a string, or to a list of strings for array parameters
    (`{"ids[]": ["2", "1"]}` signs as `ids=["2", "1"]`). Constant-time comparison; a missing or
    non-string hmac is False.
    Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant#step-2-verify-the-installation-request
    """
    received = params.get("hmac")
    if isinstance(received, list | tuple):
        received = received[0] if len(received) == 1 else None
    if not isinstance(received, str) or not received or not secret:
        return False
    expected = hmac.new(
        secret.encode(), callback_signing_message(params).encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, received.lower())


def query_params(querydict) -> dict[str, str | list[str]]:
    """A Django QueryDict as verify_callback_hmac() wants it: array parameters (name ending in `[]` or
    given more than once) as lists, the others as strings."""
    params: dict[str, str | list[str]] = {}
    for key in querydict:
        values = querydict.getlist(key)
        params[key] = values if (key.endswith("[]") or len(values) > 1) else values[0]
    return params


def timestamp_is_recent(value: object, *, max_age: int | None = None) -> bool:
    """True when `value` is a unix timestamp at most SHOPIFY_OAUTH_MAX_AGE seconds old (and not more than
    that in the future: clocks drift, forged ones do not)."""
    max_age = settings.SHOPIFY_OAUTH_MAX_AGE if max_age is None else max_age
    try:
        ts = int(str(value))
    except (TypeError, ValueError):
        return False
    return abs(time.time() - ts) <= max_age


# --- Authorization code grant ---------------------------------------------------------------------------


def authorize_url(shop_domain: str, *, state: str) -> str:
    """Where to send the merchant to approve the app (authorization code grant, offline access).
    Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant#step-3-ask-for-permission
    """
    query = urlencode(
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "scope": ",".join(settings.SHOPIFY_SCOPES),
            "redirect_uri": redirect_uri(),
            "state": state,
        }
    )
    return f"{store_base_url(shop_domain)}/admin/oauth/authorize?{query}"


def redirect_uri() -> str:
    return f"{settings.APP_URL}/shopify/callback"


class _TokenAnswer(BaseModel):
    access_token: str
    scope: str = ""
    expires_in: int | None = None
    refresh_token: str | None = None
    refresh_token_expires_in: int | None = None


def _grant_from_answer(answer: object, *, what: str) -> AccessGrant:
    try:
        parsed = _TokenAnswer.model_validate(answer)
    except ValidationError:
        raise ShopifyPermanentError(f"{what}: the store's answer has no access token") from None
    now = timezone.now()
    return AccessGrant(
        access_token=parsed.access_token,
        scopes=parsed.scope,
        access_token_expires_at=now + dt.timedelta(seconds=parsed.expires_in) if parsed.expires_in else None,
        refresh_token=parsed.refresh_token or "",
        refresh_token_expires_at=(
            now + dt.timedelta(seconds=parsed.refresh_token_expires_in)
            if parsed.refresh_token_expires_in
            else None
        ),
    )


def _token_endpoint(shop_domain: str) -> str:
    return f"{store_base_url(require_shop_domain(shop_domain))}/admin/oauth/access_token"


def exchange_code(shop_domain: str, code: str) -> AccessGrant:
    """Exchange an authorization code for an expiring offline token.
    Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens
    """
    answer = post_json(
        _token_endpoint(shop_domain),
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "client_secret": settings.SHOPIFY_API_SECRET,
            "code": code,
            "expiring": "1",
        },
    )
    return _grant_from_answer(answer, what="code exchange")


def exchange_session_token(shop_domain: str, session_token: str) -> AccessGrant:
    """Token exchange: an App Bridge session token becomes an expiring offline access token (embedded
    apps, no redirect).
    Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/token-exchange
    """
    answer = post_json(
        _token_endpoint(shop_domain),
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "client_secret": settings.SHOPIFY_API_SECRET,
            "grant_type": TOKEN_EXCHANGE_GRANT,
            "subject_token": session_token,
            "subject_token_type": ID_TOKEN_TYPE,
            "requested_token_type": OFFLINE_TOKEN_TYPE,
            "expiring": "1",
        },
    )
    return _grant_from_answer(answer, what="token exchange")


def refresh_grant(shop_domain: str, refresh_token: str) -> AccessGrant:
    """Use a refresh token (single use: the answer carries its replacement).
    Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens#refresh-an-expiring-offline-access-token
    """
    answer = post_json(
        _token_endpoint(shop_domain),
        {
            "client_id": settings.SHOPIFY_API_KEY,
            "client_secret": settings.SHOPIFY_API_SECRET,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
        },
    )
    return _grant_from_answer(answer, what="token refresh")


# --- Valid tokens for API calls -------------------------------------------------------------------------


class ShopNotConnected(ShopifyPermanentError):
    """The shop holds no credential (never installed, or uninstalled)."""


def _needs_refresh(credential: ShopCredential, rejected_token: str | None) -> bool:
    if rejected_token is not None and hmac.compare_digest(rejected_token, credential.access_token):
        return True
    expires_at = credential.access_token_expires_at
    return expires_at is not None and expires_at - timezone.now() <= REFRESH_MARGIN


def access_token_for(shop: Shop, *, rejected_token: str | None = None) -> str:
    """A valid access token for `shop`, refreshed first when it expires within REFRESH_MARGIN or when
    `rejected_token` (a token the API answered 401 to) is still the stored one.

    One refresh at a time per shop across every process: the refresh runs under a row lock on the
    credential (SELECT ... FOR UPDATE on PostgreSQL; SQLite's IMMEDIATE transactions serialize writers).
    Whoever waited re-reads the row after the lock and reuses the new token instead of refreshing again
    (a refresh token is single use). The new access token and the rotated refresh token are stored in
    the same transaction. Raises ShopNotConnected, or ShopifyUnauthorizedError when the token cannot be
    refreshed (no refresh token, or the store rejected it: the merchant must reinstall).
    """
    credential = ShopCredential.objects.filter(shop=shop).first()
    if credential is None:
        raise ShopNotConnected(f"shop {shop.domain} has no access token (not installed)")
    if not _needs_refresh(credential, rejected_token):
        return credential.access_token
    with transaction.atomic():
        credential = ShopCredential.objects.select_for_update().filter(shop=shop).first()
        if credential is None:
            raise ShopNotConnected(f"shop {shop.domain} has no access token (not installed)")
        if not _needs_refresh(credential, rejected_token):
            return credential.access_token  # another worker refreshed while we waited for the lock
        if not credential.refresh_token:
            raise ShopifyUnauthorizedError(f"shop {shop.domain}: token rejected or expired, no refresh token")
        refresh_expires = credential.refresh_token_expires_at
        if refresh_expires is not None and refresh_expires <= timezone.now():
            raise ShopifyUnauthorizedError(f"shop {shop.domain}: refresh token expired; reinstall needed")
        try:
            grant = refresh_grant(shop.domain, credential.refresh_token)
        except ShopifyPermanentError as exc:
            raise ShopifyUnauthorizedError(f"shop {shop.domain}: token refresh refused: {exc}") from None
        grant = dataclasses.replace(grant, scopes=grant.scopes or credential.scopes)
        if not grant.refresh_token:
            # Keep the old refresh token only when the store did not rotate it.
            grant = dataclasses.replace(
                grant,
                refresh_token=credential.refresh_token,
                refresh_token_expires_at=credential.refresh_token_expires_at,
            )
        shop_credential_store(shop=shop, grant=grant)
    logger.info("access token refreshed for %s", shop.domain)
    return grant.access_token


# --- Install --------------------------------------------------------------------------------------------

# Subscribed at install through webhookSubscriptionCreate (and declared in shopify.app.toml).
WEBHOOK_TOPICS = (
    "APP_UNINSTALLED",
    "ORDERS_CREATE",
    "ORDERS_UPDATED",
    "ORDERS_PAID",
    "ORDERS_CANCELLED",
    "ORDERS_FULFILLED",
    "FULFILLMENTS_CREATE",
    "FULFILLMENTS_UPDATE",
    "FULFILLMENT_EVENTS_CREATE",
    "CUSTOMERS_CREATE",
    "CUSTOMERS_UPDATE",
    "BULK_OPERATIONS_FINISH",
)


def webhook_uri() -> str:
    return f"{settings.APP_URL}/webhooks/shopify"


def _locale(value: str) -> str:
    value = (value or "en").lower()
    if value in ("zh-tw", "zh-hk", "zh-hant", "zh-mo"):
        return "zh-hant"
    return value.split("-")[0][:16] or "en"


def fetch_shop_details(client) -> ShopDetails:
    """The shop's name, email, currency, IANA time zone, owner's name and primary locale. The owner's name
    and the locale are optional (asked separately; a store that cannot answer them does not stop the
    install: the merchant sets them in the panel)."""
    from shop_integrations.shopify.documents import load

    # Reference: https://shopify.dev/docs/api/admin-graphql/2026-01/queries/shop
    shop = client.execute(load("shop"))["shop"]
    optional = client.with_attempts(1)
    primary_locale = "en"
    try:
        # Reference: https://shopify.dev/docs/api/admin-graphql/2026-01/queries/shopLocales
        locales = optional.execute(load("shop_locales"))["shopLocales"] or []
        primary_locale = next((_locale(x["locale"]) for x in locales if x.get("primary")), "en")
    except ShopifyError as exc:
        # Not essential for the install: the merchant can set the language in the panel.
        logger.warning("shop locales of %s not readable (%s); using en", client.shop_domain, exc)
    owner_name = ""
    try:
        # Reference: https://shopify.dev/docs/api/admin-graphql/2026-01/queries/shop
        owner_name = optional.execute(load("shop_owner"))["shop"]["shopOwnerName"] or ""
    except ShopifyError as exc:
        logger.warning("shop owner of %s not readable (%s); the merchant can set it", client.shop_domain, exc)
    return ShopDetails(
        owner_name=owner_name,
        platform_shop_id=str(shop.get("id") or "").rsplit("/", 1)[-1],
        name=shop.get("name") or "",
        email=shop.get("email") or "",
        currency=shop.get("currencyCode") or "USD",
        timezone=shop.get("ianaTimezone") or "UTC",
        primary_locale=primary_locale,
        storefront_url=((shop.get("primaryDomain") or {}).get("url") or "").rstrip("/"),
    )


def register_webhooks(client) -> list[str]:
    """Subscribe WEBHOOK_TOPICS to {APP_URL}/webhooks/shopify. Idempotent: a subscription that already
    exists ("has already been taken") is fine. Returns the topics created now. Raises
    ShopifyPermanentError on any other userError."""
    from shop_integrations.shopify.documents import load

    created = []
    for topic in WEBHOOK_TOPICS:
        # Reference: https://shopify.dev/docs/api/admin-graphql/2026-01/mutations/webhookSubscriptionCreate
        result = client.execute(load("webhook_subscription_create"), {"topic": topic, "uri": webhook_uri()})
        payload = result.get("webhookSubscriptionCreate")
        if not isinstance(payload, dict):
            raise ShopifyPermanentError(f"webhookSubscriptionCreate {topic}: no result")
        errors = [e.get("message", "") for e in payload.get("userErrors") or []]
        if errors and not all("taken" in message.lower() for message in errors):
            raise ShopifyPermanentError(f"webhookSubscriptionCreate {topic}: {'; '.join(errors)}")
        if not errors:
            created.append(topic)
    return created


def complete_install(shop_domain: str, grant: AccessGrant) -> tuple[Shop, bool]:
    """After a verified callback or a token exchange: read the shop's details and subscribe the webhooks
    with the new token, then store the shop and its encrypted credential; events.shop_installed is sent
    on commit (the initial sync starts from it). Webhooks come first so nothing that happens during the
    backfill is missed. Returns (shop, reinstalled). Raises ShopifyError when the store fails us (nothing
    is stored then; the merchant retries the install)."""
    from shop_integrations.shopify.client import ShopifyClient

    client = ShopifyClient.with_token(shop_domain, grant.access_token)
    details = fetch_shop_details(client)
    register_webhooks(client)
    return shop_install(platform=Shop.Platform.SHOPIFY, domain=shop_domain, grant=grant, details=details)
