"""Writes and rendering for messaging.

Contract used by the automations engine:
    message_render(*, shop, rule_key, locale, context) -> RenderedEmail(subject, html, text)
raises MessageTemplateError (a merchant template that fails at render time; `.errors` says where) or
LookupError (no template at all for that rule). See `variables.py` for what the context holds.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from retention_app.commerce.models import Customer
from shop_integrations.gateway import (
    PlatformPermanentError,
    PlatformRetryableError,
    platform_for,
    store_base_url,
)

from .locales import SUPPORTED_LOCALES, locale_normalize, locale_resolve
from .models import ConsentChange, MessageTemplate
from .rendering import (
    MessageTemplateError,
    RenderedEmail,
    TemplateFieldError,
    email_render,
    template_sources_validate,
)
from .selectors import message_template_get
from .variables import SAMPLE_CONTEXT

logger = logging.getLogger(__name__)

__all__ = [
    "MessageTemplateError",
    "consent_change_write_back",
    "consent_changes_requeue_unsynced",
    "customer_unsubscribe",
    "RenderedEmail",
    "TemplateFieldError",
    "message_preview",
    "message_render",
    "message_template_reset",
    "message_template_save",
    "template_validate",
]


def _with_shop_defaults(shop, context: dict[str, Any] | None) -> dict[str, Any]:
    ctx = dict(context or {})
    if shop is not None:
        for key, value in (
            ("shop_name", shop.name or shop.domain),
            ("shop_owner_name", shop.owner_name),
            ("shop_url", (shop.storefront_url or store_base_url(shop)).rstrip("/")),
        ):
            if not ctx.get(key):
                ctx[key] = value
    return ctx


def message_render(
    *,
    shop,
    rule_key: str,
    locale: str | None,
    context: dict[str, Any],
    template_cache: dict | None = None,
) -> RenderedEmail:
    """Render the email of `rule_key` for one customer.

    `locale` is the customer's locale as known (any form: "th-TH", "zh_Hant" …, or empty); the message is
    written in it when supported, else in the shop's primary locale, else English. The merchant's template
    for (shop, rule_key, that language) is used if written, else the default. shop_name, shop_owner_name
    and shop_url are filled from the shop when the context lacks them.

    `template_cache`: a dict kept by the caller for a batch of sends; the template of each (shop, rule,
    language) is then read from the database once per batch instead of once per message.
    """
    lang = locale_resolve(customer_locale=locale, shop=shop)
    key = (getattr(shop, "pk", None), rule_key, lang)
    if template_cache is not None and key in template_cache:
        source = template_cache[key]
    else:
        source = message_template_get(shop=shop, rule_key=rule_key, locale=lang)
        if template_cache is not None:
            template_cache[key] = source
    if source is None:
        raise LookupError(f"no template for rule {rule_key!r}")
    return email_render(
        subject=source.subject,
        html_body=source.html_body,
        text_body=source.text_body,
        context=_with_shop_defaults(shop, context),
        locale=lang,
        timezone_name=getattr(shop, "timezone", None),
    )


def message_preview(
    *,
    shop,
    rule_key: str,
    locale: str | None,
    subject: str,
    html_body: str,
    text_body: str = "",
    context: dict[str, Any] | None = None,
) -> RenderedEmail:
    """Render unsaved template sources for the panel's live preview, with the sample context (or the one
    given) and the shop's own name and address. Raises MessageTemplateError, whose `.errors` the preview
    shows next to the fields."""
    lang = locale_resolve(customer_locale=locale, shop=shop)
    ctx = _with_shop_defaults(shop, {**SAMPLE_CONTEXT, **(context or {})})
    if context is None and shop is not None:
        # The sample's own shop values would hide the merchant's: use the shop's.
        ctx.update(_with_shop_defaults(shop, {}))
    return email_render(
        subject=subject,
        html_body=html_body,
        text_body=text_body,
        context=ctx,
        locale=lang,
        timezone_name=getattr(shop, "timezone", None),
    )


def template_validate(*, subject: str, html_body: str, text_body: str = "") -> list[TemplateFieldError]:
    """Every problem of a template (syntax errors with line numbers, unknown variables, forbidden
    constructs, errors of a trial render). Empty: fine to save. Each error has .field/.line/.message
    and .as_dict()."""
    return template_sources_validate(subject=subject, html_body=html_body, text_body=text_body)


def message_template_save(
    *, shop, rule_key: str, locale: str, subject: str, html_body: str, text_body: str = ""
) -> MessageTemplate:
    """Create or replace the merchant's template for (shop, rule, language). Raises ValidationError with
    one message per field (line numbers included) when the template has a problem; saves nothing then."""
    lang = locale_normalize(locale)
    if lang not in SUPPORTED_LOCALES:
        raise ValidationError({"locale": f"Unsupported language {locale!r}"})
    errors = template_validate(subject=subject, html_body=html_body, text_body=text_body)
    if errors:
        by_field: dict[str, list[str]] = {}
        for error in errors:
            prefix = f"Line {error.line}: " if error.line else ""
            by_field.setdefault(error.field, []).append(prefix + error.message)
        raise ValidationError(by_field)
    with transaction.atomic():
        template, _ = MessageTemplate.objects.update_or_create(
            shop=shop,
            rule_key=rule_key,
            locale=lang,
            defaults={"subject": subject.strip(), "html_body": html_body, "text_body": text_body},
        )
    return template


def message_template_reset(*, shop, rule_key: str, locale: str) -> bool:
    """Drop the merchant's template so the default applies again. True when something was deleted."""
    lang = locale_normalize(locale) or ""
    deleted, _ = MessageTemplate.objects.filter(shop=shop, rule_key=rule_key, locale=lang).delete()
    return bool(deleted)


