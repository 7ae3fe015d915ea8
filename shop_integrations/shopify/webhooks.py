"""Shopify webhook signatures.

# Reference: https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-2-validate-the-origin-of-your-webhook-to-ensure-its-coming-from-shopify
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from django.conf import settings


def verify_webhook_hmac(body: bytes, header_value: str, secret: str) -> bool:
    """True when `header_value` (X-Shopify-Hmac-Sha256) is the base64 HMAC-SHA256 of the raw `body` with
    `secret`. Constant-time comparison; False (never an exception) for a missing, empty or garbled header,
    an empty secret or a body that is not bytes."""
    try:
        if not header_value or not secret or not isinstance(body, bytes | bytearray | memoryview):
            return False
        provided = header_value.strip().encode("ascii")
        expected = base64.b64encode(hmac.new(secret.encode("utf-8"), bytes(body), hashlib.sha256).digest())
        return hmac.compare_digest(expected, provided)
    except Exception:  # noqa: BLE001 (contract: never raises; any odd input is simply not a valid signature)
        return False


def webhook_secrets() -> list[str]:
    """The app secrets a webhook may be signed with: the current one and, during a rotation window, the
    previous one (settings.SHOPIFY_API_SECRET_PREVIOUS)."""
    return [s for s in (settings.SHOPIFY_API_SECRET, settings.SHOPIFY_API_SECRET_PREVIOUS) if s]


def verify_webhook_request(body: bytes, header_value: str) -> bool:
    """Check a delivery against every accepted app secret."""
    return any(verify_webhook_hmac(body, header_value, secret) for secret in webhook_secrets())


def sign_webhook_body(body: bytes, secret: str) -> str:
    """The X-Shopify-Hmac-Sha256 value Shopify would send for `body` (tests, benchmarks, tooling)."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")
