"""REST-shaped webhook bodies (Shopify's REST resources), built from the dev store's rows.

Independent of the app's parsers on purpose: shapes follow Shopify's REST reference.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .store import parse_time, presentment


def rest_time(value: str | None, tz: str = "UTC") -> str | None:
    """REST bodies carry times in the shop's time zone with an offset: 2026-01-05T10:00:00-05:00."""
    if not value:
        return None
    try:
        zone = ZoneInfo(tz)
    except Exception:  # unknown zone name: UTC
        zone = dt.UTC
    return parse_time(value).astimezone(zone).isoformat()


def shop_payload(row) -> dict:
    # Reference: https://shopify.dev/docs/api/admin-rest/latest/resources/shop
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "domain": row["domain"],
        "myshopify_domain": row["domain"],
        "currency": row["currency"],
        "iana_timezone": row["timezone"],
        "plan_name": row["plan"],
        "created_at": rest_time(row["created_at"], row["timezone"]),
    }


def gid(kind: str, value) -> str:
    return f"gid://shopify/{kind}/{value}"


def _money(value_cents) -> str:
    from .store import money

    return money(value_cents or 0)


CONSENT_REST = {
    "SUBSCRIBED": "subscribed",
    "UNSUBSCRIBED": "unsubscribed",
    "NOT_SUBSCRIBED": "not_subscribed",
    "PENDING": "pending",
    "INVALID": "invalid",
    "REDACTED": "redacted",
}


def customer_payload(row, tz: str = "UTC") -> dict:
    # Reference: https://shopify.dev/docs/api/admin-rest/latest/resources/customer
    state = row["marketing_state"]
    return {
        "id": row["id"],
        "email": row["email"],
        "created_at": rest_time(row["created_at"], tz),
        "updated_at": rest_time(row["updated_at"], tz),
        "first_name": row["first_name"],
        "last_name": row["last_name"],
        "state": "enabled",
        "note": None,
        "verified_email": True,
        "multipass_identifier": None,
        "tax_exempt": False,
        "tags": row["tags"],
        "currency": None,
        "phone": row["phone"],
        "addresses": [],
        "tax_exemptions": [],
        "email_marketing_consent": {
            "state": CONSENT_REST.get(state, state.lower()),
            "opt_in_level": "single_opt_in" if state == "SUBSCRIBED" else None,
            "consent_updated_at": rest_time(row["marketing_updated_at"], tz),
        },
        "sms_marketing_consent": None,
        "admin_graphql_api_id": gid("Customer", row["id"]),
        "default_address": None,
    }


def fulfillment_event_payload(row, shop_id: int, tz: str = "UTC") -> dict:
    # Reference: https://shopify.dev/docs/api/admin-rest/latest/resources/fulfillmentevent
    return {
        "id": row["id"],
        "fulfillment_id": row["fulfillment_id"],
        "order_id": row["order_id"],
        "shop_id": shop_id,
        "status": row["status"],
        "message": row["message"],
        "happened_at": rest_time(row["happened_at"], tz),
        "city": row["city"],
        "province": row["province"],
        "country": row["country"],
        "zip": None,
        "address1": None,
        "latitude": None,
        "longitude": None,
        "estimated_delivery_at": rest_time(row["estimated_delivery_at"], tz),
        "created_at": rest_time(row["created_at"], tz),
        "updated_at": rest_time(row["created_at"], tz),
        "admin_graphql_api_id": gid("FulfillmentEvent", row["id"]),
    }


def fulfillment_payload(row, line_items: list[dict], tz: str = "UTC") -> dict:
    # Reference: https://shopify.dev/docs/api/admin-rest/latest/resources/fulfillment
    numbers = [row["tracking_number"]] if row["tracking_number"] else []
    urls = [row["tracking_url"]] if row["tracking_url"] else []
    return {
        "id": row["id"],
        "order_id": row["order_id"],
        "status": row["status"],
        "created_at": rest_time(row["created_at"], tz),
        "updated_at": rest_time(row["updated_at"], tz),
        "service": "manual",
        "shipment_status": row["shipment_status"],
        "location_id": 1,
        "origin_address": None,
        "tracking_company": row["tracking_company"],
        "tracking_number": row["tracking_number"],
        "tracking_numbers": numbers,
        "tracking_url": row["tracking_url"],
        "tracking_urls": urls,
        "estimated_delivery_at": rest_time(row["estimated_delivery_at"], tz),
        "name": None,
        "receipt": {},
        "line_items": line_items,
        "admin_graphql_api_id": gid("Fulfillment", row["id"]),
    }


def line_item_payload(row, currency: str, presentment_currency: str) -> dict:
    price = _money(row["price_cents"])
    shown = row["presentment_price_cents"]
    shown = price if shown is None else _money(shown)
    return {
        "id": row["id"],
        "admin_graphql_api_id": gid("LineItem", row["id"]),
        "product_id": row["product_id"],
        "variant_id": row["product_id"],
        "title": row["title"],
        "name": row["title"],
        "sku": row["sku"],
        "quantity": row["quantity"],
        "current_quantity": row["quantity"],
        "price": price,
        "price_set": {
            "shop_money": {"amount": price, "currency_code": currency},
            "presentment_money": {"amount": shown, "currency_code": presentment_currency},
        },
        "total_discount": "0.00",
        "fulfillment_status": None,
        "requires_shipping": True,
        "taxable": True,
        "vendor": "Dev Store Co.",
        "gift_card": False,
    }


