"""Writes for shops and their credentials (platform-neutral: the Shopify code calls these)."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from retention_app.shops import events
from retention_app.shops.models import Shop, ShopCredential

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AccessGrant:
    """A token grant from the platform. repr hides the tokens so a grant can never be logged by accident."""

    access_token: str
    scopes: str = ""
    access_token_expires_at: dt.datetime | None = None
    refresh_token: str = ""
    refresh_token_expires_at: dt.datetime | None = None

    def __repr__(self) -> str:
        return (
            f"AccessGrant(scopes={self.scopes!r}, access_token_expires_at={self.access_token_expires_at!r})"
        )

    __str__ = __repr__


@dataclass(frozen=True)
class ShopDetails:
    """What the platform tells about the shop at install time."""

    platform_shop_id: str = ""
    name: str = ""
    email: str = ""
    owner_name: str = ""
    currency: str = "USD"
    timezone: str = "UTC"  # IANA name
    primary_locale: str = "en"
    storefront_url: str = ""


def shop_install(
    *,
    platform: str,
    domain: str,
    grant: AccessGrant,
    details: ShopDetails | None = None,
) -> tuple[Shop, bool]:
    """Create or re-activate the shop and replace its credential with `grant` (a reinstall keeps no stale
    token). Sends events.shop_installed(shop, reinstalled) on commit. Returns (shop, reinstalled), where
    reinstalled means the shop row existed before."""
    now = timezone.now()
    with transaction.atomic():
        shop, created = Shop.objects.select_for_update().get_or_create(platform=platform, domain=domain)
        if details is not None:
            for field in ShopDetails.__dataclass_fields__:
                value = getattr(details, field)
                if value or field in {"storefront_url"}:
                    setattr(shop, field, value)
        shop.status = Shop.Status.INSTALLED
        shop.installed_at = now
        shop.uninstalled_at = None
        shop.save()
        shop_credential_store(shop=shop, grant=grant)
        reinstalled = not created
        transaction.on_commit(
            lambda: events.shop_installed.send(sender=Shop, shop=shop, reinstalled=reinstalled)
        )
    logger.info("shop installed: %s (reinstalled=%s)", shop.domain, reinstalled)
    return shop, reinstalled


def shop_credential_store(*, shop: Shop, grant: AccessGrant) -> ShopCredential:
    """Replace the shop's credential with `grant` (every field, so nothing stale survives)."""
    credential, _ = ShopCredential.objects.update_or_create(
        shop=shop,
        defaults={
            "access_token": grant.access_token,
            "access_token_expires_at": grant.access_token_expires_at,
            "refresh_token": grant.refresh_token,
            "refresh_token_expires_at": grant.refresh_token_expires_at,
            "scopes": grant.scopes,
        },
    )
    return credential


def shop_credentials_drop(*, shop: Shop) -> int:
    """Delete the shop's tokens (app uninstalled). Returns the number of credentials deleted."""
    deleted, _ = ShopCredential.objects.filter(shop=shop).delete()
    return deleted


def credentials_reencrypt() -> int:
    """Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS (key rotation).

    Loading decrypts with whichever key fits, saving encrypts with the first one. Row by row under a row
    lock, so a concurrent token refresh is never overwritten with an older token. Returns the count."""
    count = 0
    for pk in list(ShopCredential.objects.values_list("pk", flat=True)):
        with transaction.atomic():
            credential = ShopCredential.objects.select_for_update().filter(pk=pk).first()
            if credential is None:
                continue
            credential.save(update_fields=["access_token", "refresh_token"])
            count += 1
    return count
