"""Automation services: rules, scheduling from domain events, the dispatcher and the sender.

Exactly-once, in short (details in models.Message and delivery.py):
- Scheduling: one row per (rule, customer, trigger_key), enforced by a unique constraint; every event
  handler is idempotent (the same webhook five times schedules one row).
- Claiming: the dispatcher moves due rows from scheduled to sending with a conditional UPDATE (on
  PostgreSQL after `SELECT … FOR UPDATE SKIP LOCKED`), stamping a fresh claim token; every later write
  of the sender is fenced by that token, so a slow or resurrected task can never act on a row that was
  reclaimed.
- Sending: before the SMTP body is transmitted, `smtp_started_at` is committed (fenced). A crash before
  it -> the claim expires after AUTOMATIONS_CLAIM_LEASE_SECONDS and the row is sent again (nothing was
  accepted by the server). A crash after it -> "delivery unknown", recorded as failed, never resent.
- Redis flushed or a task lost: rows stay "sending" without `smtp_started_at`; the lease expires and the
  dispatcher reclaims them. Broker redelivery of a task whose rows were already handled is a no-op.

Template context (the keys documented in retention_app.messaging.variables.VARIABLES):
customer_first_name, customer_name, shop_name, shop_owner_name, shop_url, order_name, order_total,
discount_code, discount_value, discount_expires_at (a date), discount_url, tracking_company,
tracking_number, tracking_url, shipment_status (the ShipmentStatus value), unsubscribe_url (marketing only).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import uuid
import zoneinfo
from decimal import Decimal
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Concat
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from retention_app.automations import delivery, integrations
from retention_app.automations.conditions import RuleConditions, conditions_evaluate
from retention_app.automations.models import Message, Rule, ShopAutomationSettings
from retention_app.commerce.models import Customer, Fulfillment, Order
from retention_app.shops.models import Shop

logger = logging.getLogger(__name__)

# --- tunables (settings override) ------------------------------------------------------------------------
CLAIM_LEASE_SECONDS = getattr(settings, "AUTOMATIONS_CLAIM_LEASE_SECONDS", 600)
DISPATCH_BATCH_SIZE = getattr(settings, "AUTOMATIONS_DISPATCH_BATCH_SIZE", 50)
DISPATCH_MAX_IN_FLIGHT = getattr(settings, "AUTOMATIONS_DISPATCH_MAX_IN_FLIGHT", 5000)
# Messages handed to the mail server together (one SMTP connection each, one commit point for all).
SMTP_CONNECTIONS = getattr(settings, "AUTOMATIONS_SMTP_CONNECTIONS", 10)
MAX_ATTEMPTS = 5
# An order event older than this does not trigger order rules (late redelivery, old orders edited).
ORDER_TRIGGER_MAX_AGE = dt.timedelta(days=3)

SHIPMENT_NOTIFY_STATUSES = {
    Fulfillment.ShipmentStatus.IN_TRANSIT,
    Fulfillment.ShipmentStatus.OUT_FOR_DELIVERY,
    Fulfillment.ShipmentStatus.DELIVERED,
    Fulfillment.ShipmentStatus.FAILURE,
}
REFUNDED_STATUSES = {"refunded", "voided"}

RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    Rule.Key.THANK_YOU: {
        "name": "Thank-you from the owner",
        "trigger": Rule.Trigger.ORDER_PLACED,
        "delay_minutes": 30,
        "conditions": {"first_order_only": True},
        "is_marketing": True,
        "discount_enabled": False,
    },
    # Transactional: every customer gets their confirmation (Shopify's own is switched off). The
    # next-order code is marketing content, so it is only included for customers who accept marketing.
    Rule.Key.ORDER_CONFIRMATION: {
        "name": "Order confirmation with a next-order discount",
        "trigger": Rule.Trigger.ORDER_PLACED,
        "delay_minutes": 0,
        "conditions": {},
        "is_marketing": False,
        "discount_enabled": True,
        "discount_value_type": Rule.DiscountValueType.PERCENTAGE,
        "discount_value": Decimal("10"),
        "discount_expires_in_days": 30,
    },
    Rule.Key.SHIPPING_UPDATE: {
        "name": "Shipping updates",
        "trigger": Rule.Trigger.SHIPMENT_STATUS_CHANGED,
        "delay_minutes": 0,
        "conditions": {},
        "is_marketing": False,
        "discount_enabled": False,
    },
    Rule.Key.WIN_BACK: {
        "name": "Win-back",
        "trigger": Rule.Trigger.CUSTOMER_LAPSED,
        "delay_minutes": 0,
        "conditions": {},
        "is_marketing": True,
        "discount_enabled": True,
        "discount_value_type": Rule.DiscountValueType.PERCENTAGE,
        "discount_value": Decimal("15"),
        "discount_expires_in_days": 30,
        "lapse_days": 180,
    },
}


# =========================================================================================================
# Rules and settings
# =========================================================================================================
def rules_install_defaults(*, shop: Shop) -> list[Rule]:
    """Create the default rules a shop lacks (existing ones, edited or not, are left alone). Idempotent."""
    rules = []
    for key, defaults in RULE_DEFAULTS.items():
        try:
            with transaction.atomic():
                rule, _ = Rule.objects.get_or_create(shop=shop, key=key, defaults=dict(defaults))
        except IntegrityError:  # a concurrent install created it
            rule = Rule.objects.get(shop=shop, key=key)
        rules.append(rule)
    shop_settings_get(shop=shop)
    return rules


def shop_settings_get(*, shop: Shop) -> ShopAutomationSettings:
    try:
        with transaction.atomic():
            obj, _ = ShopAutomationSettings.objects.get_or_create(shop=shop)
    except IntegrityError:
        obj = ShopAutomationSettings.objects.get(shop=shop)
    return obj


class _RuleUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    delay_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 90)
    conditions: RuleConditions | None = None
    discount_enabled: bool | None = None
    discount_value_type: Rule.DiscountValueType | None = None
    discount_value: Decimal | None = Field(default=None, gt=0, max_digits=18, decimal_places=4)
    discount_expires_in_days: int | None = Field(default=None, ge=1, le=365)
    discount_minimum_order: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=4)
    lapse_days: int | None = Field(default=None, ge=7, le=3650)


def _pydantic_to_django(exc: PydanticValidationError) -> ValidationError:
    errors: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        field = loc[0] if loc else "__all__"
        detail = ".".join(loc[1:])
        msg = err["msg"].removeprefix("Value error, ")
        errors.setdefault(field, []).append(f"{detail}: {msg}" if detail else msg)
    return ValidationError(errors)


def rule_update(*, rule: Rule, data: dict[str, Any]) -> Rule:
    """Apply the merchant's edits. Only the keys present in `data` change. Raises django ValidationError
    with per-field messages (e.g. {"discount_value": ["..."], "conditions": ["min_order_total: ..."]}).
    `discount_minimum_order` may be None or "" to clear it. key, trigger and is_marketing are fixed."""
    data = dict(data)
    if data.get("discount_minimum_order") == "":
        data["discount_minimum_order"] = None
    clear_minimum = "discount_minimum_order" in data and data["discount_minimum_order"] is None
    try:
        parsed = _RuleUpdate.model_validate(data)
    except PydanticValidationError as exc:
        raise _pydantic_to_django(exc) from None
    value_type = parsed.discount_value_type or rule.discount_value_type
    value = parsed.discount_value if parsed.discount_value is not None else rule.discount_value
    if value_type == Rule.DiscountValueType.PERCENTAGE and value > 100:
        raise ValidationError({"discount_value": ["A percentage discount must be at most 100."]})
    updates = parsed.model_dump(exclude_unset=True)
    for field, value in updates.items():
        if field == "conditions":
            value = parsed.conditions.to_json()
        setattr(rule, field, value)
    if clear_minimum:
        rule.discount_minimum_order = None
    rule.save()
    return rule


class _SettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frequency_cap_hours: int | None = Field(default=None, ge=0, le=24 * 30)
    quiet_hours_enabled: bool | None = None
    quiet_hours_start: dt.time | None = None
    quiet_hours_end: dt.time | None = None


def shop_settings_update(*, shop: Shop, data: dict[str, Any]) -> ShopAutomationSettings:
    """Frequency cap and quiet hours. Raises django ValidationError with per-field messages."""
    try:
        parsed = _SettingsUpdate.model_validate(data)
    except PydanticValidationError as exc:
        raise _pydantic_to_django(exc) from None
    obj = shop_settings_get(shop=shop)
    for field, value in parsed.model_dump(exclude_unset=True).items():
        if value is not None:
            setattr(obj, field, value)
    obj.save()
    return obj


def rule_test_send(*, rule: Rule, to_email: str, locale: str) -> integrations.RenderedEmail:
    """Render the rule's email with sample values and send it to `to_email` now (no Message row)."""
    from django.core.validators import validate_email

    try:
        validate_email(to_email)
    except ValidationError:
        raise ValidationError({"to_email": ["Enter a valid email address."]}) from None
    sample = _sample_context(rule)
    rendered = integrations.render(shop=rule.shop, rule_key=rule.key, locale=locale, context=sample)
    email = EmailMultiAlternatives(
        subject=f"[Test] {rendered.subject}",
        body=rendered.text,
        from_email=_from_address(rule),
        to=[to_email],
        reply_to=[rule.shop.email] if rule.shop.email else None,
    )
    email.attach_alternative(rendered.html, "text/html")
    email.send()
    return rendered


