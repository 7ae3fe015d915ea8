"""Which language a customer's message is written in, and the few words the app itself puts into emails.

Supported languages: the keys of settings.LANGUAGES (en, th, vi, pl, zh-hant). A customer's locale as the
platform reports it ("th-TH", "zh-TW", "zh_Hant", "pl") is normalized to one of them; an unsupported one
falls back to the shop's primary locale, then to English.
"""

from __future__ import annotations

import datetime as dt

SUPPORTED_LOCALES: tuple[str, ...] = ("en", "th", "vi", "pl", "zh-hant")
DEFAULT_LOCALE = "en"

# Chinese written in Traditional characters: the script subtag, or a region that uses it.
_HANT_REGIONS = {"tw", "hk", "mo", "hant"}


def locale_normalize(value: str | None) -> str | None:
    """ "zh-TW"/"zh_Hant"/"zh-tw"/"zh-Hant-HK" -> "zh-hant", "th-TH" -> "th", "en_US" -> "en";
    None when empty or not a supported language (e.g. "de", "zh-CN")."""
    if not value:
        return None
    parts = [p for p in str(value).strip().lower().replace("_", "-").split("-") if p]
    if not parts:
        return None
    base = parts[0]
    if base == "zh":
        return "zh-hant" if any(p in _HANT_REGIONS for p in parts[1:]) else None
    return base if base in SUPPORTED_LOCALES else None


def locale_resolve(*, customer_locale: str | None, shop=None) -> str:
    """The language of a message: the customer's when known and supported, else the shop's, else English."""
    return (
        locale_normalize(customer_locale)
        or locale_normalize(getattr(shop, "primary_locale", None))
        or DEFAULT_LOCALE
    )


_MONTHS = {
    "en": [
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ],
    "th": [
        "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
        "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
    ],
    # Polish dates use the genitive: "31 grudnia 2026".
    "pl": [
        "stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca",
        "lipca", "sierpnia", "września", "października", "listopada", "grudnia",
    ],
}  # fmt: skip


def date_format(value: dt.date | dt.datetime, locale: str) -> str:
    """A date for people in the message's language (Thai: Buddhist era, as Thai readers expect)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    if locale == "th":
        return f"{value.day} {_MONTHS['th'][value.month - 1]} {value.year + 543}"
    if locale == "pl":
        return f"{value.day} {_MONTHS['pl'][value.month - 1]} {value.year}"
    if locale == "vi":
        return f"{value.day:02d}/{value.month:02d}/{value.year}"
    if locale == "zh-hant":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{_MONTHS['en'][value.month - 1]} {value.day}, {value.year}"


# Fulfillment.ShipmentStatus -> words, per language.
SHIPMENT_STATUS_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "LABEL_PRINTED": "Label printed",
        "CONFIRMED": "Confirmed",
        "IN_TRANSIT": "In transit",
        "OUT_FOR_DELIVERY": "Out for delivery",
        "ATTEMPTED_DELIVERY": "Delivery attempted",
        "DELAYED": "Delayed",
        "DELIVERED": "Delivered",
        "FAILURE": "Delivery failed",
        "READY_FOR_PICKUP": "Ready for pickup",
        "PICKED_UP": "Picked up",
    },
    "th": {
        "LABEL_PRINTED": "พิมพ์ใบปะหน้าพัสดุแล้ว",
        "CONFIRMED": "ยืนยันการจัดส่งแล้ว",
        "IN_TRANSIT": "อยู่ระหว่างการขนส่ง",
        "OUT_FOR_DELIVERY": "กำลังนำส่ง",
        "ATTEMPTED_DELIVERY": "นำส่งไม่สำเร็จ จะนำส่งอีกครั้ง",
        "DELAYED": "ล่าช้ากว่ากำหนด",
        "DELIVERED": "จัดส่งสำเร็จแล้ว",
        "FAILURE": "จัดส่งไม่สำเร็จ",
        "READY_FOR_PICKUP": "พร้อมให้รับพัสดุ",
        "PICKED_UP": "รับพัสดุแล้ว",
    },
    "vi": {
        "LABEL_PRINTED": "Đã in vận đơn",
        "CONFIRMED": "Đã xác nhận",
        "IN_TRANSIT": "Đang vận chuyển",
        "OUT_FOR_DELIVERY": "Đang giao hàng",
        "ATTEMPTED_DELIVERY": "Giao chưa thành công, sẽ giao lại",
        "DELAYED": "Bị chậm trễ",
        "DELIVERED": "Đã giao hàng",
        "FAILURE": "Giao hàng thất bại",
        "READY_FOR_PICKUP": "Sẵn sàng để nhận",
        "PICKED_UP": "Đã nhận hàng",
    },
    "pl": {
        "LABEL_PRINTED": "Etykieta wydrukowana",
        "CONFIRMED": "Potwierdzona",
        "IN_TRANSIT": "W drodze",
        "OUT_FOR_DELIVERY": "Wydana do doręczenia",
        "ATTEMPTED_DELIVERY": "Nieudana próba doręczenia",
        "DELAYED": "Opóźniona",
        "DELIVERED": "Doręczona",
        "FAILURE": "Doręczenie nie powiodło się",
        "READY_FOR_PICKUP": "Gotowa do odbioru",
        "PICKED_UP": "Odebrana",
    },
    "zh-hant": {
        "LABEL_PRINTED": "已列印貨運標籤",
        "CONFIRMED": "已確認出貨",
        "IN_TRANSIT": "運送中",
        "OUT_FOR_DELIVERY": "配送中",
        "ATTEMPTED_DELIVERY": "投遞未成功，將再次配送",
        "DELAYED": "配送延遲",
        "DELIVERED": "已送達",
        "FAILURE": "配送失敗",
        "READY_FOR_PICKUP": "可以取貨了",
        "PICKED_UP": "已取貨",
    },
}


def shipment_status_words(status: str, locale: str) -> str:
    """ "OUT_FOR_DELIVERY" -> "Out for delivery" (in the message's language); other text is kept as is."""
    key = (status or "").strip().upper()
    words = SHIPMENT_STATUS_WORDS.get(locale, SHIPMENT_STATUS_WORDS[DEFAULT_LOCALE])
    return words.get(key, status or "")


# The app's own words in the email layout (not merchant-editable).
LAYOUT_STRINGS: dict[str, dict[str, str]] = {
    "en": {
        "footer": "You received this email because you shopped at {shop_name}.",
        "unsubscribe": "Unsubscribe from these emails",
    },
    "th": {
        "footer": "คุณได้รับอีเมลนี้เนื่องจากเคยสั่งซื้อสินค้ากับ {shop_name}",
        "unsubscribe": "ยกเลิกการรับอีเมลเหล่านี้",
    },
    "vi": {
        "footer": "Bạn nhận được email này vì đã mua hàng tại {shop_name}.",
        "unsubscribe": "Hủy đăng ký nhận email",
    },
    "pl": {
        "footer": "Otrzymujesz tę wiadomość jako klient sklepu {shop_name}.",
        "unsubscribe": "Wypisz się z tych wiadomości",
    },
    "zh-hant": {
        "footer": "您收到這封郵件，是因為您曾在 {shop_name} 購物。",
        "unsubscribe": "取消訂閱這類郵件",
    },
}
