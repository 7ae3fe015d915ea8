"""The neutral door from the domain (retention_app) to a store's platform, for writes the domain asks for.

    from shop_integrations.gateway import platform_for, PlatformRetryableError, PlatformPermanentError
    platform = platform_for(shop)          # None: the shop has no platform connection (CSV import)
    platform.create_customer_discount(...)

retention_app never imports a platform package (shop_integrations.shopify …) directly; a second platform
adds a branch here and a sub-package, not a change in the domain. Errors are neutral too: retryable
(network, throttling, 5xx: the same call may succeed later) or permanent (rejected input, revoked access).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol


class PlatformError(Exception):
    """A platform call failed."""


class PlatformRetryableError(PlatformError):
    """Transient: retry later with backoff."""


class PlatformPermanentError(PlatformError):
    """A retry cannot help (invalid input, userErrors, missing permission)."""


@dataclass(frozen=True)
class CustomerDiscountSpec:
    """A single-use discount code bound to one customer."""

    code: str
    title: str
    customer_platform_id: str
    value_type: str  # "percentage" | "fixed_amount"
    value: Decimal  # percent (15 = 15 %) or an amount in `currency`
    currency: str
    starts_at: dt.datetime
    ends_at: dt.datetime | None
    minimum_order: Decimal | None


class Platform(Protocol):
    def create_customer_discount(self, spec: CustomerDiscountSpec) -> str:
        """Create the code on the store and return the platform's discount id. Safe to call again with the
        same code after a failure: an existing discount with that code is returned, never a second one."""

    def set_order_metafield(self, *, order_platform_id: str, namespace: str, key: str, value: str) -> None:
        """Write a single-line text metafield on an order (overwrites the previous value)."""

    def update_email_consent(
        self, *, customer_platform_id: str, marketing_state: str, updated_at: dt.datetime
    ) -> None:
        """Record the customer's email marketing consent on the store ("UNSUBSCRIBED", "SUBSCRIBED")."""


class _ShopifyPlatform:
    """Shopify's implementation: shop_integrations/shopify/discounts.py and consent.py (imported lazily so
    importing the gateway costs nothing)."""

    def __init__(self, shop):
        self.shop = shop

    def create_customer_discount(self, spec: CustomerDiscountSpec) -> str:
        from shop_integrations.shopify import discounts

        return discounts.create_customer_discount(self.shop, spec)

    def set_order_metafield(self, *, order_platform_id: str, namespace: str, key: str, value: str) -> None:
        from shop_integrations.shopify import discounts

        discounts.set_order_metafield(
            self.shop, order_platform_id=order_platform_id, namespace=namespace, key=key, value=value
        )

    def update_email_consent(
        self, *, customer_platform_id: str, marketing_state: str, updated_at: dt.datetime
    ) -> None:
        from shop_integrations.shopify import consent

        consent.update_email_consent(
            self.shop,
            customer_platform_id=customer_platform_id,
            marketing_state=marketing_state,
            updated_at=updated_at,
        )


def platform_for(shop) -> Platform | None:
    """The platform adapter of a shop; None when the shop has no platform connection (imported data)."""
    if shop.platform == "shopify":
        return _ShopifyPlatform(shop)
    return None


def store_base_url(shop) -> str:
    """The base URL of the shop's online store on its platform (no trailing slash); "" when unknown.
    Storefront links (e.g. /discount/CODE) use the shop's own storefront_url first, this second."""
    if shop.platform == "shopify" and shop.domain:
        from shop_integrations.shopify.domains import InvalidShopDomain
        from shop_integrations.shopify.domains import store_base_url as shopify_base

        try:
            return shopify_base(shop.domain).rstrip("/")
        except InvalidShopDomain:
            return ""
    return ""
