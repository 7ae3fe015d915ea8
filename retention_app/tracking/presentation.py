"""Pure presentation rules of the tracking page: status words, delivery-problem advice, colours with
readable contrast (WCAG 2.x), the language and time zone to show. No database access here."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.translation import gettext_lazy as _

from retention_app.commerce.models import Fulfillment

S = Fulfillment.ShipmentStatus

# Languages the tracking page is translated to (Django language codes).
SUPPORTED_LANGUAGES = ("en", "th", "vi", "pl", "zh-hant")
LANGUAGE_NAMES = {"en": "English", "th": "ไทย", "vi": "Tiếng Việt", "pl": "Polski", "zh-hant": "繁體中文"}

# Pseudo statuses for a fulfillment the carrier has said nothing about yet, or that was cancelled.
SHIPPED = "SHIPPED"
CANCELLED = "CANCELLED"

STATUS_WORDS = {
    SHIPPED: _("Shipped"),
    CANCELLED: _("Shipment cancelled"),
    S.LABEL_PRINTED: _("Label created"),
    S.CONFIRMED: _("Confirmed by the carrier"),
    S.IN_TRANSIT: _("In transit"),
    S.OUT_FOR_DELIVERY: _("Out for delivery"),
    S.ATTEMPTED_DELIVERY: _("Delivery attempted"),
    S.DELAYED: _("Delayed"),
    S.DELIVERED: _("Delivered"),
    S.FAILURE: _("Delivery failed"),
    S.READY_FOR_PICKUP: _("Ready for pickup"),
    S.PICKED_UP: _("Picked up"),
}

STATUS_SENTENCES = {
    SHIPPED: _("Your order has shipped. Updates appear here as soon as the carrier scans your parcel."),
    CANCELLED: _("This shipment was cancelled. Contact the store if you have questions."),
    S.LABEL_PRINTED: _("The shipping label is ready. The carrier will pick up your parcel soon."),
    S.CONFIRMED: _("The carrier has your shipment details."),
    S.IN_TRANSIT: _("Your parcel is on its way."),
    S.OUT_FOR_DELIVERY: _("Your parcel is out for delivery and should arrive today."),
    S.ATTEMPTED_DELIVERY: _("The carrier tried to deliver your parcel but could not."),
    S.DELAYED: _("Your parcel is running late."),
    S.DELIVERED: _("Your parcel has been delivered."),
    S.FAILURE: _("The carrier could not deliver your parcel."),
    S.READY_FOR_PICKUP: _("Your parcel is waiting for you at the pickup point."),
    S.PICKED_UP: _("You picked up your parcel."),
}

# A delivery problem explained with what to do next.
PROBLEM_ADVICE = {
    S.ATTEMPTED_DELIVERY: _(
        "The carrier usually tries again on the next business day. Look for a notice from the carrier, "
        "or use the carrier's page to choose a new delivery time or a pickup point."
    ),
    S.DELAYED: _(
        "Nothing to do for now: your parcel is still on its way. If there is no new update within three "
        "days, contact the store with your order number."
    ),
    S.FAILURE: _(
        "Contact the store with your order number. They will check your address with the carrier and "
        "send the parcel again or refund you."
    ),
}

DONE_STATUSES = frozenset({S.DELIVERED, S.PICKED_UP})
PROBLEM_STATUSES = frozenset(PROBLEM_ADVICE)


def display_status(fulfillment: Fulfillment) -> str:
    """The status key shown for a fulfillment (a ShipmentStatus value, SHIPPED or CANCELLED)."""
    if (
        fulfillment.status in ("cancelled", "error", "failure")
        and fulfillment.shipment_status not in DONE_STATUSES
    ):
        return CANCELLED
    if fulfillment.shipment_status in STATUS_WORDS:
        return fulfillment.shipment_status
    return SHIPPED


def status_words(status: str):
    return STATUS_WORDS.get(status, STATUS_WORDS[SHIPPED])


def status_sentence(status: str):
    return STATUS_SENTENCES.get(status, STATUS_SENTENCES[SHIPPED])


def estimated_delivery(fulfillment: Fulfillment, events: list, *, now: dt.datetime) -> dt.datetime | None:
    """The ETA to show, or None: hidden once delivered/picked up/cancelled and once the ETA is past.

    The latest event that carries an ETA wins over the fulfillment's own (carriers revise it). A failed
    delivery shows none either: the old date no longer means anything, the advice says what happens next."""
    status = display_status(fulfillment)
    if status in DONE_STATUSES or status in (CANCELLED, S.FAILURE) or fulfillment.delivered_at is not None:
        return None
    eta = fulfillment.estimated_delivery_at
    for event in events:  # chronological
        if event.estimated_delivery_at is not None:
            eta = event.estimated_delivery_at
    if eta is None or eta < now:
        return None
    return eta


def page_timezone(*, customer_timezone: str, shop_timezone: str) -> ZoneInfo:
    """The customer's time zone when known and valid, else the shop's, else UTC."""
    for name in (customer_timezone, shop_timezone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


_LANG_ALIASES = {"zh-tw": "zh-hant", "zh-hk": "zh-hant", "zh-mo": "zh-hant", "zh-hant-tw": "zh-hant"}


def normalize_language(code: str | None) -> str | None:
    """Map a platform locale ("pl-PL", "zh-TW", "th") to a supported language code, or None."""
    if not code:
        return None
    code = code.strip().lower().replace("_", "-")
    if code in SUPPORTED_LANGUAGES:
        return code
    if code in _LANG_ALIASES:
        return _LANG_ALIASES[code]
    if code.startswith("zh-hant"):
        return "zh-hant"
    base = code.split("-", 1)[0]
    if base in SUPPORTED_LANGUAGES and base != "zh":
        return base
    return None


def choose_language(*, requested: str | None, candidates: list[str]) -> str:
    """?lang= when supported, else the first supported of the customer's/order's/shop's locales, else en."""
    for code in [requested, *candidates]:
        lang = normalize_language(code)
        if lang:
            return lang
    return "en"