def _sample_context(rule: Rule) -> dict[str, Any]:
    shop = rule.shop
    fn = integrations._optional("retention_app.messaging.variables", "SAMPLE_CONTEXT")
    ctx = dict(fn) if fn else {}
    ctx.update(
        shop_name=shop.name or shop.domain,
        shop_owner_name=shop.owner_name,
        shop_url=_shop_url(shop),
    )
    if not rule.is_marketing:
        ctx.pop("unsubscribe_url", None)
    return ctx


# =========================================================================================================
# Scheduling (from domain events)
# =========================================================================================================
def _enabled_rules(shop: Shop, trigger: str) -> list[Rule]:
    if not Rule.objects.filter(shop=shop).exists():
        rules_install_defaults(shop=shop)
    return list(Rule.objects.filter(shop=shop, trigger=trigger, enabled=True))


def message_schedule(
    *,
    rule: Rule,
    customer: Customer,
    trigger_key: str,
    due_at: dt.datetime,
    order: Order | None = None,
    fulfillment: Fulfillment | None = None,
    data: dict | None = None,
) -> tuple[Message, bool]:
    """Schedule one message; (existing row, False) when this (rule, customer, trigger_key) already has one."""
    try:
        with transaction.atomic():
            msg, created = Message.objects.get_or_create(
                rule=rule,
                customer=customer,
                trigger_key=trigger_key,
                defaults={
                    "shop_id": rule.shop_id,
                    "order": order,
                    "fulfillment": fulfillment,
                    "is_marketing": rule.is_marketing,
                    "due_at": due_at,
                    "data": data or {},
                },
            )
    except IntegrityError:  # a concurrent delivery of the same event won the race
        msg, created = Message.objects.get(rule=rule, customer=customer, trigger_key=trigger_key), False
    return msg, created


def _cancel(qs, reason: str) -> int:
    return qs.filter(status=Message.Status.SCHEDULED).update(
        status=Message.Status.CANCELLED, reason=reason, claimed_by="", updated_at=timezone.now()
    )


