"""Reads for messaging: which template applies, and the default templates shipped with the app."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .locales import DEFAULT_LOCALE, SUPPORTED_LOCALES, locale_normalize
from .models import MessageTemplate
from .rendering import DEFAULTS_DIR

DEFAULT_RULE_KEYS: tuple[str, ...] = ("thank_you", "order_confirmation", "shipping_update", "win_back")


@dataclass(frozen=True)
class TemplateSource:
    rule_key: str
    locale: str
    subject: str
    html_body: str
    text_body: str
    is_default: bool


@functools.lru_cache(maxsize=64)
def message_template_default(rule_key: str, locale: str) -> TemplateSource | None:
    """The template shipped with the app for a rule and language (English when that language has none);
    None for a rule without a default."""
    if rule_key not in DEFAULT_RULE_KEYS:
        return None
    lang = locale_normalize(locale) or DEFAULT_LOCALE
    folder = DEFAULTS_DIR / lang
    if not (folder / f"{rule_key}.html").exists():
        folder, lang = DEFAULTS_DIR / DEFAULT_LOCALE, DEFAULT_LOCALE
    subject = (folder / f"{rule_key}.subject.txt").read_text(encoding="utf-8").strip()
    html_body = (folder / f"{rule_key}.html").read_text(encoding="utf-8")
    text_path = folder / f"{rule_key}.txt"
    text_body = text_path.read_text(encoding="utf-8") if text_path.exists() else ""
    return TemplateSource(rule_key, lang, subject, html_body, text_body, is_default=True)


def message_template_get(*, shop, rule_key: str, locale: str) -> TemplateSource | None:
    """The template a message uses: the merchant's for (shop, rule, language) if written, else the default."""
    lang = locale_normalize(locale) or DEFAULT_LOCALE
    row = MessageTemplate.objects.filter(shop=shop, rule_key=rule_key, locale=lang).first()
    if row is not None:
        return TemplateSource(rule_key, lang, row.subject, row.html_body, row.text_body, is_default=False)
    return message_template_default(rule_key, lang)


def message_template_list(*, shop, rule_key: str) -> list[TemplateSource]:
    """One entry per supported language (the merchant's version or the default), for the rules editor."""
    return [
        source
        for lang in SUPPORTED_LOCALES
        if (source := message_template_get(shop=shop, rule_key=rule_key, locale=lang)) is not None
    ]
