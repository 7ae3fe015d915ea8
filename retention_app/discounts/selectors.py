"""Reads for discount codes."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from .models import DiscountCode


def storefront_base_url(shop) -> str:
    """The shop's public storefront address without a trailing slash: its own storefront_url when set,
    else the store's base URL on its platform."""
    if shop.storefront_url:
        return shop.storefront_url.rstrip("/")
    from shop_integrations.gateway import store_base_url

    return store_base_url(shop)


def unused_code_for_customer(customer) -> DiscountCode | None:
    """The customer's newest code that can still be used: active on the store, not expired, not redeemed."""
    now = timezone.now()
    return (
        DiscountCode.objects.filter(
            shop_id=customer.shop_id,
            customer=customer,
            status=DiscountCode.Status.ACTIVE,
            redeemed_at__isnull=True,
        )
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .select_related("shop")
        .order_by("-created_at", "-id")
        .first()
    )


def discount_codes_for_shop(*, shop):
    """Every code of one shop (the panel filters further); another shop's codes are never included."""
    return DiscountCode.objects.filter(shop=shop).select_related("customer", "redeemed_order")