def automations_on_order(*, order: Order, created: bool) -> list[Message]:
    """order_upserted: schedule order rules for a new order; cancel what a cancellation/refund voids and
    any pending win-back of the customer (they came back)."""
    customer = order.customer
    if customer is None:  # guest checkout without a customer record: nobody to write to
        return []
    if order.cancelled_at is not None:
        _cancel(Message.objects.filter(order=order), "The order was cancelled before the send time.")
        return []
    if order.financial_status in REFUNDED_STATUSES:
        _cancel(Message.objects.filter(order=order), "The order was refunded before the send time.")
        return []
    if not created:
        return []
    _cancel(
        Message.objects.filter(customer=customer, rule__key=Rule.Key.WIN_BACK),
        "The customer ordered again before the send time.",
    )
    if order.placed_at < timezone.now() - ORDER_TRIGGER_MAX_AGE:
        return []
    scheduled = []
    for rule in _enabled_rules(order.shop, Rule.Trigger.ORDER_PLACED):
        if not conditions_evaluate(conditions=rule.conditions, customer=customer, order=order).matched:
            continue
        msg, _ = message_schedule(
            rule=rule,
            customer=customer,
            trigger_key=f"order:{order.platform_id}",
            due_at=order.placed_at + dt.timedelta(minutes=rule.delay_minutes),
            order=order,
        )
        scheduled.append(msg)
    return scheduled


def automations_catch_up_orders(*, now: dt.datetime | None = None, window: dt.timedelta | None = None) -> int:
    """Periodic safety net: orders the app stored recently (any path, including reconciliation writes that
    send no events, or an event whose handler failed) that have no automation message yet go through the
    order rules again. Idempotent (unique constraint). Orders placed before the app was installed are
    left alone, so a history backfill never triggers automations. Returns messages scheduled."""
    now = now or timezone.now()
    window = window or dt.timedelta(hours=2)
    orders = (
        Order.objects.filter(
            created_at__gte=now - window,
            placed_at__gte=now - ORDER_TRIGGER_MAX_AGE,
            customer__isnull=False,
            cancelled_at__isnull=True,
            shop__status=Shop.Status.INSTALLED,
            shop__installed_at__isnull=False,
        )
        .filter(placed_at__gte=F("shop__installed_at"))
        .exclude(automation_messages__isnull=False)
        .select_related("shop", "customer")
        .order_by("id")[:5000]
    )
    scheduled = 0
    for order in orders:
        before = Message.objects.filter(order=order).count()
        automations_on_order(order=order, created=True)
        scheduled += Message.objects.filter(order=order).count() - before
    return scheduled


def automations_on_fulfillment(
    *, fulfillment: Fulfillment, created: bool, previous_shipment_status: str
) -> Message | None:
    """fulfillment_upserted: one shipping update per shipment status change (none for a shipment already
    delivered when first seen). The first one for a new fulfillment says "shipped"."""
    order = fulfillment.order
    customer = order.customer
    if customer is None or fulfillment.status in ("cancelled", "error", "failure"):
        return None
    current = (fulfillment.shipment_status or "").upper()
    previous = (previous_shipment_status or "").upper()
    if created:
        if current == Fulfillment.ShipmentStatus.DELIVERED:
            return None
        key_status = current if current in SHIPMENT_NOTIFY_STATUSES else "SHIPPED"
    else:
        if current == previous or current not in SHIPMENT_NOTIFY_STATUSES:
            return None
        key_status = current
    msg = None
    now = timezone.now()
    for rule in _enabled_rules(fulfillment.shop, Rule.Trigger.SHIPMENT_STATUS_CHANGED):
        if not conditions_evaluate(conditions=rule.conditions, customer=customer, order=order).matched:
            continue
        msg, _ = message_schedule(
            rule=rule,
            customer=customer,
            trigger_key=f"fulfillment:{fulfillment.platform_id}:{key_status}",
            due_at=now + dt.timedelta(minutes=rule.delay_minutes),
            order=order,
            fulfillment=fulfillment,
            data={"shipment_status": current or Fulfillment.ShipmentStatus.CONFIRMED},
        )
    return msg


def automations_on_customer(*, customer: Customer, previous_marketing_state: str) -> int:
    """customer_upserted: withdrawn consent cancels pending marketing at once."""
    if customer.accepts_email_marketing or previous_marketing_state == customer.marketing_state:
        return 0
    return messages_cancel_pending_marketing(
        customer=customer, reason="The customer unsubscribed from email marketing."
    )


def messages_cancel_pending_marketing(*, customer: Customer, reason: str) -> int:
    """Cancel every scheduled marketing message of `customer` (called by the unsubscribe view too).
    Messages already claimed re-check consent right before sending."""
    return _cancel(Message.objects.filter(customer=customer, is_marketing=True), reason)


def messages_cancel_for_shop(*, shop: Shop, reason: str) -> int:
    return _cancel(Message.objects.filter(shop=shop), reason)


def winback_schedule_lapsed(*, shop: Shop, now: dt.datetime | None = None, limit: int = 10_000) -> int:
    """Schedule a win-back for each consenting customer whose last order is older than the rule's lapse
    days, at most once per lapse (the trigger key is bound to that last order). Returns rows created."""
    now = now or timezone.now()
    rules = _enabled_rules(shop, Rule.Trigger.CUSTOMER_LAPSED)
    created_count = 0
    for rule in rules:
        cutoff = now - dt.timedelta(days=rule.lapse_days)
        last = Order.objects.filter(
            customer=OuterRef("pk"), cancelled_at__isnull=True, is_test=False
        ).order_by("-placed_at", "-id")
        candidates = (
            Customer.objects.filter(
                shop=shop,
                redacted_at__isnull=True,
                marketing_state=Customer.MarketingState.SUBSCRIBED,
            )
            .exclude(email="")
            .annotate(
                last_placed=Subquery(last.values("placed_at")[:1]),
                last_order_id=Subquery(last.values("id")[:1]),
                last_order_pid=Subquery(last.values("platform_id")[:1]),
            )
            .filter(last_placed__lt=cutoff)
            # Already handled in this lapse: the trigger key is bound to the last order.
            .annotate(
                handled=Exists(
                    Message.objects.filter(
                        rule=rule,
                        customer=OuterRef("pk"),
                        trigger_key=Concat(Value("winback:"), OuterRef("last_order_pid")),
                    )
                )
            )
            .filter(handled=False)
            .order_by("pk")[:limit]
        )
        for customer in candidates:
            order = Order.objects.get(pk=customer.last_order_id)
            if not conditions_evaluate(conditions=rule.conditions, customer=customer, order=order).matched:
                continue
            _, created = message_schedule(
                rule=rule,
                customer=customer,
                trigger_key=f"winback:{customer.last_order_pid}",
                due_at=now + dt.timedelta(minutes=rule.delay_minutes),
                order=order,
            )
            created_count += int(created)
    return created_count


