"""The merchant's store (a tenant). Every tenant-owned row in the app points at a Shop."""

from __future__ import annotations

from django.db import models

from retention_app.shops.crypto import EncryptedTextField


class Shop(models.Model):
    class Platform(models.TextChoices):
        SHOPIFY = "shopify", "Shopify"
        IMPORT = "import", "CSV import"

    class Status(models.TextChoices):
        INSTALLED = "installed", "Installed"
        UNINSTALLED = "uninstalled", "Uninstalled"
        IMPORTED = "imported", "Imported (no platform connection)"

    platform = models.CharField(max_length=20, choices=Platform.choices, default=Platform.SHOPIFY)
    # The shop's canonical domain on its platform, e.g. "acme.myshopify.com". Unique per platform.
    domain = models.CharField(max_length=255)
    platform_shop_id = models.CharField(max_length=64, blank=True, default="")
    name = models.CharField(max_length=255, blank=True, default="")
    email = models.EmailField(blank=True, default="")
    # Owner's display name, used to sign the personal thank-you email.
    owner_name = models.CharField(max_length=255, blank=True, default="")
    currency = models.CharField(max_length=3, default="USD")
    # IANA time zone name; every metric and quiet-hours rule uses it.
    timezone = models.CharField(max_length=64, default="UTC")
    # Default language for what customers see when their own locale is unknown (en, th, vi, pl, zh-hant).
    primary_locale = models.CharField(max_length=16, default="en")
    # Public storefront address, e.g. "https://acme.com"; discount links use {storefront_url}/discount/CODE.
    storefront_url = models.URLField(blank=True, default="")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.INSTALLED)
    installed_at = models.DateTimeField(null=True, blank=True)
    uninstalled_at = models.DateTimeField(null=True, blank=True)
    # Activity window W (days) used by the retention metrics.
    activity_window_days = models.PositiveIntegerField(default=180)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["platform", "domain"], name="shop_unique_platform_domain")
        ]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_installed(self) -> bool:
        return self.status == self.Status.INSTALLED


class ShopCredential(models.Model):
    """The platform access grant of a shop (one per shop). Tokens are encrypted at rest.

    access_token_expires_at/refresh_token_expires_at are None for non-expiring tokens. Deleted when the app
    is uninstalled (a reinstall creates a fresh one), cascades with the shop on shop/redact.
    """

    shop = models.OneToOneField(Shop, on_delete=models.CASCADE, related_name="credential")
    access_token = EncryptedTextField()
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token = EncryptedTextField(blank=True, default="")
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    # Comma-separated scopes granted by the merchant.
    scopes = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"credential of {self.shop_id}"

    def __repr__(self) -> str:
        # Never show tokens (they are plain strings once loaded).
        return f"<ShopCredential shop_id={self.shop_id} expires_at={self.access_token_expires_at}>"
