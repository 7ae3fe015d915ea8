"""Branded tracking pages: per-shop branding, per-fulfillment public links, analytics and attribution.

Nothing here stores personal data in clear: page views keep a daily-rotating keyed hash of IP + User-Agent
(never the IP), clicks keep a link to the Customer row only so orders can be attributed (erased on
customers/redact).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

HEX_COLOR_RE = r"^#[0-9a-fA-F]{6}$"


class TrackingBranding(models.Model):
    """How a shop's tracking pages look. One row per shop; missing row = defaults."""

    DEFAULT_BRAND_COLOR = "#1f2937"
    DEFAULT_ACCENT_COLOR = "#2563eb"
    DEFAULT_BACKGROUND_COLOR = "#f5f5f4"

    shop = models.OneToOneField("shops.Shop", on_delete=models.CASCADE, related_name="tracking_branding")
    # https only (an http image on an https page is mixed content); validated in services.
    logo_url = models.URLField(max_length=1024, blank=True, default="")
    # #RRGGBB, normalized to lower case. The header background.
    brand_color = models.CharField(max_length=7, default=DEFAULT_BRAND_COLOR)
    # Links and buttons.
    accent_color = models.CharField(max_length=7, default=DEFAULT_ACCENT_COLOR)
    # Page background.
    background_color = models.CharField(max_length=7, default=DEFAULT_BACKGROUND_COLOR)
    show_recommendations = models.BooleanField(default=True)
    show_discount_code = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"branding of {self.shop_id}"


class TrackingLink(models.Model):
    """The public identity of one fulfillment's tracking page: a random id (never the row id).

    The URL token is this id signed with SECRET_KEY (django.core.signing), so a guessed or tampered token
    is rejected before any query, and the id alone identifies exactly one fulfillment of one shop.
    """

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="+")
    fulfillment = models.OneToOneField(
        "commerce.Fulfillment", on_delete=models.CASCADE, related_name="tracking_link"
    )
    public_id = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.public_id


class TrackingPageView(models.Model):
    """One page view (one INSERT on the hot path, no index but the fulfillment/day one)."""

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="+")
    fulfillment = models.ForeignKey("commerce.Fulfillment", on_delete=models.CASCADE, related_name="+")
    # Day in UTC the view happened; unique visitors are counted per day (the hash key rotates daily).
    day = models.DateField()
    # HMAC(SECRET_KEY, day | IP | User-Agent), hex, truncated: not reversible, not linkable across days.
    visitor_hash = models.CharField(max_length=32)
    # When the view happened (set explicitly: views are inserted in batches from a Redis buffer).
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["fulfillment", "day"], name="tracking_view_ful_day"),
            models.Index(fields=["shop", "created_at"], name="tracking_view_shop_created"),
        ]

    def __str__(self) -> str:
        return f"view of {self.fulfillment_id} on {self.day}"


class TrackingClick(models.Model):
    class Kind(models.TextChoices):
        RECOMMENDATION = "recommendation", "Product recommendation"
        DISCOUNT_CODE = "discount_code", "Discount code"

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="+")
    fulfillment = models.ForeignKey("commerce.Fulfillment", on_delete=models.CASCADE, related_name="+")
    # Who clicked (the fulfillment's customer), for attribution; set to NULL on customers/redact.
    customer = models.ForeignKey(
        "commerce.Customer", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    product = models.ForeignKey(
        "commerce.Product", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    discount_code = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["shop", "customer", "created_at"], name="tracking_click_attrib"),
            models.Index(fields=["shop", "created_at"], name="tracking_click_shop_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} click on {self.fulfillment_id}"


class TrackingAttribution(models.Model):
    """An order placed by the same customer within ATTRIBUTION_WINDOW after a click (last click wins).

    Unique per order: a redelivered order webhook never counts the revenue twice.
    """

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="+")
    order = models.OneToOneField(
        "commerce.Order", on_delete=models.CASCADE, related_name="tracking_attribution"
    )
    click = models.ForeignKey(TrackingClick, on_delete=models.CASCADE, related_name="attributions")
    revenue = models.DecimalField(max_digits=18, decimal_places=4)
    currency = models.CharField(max_length=3)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "created_at"], name="tracking_attr_shop_created")]

    def __str__(self) -> str:
        return f"order {self.order_id} from click {self.click_id}"