# =========================================================================================================
# Dispatcher
# =========================================================================================================
def messages_recover_stale(*, now: dt.datetime | None = None, lease_seconds: int | None = None) -> dict:
    """Rows left in "sending" past their lease: back to scheduled when SMTP never started (nothing was
    accepted), failed "delivery unknown" when it did (never resent: that could be a duplicate)."""
    now = now or timezone.now()
    expired = now - dt.timedelta(seconds=CLAIM_LEASE_SECONDS if lease_seconds is None else lease_seconds)
    stale = Message.objects.filter(status=Message.Status.SENDING, claimed_at__lt=expired)
    # A message whose send keeps dying (a poison row) stops being retried.
    gave_up = stale.filter(smtp_started_at__isnull=True, attempts__gte=MAX_ATTEMPTS).update(
        status=Message.Status.FAILED,
        claimed_by="",
        cap_counted_at=None,
        reason=(
            f"Gave up after {MAX_ATTEMPTS} interrupted send attempts (nothing was handed to the mail server)."
        ),
        updated_at=now,
    )
    retried = stale.filter(smtp_started_at__isnull=True).update(
        status=Message.Status.SCHEDULED,
        claimed_by="",
        claimed_at=None,
        cap_counted_at=None,
        reason="Retried after an interrupted send attempt.",
        updated_at=now,
    )
    unknown = stale.filter(smtp_started_at__isnull=False).update(
        status=Message.Status.FAILED,
        claimed_by="",
        reason=(
            "Delivery unknown: the sender stopped after handing the email to the mail server and before "
            "recording the answer. Not resent, to avoid a duplicate."
        ),
        updated_at=now,
    )
    result = {"retried": retried, "unknown": unknown}
    if gave_up:
        result["gave_up"] = gave_up
    return result


