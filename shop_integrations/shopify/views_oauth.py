"""OAuth install (authorization code grant) and the embedded-admin entry point.

GET /shopify/install?shop=…   validate the shop, issue a single-use state nonce bound to this browser
                              (session + signed cookie), redirect to the store's authorize page.
GET /shopify/callback         check in this order: shop, state, timestamp, hmac; then code exchange
                              (expiring offline token), install, log the merchant into the panel, /app/.
GET /shopify/embedded         App Bridge entry (?id_token=<session token>): verify, token exchange when
                              needed, log in, /app/.
Bad requests get a 400/403 page with a message; a store that fails us gets 502; never a 500.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.http import require_GET

from retention_app.shops.models import Shop
from shop_integrations.shopify import oauth
from shop_integrations.shopify.domains import normalize_shop_domain
from shop_integrations.shopify.http import ShopifyError
from shop_integrations.shopify.session_tokens import SessionTokenError, shop_from_session_token

logger = logging.getLogger(__name__)

STATE_SESSION_KEY = "shopify_oauth_state"
STATE_COOKIE = "shopify_oauth_state"
STATE_COOKIE_SALT = "boomerang.shopify.oauth-state"
STATE_MAX_AGE = 600  # seconds the merchant has to approve the app


def _error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    logger.info("shopify oauth refused (%s): %s", status, message)
    response = render(request, "shopify/oauth_error.html", {"message": message}, status=status)
    response.delete_cookie(STATE_COOKIE)
    return response


def _login(request: HttpRequest, shop: Shop, *, landing: str = "/app/") -> HttpResponse:
    # Contract with the panel: the session belongs to one shop; cycle the key (no session fixation).
    request.session.cycle_key()
    request.session["shop_id"] = shop.pk
    response = HttpResponseRedirect(landing)
    response.delete_cookie(STATE_COOKIE)
    return response


@require_GET
def install(request: HttpRequest) -> HttpResponse:
    shop = normalize_shop_domain(request.GET.get("shop"))
    if shop is None:
        return _error(request, "The shop address is not valid. It looks like your-store.myshopify.com.", 400)
    nonce = secrets.token_urlsafe(32)
    request.session[STATE_SESSION_KEY] = {"nonce": nonce, "shop": shop}
    # The target is the validated shop's own store (never a URL from the request): no open redirect.
    response = HttpResponseRedirect(oauth.authorize_url(shop, state=nonce))
    response.set_signed_cookie(
        STATE_COOKIE,
        nonce,
        salt=STATE_COOKIE_SALT,
        max_age=STATE_MAX_AGE,
        httponly=True,
        samesite="Lax",  # sent on the top-level redirect back from the store
        secure=settings.SESSION_COOKIE_SECURE,
    )
    return response


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    params = oauth.query_params(request.GET)
    # 1. shop
    shop = normalize_shop_domain(params.get("shop"))
    if shop is None:
        return _error(request, "The shop address is missing or not valid.", 400)
    # 2. state: equals the nonce issued to this browser for this shop; single use (consumed now,
    #    whatever the outcome).
    issued = request.session.pop(STATE_SESSION_KEY, None)
    cookie_nonce = request.get_signed_cookie(
        STATE_COOKIE, default=None, salt=STATE_COOKIE_SALT, max_age=STATE_MAX_AGE
    )
    state = params.get("state")
    if not (
        isinstance(issued, dict)
        and isinstance(state, str)
        and isinstance(cookie_nonce, str)
        and hmac.compare_digest(str(issued.get("nonce", "")), state)
        and hmac.compare_digest(cookie_nonce, state)
        and issued.get("shop") == shop
    ):
        return _error(
            request,
            "This installation link is not valid any more (it was used already, or started in another "
            "browser). Please start the installation again.",
            403,
        )
    # 3. timestamp
    if not oauth.timestamp_is_recent(params.get("timestamp")):
        return _error(request, "This installation request is too old. Please start again.", 403)
    # 4. hmac
    if not oauth.verify_callback_hmac(params, settings.SHOPIFY_API_SECRET):
        return _error(request, "The installation request is not signed by Shopify (bad hmac).", 403)
    code = params.get("code")
    if not isinstance(code, str) or not code:
        return _error(request, "The installation request has no authorization code.", 400)
    try:
        grant = oauth.exchange_code(shop, code)
        installed, reinstalled = oauth.complete_install(shop, grant)
    except ShopifyError as exc:
        logger.warning("install of %s failed: %s", shop, exc)
        return _error(request, "Your store did not complete the installation. Please try again.", 502)
    logger.info("installed into %s (reinstalled=%s)", shop, reinstalled)
    return _login(request, installed)


@require_GET
def embedded(request: HttpRequest) -> HttpResponse:
    token = request.GET.get("id_token", "")
    if not token:
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
    try:
        shop = shop_from_session_token(token)
    except SessionTokenError as exc:
        return _error(request, f"The Shopify session is not valid: {exc}.", 401)
    return _login(request, shop)