def _money_set(value_cents, currency: str, presentment_cents, presentment_currency: str) -> dict:
    return {
        "shop_money": {"amount": _money(value_cents), "currency_code": currency},
        "presentment_money": {"amount": _money(presentment_cents), "currency_code": presentment_currency},
    }


def order_payload(conn, shop_row, order, *, storefront: str) -> dict:
    """The REST order resource for orders/* webhooks. `conn` is an sqlite3 connection (caller holds the
    lock); `storefront` the shop's storefront URL (DevStore.storefront_url).

    As on Shopify, `currency`, `total_price`, `subtotal_price`, `total_discounts` and every `shop_money`
    are in the shop's currency; the customer's currency is `presentment_currency` with the
    `presentment_money` of each `*_set`."""
    # Reference: https://shopify.dev/docs/api/admin-rest/latest/resources/order
    tz = shop_row["timezone"]
    currency = order["currency"]
    shown = presentment(order)
    p_currency = shown["currency"]
    items = [
        line_item_payload(r, currency, p_currency)
        for r in conn.execute("SELECT * FROM line_items WHERE order_id=? ORDER BY id", (order["id"],))
    ]
    fulfillments = [
        fulfillment_payload(r, items, tz)
        for r in conn.execute("SELECT * FROM fulfillments WHERE order_id=? ORDER BY id", (order["id"],))
    ]
    customer = None
    if order["customer_id"]:
        crow = conn.execute("SELECT * FROM customers WHERE id=?", (order["customer_id"],)).fetchone()
        if crow is not None:
            customer = customer_payload(crow, tz)
    codes = []
    if order["discount_code"]:
        codes.append(
            {
                "code": order["discount_code"],
                "amount": _money(order["discount_cents"]),
                "type": order["discount_type"],
            }
        )
    net = order["total_cents"] - order["refunded_cents"]
    return {
        "id": order["id"],
        "admin_graphql_api_id": gid("Order", order["id"]),
        "name": f"#{order['number']}",
        "order_number": order["number"],
        "number": order["number"] - 1000,
        "email": order["email"],
        "contact_email": order["email"],
        "created_at": rest_time(order["created_at"], tz),
        "updated_at": rest_time(order["updated_at"], tz),
        "processed_at": rest_time(order["created_at"], tz),
        "closed_at": None,
        "cancelled_at": rest_time(order["cancelled_at"], tz),
        "cancel_reason": order["cancel_reason"],
        "test": bool(order["test"]),
        "confirmed": True,
        "currency": currency,
        "presentment_currency": p_currency,
        "total_price": _money(order["total_cents"]),
        "subtotal_price": _money(order["subtotal_cents"] - order["discount_cents"]),
        "total_line_items_price": _money(order["subtotal_cents"]),
        "total_discounts": _money(order["discount_cents"]),
        "total_tax": "0.00",
        "taxes_included": False,
        "current_total_price": _money(net),
        "total_price_set": _money_set(order["total_cents"], currency, shown["total"], p_currency),
        "subtotal_price_set": _money_set(
            order["subtotal_cents"] - order["discount_cents"],
            currency,
            shown["subtotal"] - shown["discount"],
            p_currency,
        ),
        "total_line_items_price_set": _money_set(
            order["subtotal_cents"], currency, shown["subtotal"], p_currency
        ),
        "total_discounts_set": _money_set(order["discount_cents"], currency, shown["discount"], p_currency),
        "current_total_price_set": _money_set(net, currency, shown["total"] - shown["refunded"], p_currency),
        "financial_status": order["financial_status"],
        "fulfillment_status": order["fulfillment_status"],
        "discount_codes": codes,
        "buyer_accepts_marketing": bool(order["buyer_accepts_marketing"]),
        "customer_locale": order["customer_locale"],
        "source_name": order["source"],
        "tags": "",
        "note": None,
        "customer": customer,
        "line_items": items,
        "fulfillments": fulfillments,
        "refunds": [],
        "shipping_lines": [],
        "billing_address": None,
        "shipping_address": None,
        "order_status_url": f"{storefront}/orders/{order['id']}/authenticate",
    }


def bulk_finish_payload(row) -> dict:
    # Reference: https://shopify.dev/docs/api/webhooks?reference=toml#list-of-topics-bulk_operations/finish
    return {
        "admin_graphql_api_id": gid("BulkOperation", row["id"]),
        "completed_at": row["completed_at"],
        "created_at": row["created_at"],
        "error_code": row["error_code"].lower() if row["error_code"] else None,
        "status": row["status"].lower(),
        "type": "query",
    }