# --- consent ------------------------------------------------------------------------------------------


def _cancel_pending_marketing(customer, reason: str) -> int:
    """Cancel the customer's scheduled marketing sends, through the automations domain when installed."""
    try:
        automations = importlib.import_module("retention_app.automations.services")
    except ImportError:  # pragma: no cover (automations always ships with the app)
        return 0
    cancel = getattr(automations, "messages_cancel_pending_marketing", None)
    return cancel(customer=customer, reason=reason) if cancel else 0


def customer_unsubscribe(*, customer: Customer, source: str) -> bool:
    """Unsubscribe a customer from marketing email, at once: marketing_state UNSUBSCRIBED, pending
    marketing sends cancelled, and the change written back to the store after commit (a ConsentChange row,
    retried on transient errors). Idempotent: an already unsubscribed customer changes nothing and
    returns False."""
    now = timezone.now()
    with transaction.atomic():
        changed = (
            Customer.objects.filter(pk=customer.pk)
            .exclude(marketing_state=Customer.MarketingState.UNSUBSCRIBED)
            .update(
                marketing_state=Customer.MarketingState.UNSUBSCRIBED,
                marketing_state_updated_at=now,
                updated_at=now,
            )
        )
        if not changed:
            return False
        customer.marketing_state = Customer.MarketingState.UNSUBSCRIBED
        customer.marketing_state_updated_at = now
        change = ConsentChange.objects.create(
            shop_id=customer.shop_id,
            customer=customer,
            marketing_state=Customer.MarketingState.UNSUBSCRIBED,
            source=source,
        )
        _cancel_pending_marketing(customer, "The customer unsubscribed with the link in an email.")
        transaction.on_commit(lambda: _enqueue_write_back(change.pk))
    return True


def _enqueue_write_back(change_id: int) -> None:
    from .tasks import consent_write_back

    consent_write_back.delay(change_id)


def consent_change_write_back(*, consent_change_id: int) -> None:
    """Write one consent change to the store. Done or given-up rows are skipped (idempotent).
    Raises PlatformRetryableError for the task to retry later; a permanent refusal is recorded."""
    change = (
        ConsentChange.objects.select_related("shop", "customer")
        .filter(pk=consent_change_id, synced_at__isnull=True, gave_up_at__isnull=True)
        .first()
    )
    if change is None:
        return
    now = timezone.now()
    platform = platform_for(change.shop) if change.shop.is_installed else None
    if platform is None or not change.customer.platform_id:
        ConsentChange.objects.filter(pk=change.pk).update(
            gave_up_at=now, last_error="No store connection to write the change to.", updated_at=now
        )
        return
    ConsentChange.objects.filter(pk=change.pk).update(attempts=F("attempts") + 1, updated_at=now)
    try:
        platform.update_email_consent(
            customer_platform_id=change.customer.platform_id,
            marketing_state=change.marketing_state,
            updated_at=change.created_at,
        )
    except PlatformRetryableError as exc:
        ConsentChange.objects.filter(pk=change.pk).update(
            last_error=str(exc)[:2000], updated_at=timezone.now()
        )
        raise
    except PlatformPermanentError as exc:
        logger.warning("consent write-back %s refused by the store: %s", change.pk, exc)
        ConsentChange.objects.filter(pk=change.pk).update(
            gave_up_at=timezone.now(), last_error=str(exc)[:2000], updated_at=timezone.now()
        )
        return
    ConsentChange.objects.filter(pk=change.pk).update(
        synced_at=timezone.now(), last_error="", updated_at=timezone.now()
    )


def consent_changes_requeue_unsynced(*, older_than_seconds: int = 600, limit: int = 500) -> int:
    """Enqueue again the write-backs left unsynced (a lost task, retries cut short by a crash)."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    ids = list(
        ConsentChange.objects.filter(
            synced_at__isnull=True, gave_up_at__isnull=True, updated_at__lt=cutoff
        ).values_list("pk", flat=True)[:limit]
    )
    for change_id in ids:
        _enqueue_write_back(change_id)
    return len(ids)
