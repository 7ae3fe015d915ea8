"""The template variables, in one place: what a merchant may write in a template and what the sender fills.

The engine (automations) builds a context dict with these keys and passes it to
`retention_app.messaging.services.message_render`. Everything else in the dict is dropped before rendering,
and every value is reduced to a plain string (dates are formatted in the message's language), so a template
can never reach a Python object, a model, settings or the request.

Values the sender passes:
- strings for names, codes and URLs (absolute URLs; `discount_url` from `DiscountCode.url`,
  `unsubscribe_url` from `retention_app.messaging.unsubscribe.unsubscribe_url(customer)` — leave it out of
  transactional messages such as shipping updates);
- money already formatted with `money_format(amount, currency, locale)` (order_total, discount_value for a
  fixed amount) or `percent_format(value)` for a percentage discount;
- `discount_expires_at` as an aware `datetime` (best: written as its date in the shop's time zone), a
  `date`, or a string; formatted here in the message's language;
- `shipment_status` as the `Fulfillment.ShipmentStatus` value ("IN_TRANSIT", "DELIVERED" …): it is put into
  words in the message's language here.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

# name -> what it is (shown in the rules editor next to the template fields).
VARIABLES: dict[str, str] = {
    "customer_first_name": "The customer's first name (may be empty)",
    "customer_name": "The customer's full name (may be empty)",
    "shop_name": "Your store's name",
    "shop_owner_name": "The store owner's name, to sign personal notes",
    "shop_url": "Your storefront address",
    "order_name": 'The order number, e.g. "#1001"',
    "order_total": 'The order total with its currency, e.g. "$54.00"',
    "discount_code": 'The customer\'s single-use discount code, e.g. "BACK-7QX2KD"',
    "discount_value": 'What the code is worth, e.g. "15%" or "$10.00"',
    "discount_expires_at": "The last day the code can be used",
    "discount_url": "A link that opens the store with the code already applied",
    "tracking_company": "The carrier",
    "tracking_number": "The tracking number",
    "tracking_url": "The link to the shipment's tracking page",
    "shipment_status": 'The shipment status in words, e.g. "Out for delivery"',
    "unsubscribe_url": "The one-click unsubscribe link (marketing messages only)",
}

SAMPLE_CONTEXT: dict[str, object] = {
    "customer_first_name": "Ana",
    "customer_name": "Ana Nowak",
    "shop_name": "Acme Tea",
    "shop_owner_name": "Mai",
    "shop_url": "https://acme-tea.example",
    "order_name": "#1001",
    "order_total": "$54.00",
    "discount_code": "BACK-7QX2KD",
    "discount_value": "15%",
    "discount_expires_at": dt.date(2026, 12, 31),
    "discount_url": "https://acme-tea.example/discount/BACK-7QX2KD",
    "tracking_company": "DHL Express",
    "tracking_number": "JD014600012345",
    "tracking_url": "https://boomerang.example/t/sample",
    "shipment_status": "OUT_FOR_DELIVERY",
    "unsubscribe_url": "https://boomerang.example/m/u/sample",
}

_CURRENCY_SYMBOLS = {
    "USD": "$",
    "EUR": "€",
    "GBP": "£",
    "THB": "฿",
    "VND": "₫",
    "PLN": "zł",
    "TWD": "NT$",
    "HKD": "HK$",
    "JPY": "¥",
    "AUD": "A$",
    "CAD": "C$",
}
_ZERO_DECIMAL = {"VND", "JPY", "KRW", "TWD"}
_SUFFIX_SYMBOL = {"PLN", "VND"}


def money_format(amount: Decimal | int | str, currency: str, locale: str = "en") -> str:
    """A money amount for people: "$54.00", "฿1,250.00", "54,00 zł", "150.000 ₫", "NT$1,200"."""
    value = Decimal(str(amount))
    currency = (currency or "").upper()
    places = Decimal("1") if currency in _ZERO_DECIMAL else Decimal("0.01")
    value = value.quantize(places, rounding=ROUND_HALF_UP)
    text = f"{value:,}"
    if currency in {"PLN", "VND", "EUR"} and locale in {"pl", "vi"}:
        # Polish writes 1 234,50 and Vietnamese 1.234,50.
        whole, _, frac = f"{value:,}".partition(".")
        whole = whole.replace(",", "\u00a0" if locale == "pl" else ".")
        text = f"{whole},{frac}" if frac else whole
    symbol = _CURRENCY_SYMBOLS.get(currency)
    if symbol is None:
        return f"{text} {currency}".strip()
    if currency in _SUFFIX_SYMBOL:
        return f"{text}\u00a0{symbol}"
    return f"{symbol}{text}"


def percent_format(value: Decimal | int | str) -> str:
    """A percentage for people: Decimal("15.00") -> "15%", Decimal("12.5") -> "12.5%"."""
    number = Decimal(str(value)).normalize()
    return f"{number:f}%"
