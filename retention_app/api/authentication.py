"""Authentication of the REST API: a per-shop token, or the merchant's panel session.

Every authenticated request carries a `ShopPrincipal` as `request.user` and the Shop as `request.auth`;
views read the shop from `request.auth` only, so a token never sees another shop's data.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from django.utils import timezone
from rest_framework import authentication, exceptions

from retention_app.api.models import ShopApiToken
from retention_app.api.services import TOKEN_PREFIX, hash_token_secret
from retention_app.shops.models import Shop


@dataclass(frozen=True)
class ShopPrincipal:
    """Who calls the API: a shop (through one of its tokens or its panel session)."""

    shop: Shop
    token_id: int | None = None

    is_authenticated = True
    is_anonymous = False
    is_active = True

    @property
    def pk(self):
        return f"shop:{self.shop.pk}"


class ShopTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer bmr_<prefix>_<secret>`` (``Token`` is accepted as the keyword too)."""

    keywords = ("bearer", "token")

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0].lower() not in self.keywords:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: expected 'Bearer <token>'.")
        parts = header[1].split("_", 2)
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            # Not one of ours (e.g. an App Bridge session token): let another authenticator try.
            return None
        _, prefix, secret = parts
        token = ShopApiToken.objects.select_related("shop").filter(prefix=prefix).first()
        if (
            token is None
            or not hmac.compare_digest(token.token_hash, hash_token_secret(secret))
            or not token.is_active
        ):
            raise exceptions.AuthenticationFailed("Invalid or revoked API token.")
        ShopApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return ShopPrincipal(shop=token.shop, token_id=token.pk), token.shop

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class PanelSessionAuthentication(authentication.SessionAuthentication):
    """The panel's own session (standalone login, OAuth install, embedded admin): CSRF enforced."""

    def authenticate(self, request):
        from retention_app.panel.auth import session_shop

        shop = session_shop(request._request)
        if shop is None:
            return None
        self.enforce_csrf(request)
        return ShopPrincipal(shop=shop), shop
