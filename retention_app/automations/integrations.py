"""The building blocks the automation engine calls in other domains, behind one small adapter.

Contracts (owned by their domains; see the functions for the fallback used while one is missing):
- rendering: `retention_app.messaging.services.message_render(*, shop, rule_key, locale, context)`
  -> RenderedEmail(subject, html, text)
- unsubscribe: `retention_app.messaging.unsubscribe.unsubscribe_headers(customer)` and
  `unsubscribe_url(customer)`
- discounts: `retention_app.discounts.services.discount_code_issue(*, shop, customer, rule_key, trigger_key,
  value_type, value, expires_in_days, minimum_order)` (idempotent per (shop, rule_key, customer,
  trigger_key)) and `discount_code_write_order_metafield(*, order, discount_code)`
- tracking page: `retention_app.tracking.services.tracking_page_url(fulfillment)`
- formatting: `retention_app.messaging.variables.money_format` / `percent_format`,
  `retention_app.messaging.locales.locale_resolve`

A missing module or function (the other engineer has not committed it yet) falls back to a minimal
implementation here; an ImportError raised *inside* an existing module is not swallowed.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signing

logger = logging.getLogger(__name__)


def _optional(module: str, name: str):
    """`module.name` when both exist, else None (only a missing module/attribute counts as missing)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
            return None
        raise
    return getattr(mod, name, None)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


_FALLBACK_SUBJECTS = {
    "thank_you": "Thank you for your order at {shop_name}",
    "order_confirmation": "Order {order_name} confirmed",
    "shipping_update": "Your order {order_name}: {shipment_status}",
    "win_back": "We miss you at {shop_name}",
}


def render(
    *, shop, rule_key: str, locale: str, context: dict[str, Any], template_cache: dict | None = None
) -> RenderedEmail:
    """Subject, HTML and text of one email (H6's sandboxed renderer; a plain fallback until it exists).
    `template_cache`: a dict the caller keeps for a batch, so a template is looked up once per batch."""
    fn = _optional("retention_app.messaging.services", "message_render")
    if fn is not None:
        r = fn(shop=shop, rule_key=rule_key, locale=locale, context=context, template_cache=template_cache)
        return RenderedEmail(subject=r.subject, html=r.html, text=r.text)
    safe = {k: ("" if v is None else str(v)) for k, v in context.items()}
    subject = _FALLBACK_SUBJECTS.get(rule_key, "{shop_name}").format_map(_Missing(safe))
    lines = [f"Hello {safe.get('customer_first_name', '')},", ""]
    for key in ("order_name", "discount_code", "discount_url", "tracking_number", "tracking_url"):
        if safe.get(key):
            lines.append(f"{key}: {safe[key]}")
    if safe.get("unsubscribe_url"):
        lines += ["", f"Unsubscribe: {safe['unsubscribe_url']}"]
    text = "\n".join(lines)
    from django.utils.html import escape

    html = "<html><body>" + "".join(f"<p>{escape(line)}</p>" for line in lines) + "</body></html>"
    return RenderedEmail(subject=subject, html=html, text=text)


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return ""


def unsubscribe_url(customer) -> str:
    fn = _optional("retention_app.messaging.unsubscribe", "unsubscribe_url")
    if fn is not None:
        return fn(customer)
    token = signing.dumps({"c": customer.pk}, salt="boomerang.unsubscribe")
    return f"{settings.APP_URL}/m/unsubscribe/{token}/"


def unsubscribe_headers(customer, url: str | None = None) -> dict[str, str]:
    """RFC 8058 one-click unsubscribe headers for a marketing email (`url`: the link, when already signed)."""
    fn = _optional("retention_app.messaging.unsubscribe", "unsubscribe_headers")
    if fn is not None:
        return dict(fn(customer, url))
    return {
        "List-Unsubscribe": f"<{url or unsubscribe_url(customer)}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def discount_code_issue(
    *,
    shop,
    customer,
    rule_key: str,
    trigger_key: str,
    value_type: str,
    value: Decimal,
    expires_in_days: int,
    minimum_order: Decimal | None,
):
    """The customer's single-use code for this trigger (created on the store once), or None when the
    discounts domain is not available."""
    fn = _optional("retention_app.discounts.services", "discount_code_issue")
    if fn is None:
        logger.warning("discounts.services.discount_code_issue missing: message sent without a code")
        return None
    return fn(
        shop=shop,
        customer=customer,
        rule_key=rule_key,
        trigger_key=trigger_key,
        value_type=value_type,
        value=value,
        expires_in_days=expires_in_days,
        minimum_order=minimum_order,
    )


def discount_code_write_order_metafield(*, order, discount_code) -> None:
    fn = _optional("retention_app.discounts.services", "discount_code_write_order_metafield")
    if fn is not None:
        fn(order=order, discount_code=discount_code)


def tracking_page_url(fulfillment) -> str:
    """The branded tracking page (H7), else the carrier's own tracking link."""
    fn = _optional("retention_app.tracking.services", "tracking_page_url")
    if fn is not None:
        try:
            return fn(fulfillment)
        except Exception:  # a broken tracking page must not stop a shipping email
            logger.exception("tracking_page_url failed for fulfillment %s", fulfillment.pk)
    return fulfillment.tracking_url or ""


def money_format(amount, currency: str, locale: str) -> str:
    fn = _optional("retention_app.messaging.variables", "money_format")
    if fn is not None:
        return fn(amount, currency, locale)
    return f"{Decimal(amount).quantize(Decimal('0.01'))} {currency}"


def percent_format(value) -> str:
    fn = _optional("retention_app.messaging.variables", "percent_format")
    if fn is not None:
        return fn(value)
    return f"{Decimal(str(value)).normalize():f}%"


SUPPORTED_LOCALES = ("en", "th", "vi", "pl", "zh-hant")


def locale_resolve(*, customer_locale: str | None, shop) -> str:
    fn = _optional("retention_app.messaging.locales", "locale_resolve")
    if fn is not None:
        return fn(customer_locale=customer_locale, shop=shop)
    for candidate in (customer_locale, getattr(shop, "primary_locale", "")):
        base = (candidate or "").lower().replace("_", "-").split("-")[0]
        if base in SUPPORTED_LOCALES:
            return base
    return "en"


def is_retryable(exc: BaseException) -> bool:
    """A platform error worth retrying later (ShopifyRetryableError and kin, network trouble)."""
    if getattr(exc, "retryable", False):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"ShopifyRetryableError", "ConnectionError", "TimeoutError"}) or any(
        "Retryable" in n for n in names
    )
