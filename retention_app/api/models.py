"""Per-shop API tokens for the REST API (/api/v1/...).

A token belongs to exactly one shop and sees only that shop's data. Only a SHA-256 hash of the secret is
stored (the token is random with 256 bits of entropy, so a plain hash is enough; no salt/KDF needed); the
plain token is shown once, when it is created. Format: ``bmr_<prefix>_<secret>``; the prefix (public,
unique) finds the row, the hash is compared in constant time.
Send it as ``Authorization: Bearer bmr_…`` (or ``Authorization: Token bmr_…``).
"""

from __future__ import annotations

from django.db import models


class ShopApiToken(models.Model):
    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    token_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} (bmr_{self.prefix}_…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
