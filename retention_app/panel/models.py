"""Merchant access to the panel and per-shop panel settings.

- `ShopMembership`: a Django auth user who may open a shop's panel with a standalone login
  (/app/login/). Merchants who arrive through the Shopify install/admin need no user: the OAuth callback or
  the embedded session token sets the panel session's shop.
- `PanelSettings`: the merchant's choices for the dashboard (pinned North Star metric, VIP share).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class ShopMembership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        STAFF = "staff", _("Staff")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shop_memberships"
    )
    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.OWNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "shop"], name="shopmembership_unique_user_shop")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.shop}"


class NorthStar(models.TextChoices):
    RETENTION_RATE = "retention_rate", _("Retention rate")
    CHURN_RATE = "churn_rate", _("Churn rate")
    REPEAT_PURCHASE_RATE = "repeat_purchase_rate", _("Repeat purchase rate")
    ACTIVE_CUSTOMERS = "active_customers", _("Active customers")
    NEW_CUSTOMERS = "new_customers", _("New customers")
    AVERAGE_ORDER_VALUE = "average_order_value", _("Average order value")
    CUSTOMER_LIFETIME_VALUE = "customer_lifetime_value", _("Customer lifetime value")


class PanelSettings(models.Model):
    shop = models.OneToOneField("shops.Shop", on_delete=models.CASCADE, related_name="panel_settings")
    north_star_metric = models.CharField(
        max_length=32, choices=NorthStar.choices, default=NorthStar.REPEAT_PURCHASE_RATE
    )
    # VIP customers: the top share (percent) of customers by total spend.
    vip_share_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=Decimal("10"),
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("100"))],
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"panel settings of {self.shop}"