def messages_claim_due(*, now: dt.datetime | None = None, limit: int, token: str) -> list[int]:
    """Claim up to `limit` due rows for `token` (scheduled -> sending). Safe with many dispatchers."""
    now = now or timezone.now()
    with transaction.atomic():
        due = Message.objects.filter(status=Message.Status.SCHEDULED, due_at__lte=now).order_by("due_at")
        if settings.USING_POSTGRES:
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        # Conditional: on SQLite another dispatcher may have claimed some of them meanwhile.
        Message.objects.filter(id__in=ids, status=Message.Status.SCHEDULED).update(
            status=Message.Status.SENDING,
            claimed_at=now,
            claimed_by=token,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    return list(Message.objects.filter(_claimed_by(token), id__in=ids).values_list("id", flat=True))


def messages_dispatch(
    *, now: dt.datetime | None = None, max_claims: int | None = None, recover: bool = True
) -> int:
    """Periodic: recover expired claims, claim due rows (bounded by the rows already in flight) and enqueue
    one send task per batch, after commit. Returns the number of rows claimed.

    Send tasks also call it (recover=False, max_claims=the batch they finished) so a backlog keeps the
    workers busy between two runs of the periodic dispatcher."""
    from retention_app.automations.tasks import messages_send_batch

    now = now or timezone.now()
    if recover:
        messages_recover_stale(now=now)
    if max_claims is None:
        room = DISPATCH_MAX_IN_FLIGHT - Message.objects.filter(status=Message.Status.SENDING).count()
    else:
        # A send task hands the places of the batch it finished to the next rows: the number in flight
        # stays where the periodic run set it, without counting the "sending" rows again (that count
        # walks an index whose "sending" entries pile up until VACUUM: ~200 ms per call at 20k sends).
        room = max_claims
    claimed = 0
    while room > 0:
        token = uuid.uuid4().hex
        ids = messages_claim_due(now=now, limit=min(room, DISPATCH_BATCH_SIZE * 20), token=token)
        if not ids:
            break
        for start in range(0, len(ids), DISPATCH_BATCH_SIZE):
            chunk = ids[start : start + DISPATCH_BATCH_SIZE]
            transaction.on_commit(lambda c=chunk, t=token: messages_send_batch.delay(c, t))
        claimed += len(ids)
        room -= len(ids)
    return claimed


# =========================================================================================================
# Sender
# =========================================================================================================
def _claimed_by(token: str) -> Q:
    """The rows a claim owns. `claimed_by` is set only together with status "sending" and cleared by every
    way out of it (a database constraint, `automation_msg_claimed_iff_sending`, holds us to that), so the
    token alone fences a row. Status is deliberately not repeated in these WHERE clauses: PostgreSQL would
    then AND the primary key with the (status, due_at) index, whose "sending" entries pile up with every
    claim until VACUUM (measured: 7 ms per 10-row UPDATE after 100k sends, instead of 0.1 ms)."""
    if not token:
        raise ValueError("a claim token is never empty")
    return Q(claimed_by=token)


def _fenced(message: Message, token: str):
    return Message.objects.filter(_claimed_by(token), pk=message.pk)


def _finish(
    message: Message, token: str, status: str, reason: str, *, keep_cap: bool = False, **fields
) -> bool:
    """Final state, fenced by the claim token. The frequency-cap slot is released unless the email may
    have reached the customer (`keep_cap`)."""
    now = timezone.now()
    if not keep_cap:
        fields["cap_counted_at"] = None
    with _relaxed_commit():
        return bool(
            _fenced(message, token).update(
                status=status, reason=reason, claimed_by="", updated_at=now, **fields
            )
        )


@contextlib.contextmanager
def _relaxed_commit():
    """A transaction whose commit does not wait for the WAL flush (PostgreSQL `synchronous_commit = off`).

    Only for writes whose loss in a *database* crash is safe: outcomes (sent, cancelled, failed, postponed).
    If such a write is lost, the row reverts to "sending" and the lease recovery handles it: without
    `smtp_started_at` it is re-evaluated and sent once; with it, it becomes "delivery unknown", never a
    duplicate. The commit point itself (`smtp_started_at`) always commits synchronously. A worker crash
    loses nothing here: the server has the commit. Saves one WAL flush per message.

    Inside a transaction already (the batch sender's group of outcomes, a test), it simply joins it."""
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic():
        if settings.USING_POSTGRES:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def _postpone(message: Message, token: str, until: dt.datetime, reason: str, **fields) -> bool:
    with _relaxed_commit():
        return _postpone_update(message, token, until, reason, **fields)


def _postpone_update(message: Message, token: str, until: dt.datetime, reason: str, **fields) -> bool:
    return bool(
        _fenced(message, token).update(
            status=Message.Status.SCHEDULED,
            due_at=until,
            reason=reason,
            claimed_by="",
            claimed_at=None,
            cap_counted_at=None,
            updated_at=timezone.now(),
            **fields,
        )
    )


def quiet_hours_end(
    *, now: dt.datetime, settings_obj: ShopAutomationSettings, tz_name: str
) -> dt.datetime | None:
    """When `now` falls in the quiet window (local time in `tz_name`), the aware end of that window."""
    start, end = settings_obj.quiet_hours_start, settings_obj.quiet_hours_end
    if not settings_obj.quiet_hours_enabled or start == end:
        return None
    try:
        tz = zoneinfo.ZoneInfo(tz_name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        tz = dt.UTC
    local = now.astimezone(tz)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    end_date = local.date() if t < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(end_date, end, tzinfo=tz)


def _precheck(message: Message, now: dt.datetime) -> str | None:
    """A cancel reason, or None when the message may still go out."""
    shop, rule, customer, order = message.shop, message.rule, message.customer, message.order
    if not shop.is_installed:
        return "The app is not installed on the store."
    if not rule.enabled:
        return "The rule was paused before the send time."
    if customer.redacted_at is not None:
        return "The customer's data was erased."
    if not customer.email:
        return "The customer has no email address."
    if message.is_marketing and not customer.accepts_email_marketing:
        return "The customer does not accept email marketing."
    if rule.trigger == Rule.Trigger.ORDER_PLACED:
        if order is None:
            return "The order no longer exists."
        if order.cancelled_at is not None:
            return "The order was cancelled before the send time."
        if order.financial_status in REFUNDED_STATUSES:
            return "The order was refunded before the send time."
    if rule.trigger == Rule.Trigger.SHIPMENT_STATUS_CHANGED:
        if message.fulfillment is None or message.fulfillment.status == "cancelled":
            return "The shipment was cancelled."
    if rule.trigger == Rule.Trigger.CUSTOMER_LAPSED and order is not None:
        newer = Order.objects.filter(
            customer=customer, cancelled_at__isnull=True, placed_at__gt=order.placed_at
        )
        if newer.exists():
            return "The customer ordered again before the send time."
    result = conditions_evaluate(
        conditions=rule.conditions,
        customer=customer,
        order=order,
        earlier_order_exists=getattr(message, "has_earlier_order", None),
    )
    if not result.matched:
        return result.reason
    return None


def _reserve_frequency_cap(
    message: Message, token: str, cap_hours: int, now: dt.datetime
) -> dt.datetime | None:
    """Take the customer's marketing slot; when another marketing email holds it, the time it frees up."""
    if cap_hours <= 0:
        return None
    with transaction.atomic():
        # Serialise cap decisions per customer (SQLite transactions are already serial: BEGIN IMMEDIATE).
        Customer.objects.select_for_update().filter(pk=message.customer_id).values_list("pk").first()
        latest = (
            Message.objects.filter(
                customer_id=message.customer_id,
                is_marketing=True,
                cap_counted_at__gt=now - dt.timedelta(hours=cap_hours),
            )
            .exclude(pk=message.pk)
            .aggregate(latest=Max("cap_counted_at"))["latest"]
        )
        if latest is not None:
            return latest + dt.timedelta(hours=cap_hours)
        _fenced(message, token).update(cap_counted_at=now)
    return None


def _shop_url(shop: Shop) -> str:
    return (shop.storefront_url or f"https://{shop.domain}").rstrip("/")


@functools.lru_cache(maxsize=8)
def _sender_address(default_from_email: str) -> str:
    """The address part of DEFAULT_FROM_EMAIL (parsed once, not per email)."""
    return parseaddr(default_from_email)[1]


def _from_address(rule: Rule) -> str:
    shop = rule.shop
    address = _sender_address(settings.DEFAULT_FROM_EMAIL)
    display = shop.name or shop.domain
    if rule.key == Rule.Key.THANK_YOU and shop.owner_name:
        display = f"{shop.owner_name} · {display}"
    return formataddr((display, address))


def _message_id(message: Message) -> str:
    domain = _sender_address(settings.DEFAULT_FROM_EMAIL).rpartition("@")[2] or "boomerang.local"
    return f"<boomerang.{message.shop_id}.{message.pk}@{domain}>"


def _issue_discount(message: Message):
    rule = message.rule
    if not rule.discount_enabled:
        return None
    if not rule.is_marketing and not message.customer.accepts_email_marketing:
        return None  # marketing content only for customers who accept marketing
    return integrations.discount_code_issue(
        shop=message.shop,
        customer=message.customer,
        rule_key=rule.key,
        trigger_key=message.trigger_key,
        value_type=rule.discount_value_type,
        value=rule.discount_value,
        expires_in_days=rule.discount_expires_in_days,
        minimum_order=rule.discount_minimum_order,
    )


def message_context(message: Message, locale: str, discount=None) -> dict[str, Any]:
    """The template variables of one message (see the module docstring)."""
    shop, customer, order, fulfillment = message.shop, message.customer, message.order, message.fulfillment
    ctx: dict[str, Any] = {
        "customer_first_name": customer.first_name,
        "customer_name": f"{customer.first_name} {customer.last_name}".strip(),
        "shop_name": shop.name or shop.domain,
        "shop_owner_name": shop.owner_name,
        "shop_url": _shop_url(shop),
    }
    if order is not None:
        ctx["order_name"] = order.name
        ctx["order_total"] = integrations.money_format(order.total_price, order.currency, locale)
    if fulfillment is not None:
        ctx["tracking_company"] = fulfillment.tracking_company
        ctx["tracking_number"] = fulfillment.tracking_number
        ctx["tracking_url"] = integrations.tracking_page_url(fulfillment)
        ctx["shipment_status"] = message.data.get("shipment_status") or fulfillment.shipment_status
    if discount is not None:
        rule = message.rule
        ctx["discount_code"] = discount.code
        ctx["discount_value"] = (
            integrations.percent_format(rule.discount_value)
            if rule.discount_value_type == Rule.DiscountValueType.PERCENTAGE
            else integrations.money_format(rule.discount_value, shop.currency, locale)
        )
        expires = getattr(discount, "expires_at", None)
        ctx["discount_expires_at"] = expires.date() if isinstance(expires, dt.datetime) else expires
        ctx["discount_url"] = getattr(discount, "url", "") or f"{_shop_url(shop)}/discount/{discount.code}"
    if message.is_marketing:
        ctx["unsubscribe_url"] = integrations.unsubscribe_url(customer)
    return ctx


def _claimed(token: str):
    """The rows claimed by `token`, with what the send needs, in one query: the related rows and the
    "first order only" check (whether the customer has an earlier order than the message's order)."""
    earlier = Order.objects.filter(
        customer_id=OuterRef("customer_id"), is_test=False, placed_at__lt=OuterRef("order__placed_at")
    ).exclude(pk=OuterRef("order_id"))
    return (
        Message.objects.select_related("shop", "rule", "customer", "order", "fulfillment")
        .filter(_claimed_by(token))
        .annotate(has_earlier_order=Exists(earlier))
    )


@dataclasses.dataclass
class _Prepared:
    """A claimed message that passed its send-time checks, rendered and ready for the mail server."""

    message: Message
    email: EmailMultiAlternatives
    subject: str
    locale: str
    discount: Any
    data: dict
    extra: dict
    extra_reason: str
    now: dt.datetime


def message_send(
    *, message_id: int, claim_token: str, courier: delivery.Courier, cache: dict | None = None
) -> str:
    """Send one claimed message. Returns the resulting status (or "skipped" when the row is not ours).

    Re-checks everything at send time (rule paused, consent, order cancelled/refunded, conditions), then
    quiet hours (postpone to their end) and the frequency cap (postpone until the slot frees), issues the
    discount code (idempotent per trigger), renders, and delivers through `courier`."""
    cache = {} if cache is None else cache
    prepared = _message_prepare(message_id=message_id, claim_token=claim_token, cache=cache)
    if isinstance(prepared, str):
        return prepared
    result = courier.send_group(
        [prepared.email], commit_points=lambda indexes: _commit_points([prepared], indexes, claim_token)
    )[0]
    status = _message_outcome(prepared, claim_token, result)
    if status == Message.Status.SENT:
        _after_sent(prepared)
    return status


def _message_prepare(*, message_id: int, claim_token: str, cache: dict) -> _Prepared | str:
    """Everything before the mail server: checks, postponements, discount, rendering. Returns the final
    status when the message ends here (cancelled, postponed, failed, skipped)."""
    message = cache.pop(("message", message_id), None)
    if message is None:
        message = _claimed(claim_token).filter(pk=message_id).first()
    if message is None:
        return "skipped"
    now = timezone.now()
    shop, rule, customer = message.shop, message.rule, message.customer
    rule.shop = shop  # same row: spare the query

    reason = _precheck(message, now)
    if reason:
        _finish(message, claim_token, Message.Status.CANCELLED, reason)
        return Message.Status.CANCELLED

    limits = cache.get(("limits", shop.pk))
    if limits is None:
        limits = cache[("limits", shop.pk)] = shop_settings_get(shop=shop)
    if message.is_marketing:
        quiet_end = quiet_hours_end(now=now, settings_obj=limits, tz_name=customer.timezone or shop.timezone)
        if quiet_end is not None:
            _postpone(
                message, claim_token, quiet_end, f"Postponed to the end of quiet hours ({quiet_end:%H:%M})."
            )
            return Message.Status.SCHEDULED
        free_at = _reserve_frequency_cap(message, claim_token, limits.frequency_cap_hours, now)
        if free_at is not None:
            _postpone(
                message,
                claim_token,
                free_at,
                f"Postponed by the frequency cap (one marketing email per {limits.frequency_cap_hours} h).",
            )
            return Message.Status.SCHEDULED

    locale = integrations.locale_resolve(
        customer_locale=customer.locale or (message.order.customer_locale if message.order else ""), shop=shop
    )
    discount = None
    extra_reason = ""
    try:
        discount = _issue_discount(message)
    except Exception as exc:
        if integrations.is_retryable(exc) and message.attempts < MAX_ATTEMPTS:
            backoff = dt.timedelta(minutes=2**message.attempts)
            _postpone(
                message,
                claim_token,
                now + backoff,
                f"Discount code not created yet: {exc}",
            )
            return Message.Status.SCHEDULED
        if rule.key == Rule.Key.WIN_BACK:
            _finish(
                message, claim_token, Message.Status.FAILED, f"The discount code could not be created: {exc}"
            )
            return Message.Status.FAILED
        logger.warning("discount code for message %s failed: %s", message.pk, exc)
        extra_reason = f"Sent without a discount code: {exc}"

    try:
        context = message_context(message, locale, discount)
        # The batch's template cache: one template lookup per (shop, rule, language) per batch.
        templates = cache.setdefault("templates", {})
        rendered = integrations.render(
            shop=shop, rule_key=rule.key, locale=locale, context=context, template_cache=templates
        )
    except Exception as exc:
        logger.exception("rendering message %s failed", message.pk)
        _finish(message, claim_token, Message.Status.FAILED, f"The template could not be rendered: {exc}")
        return Message.Status.FAILED

    email = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=_from_address(rule),
        to=[customer.email],
        reply_to=[shop.email] if shop.email else None,
        headers={"Message-ID": _message_id(message), "Auto-Submitted": "auto-generated"},
    )
    email.attach_alternative(rendered.html, "text/html")
    if message.is_marketing:
        email.extra_headers.update(integrations.unsubscribe_headers(customer, context.get("unsubscribe_url")))

    data = dict(message.data)
    extra: dict[str, Any] = {}
    if discount is not None:
        data["discount_code"] = discount.code
        if isinstance(getattr(discount, "pk", None), int):
            extra["discount_code_id"] = discount.pk
    return _Prepared(message, email, rendered.subject, locale, discount, data, extra, extra_reason, now)


_COMMIT_POINT_SQL = (
    "UPDATE {messages} SET smtp_started_at = %s, to_email = %s, subject = %s, locale = %s, message_id = %s,"
    " data = %s, discount_code_id = %s, reason = %s, updated_at = %s"
    " WHERE id = %s AND claimed_by = %s AND smtp_started_at IS NULL"
    " AND (NOT is_marketing OR EXISTS ("
    "  SELECT 1 FROM {customers} c WHERE c.id = {messages}.customer_id AND c.marketing_state = %s))"
)


def _commit_points(prepared: list[_Prepared], indexes: list[int], token: str) -> set[int]:
    """The point of no return of several messages in ONE synchronous commit: recorded only for the rows
    still ours and, for marketing, whose customer still accepts marketing (an unsubscribe that raced
    this send wins: checked in the same UPDATE, not from the rows loaded earlier). Returns the indexes
    recorded.

    Everything the outcome would record about the email itself (address, subject, language, Message-ID,
    discount code, a note) is written here too, so that recording "sent" afterwards is one UPDATE for the
    whole group. One parameterised statement per message, sent with `executemany` (one round trip on
    PostgreSQL: psycopg pipelines it); the ORM would compile a query per message."""
    if not indexes:
        return set()
    stamp = timezone.now()
    meta = Message._meta
    stamp_db = meta.get_field("smtp_started_at").get_db_prep_save(stamp, connection)
    data_field = meta.get_field("data")
    rows = []
    for i in indexes:
        p = prepared[i]
        m = p.message
        data = data_field.get_db_prep_save(p.data, connection)
        code_id = p.extra.get("discount_code_id", m.discount_code_id)
        rows.append(
            (stamp_db, m.customer.email, p.subject[:998], p.locale, _message_id(m), data, code_id)
            + (
                p.extra_reason,
                stamp_db,
                m.pk,
                token,
                Customer.MarketingState.SUBSCRIBED,
            )
        )
    sql = _COMMIT_POINT_SQL.format(
        messages=connection.ops.quote_name(meta.db_table),
        customers=connection.ops.quote_name(Customer._meta.db_table),
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
        updated = cursor.rowcount
        if updated == len(indexes):
            return set(indexes)
        by_pk = {prepared[i].message.pk: i for i in indexes}
        recorded = Message.objects.filter(
            pk__in=list(by_pk), claimed_by=token, smtp_started_at=stamp
        ).values_list("pk", flat=True)
        return {by_pk[pk] for pk in recorded}


def _record_sent(prepared: list[_Prepared], token: str) -> set[int]:
    """Mark messages the mail server accepted as sent, in one fenced UPDATE (their details were written
    at the commit point). Returns the primary keys recorded (a row no longer ours is left alone)."""
    now = timezone.now()
    pks = [p.message.pk for p in prepared]
    updated = Message.objects.filter(_claimed_by(token), pk__in=pks).update(
        status=Message.Status.SENT, sent_at=now, claimed_by="", updated_at=now
    )
    if updated == len(pks):
        return set(pks)
    return set(
        Message.objects.filter(pk__in=pks, status=Message.Status.SENT, sent_at=now).values_list(
            "pk", flat=True
        )
    )


def _message_outcome(prepared: _Prepared, claim_token: str, result: Exception | None) -> str:
    """Record what the mail server's answer (`result`: None = accepted) means for the message."""
    message, now = prepared.message, prepared.now
    if isinstance(result, delivery.ClaimLost):
        if _fenced(message, claim_token).exists():  # still ours: consent was withdrawn meanwhile
            _finish(
                message,
                claim_token,
                Message.Status.CANCELLED,
                "The customer unsubscribed from email marketing.",
            )
            return Message.Status.CANCELLED
        return "skipped"
    if isinstance(result, delivery.DeliveryNotStarted):
        if message.attempts < MAX_ATTEMPTS:
            _postpone(
                message, claim_token, now + dt.timedelta(minutes=2**message.attempts),
                f"Mail server unavailable, will retry: {result}",
            )  # fmt: skip
            return Message.Status.SCHEDULED
        _finish(message, claim_token, Message.Status.FAILED, f"Mail server unavailable: {result}")
        return Message.Status.FAILED
    if isinstance(result, delivery.DeliveryRefused):
        if not result.permanent and message.attempts < MAX_ATTEMPTS:
            _postpone(
                message, claim_token, now + dt.timedelta(minutes=2**message.attempts),
                f"Mail server refused temporarily, will retry: {result}",
                smtp_started_at=None,
            )  # fmt: skip
            return Message.Status.SCHEDULED
        _finish(message, claim_token, Message.Status.FAILED, f"The mail server refused the email: {result}")
        return Message.Status.FAILED
    if isinstance(result, delivery.DeliveryUnknown):
        _finish(
            message, claim_token, Message.Status.FAILED,
            f"Delivery unknown: the connection broke after the email was handed over ({result}). Not resent.",
            keep_cap=True, data=prepared.data, **prepared.extra,
        )  # fmt: skip
        return Message.Status.FAILED
    if result is not None:
        raise result

    with _relaxed_commit():
        recorded = _record_sent([prepared], claim_token)
    return Message.Status.SENT if recorded else "skipped"


def _after_sent(prepared: _Prepared) -> None:
    """Outside any transaction (a platform call): the order confirmation's code as an order metafield."""
    message, discount = prepared.message, prepared.discount
    if discount is not None and message.order is not None and message.rule.key == Rule.Key.ORDER_CONFIRMATION:
        try:
            integrations.discount_code_write_order_metafield(order=message.order, discount_code=discount)
        except Exception:  # the storefront metafield is a convenience; the email already went out
            logger.exception("writing the discount metafield of order %s failed", message.order_id)


def messages_send_batch(*, message_ids: list[int], claim_token: str) -> dict[str, int]:
    """Send a batch of claimed messages. Each message is independent: its checks, its commit point, its
    outcome. For speed, the messages ready to go are handed to the mail server in groups of
    AUTOMATIONS_SMTP_CONNECTIONS (one connection each): one synchronous commit records the points of no
    return of a whole group, and the group's outcomes are written in one (asynchronous) commit."""
    counts: dict[str, int] = {}

    def count(status: str) -> None:
        counts[status] = counts.get(status, 0) + 1

    courier = delivery.courier_shared()  # SMTP connections kept open across batches of this process
    # Per batch: the claimed rows loaded in one query (every write stays fenced by the token), shop limits,
    # templates.
    cache: dict = {("message", m.pk): m for m in _claimed(claim_token).filter(pk__in=message_ids)}
    group: list[_Prepared] = []

    def flush() -> None:
        if not group:
            return
        try:
            results = courier.send_group(
                [p.email for p in group],
                commit_points=lambda indexes: _commit_points(group, indexes, claim_token),
            )
        except Exception:
            # Unexpected bug: leave the rows claimed; the lease recovery retries them (or marks them
            # unknown if SMTP had started). Never crash the rest of the batch.
            logger.exception("sending messages %s failed unexpectedly", [p.message.pk for p in group])
            courier.close()  # connections in an unknown state: start afresh
            for _ in group:
                count("error")
            group.clear()
            return
        statuses: list[str] = []
        try:
            # One transaction (one commit, not waiting for the WAL flush) for the group's outcomes. If it
            # fails, the rows stay claimed and the lease recovery handles them (never a duplicate).
            with _relaxed_commit():
                delivered = _record_sent(
                    [p for p, r in zip(group, results, strict=True) if r is None], claim_token
                )
                for prepared, result in zip(group, results, strict=True):
                    if result is None:
                        statuses.append(
                            Message.Status.SENT if prepared.message.pk in delivered else "skipped"
                        )
                    else:
                        statuses.append(_message_outcome(prepared, claim_token, result))
        except Exception:
            logger.exception("recording messages %s failed unexpectedly", [p.message.pk for p in group])
            statuses = ["error"] * len(group)
        for prepared, status in zip(group, statuses, strict=True):
            count(status)
            if status == Message.Status.SENT:
                _after_sent(prepared)
        group.clear()

    try:
        for message_id in message_ids:
            try:
                prepared = _message_prepare(message_id=message_id, claim_token=claim_token, cache=cache)
            except Exception:
                logger.exception("sending message %s failed unexpectedly", message_id)
                count("error")
                continue
            if isinstance(prepared, str):
                count(prepared)
                continue
            group.append(prepared)
            if len(group) >= SMTP_CONNECTIONS:
                flush()
        flush()
    except BaseException:
        courier.close()
        raise
    finally:
        if not courier.stepwise:
            courier.close()
    return counts


# =========================================================================================================
# Shop lifecycle and privacy
# =========================================================================================================
def messages_redact_customer(*, customer: Customer) -> int:
    """customers/redact: cancel what is pending and erase the personal data the records hold."""
    _cancel(Message.objects.filter(customer=customer), "The customer's data was erased.")
    return Message.objects.filter(customer=customer).update(to_email="", subject="", data={})


def messages_export_customer(*, customer: Customer) -> dict:
    rows = Message.objects.filter(customer=customer).select_related("rule").order_by("created_at")
    return {
        "section": "automations",
        "data": [
            {
                "rule": m.rule.key,
                "status": m.status,
                "reason": m.reason,
                "to_email": m.to_email,
                "subject": m.subject,
                "scheduled_for": m.due_at.isoformat(),
                "sent_at": m.sent_at.isoformat() if m.sent_at else None,
            }
            for m in rows
        ],
    }


__all__ = [
    "RULE_DEFAULTS",
    "automations_on_customer",
    "automations_on_fulfillment",
    "automations_on_order",
    "message_schedule",
    "message_send",
    "messages_cancel_for_shop",
    "messages_cancel_pending_marketing",
    "messages_claim_due",
    "messages_dispatch",
    "messages_recover_stale",
    "messages_send_batch",
    "rule_test_send",
    "rule_update",
    "rules_install_defaults",
    "shop_settings_get",
    "shop_settings_update",
    "winback_schedule_lapsed",
]
