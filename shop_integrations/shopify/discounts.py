"""Shopify side of the discounts domain: customer-bound single-use codes and the order metafield.

Called only through shop_integrations.gateway (retention_app never imports this module). Errors come out
as the gateway's neutral PlatformRetryableError / PlatformPermanentError.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from shop_integrations.gateway import CustomerDiscountSpec, PlatformPermanentError, PlatformRetryableError
from shop_integrations.shopify.client import ShopifyClient, ShopifyPermanentError, ShopifyRetryableError
from shop_integrations.shopify.documents import load

logger = logging.getLogger(__name__)


def customer_gid(platform_id: str) -> str:
    return platform_id if platform_id.startswith("gid://") else f"gid://shopify/Customer/{platform_id}"


def order_gid(platform_id: str) -> str:
    return platform_id if platform_id.startswith("gid://") else f"gid://shopify/Order/{platform_id}"


def _execute(shop, document: str, variables: dict) -> dict:
    try:
        return ShopifyClient.for_shop(shop).execute(load(document), variables)
    except ShopifyRetryableError as exc:
        raise PlatformRetryableError(str(exc)) from exc
    except ShopifyPermanentError as exc:
        raise PlatformPermanentError(str(exc)) from exc


def _decimal_text(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


def discount_input(spec: CustomerDiscountSpec) -> dict:
    """The DiscountCodeBasicInput of a customer-bound, single-use code."""
    if spec.value_type == "percentage":
        # Shopify wants a fraction: 0.15 for 15 %.
        value = {"percentage": float(Decimal(spec.value) / Decimal(100))}
    else:
        value = {"discountAmount": {"amount": _decimal_text(spec.value), "appliesOnEachItem": False}}
    data: dict = {
        "title": spec.title,
        "code": spec.code,
        "startsAt": spec.starts_at.isoformat(),
        "endsAt": spec.ends_at.isoformat() if spec.ends_at else None,
        "usageLimit": 1,
        "appliesOncePerCustomer": True,
        "context": {"customers": {"add": [customer_gid(spec.customer_platform_id)]}},
        "customerGets": {"value": value, "items": {"all": True}},
        "combinesWith": {"orderDiscounts": False, "productDiscounts": True, "shippingDiscounts": True},
    }
    if spec.minimum_order:
        data["minimumRequirement"] = {
            "subtotal": {"greaterThanOrEqualToSubtotal": _decimal_text(spec.minimum_order)}
        }
    return data


def discount_id_by_code(shop, code: str) -> str | None:
    # Reference: https://shopify.dev/docs/api/admin-graphql/2026-01/queries/codeDiscountNodeByCode
    data = _execute(shop, "discount_code_node_by_code", {"code": code})
    node = (data or {}).get("codeDiscountNodeByCode")
    return node["id"] if node else None


def create_customer_discount(shop, spec: CustomerDiscountSpec) -> str:
    """Create the code on the store; return the discount's gid.

    Retry-safe without an idempotency key: the code is unique per store and generated once (the row holds
    it), so a retry after a lost answer gets userError TAKEN for the same code, and then adopts the
    discount that already exists instead of creating a second one.
    """
    # Reference: https://shopify.dev/docs/api/admin-graphql/2026-01/mutations/discountCodeBasicCreate
    data = _execute(shop, "discount_code_basic_create", {"basicCodeDiscount": discount_input(spec)})
    payload = (data or {}).get("discountCodeBasicCreate") or {}
    node = payload.get("codeDiscountNode")
    errors = payload.get("userErrors") or []
    if node and node.get("id"):
        return node["id"]
    if any((e.get("code") or "") in {"TAKEN", "DUPLICATE"} for e in errors):
        existing = discount_id_by_code(shop, spec.code)
        if existing:
            logger.info("discount code already on %s (earlier attempt succeeded): adopting it", shop.domain)
            return existing
    messages = "; ".join(e.get("message", "") for e in errors) or "no discount returned"
    raise PlatformPermanentError(f"discountCodeBasicCreate refused: {messages}")


def set_order_metafield(shop, *, order_platform_id: str, namespace: str, key: str, value: str) -> None:
    """Write a single_line_text_field metafield on an order (idempotent: same value, same result)."""
    # Reference: https://shopify.dev/docs/api/admin-graphql/2026-01/mutations/metafieldsSet
    data = _execute(
        shop,
        "metafields_set",
        {
            "metafields": [
                {
                    "ownerId": order_gid(order_platform_id),
                    "namespace": namespace,
                    "key": key,
                    "type": "single_line_text_field",
                    "value": value,
                }
            ]
        },
    )
    errors = ((data or {}).get("metafieldsSet") or {}).get("userErrors") or []
    if errors:
        raise PlatformPermanentError(
            "metafieldsSet refused: " + "; ".join(e.get("message", "") for e in errors)
        )
