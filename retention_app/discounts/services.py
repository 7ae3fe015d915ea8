"""Writes for discount codes: issue a customer-bound single-use code on the store exactly once, write it to
an order as a metafield, attribute its redemption.

retention_app never imports a platform package: platform calls go through shop_integrations.gateway.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from shop_integrations.gateway import (
    CustomerDiscountSpec,
    PlatformError,
    PlatformPermanentError,
    PlatformRetryableError,
    platform_for,
)

from .models import DiscountCode

logger = logging.getLogger(__name__)

# Letters and digits that cannot be confused with each other when read from an email (no 0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8  # 31**8 ≈ 8.5e11 codes per prefix: unguessable, and each is bound to one customer anyway
CODE_PREFIXES = {"order_confirmation": "NEXT", "win_back": "BACK", "thank_you": "THANKS"}
METAFIELD_NAMESPACE = "boomerang"
METAFIELD_KEY = "next_order_code"

__all__ = [
    "DiscountCodeIssueError",
    "PlatformError",
    "PlatformRetryableError",
    "discount_code_issue",
    "discount_code_write_order_metafield",
    "discount_codes_redeem_for_order",
]


class DiscountCodeIssueError(Exception):
    """The code cannot be issued and retrying will not help (the store refused it, or the shop has no
    platform connection). The row stays with status failed and the reason in last_error."""


def code_generate(rule_key: str) -> str:
    prefix = CODE_PREFIXES.get(rule_key, "GIFT")
    return f"{prefix}-{''.join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))}"


def _row_get_or_create(*, shop, customer, rule_key: str, trigger_key: str, defaults: dict) -> DiscountCode:
    key = {"shop": shop, "rule_key": rule_key, "customer": customer, "trigger_key": trigger_key}
    for _attempt in range(5):
        row = DiscountCode.objects.filter(**key).first()
        if row is not None:
            return row
        try:
            with transaction.atomic():
                return DiscountCode.objects.create(**key, **defaults, code=code_generate(rule_key))
        except IntegrityError:
            # Either another worker created the row for this trigger (found on the next loop), or the
            # generated code collided with an existing one (a new code on the next loop).
            continue
    raise IntegrityError("could not create a discount code row")  # pragma: no cover


def discount_code_issue(
    *,
    shop,
    customer,
    rule_key: str,
    trigger_key: str,
    value_type: str,
    value: Decimal,
    expires_in_days: int,
    minimum_order: Decimal | None = None,
) -> DiscountCode:
    """Issue the single-use code of (shop, rule_key, customer, trigger_key) on the store and return it.

    Exactly once, under retries and concurrency: the row is created first (unique constraint), then the
    platform call runs while the row is locked (select_for_update, PostgreSQL), so a concurrent caller
    waits and then finds the code active; a retry after a crash reuses the same code, which the store
    refuses to create twice (the adapter adopts the existing discount). Returns an ACTIVE (or REDEEMED)
    DiscountCode.

    Raises PlatformRetryableError (transient: retry the task later, nothing is lost) or
    DiscountCodeIssueError (permanent: status failed, last_error says why; a later call tries again).
    Call it outside a caller's transaction: a rollback there would forget a code the store already has.
    """
    if customer.shop_id != shop.pk:
        raise ValueError("customer belongs to another shop")
    if value_type not in DiscountCode.ValueType.values:
        raise ValueError(f"value_type must be one of {DiscountCode.ValueType.values}")
    value = Decimal(value)
    if value <= 0 or (value_type == DiscountCode.ValueType.PERCENTAGE and value > 100):
        raise ValueError("discount value out of range")
    if expires_in_days is not None and expires_in_days < 1:
        raise ValueError("expires_in_days must be at least 1")
    if not customer.platform_id:
        raise DiscountCodeIssueError("the customer has no id on the store")

    now = timezone.now()
    row = _row_get_or_create(
        shop=shop,
        customer=customer,
        rule_key=rule_key,
        trigger_key=trigger_key,
        defaults={
            "value_type": value_type,
            "value": value,
            "currency": shop.currency,
            "minimum_order": minimum_order,
            "starts_at": now,
            "expires_at": now + dt.timedelta(days=expires_in_days) if expires_in_days else None,
        },
    )
    if row.status in (DiscountCode.Status.ACTIVE, DiscountCode.Status.REDEEMED):
        return row

    if connection.features.has_select_for_update:
        # PostgreSQL: the platform call runs under the row lock, so a concurrent caller waits and then
        # finds the code active (one API call). Never raise inside this block: the call may refresh the
        # shop's access token, and a rollback would throw the rotated refresh token away.
        with transaction.atomic():
            row = DiscountCode.objects.select_for_update().get(pk=row.pk)
            failure = _create_on_platform(row, shop=shop, customer=customer, rule_key=rule_key)
    else:
        # SQLite takes a database-wide write lock for a transaction: holding it across an HTTP call would
        # stall every other writer. Without the lock exactly-once still holds on the store: a concurrent
        # second attempt sends the same code, which the store refuses (TAKEN) and the adapter adopts.
        row.refresh_from_db()
        failure = _create_on_platform(row, shop=shop, customer=customer, rule_key=rule_key)
    if failure is not None:
        logger.warning("discount code %s for shop %s not issued: %s", row.pk, shop.pk, failure)
        raise failure
    return row


def _create_on_platform(row: DiscountCode, *, shop, customer, rule_key: str) -> Exception | None:
    """Create `row` on the store unless already done; save the outcome. Returns the error to raise."""
    if row.status in (DiscountCode.Status.ACTIVE, DiscountCode.Status.REDEEMED):
        return None
    failure: Exception | None = None
    platform = platform_for(shop)
    if platform is None:
        failure = DiscountCodeIssueError("the shop has no platform connection to create codes on")
        row.status = DiscountCode.Status.FAILED
        row.last_error = str(failure)
    else:
        spec = CustomerDiscountSpec(
            code=row.code,
            title=f"Boomerang {rule_key} {row.code}",
            customer_platform_id=customer.platform_id,
            value_type=row.value_type,
            value=row.value,
            currency=row.currency,
            starts_at=row.starts_at,
            ends_at=row.expires_at,
            minimum_order=row.minimum_order,
        )
        try:
            row.platform_discount_id = platform.create_customer_discount(spec)
            row.status = DiscountCode.Status.ACTIVE
            row.last_error = ""
        except PlatformRetryableError as exc:
            failure = exc
            row.last_error = f"retryable: {exc}"[:2000]
        except PlatformPermanentError as exc:
            failure = DiscountCodeIssueError(str(exc))
            row.status = DiscountCode.Status.FAILED
            row.last_error = str(exc)[:2000]
    # Conditional save: a code another worker already activated (and maybe redeemed) is never downgraded.
    DiscountCode.objects.filter(pk=row.pk).exclude(
        status__in=[DiscountCode.Status.ACTIVE, DiscountCode.Status.REDEEMED]
    ).update(
        platform_discount_id=row.platform_discount_id,
        status=row.status,
        last_error=row.last_error,
        updated_at=timezone.now(),
    )
    return failure


def discount_code_write_order_metafield(*, order, discount_code: DiscountCode) -> None:
    """Write the code to the order as metafield boomerang.next_order_code (storefront/order status page).
    Idempotent (same value). Raises PlatformRetryableError / PlatformPermanentError (neutral errors)."""
    if order.shop_id != discount_code.shop_id:
        raise ValueError("order and code belong to different shops")
    platform = platform_for(order.shop)
    if platform is None:
        return
    platform.set_order_metafield(
        order_platform_id=order.platform_id,
        namespace=METAFIELD_NAMESPACE,
        key=METAFIELD_KEY,
        value=discount_code.code,
    )


def discount_codes_redeem_for_order(*, order) -> int:
    """Mark the shop's issued codes used on this order as redeemed by it. Idempotent: a code already
    redeemed keeps its first order. Returns how many codes were marked now."""
    codes = {str(c).strip().upper() for c in (order.discount_codes or []) if str(c).strip()}
    if not codes:
        return 0
    return DiscountCode.objects.filter(
        shop_id=order.shop_id, code__in=codes, redeemed_at__isnull=True
    ).update(
        status=DiscountCode.Status.REDEEMED,
        redeemed_at=order.placed_at or timezone.now(),
        redeemed_order=order,
        updated_at=timezone.now(),
    )


def discount_codes_redeem_recent_orders(*, since: dt.datetime, limit: int = 50_000) -> int:
    """Safety net for redemption attribution: orders written without a domain event (reconciliation,
    bulk writes) are matched too. Looks at orders changed since `since` that carry discount codes.
    Idempotent. Returns how many codes were marked redeemed."""
    from retention_app.commerce.models import Order

    orders = (
        Order.objects.filter(updated_at__gte=since)
        .exclude(discount_codes=[])
        .only("id", "shop_id", "discount_codes", "placed_at")
        .order_by("placed_at", "id")[:limit]
    )
    marked = 0
    for order in orders.iterator(chunk_size=2000):
        if not order.discount_codes:
            continue
        marked += discount_codes_redeem_for_order(order=order)
    return marked
