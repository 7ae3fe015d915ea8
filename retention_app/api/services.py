"""Writes of the API domain: issuing and revoking per-shop API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.utils import timezone

from retention_app.api.models import ShopApiToken
from retention_app.shops.models import Shop

TOKEN_PREFIX = "bmr"  # noqa: S105 (a public marker, not a secret)


def hash_token_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_create(*, shop: Shop, name: str) -> tuple[ShopApiToken, str]:
    """Create a token for `shop`; returns (row, plain token). The plain token is never stored nor logged."""
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ShopApiToken.objects.create(
        shop=shop, name=name.strip()[:100] or "API token", prefix=prefix, token_hash=hash_token_secret(secret)
    )
    return token, f"{TOKEN_PREFIX}_{prefix}_{secret}"


def api_token_revoke(*, shop: Shop, token_id: int) -> bool:
    """Revoke one of `shop`'s tokens; False when there is no such active token of that shop."""
    return bool(
        ShopApiToken.objects.filter(shop=shop, pk=token_id, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
    )