# --- colours ---------------------------------------------------------------------------------------------

_HEX6 = re.compile(r"^#?([0-9a-fA-F]{6})$")
_HEX3 = re.compile(r"^#?([0-9a-fA-F]{3})$")
DARK_TEXT = "#111827"
LIGHT_TEXT = "#ffffff"


def normalize_hex(value: str) -> str | None:
    """'#ABC' / 'aabbcc' / '#AABBCC' -> '#aabbcc'; None when not a hex colour."""
    value = (value or "").strip()
    if m := _HEX6.match(value):
        return "#" + m.group(1).lower()
    if m := _HEX3.match(value):
        return "#" + "".join(c * 2 for c in m.group(1).lower())
    return None


def _luminance(hex_color: str) -> float:
    """Relative luminance, https://www.w3.org/TR/WCAG21/#dfn-relative-luminance"""
    channels = []
    for i in (1, 3, 5):
        c = int(hex_color[i : i + 2], 16) / 255
        channels.append(c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4)
    r, g, b = channels
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio between two #rrggbb colours (1..21)."""
    la, lb = _luminance(a), _luminance(b)
    hi, lo = max(la, lb), min(la, lb)
    return (hi + 0.05) / (lo + 0.05)


def readable_text_on(background: str) -> str:
    """White or near-black, whichever contrasts more with `background`; pure black when neither reaches
    4.5:1 (mid greys such as #777777: max(contrast with white, with black) is always >= 4.58)."""
    best = max((LIGHT_TEXT, DARK_TEXT), key=lambda c: contrast_ratio(c, background))
    if contrast_ratio(best, background) >= 4.5:
        return best
    return max((LIGHT_TEXT, "#000000"), key=lambda c: contrast_ratio(c, background))


def readable_color(color: str, background: str, *, minimum: float = 4.5) -> str:
    """`color` if it reaches `minimum` contrast on `background`; else the same hue darkened or lightened
    until it does; else a neutral text colour (AA for normal text is 4.5:1)."""
    if contrast_ratio(color, background) >= minimum:
        return color
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    towards_black = _luminance(background) > 0.18
    for step in range(1, 21):
        f = 1 - step / 20
        if towards_black:
            candidate = (round(r * f), round(g * f), round(b * f))
        else:
            candidate = tuple(round(c + (255 - c) * (1 - f)) for c in (r, g, b))
        hex_candidate = "#{:02x}{:02x}{:02x}".format(*candidate)
        if contrast_ratio(hex_candidate, background) >= minimum:
            return hex_candidate
    return readable_text_on(background)


@dataclass(frozen=True)
class Palette:
    header_bg: str
    header_text: str
    page_bg: str
    page_text: str
    accent: str  # links on the page background, readable
    button_bg: str
    button_text: str
    card_bg: str = "#ffffff"


def palette(*, brand_color: str, accent_color: str, background_color: str) -> Palette:
    """Colours for the page, every text/background pair at WCAG AA (4.5:1) whatever the merchant chose."""
    # Cards are white with dark text whatever the page background; text directly on the page background
    # (footer, language links) takes the readable one of white/near-black.
    page_text = readable_text_on(background_color)
    accent = readable_color(accent_color, "#ffffff")
    return Palette(
        header_bg=brand_color,
        header_text=readable_text_on(brand_color),
        page_bg=background_color,
        page_text=page_text,
        accent=accent,
        button_bg=accent,
        button_text=readable_text_on(accent),
    )


def safe_http_url(url: str | None) -> str | None:
    """The URL if it is an absolute http(s) URL with a host (no javascript:, data:, //evil), else None."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return url.strip()
