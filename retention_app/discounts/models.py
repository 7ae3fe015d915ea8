"""Discount codes the app issues to customers (created on the store, single use, bound to the customer).

Exactly once: one row per (shop, rule_key, customer, trigger_key) — the unique constraint is the guard, the
row (with its generated code) is written before the platform call, the call is made under a row lock on
PostgreSQL, and the store refuses a code twice (a retry adopts the existing discount), so retries and
concurrent workers end with one code on the store.
"""

from __future__ import annotations

from django.db import models

MONEY = {"max_digits": 18, "decimal_places": 4}


class DiscountCode(models.Model):
    class ValueType(models.TextChoices):
        PERCENTAGE = "percentage", "Percentage"
        FIXED_AMOUNT = "fixed_amount", "Fixed amount"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (not yet on the store)"
        ACTIVE = "active", "Active"
        REDEEMED = "redeemed", "Redeemed"
        FAILED = "failed", "Failed (the store refused it)"

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="discount_codes")
    customer = models.ForeignKey("commerce.Customer", on_delete=models.CASCADE, related_name="discount_codes")
    # The automation rule that issued it ("order_confirmation", "win_back" …).
    rule_key = models.CharField(max_length=64)
    # What triggered it, unique within (rule, customer): e.g. "order:5001", "lapse:2026-11-23".
    trigger_key = models.CharField(max_length=128)
    code = models.CharField(max_length=64)
    value_type = models.CharField(max_length=20, choices=ValueType.choices)
    value = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3)
    minimum_order = models.DecimalField(**MONEY, null=True, blank=True)
    starts_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # The platform's id of the discount (Shopify: gid://shopify/DiscountCodeNode/…); "" until created.
    platform_discount_id = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    # Why the store refused the code (status failed), or the last transient error.
    last_error = models.TextField(blank=True, default="")
    redeemed_at = models.DateTimeField(null=True, blank=True)
    redeemed_order = models.ForeignKey(
        "commerce.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "rule_key", "customer", "trigger_key"],
                name="discountcode_unique_shop_rule_customer_trigger",
            ),
            models.UniqueConstraint(fields=["shop", "code"], name="discountcode_unique_shop_code"),
        ]
        indexes = [
            models.Index(fields=["customer", "status"]),
            models.Index(fields=["shop", "created_at"]),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def url(self) -> str:
        """The storefront link that applies the code: {storefront}/discount/{CODE}."""
        from retention_app.discounts.selectors import storefront_base_url

        return f"{storefront_base_url(self.shop)}/discount/{self.code}"
