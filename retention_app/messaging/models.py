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
