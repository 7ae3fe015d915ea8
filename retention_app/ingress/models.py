"""Webhook ingress: stored deliveries, compliance audit trail and customer data exports.

- `WebhookDelivery`: one row per delivery accepted by the webhook endpoint. The platform's webhook id is
  unique, so a redelivery (at-least-once delivery) never creates a second row nor a second processing.
  The row is written before the answer and processed by a worker; a failed processing stays visible with
  its error and can be retried.
- `ComplianceAuditRecord`: proof that a privacy request (customers/data_request, customers/redact,
  shop/redact) was honoured. It holds NO personal data (topic, shop domain, ids, counts, times) and no
  foreign key to the Shop: it must outlive shop/redact, which deletes the Shop and everything under it.
- `CustomerDataExport`: the answer to customers/data_request, everything held about a customer, kept for
  the merchant to hand over. It is personal data: customers/redact erases it too.
"""

from __future__ import annotations

from django.db import models


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"  # stored, waiting for (or retrying) processing
        PROCESSED = "processed", "Processed"
        IGNORED = "ignored", "Ignored"  # nothing to do (e.g. shop no longer installed)
        FAILED = "failed", "Failed"  # a handler raised; `last_error` says why; retried or retriable

    # No index of its own: the (shop, received_at) index below serves every query by shop (and the cascade).
    shop = models.ForeignKey(
        "shops.Shop", on_delete=models.CASCADE, related_name="webhook_deliveries", db_index=False
    )
    platform = models.CharField(max_length=20, default="shopify")
    # The platform's delivery id (X-Shopify-Webhook-Id): the same for every redelivery of one event. Unique
    # through a UniqueConstraint (Meta), not `unique=True`, which on PostgreSQL also builds a second,
    # varchar_pattern_ops index for LIKE queries that nothing here runs (one more index per INSERT).
    webhook_id = models.CharField(max_length=255)
    event_id = models.CharField(max_length=255, blank=True, default="")
    topic = models.CharField(max_length=100)
    # The shop domain as the platform sent it (kept although the shop is linked, for audits and logs).
    shop_domain = models.CharField(max_length=255)
    api_version = models.CharField(max_length=20, blank=True, default="")
    triggered_at = models.DateTimeField(null=True, blank=True)
    payload = models.JSONField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Set when personal data was scrubbed from `payload` (customers/redact): never processed afterwards.
    redacted_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "received_at"]),
            models.Index(fields=["shop", "received_at"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["webhook_id"], name="ingress_delivery_webhook_id_uniq")
        ]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.topic} {self.shop_domain} {self.webhook_id}"


class ComplianceAuditRecord(models.Model):
    """What a privacy request did, without any personal data. Survives the deletion of the shop."""

    class Outcome(models.TextChoices):
        EXPORTED = "exported", "Data exported"
        REDACTED = "redacted", "Customer data erased"
        SHOP_DELETED = "shop_deleted", "Shop data deleted"
        NO_DATA = "no_data", "Nothing held (shop unknown)"

    topic = models.CharField(max_length=100)
    shop_domain = models.CharField(max_length=255)
    platform_shop_id = models.CharField(max_length=64, blank=True, default="")
    webhook_id = models.CharField(max_length=255, unique=True)
    # Platform ids only (pseudonymous identifiers, not contact data).
    customer_platform_id = models.CharField(max_length=64, blank=True, default="")
    data_request_id = models.CharField(max_length=64, blank=True, default="")
    order_platform_ids = models.JSONField(default=list, blank=True)
    # e.g. {"customers": 1, "orders": 3, "webhook_deliveries_scrubbed": 2}
    counts = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["shop_domain", "created_at"])]

    def __str__(self) -> str:
        return f"{self.topic} {self.shop_domain} {self.outcome}"


class CustomerDataExport(models.Model):
    """Everything held about one customer, produced for customers/data_request; the merchant sees it."""

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="customer_data_exports")
    webhook_id = models.CharField(max_length=255, unique=True)
    customer_platform_id = models.CharField(max_length=64, blank=True, default="")
    data_request_id = models.CharField(max_length=64, blank=True, default="")
    # {"customer": {...}, "orders": [...], "sections": [{"section": "...", "data": ...}, ...]}
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when customers/redact erased `data`.
    redacted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["shop", "created_at"])]

    def __str__(self) -> str:
        return f"Data export for customer {self.customer_platform_id} ({self.created_at:%Y-%m-%d})"
