"""Automations: merchant rules and the durable schedule of the emails they send.

- `ShopAutomationSettings`: shop-wide limits (frequency cap across marketing rules, quiet hours).
- `Rule`: one merchant-configurable automation (thank-you, order confirmation, shipping update, win-back).
  A shop has at most one rule per `key`; default rules are installed by `services.rules_install_defaults`.
- `Message`: one scheduled send AND the record of what a customer got. The row is the truth: it is created
  once per (rule, customer, trigger_key) (a unique constraint makes a second schedule impossible), claimed
  by the dispatcher with a conditional update, and ends as sent, failed (with reason) or cancelled (with
  reason). See `services.py` for the state machine and the exactly-once argument.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import models
from django.db.models import Q

MONEY = {"max_digits": 18, "decimal_places": 4}


class ShopAutomationSettings(models.Model):
    """Limits that apply across all rules of a shop. Created lazily by `services.shop_settings_get`."""

    shop = models.OneToOneField("shops.Shop", on_delete=models.CASCADE, related_name="automation_settings")
    # At most one marketing email per customer per N hours, across rules. 0 disables the cap.
    frequency_cap_hours = models.PositiveIntegerField(default=24)
    # Marketing email is not sent between start and end (local time of the customer when known, else
    # of the shop); a message due inside the window is postponed to its end. start == end: no window.
    quiet_hours_enabled = models.BooleanField(default=True)
    quiet_hours_start = models.TimeField(default=dt.time(21, 0))
    quiet_hours_end = models.TimeField(default=dt.time(8, 0))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"automation settings of {self.shop_id}"


class Rule(models.Model):
    class Key(models.TextChoices):
        THANK_YOU = "thank_you", "Thank-you from the owner"
        ORDER_CONFIRMATION = "order_confirmation", "Order confirmation with next-order discount"
        SHIPPING_UPDATE = "shipping_update", "Shipping updates"
        WIN_BACK = "win_back", "Win-back"

    class Trigger(models.TextChoices):
        ORDER_PLACED = "order_placed", "An order is placed"
        SHIPMENT_STATUS_CHANGED = "shipment_status_changed", "A shipment is created or changes status"
        CUSTOMER_LAPSED = "customer_lapsed", "A customer has not ordered for N days"

    class DiscountValueType(models.TextChoices):
        PERCENTAGE = "percentage", "Percentage"
        FIXED_AMOUNT = "fixed_amount", "Fixed amount"

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="automation_rules")
    key = models.CharField(max_length=40, choices=Key.choices)
    name = models.CharField(max_length=200)
    # False = paused: nothing new is scheduled and messages still pending are cancelled at send time.
    enabled = models.BooleanField(default=True)
    trigger = models.CharField(max_length=40, choices=Trigger.choices)
    # Minutes after the triggering moment (order placed, status change, lapse detected).
    delay_minutes = models.PositiveIntegerField(default=0)
    # Validated by `conditions.RuleConditions` (pydantic); {} = no condition.
    conditions = models.JSONField(default=dict, blank=True)
    # Marketing mail needs consent, carries List-Unsubscribe, obeys the frequency cap and quiet hours.
    # Fixed per key (see services.RULE_DEFAULTS); not editable by the merchant.
    is_marketing = models.BooleanField(default=True)
    # Discount code created on the store at send time (order confirmation, win-back).
    discount_enabled = models.BooleanField(default=False)
    discount_value_type = models.CharField(
        max_length=20, choices=DiscountValueType.choices, default=DiscountValueType.PERCENTAGE
    )
    discount_value = models.DecimalField(**MONEY, default=Decimal("10"))
    discount_expires_in_days = models.PositiveIntegerField(default=30)
    discount_minimum_order = models.DecimalField(**MONEY, null=True, blank=True)
    # Win-back: a customer whose last order is older than this many days has lapsed.
    lapse_days = models.PositiveIntegerField(default=180)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "key"], name="automation_rule_unique_shop_key")
        ]
        ordering = ["shop_id", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.key})"


class Message(models.Model):
    """A scheduled email and, once handled, the record of what happened to it.

    State machine (every transition is a conditional UPDATE checked by row count):
        scheduled --claim(dispatcher)--> sending --> sent | failed | cancelled
        sending --postpone (quiet hours, frequency cap, retryable error)--> scheduled
        sending (lease expired, SMTP DATA not started) --reclaim--> sending (new claim token)
        sending (lease expired, SMTP DATA started) --> failed "delivery unknown" (never resent)
    """

    class Status(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="automation_messages")
    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="messages")
    customer = models.ForeignKey(
        "commerce.Customer", on_delete=models.CASCADE, related_name="automation_messages"
    )
    # What caused the message, e.g. "order:<platform_id>", "fulfillment:<platform_id>:<STATUS>",
    # "winback:<last order platform_id>". Unique with (rule, customer).
    trigger_key = models.CharField(max_length=255)
    order = models.ForeignKey(
        "commerce.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="automation_messages"
    )
    fulfillment = models.ForeignKey(
        "commerce.Fulfillment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="automation_messages",
    )
    # The single-use code sent in this message (issued at send time, idempotent per trigger).
    discount_code = models.ForeignKey(
        "discounts.DiscountCode",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="automation_messages",
    )
    # Copied from the rule when scheduled (the record keeps what it was).
    is_marketing = models.BooleanField(default=True)
    due_at = models.DateTimeField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SCHEDULED)
    # Human-readable: why it failed, was cancelled or postponed.
    reason = models.TextField(blank=True, default="")
    # Trigger-specific facts captured at schedule time (e.g. {"shipment_status": "IN_TRANSIT"}).
    data = models.JSONField(default=dict, blank=True)
    # Filled when sent (erased on customers/redact).
    to_email = models.EmailField(max_length=320, blank=True, default="")
    locale = models.CharField(max_length=16, blank=True, default="")
    subject = models.CharField(max_length=998, blank=True, default="")
    # RFC 5322 Message-ID derived from the row, so a receiver can dedupe a resend.
    message_id = models.CharField(max_length=255, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    # Claim lease: who holds the row in "sending" and since when (fencing token for every write).
    claimed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True, default="")
    # Set (committed) right before the point of no return of the SMTP transaction (after DATA/354,
    # before the body): a crash after it leaves delivery unknown, so the row is never resent.
    smtp_started_at = models.DateTimeField(null=True, blank=True)
    # Set when this message took the customer's frequency-cap slot (marketing only).
    cap_counted_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "customer", "trigger_key"], name="automation_message_unique_trigger"
            ),
            # A claim token is held exactly while the row is being sent: the sender fences its writes by the
            # token alone (automations.services._claimed_by).
            models.CheckConstraint(
                condition=Q(status="sending", claimed_by__gt="") | (~Q(status="sending") & Q(claimed_by="")),
                name="automation_msg_claimed_iff_sending",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "due_at"], name="automation_msg_status_due"),
            models.Index(fields=["customer", "cap_counted_at"], name="automation_msg_customer_cap"),
            models.Index(fields=["shop", "created_at"], name="automation_msg_shop_created"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.trigger_key} -> {self.customer_id} [{self.status}]"
