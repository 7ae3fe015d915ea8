"""Merchant-written email templates. The defaults live as files in `defaults/<locale>/<rule_key>.*`; a row
here overrides the default for one (shop, rule, language)."""

from __future__ import annotations

from django.db import models


class MessageTemplate(models.Model):
    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="message_templates")
    # The automation rule this template belongs to: thank_you, order_confirmation, shipping_update, win_back …
    rule_key = models.CharField(max_length=64)
    # One of the supported languages (en, th, vi, pl, zh-hant).
    locale = models.CharField(max_length=16)
    subject = models.CharField(max_length=500)
    html_body = models.TextField()
    # Plain-text part; empty: generated from the HTML.
    text_body = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "rule_key", "locale"], name="messagetemplate_unique_shop_rule_locale"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule_key} ({self.locale})"


class ConsentChange(models.Model):
    """A consent change made in this app (an unsubscribe link), to be written back to the store.

    The row is the durable record: the write-back task is enqueued on commit, retried on transient errors,
    and a periodic sweep re-enqueues rows left unsynced (a lost task, a flushed broker)."""

    class Source(models.TextChoices):
        UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link (page)"
        ONE_CLICK = "one_click", "One-click unsubscribe (RFC 8058)"

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="consent_changes")
    customer = models.ForeignKey(
        "commerce.Customer", on_delete=models.CASCADE, related_name="consent_changes"
    )
    marketing_state = models.CharField(max_length=20)
    source = models.CharField(max_length=32, choices=Source.choices)
    # When the store confirmed the change (None: not yet written back).
    synced_at = models.DateTimeField(null=True, blank=True)
    # Set when the store refused for good (no more attempts) or there is no store to write to.
    gave_up_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["synced_at", "gave_up_at", "created_at"])]

    def __str__(self) -> str:
        return f"{self.customer_id} -> {self.marketing_state}"
