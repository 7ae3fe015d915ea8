"""Embedded admin (App Bridge) session tokens, through ONE neutral hook.

retention_app never imports platform code directly: the verifier is named by the setting
``PANEL_SESSION_TOKEN_VERIFIER`` (a dotted path; default
``shop_integrations.shopify.session_tokens.shop_for_session_token``). Contract of the verifier:
``verifier(token: str) -> Shop | None`` — the installed Shop the token was issued for, None (or any
exception) when the token is invalid. If the verifier cannot be imported, embedded tokens are ignored.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

DEFAULT_VERIFIER = "shop_integrations.shopify.session_tokens.shop_for_session_token"


@lru_cache(maxsize=4)
def _verifier(path: str):
    try:
        return import_string(path)
    except ImportError:
        logger.warning("session token verifier %s is not available; embedded tokens are ignored", path)
        return None


def shop_for_token(token: str):
    verifier = _verifier(getattr(settings, "PANEL_SESSION_TOKEN_VERIFIER", DEFAULT_VERIFIER))
    if verifier is None or not token:
        return None
    try:
        return verifier(token)
    except Exception:  # an invalid token is a login failure, never a 500
        logger.info("embedded session token rejected")
        return None


def shop_from_request_token(request):
    """The shop of an App Bridge session token sent with the request (query `id_token` or Bearer JWT)."""
    token = request.GET.get("id_token", "")
    if not token:
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer ") and auth.count(".") == 2:
            token = auth.split(None, 1)[1].strip()
    if not token or token.startswith("bmr_"):
        return None
    return shop_for_token(token)
