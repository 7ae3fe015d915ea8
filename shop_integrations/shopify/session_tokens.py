"""Embedded admin: App Bridge session tokens (HS256 JWTs signed with the app secret).

For the panel (H8) and any embedded view:
    shop_from_session_token(token) -> Shop          raises SessionTokenError when the token is not valid
    shop_for_session_token(token) -> Shop | None    the same, None when not valid (panel hook contract)
A valid token for a shop that is not installed (or holds no token) is turned into an expiring offline
access token by token exchange, and the shop is installed on the spot (no OAuth redirect).
Reference: https://shopify.dev/docs/apps/build/authentication-authorization/session-tokens
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import jwt
from django.conf import settings

from retention_app.shops.models import Shop
from retention_app.shops.selectors import shop_get_installed
from shop_integrations.shopify.domains import normalize_shop_domain
from shop_integrations.shopify.http import ShopifyError

logger = logging.getLogger(__name__)

LEEWAY_SECONDS = 10


class SessionTokenError(Exception):
    """The session token is not valid (message says why; never contains the token)."""


def _store_host(url: object, *, what: str) -> str:
    """The shop domain of an `https://{shop}` URL (claims `dest`, and `iss` with path /admin)."""
    if not isinstance(url, str):
        raise SessionTokenError(f"{what} claim missing")
    parts = urlsplit(url)
    if parts.scheme != "https" or parts.username or parts.password or parts.port or parts.query:
        raise SessionTokenError(f"{what} is not an https shop URL")
    domain = normalize_shop_domain(parts.hostname or "")
    if domain is None or parts.netloc.lower() != domain:
        raise SessionTokenError(f"{what} is not a shop domain")
    return domain


def decode_session_token(token: str) -> dict:
    """The verified claims of `token`: HS256 with SHOPIFY_API_SECRET, aud == SHOPIFY_API_KEY, exp and nbf
    with LEEWAY_SECONDS, `dest` an https shop URL, `iss` on the same host as `dest` (path /admin)."""
    if not isinstance(token, str) or not token:
        raise SessionTokenError("no session token")
    try:
        claims = jwt.decode(
            token,
            settings.SHOPIFY_API_SECRET,
            algorithms=["HS256"],
            audience=settings.SHOPIFY_API_KEY,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "nbf", "iss", "dest", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise SessionTokenError("session token expired") from None
    except jwt.ImmatureSignatureError:
        raise SessionTokenError("session token not valid yet (nbf)") from None
    except jwt.InvalidAudienceError:
        raise SessionTokenError("session token issued for another app (aud)") from None
    except jwt.InvalidSignatureError:
        raise SessionTokenError("session token signature is invalid") from None
    except jwt.PyJWTError as exc:
        raise SessionTokenError(f"session token rejected: {type(exc).__name__}") from None
    dest = _store_host(claims.get("dest"), what="dest")
    iss = claims.get("iss")
    issuer = _store_host(iss.rsplit("/admin", 1)[0] if isinstance(iss, str) else iss, what="iss")
    if issuer != dest:
        raise SessionTokenError("session token iss and dest are different shops")
    return claims


def shop_domain_from_session_token(token: str) -> str:
    return _store_host(decode_session_token(token)["dest"], what="dest")


def shop_from_session_token(token: str) -> Shop:
    """The installed Shop `token` was issued for; installs it by token exchange when needed."""
    domain = shop_domain_from_session_token(token)
    shop = shop_get_installed(platform=Shop.Platform.SHOPIFY, domain=domain)
    if shop is not None:
        return shop
    from shop_integrations.shopify.oauth import complete_install, exchange_session_token

    try:
        grant = exchange_session_token(domain, token)
        shop, _ = complete_install(domain, grant)
    except ShopifyError as exc:
        raise SessionTokenError(f"token exchange with {domain} failed: {exc}") from None
    return shop


def shop_for_session_token(token: str) -> Shop | None:
    """Panel hook (PANEL_SESSION_TOKEN_VERIFIER): the shop, or None when the token is not valid."""
    try:
        return shop_from_session_token(token)
    except SessionTokenError as exc:
        logger.info("session token rejected: %s", exc)
        return None
