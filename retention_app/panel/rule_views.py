"""Rules pages: list with enable/pause, the editor (settings, conditions, discount, template) with live
preview and test-send. Writes go through the owning services: automations.services.rule_update /
rule_test_send and messaging.services.template_validate / message_template_save / message_preview."""

from __future__ import annotations

import logging

from django.contrib import messages as flash
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from retention_app.automations.models import Rule
from retention_app.automations.services import rule_test_send, rule_update, rules_install_defaults
from retention_app.messaging.locales import SUPPORTED_LOCALES, locale_normalize
from retention_app.messaging.selectors import message_template_get
from retention_app.messaging.services import (
    MessageTemplateError,
    message_preview,
    message_template_save,
    template_validate,
)
from retention_app.panel.auth import shop_required
from retention_app.panel.rule_forms import TEMPLATE_FIELDS, RuleForm

logger = logging.getLogger(__name__)

LANGUAGE_NAMES = {"en": "English", "th": "ไทย", "vi": "Tiếng Việt", "pl": "Polski", "zh-hant": "繁體中文"}


def _rule(request, rule_id: int) -> Rule:
    return get_object_or_404(Rule, shop=request.shop, pk=rule_id)


def _locale(value: str | None, shop) -> str:
    lang = locale_normalize(value or "") if value else ""
    if lang in SUPPORTED_LOCALES:
        return lang
    primary = locale_normalize(shop.primary_locale or "en")
    return primary if primary in SUPPORTED_LOCALES else "en"


@shop_required
def rule_list(request):
    if not Rule.objects.filter(shop=request.shop).exists():
        rules_install_defaults(shop=request.shop)
    rules = Rule.objects.filter(shop=request.shop).order_by("id")
    return render(request, "panel/rules.html", {"rules": rules})


@shop_required
@require_POST
def rule_toggle(request, rule_id: int):
    rule = _rule(request, rule_id)
    rule_update(rule=rule, data={"enabled": not rule.enabled})
    flash.success(request, _("Rule enabled.") if rule.enabled else _("Rule paused."))
    return redirect("panel:rules")


@shop_required
@require_http_methods(["GET", "POST"])
def rule_edit(request, rule_id: int):
    rule = _rule(request, rule_id)
    lang = _locale(request.POST.get("locale") or request.GET.get("locale"), request.shop)
    current = message_template_get(shop=request.shop, rule_key=rule.key, locale=lang)
    if request.method == "POST":
        form = RuleForm(request.POST)
        if form.is_valid() and _save(request, form, rule, lang, current):
            flash.success(request, _("Rule saved."))
            return redirect(f"{request.path}?locale={lang}")
    else:
        form = RuleForm(initial=RuleForm.initial_for(rule, current))
        form.initial["locale"] = lang
    context = {
        "rule": rule,
        "form": form,
        "locale": lang,
        "template_languages": [(code, LANGUAGE_NAMES.get(code, code)) for code in SUPPORTED_LOCALES],
        "is_default_template": bool(current and current.is_default),
        "is_winback": rule.trigger == Rule.Trigger.CUSTOMER_LAPSED,
    }
    return render(request, "panel/rule_edit.html", context)


def _norm(text: str | None) -> str:
    # Browsers send textareas with CRLF and forms strip outer whitespace: compare what matters.
    return (text or "").replace("\r\n", "\n").strip()


def _save(request, form: RuleForm, rule: Rule, lang: str, current) -> bool:
    """Validate the template first, then save rule and template together (nothing saved on an error)."""
    c = form.cleaned_data
    errors = template_validate(subject=c["subject"], html_body=c["html_body"], text_body=c["text_body"] or "")
    for error in errors:
        prefix = _("Line %(line)s: ") % {"line": error.line} if error.line else ""
        form.add_error(error.field if error.field in form.fields else None, prefix + error.message)
    if errors:
        return False
    changed = current is None or any(_norm(c[f]) != _norm(getattr(current, f)) for f in TEMPLATE_FIELDS)
    try:
        with transaction.atomic():
            rule_update(rule=rule, data=form.rule_data(rule))
            if changed:
                message_template_save(
                    shop=request.shop,
                    rule_key=rule.key,
                    locale=lang,
                    subject=c["subject"],
                    html_body=c["html_body"],
                    text_body=c["text_body"] or "",
                )
    except ValidationError as exc:
        rule.refresh_from_db()
        form.add_service_errors(exc)
        return False
    return True


@shop_required
@require_POST
def rule_preview(request, rule_id: int):
    """Live preview of the unsaved template: JSON {subject, html, text, errors: [{field, line, message}]}."""
    rule = _rule(request, rule_id)
    lang = _locale(request.POST.get("locale"), request.shop)
    try:
        rendered = message_preview(
            shop=request.shop,
            rule_key=rule.key,
            locale=lang,
            subject=request.POST.get("subject", ""),
            html_body=request.POST.get("html_body", ""),
            text_body=request.POST.get("text_body", ""),
        )
    except MessageTemplateError as exc:
        return JsonResponse({"errors": [e.as_dict() for e in exc.errors]})
    return JsonResponse(
        {"subject": rendered.subject, "html": rendered.html, "text": rendered.text, "errors": []}
    )


@shop_required
@require_POST
def rule_test_send_view(request, rule_id: int):
    rule = _rule(request, rule_id)
    lang = _locale(request.POST.get("locale"), request.shop)
    to_email = request.POST.get("to_email", "").strip()
    try:
        rule_test_send(rule=rule, to_email=to_email, locale=lang)
    except ValidationError as exc:
        flash.error(request, " ".join(m for ms in exc.message_dict.values() for m in ms))
    except Exception:  # SMTP down, template broken at render time: tell the merchant, never a 500
        logger.exception("test send failed for rule %s", rule.pk)
        flash.error(request, _("The test email could not be sent. Check the template and the mail settings."))
    else:
        flash.success(request, _("Test email sent to %(email)s.") % {"email": to_email})
    return redirect(f"{reverse('panel:rule_edit', args=[rule.pk])}?locale={lang}")
