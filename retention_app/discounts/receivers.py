"""Signal receivers of the discounts domain (connected in DiscountsConfig.ready())."""

from __future__ import annotations

from .models import DiscountCode
from .services import discount_codes_redeem_for_order


def on_order_upserted(sender, order, **kwargs) -> None:
    """An order placed with an issued code redeems it (redemption attribution). Idempotent."""
    discount_codes_redeem_for_order(order=order)


def on_customer_data_export(sender, shop, customer=None, **kwargs) -> dict:
    """customers/data_request: the codes issued to the customer."""
    rows = [] if customer is None else DiscountCode.objects.filter(shop=shop, customer=customer)
    return {
        "section": "discounts",
        "data": [
            {
                "code": row.code,
                "rule": row.rule_key,
                "value_type": row.value_type,
                "value": str(row.value),
                "currency": row.currency,
                "status": row.status,
                "created_at": row.created_at.isoformat(),
                "expires_at": row.expires_at.isoformat() if row.expires_at else None,
                "redeemed_at": row.redeemed_at.isoformat() if row.redeemed_at else None,
            }
            for row in rows
        ],
    }


def on_customer_redact(sender, shop, customer=None, **kwargs) -> None:
    """customers/redact: a code row holds no name, email or address, only the code and a link to the
    customer row (which the commerce domain anonymizes and keeps for the metrics). Codes that were never
    created on the store are deleted; codes that exist on the store are kept so redemptions stay
    attributed in the merchant's metrics."""
    if customer is None:
        return
    DiscountCode.objects.filter(
        shop=shop, customer=customer, status__in=[DiscountCode.Status.PENDING, DiscountCode.Status.FAILED]
    ).delete()
