"""Reads for shops."""

from __future__ import annotations

from retention_app.shops.models import Shop


def shop_get_by_domain(*, platform: str, domain: str) -> Shop | None:
    return Shop.objects.filter(platform=platform, domain=domain).first()


def shop_get_installed(*, platform: str, domain: str) -> Shop | None:
    """The shop when it is installed and holds a credential, else None."""
    return (
        Shop.objects.filter(
            platform=platform, domain=domain, status=Shop.Status.INSTALLED, credential__isnull=False
        )
        .select_related("credential")
        .first()
    )
