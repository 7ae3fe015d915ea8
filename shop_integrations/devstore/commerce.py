"""What happens in the store: customers, orders (with discount codes that really apply), cancellations,
refunds, fulfilments, tracking events, consent changes. Each change commits with the webhooks it fires
(queued in the same SQLite transaction)."""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets

from .payloads import customer_payload, fulfillment_event_payload, fulfillment_payload, order_payload
from .store import cents, iso, now_iso, parse_time, utcnow

CONSENT_STATES = {"SUBSCRIBED", "UNSUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "INVALID", "REDACTED"}
EVENT_STATUSES = {
    "label_printed",
    "label_purchased",
    "confirmed",
    "carrier_picked_up",
    "in_transit",
    "out_for_delivery",
    "attempted_delivery",
    "delayed",
    "delivered",
    "failure",
    "ready_for_pickup",
    "picked_up",
}
# Fixed, plausible rates: units of each currency per US dollar (rough, for realism only). A shop sells in
# its own currency; an order paid in another one is converted at FX[presentment] / FX[shop].
FX = {
    "USD": 1,
    "EUR": 0.92,
    "GBP": 0.79,
    "PLN": 4.0,
    "THB": 35.0,
    "VND": 25000.0,
    "TWD": 32.0,
    "CAD": 1.36,
    "JPY": 150.0,
}
LOCALE_CURRENCY = {"th": "THB", "vi": "VND", "pl": "PLN", "zh-TW": "TWD"}
# Currencies without minor units (ISO 4217 exponent 0): amounts are whole numbers.
ZERO_DECIMAL = {"JPY", "VND"}
# Price points a merchant would set, in cents of each currency: ฿440 not ฿437.50, 312,000₫ not 312,500₫.
PRICE_STEP = {
    "USD": 10,
    "EUR": 10,
    "GBP": 10,
    "CAD": 10,
    "PLN": 100,
    "THB": 1000,
    "TWD": 1000,
    "JPY": 1000,
    "VND": 100000,
}


def minor_round(value_cents: float, currency: str) -> int:
    """Round an amount (in hundredths) to what the currency can express (whole units for JPY/VND)."""
    unit = 100 if currency in ZERO_DECIMAL else 1
    return int(round(value_cents / unit)) * unit


def rate(from_currency: str, to_currency: str) -> float:
    return FX.get(to_currency, 1) / FX.get(from_currency, 1)


def price_point(value_cents: float, currency: str) -> int:
    """A converted price rounded to the currency's usual price points (never zero)."""
    step = PRICE_STEP.get(currency, 100 if currency in ZERO_DECIMAL else 1)
    return max(step, int(round(value_cents / step)) * step)


class DiscountRefused(ValueError):
    """The code exists or not, but cannot apply to this order (the message says why, as checkout does)."""


def _shop(conn, shop: str):
    return conn.execute("SELECT * FROM shops WHERE domain=?", (shop,)).fetchone()


def _fire(ds, conn, shop_row, topic: str, payload: dict) -> None:
    ds.webhooks.enqueue(shop_row["domain"], topic, payload, conn=conn)


def create_customer(
    ds,
    shop: str,
    *,
    email: str,
    first_name=None,
    last_name=None,
    locale="en",
    marketing_state="NOT_SUBSCRIBED",
    phone=None,
    tags="",
    conn=None,
) -> int:
    if marketing_state not in CONSENT_STATES:
        raise ValueError(f"marketing_state must be one of {sorted(CONSENT_STATES)}")
    if not email or "@" not in email:
        raise ValueError("a valid email is required")

    def run(c):
        if c.execute("SELECT 1 FROM customers WHERE shop=? AND email=?", (shop, email.lower())).fetchone():
            raise ValueError(f"Email {email} has already been taken")
        now = now_iso()
        cur = c.execute(
            "INSERT INTO customers(shop, email, first_name, last_name, phone, locale, tags, marketing_state, "
            "marketing_updated_at, created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            (shop, email.lower(), first_name, last_name, phone, locale, tags, marketing_state, now, now, now),
        )
        shop_row = _shop(c, shop)
        row = c.execute("SELECT * FROM customers WHERE id=?", (cur.lastrowid,)).fetchone()
        _fire(ds, c, shop_row, "customers/create", customer_payload(row, shop_row["timezone"]))
        return cur.lastrowid

    if conn is not None:
        return run(conn)
    with ds.store.tx() as c:
        return run(c)


def check_discount(
    conn,
    shop: str,
    code: str,
    *,
    customer_id: int | None,
    email: str | None,
    subtotal_cents: int,
    at: str,
    check_customer: bool = True,
) -> tuple:
    """The discount row for `code` and the amount it takes off, or DiscountRefused with the reason."""
    d = conn.execute(
        "SELECT * FROM discounts WHERE shop=? AND code=? COLLATE NOCASE", (shop, code)
    ).fetchone()
    if d is None:
        raise DiscountRefused(f"Discount code {code} is not valid")
    if d["starts_at"] > at:
        raise DiscountRefused(f"Discount code {code} is not active yet")
    if d["ends_at"] and d["ends_at"] <= at:
        raise DiscountRefused(f"Discount code {code} has expired")
    used = conn.execute("SELECT count(*) FROM discount_usages WHERE discount_id=?", (d["id"],)).fetchone()[0]
    if d["usage_limit"] is not None and used >= d["usage_limit"]:
        raise DiscountRefused(f"Discount code {code} has reached its usage limit")
    allowed = json.loads(d["customer_ids"])
    if check_customer and allowed and customer_id not in allowed:
        raise DiscountRefused(f"Discount code {code} is not available to this customer")
    if check_customer and d["once_per_customer"]:
        already = conn.execute(
            "SELECT 1 FROM discount_usages WHERE discount_id=? AND (customer_id=? OR email=?)",
            (d["id"], customer_id, (email or "").lower()),
        ).fetchone()
        if already:
            raise DiscountRefused(f"Discount code {code} was already used by this customer")
    if d["min_subtotal_cents"] is not None and subtotal_cents < d["min_subtotal_cents"]:
        raise DiscountRefused(f"Discount code {code} needs a minimum subtotal")
    if d["value_type"] == "percentage":
        currency = conn.execute("SELECT currency FROM shops WHERE domain=?", (shop,)).fetchone()[0]
        amount = minor_round(subtotal_cents * float(d["value"]), currency)
    else:
        amount = min(subtotal_cents, cents(d["value"]))
    return d, amount


def place_order(
    ds,
    shop: str,
    *,
    email=None,
    customer_id=None,
    items=None,
    discount_code=None,
    currency=None,
    locale=None,
    first_name=None,
    last_name=None,
    accepts_marketing=None,
    paid=True,
    test=False,
    created_at=None,
    source="web",
) -> dict:
    """Place an order as checkout does; returns its REST payload. Fires customers/create (new buyer) or
    customers/update, orders/create and orders/paid (when paid).

    `currency` is the customer's (presentment) currency, by default their locale's. Shop money (REST
    `currency`, `total_price`..., GraphQL `currencyCode`, `shopMoney`) is always in the shop's currency;
    what the customer paid is in `presentment_currency` / `presentment_money` / `presentmentMoney`."""
    with ds.store.tx() as c:
        shop_row = _shop(c, shop)
        customer = None
        if customer_id is not None:
            customer = c.execute(
                "SELECT * FROM customers WHERE id=? AND shop=?", (customer_id, shop)
            ).fetchone()
            if customer is None:
                raise LookupError(f"customer {customer_id} not found")
        elif email:
            customer = c.execute(
                "SELECT * FROM customers WHERE shop=? AND email=?", (shop, email.lower())
            ).fetchone()
            if customer is None:
                state = "SUBSCRIBED" if accepts_marketing else "NOT_SUBSCRIBED"
                new_id = create_customer(
                    ds,
                    shop,
                    email=email,
                    first_name=first_name,
                    last_name=last_name,
                    locale=locale or "en",
                    marketing_state=state,
                    conn=c,
                )
                customer = c.execute("SELECT * FROM customers WHERE id=?", (new_id,)).fetchone()
        else:
            raise ValueError("email or customer_id is required")
        locale = locale or customer["locale"]
        currency = currency or LOCALE_CURRENCY.get(locale) or shop_row["currency"]
        if currency not in FX:
            raise ValueError(f"unsupported currency {currency}; use one of {sorted(FX)}")
        shop_currency = shop_row["currency"]
        fx = rate(shop_currency, currency)
        products = {p["handle"]: p for p in c.execute("SELECT * FROM products WHERE shop=?", (shop,))}
        if not items:
            items = [{"handle": random.choice(sorted(products)), "quantity": 1}]
        lines = []
        for item in items:
            product = products.get(item.get("handle"))
            if product is None:
                raise ValueError(f"unknown product handle {item.get('handle')!r}")
            qty = int(item.get("quantity", 1))
            if qty < 1:
                raise ValueError("quantity must be at least 1")
            # Shop money is the catalog price (shop currency); the customer sees it converted at the
            # market's price points.
            shown = (
                product["price_cents"]
                if currency == shop_currency
                else price_point(product["price_cents"] * fx, currency)
            )
            lines.append((product, qty, product["price_cents"], shown))
        subtotal = sum(qty * price for _, qty, price, _ in lines)
        p_subtotal = sum(qty * shown for _, qty, _, shown in lines)
        at = iso(parse_time(created_at)) if created_at else now_iso()
        discount, discount_cents, discount_type = None, 0, None
        if discount_code:
            discount, discount_cents = check_discount(
                c,
                shop,
                discount_code,
                customer_id=customer["id"],
                email=customer["email"],
                subtotal_cents=subtotal,
                at=at,
            )
            discount_type = "percentage" if discount["value_type"] == "percentage" else "fixed_amount"
            discount_code = discount["code"]
        p_discount = 0
        if discount_cents:
            p_discount = min(
                p_subtotal,
                minor_round(p_subtotal * discount_cents / subtotal, currency) if subtotal else 0,
            )
        number = c.execute(
            "UPDATE shops SET order_number=order_number+1 WHERE domain=? RETURNING order_number", (shop,)
        ).fetchone()[0]
        marketing = (
            accepts_marketing
            if accepts_marketing is not None
            else customer["marketing_state"] == "SUBSCRIBED"
        )
        cur = c.execute(
            "INSERT INTO orders(shop, number, customer_id, email, currency, subtotal_cents, discount_cents, "
            "total_cents, financial_status, fulfillment_status, test, customer_locale, discount_code, "
            "discount_type, buyer_accepts_marketing, source, created_at, updated_at, presentment_currency, "
            "presentment_subtotal_cents, presentment_discount_cents, presentment_total_cents) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                shop,
                number,
                customer["id"],
                customer["email"],
                shop_currency,
                subtotal,
                discount_cents,
                subtotal - discount_cents,
                "paid" if paid else "pending",
                None,
                int(bool(test)),
                locale,
                discount_code,
                discount_type,
                int(bool(marketing)),
                source,
                at,
                at,
                currency,
                p_subtotal,
                p_discount,
                p_subtotal - p_discount,
            ),
        )
        order_id = cur.lastrowid
        c.executemany(
            "INSERT INTO line_items(order_id, product_id, title, sku, quantity, price_cents, "
            "presentment_price_cents) VALUES(?,?,?,?,?,?,?)",
            [(order_id, p["id"], p["title"], p["sku"], qty, price, shown) for p, qty, price, shown in lines],
        )
        if discount is not None:
            c.execute(
                "INSERT INTO discount_usages(discount_id, order_id, customer_id, email) VALUES(?,?,?,?)",
                (discount["id"], order_id, customer["id"], customer["email"]),
            )
        c.execute("UPDATE customers SET updated_at=? WHERE id=?", (now_iso(), customer["id"]))
        order = c.execute("SELECT * FROM orders WHERE id=?", (order_id,)).fetchone()
        payload = order_payload(c, shop_row, order, storefront=ds.storefront_url(shop_row["domain"]))
        crow = c.execute("SELECT * FROM customers WHERE id=?", (customer["id"],)).fetchone()
        _fire(ds, c, shop_row, "customers/update", customer_payload(crow, shop_row["timezone"]))
        _fire(ds, c, shop_row, "orders/create", payload)
        if paid:
            _fire(ds, c, shop_row, "orders/paid", payload)
        return payload


def _order(c, shop: str, order_id: int):
    order = c.execute("SELECT * FROM orders WHERE id=? AND shop=?", (order_id, shop)).fetchone()
    if order is None:
        raise LookupError(f"order {order_id} not found")
    return order


def _touch_order(ds, c, shop_row, order_id: int, topics: list[str]) -> dict:
    order = c.execute("SELECT * FROM orders WHERE id=?", (order_id,)).fetchone()
    payload = order_payload(c, shop_row, order, storefront=ds.storefront_url(shop_row["domain"]))
    for topic in topics:
        _fire(ds, c, shop_row, topic, payload)
    return payload


def cancel_order(ds, shop: str, order_id: int, *, reason: str = "customer") -> dict:
    reason = reason.lower()
    if reason not in ("customer", "declined", "fraud", "inventory", "other", "staff"):
        raise ValueError("reason must be customer, declined, fraud, inventory, other or staff")
    with ds.store.tx() as c:
        shop_row = _shop(c, shop)
        order = _order(c, shop, order_id)
        if order["cancelled_at"]:
            raise ValueError("order is already cancelled")
        status = "refunded" if order["financial_status"] in ("paid", "partially_refunded") else "voided"
        refunded = order["total_cents"] if status == "refunded" else order["refunded_cents"]
        now = now_iso()
        c.execute(
            "UPDATE orders SET cancelled_at=?, cancel_reason=?, financial_status=?, "
            "refunded_cents=?, updated_at=? "
            "WHERE id=?",
            (now, reason, status, refunded, now, order_id),
        )
        return _touch_order(ds, c, shop_row, order_id, ["orders/cancelled", "orders/updated"])


def refund_order(ds, shop: str, order_id: int, *, amount=None) -> dict:
    with ds.store.tx() as c:
        shop_row = _shop(c, shop)
        order = _order(c, shop, order_id)
        left = order["total_cents"] - order["refunded_cents"]
        value = left if amount is None else cents(amount)
        if value != minor_round(value, order["currency"]):
            raise ValueError(f"{order['currency']} amounts have no decimals")
        if value <= 0 or value > left:
            raise ValueError(f"refund amount must be between 0.01 and {left / 100:.2f}")
        refunded = order["refunded_cents"] + value
        status = "refunded" if refunded >= order["total_cents"] else "partially_refunded"
        c.execute(
            "UPDATE orders SET refunded_cents=?, financial_status=?, updated_at=? WHERE id=?",
            (refunded, status, now_iso(), order_id),
        )
        return _touch_order(ds, c, shop_row, order_id, ["orders/updated"])


def fulfill_order(
    ds,
    shop: str,
    order_id: int,
    *,
    tracking_company="UPS",
    tracking_number=None,
    tracking_url=None,
    estimated_delivery_at=None,
) -> dict:
    """Fulfil every line of the order; returns {"fulfillment": REST fulfillment, "order": REST order}."""
    with ds.store.tx() as c:
        shop_row = _shop(c, shop)
        order = _order(c, shop, order_id)
        if order["cancelled_at"]:
            raise ValueError("a cancelled order cannot be fulfilled")
        number = tracking_number or f"1Z{secrets.token_hex(8).upper()}"
        url = tracking_url or f"https://tracking.devstore.test/{tracking_company.lower()}/{number}"
        eta = iso(parse_time(estimated_delivery_at)) if estimated_delivery_at else None
        now = now_iso()
        cur = c.execute(
            "INSERT INTO fulfillments(order_id, shop, status, shipment_status, tracking_company, "
            "tracking_number, "
            "tracking_url, estimated_delivery_at, created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?)",
            (order_id, shop, "success", None, tracking_company, number, url, eta, now, now),
        )
        c.execute(
            "UPDATE orders SET fulfillment_status='fulfilled', updated_at=? WHERE id=?", (now, order_id)
        )
        payload = _touch_order(ds, c, shop_row, order_id, ["orders/updated", "orders/fulfilled"])
        fulfillment = next(f for f in payload["fulfillments"] if f["id"] == cur.lastrowid)
        _fire(ds, c, shop_row, "fulfillments/create", fulfillment)
        return {"fulfillment": fulfillment, "order": payload}


def add_tracking_event(
    ds,
    shop: str,
    fulfillment_id: int,
    *,
    status: str,
    message=None,
    city=None,
    province=None,
    country=None,
    happened_at=None,
    estimated_delivery_at=None,
) -> dict:
    """A carrier tracking event; updates the fulfilment's shipment_status (and delivered/in-transit times).
    Fires fulfillment_events/create and fulfillments/update. Returns {"event", "fulfillment"}."""
    status = status.lower()
    if status not in EVENT_STATUSES:
        raise ValueError(f"status must be one of {sorted(EVENT_STATUSES)}")
    with ds.store.tx() as c:
        shop_row = _shop(c, shop)
        f = c.execute("SELECT * FROM fulfillments WHERE id=? AND shop=?", (fulfillment_id, shop)).fetchone()
        if f is None:
            raise LookupError(f"fulfillment {fulfillment_id} not found")
        now = now_iso()
        happened = iso(parse_time(happened_at)) if happened_at else now
        eta = iso(parse_time(estimated_delivery_at)) if estimated_delivery_at else None
        cur = c.execute(
            "INSERT INTO fulfillment_events(fulfillment_id, order_id, shop, status, happened_at, "
            "message, city, "
            "province, country, estimated_delivery_at, created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            (
                fulfillment_id,
                f["order_id"],
                shop,
                status,
                happened,
                message,
                city,
                province,
                country,
                eta,
                now,
            ),
        )
        c.execute(
            "UPDATE fulfillments SET shipment_status=?, updated_at=?, "
            "estimated_delivery_at=coalesce(?, estimated_delivery_at), "
            "delivered_at=CASE WHEN ?='delivered' THEN ? ELSE delivered_at END, "
            "in_transit_at=CASE WHEN ?='in_transit' AND in_transit_at IS NULL THEN ? ELSE in_transit_at END "
            "WHERE id=?",
            (status, now, eta, status, happened, status, happened, fulfillment_id),
        )
        c.execute("UPDATE orders SET updated_at=? WHERE id=?", (now, f["order_id"]))
        event = c.execute("SELECT * FROM fulfillment_events WHERE id=?", (cur.lastrowid,)).fetchone()
        event_payload = fulfillment_event_payload(event, shop_row["id"], shop_row["timezone"])
        f = c.execute("SELECT * FROM fulfillments WHERE id=?", (fulfillment_id,)).fetchone()
        order = c.execute("SELECT * FROM orders WHERE id=?", (f["order_id"],)).fetchone()
        items = order_payload(c, shop_row, order, storefront=ds.storefront_url(shop_row["domain"]))[
            "line_items"
        ]
        f_payload = fulfillment_payload(f, items, shop_row["timezone"])
        _fire(ds, c, shop_row, "fulfillment_events/create", event_payload)
        _fire(ds, c, shop_row, "fulfillments/update", f_payload)
        return {"event": event_payload, "fulfillment": f_payload}


def set_consent(ds, shop: str, customer_id: int, *, state: str, conn=None) -> dict:
    state = state.upper()
    if state not in CONSENT_STATES:
        raise ValueError(f"state must be one of {sorted(CONSENT_STATES)}")

    def run(c):
        shop_row = _shop(c, shop)
        row = c.execute("SELECT * FROM customers WHERE id=? AND shop=?", (customer_id, shop)).fetchone()
        if row is None:
            raise LookupError(f"customer {customer_id} not found")
        now = now_iso()
        c.execute(
            "UPDATE customers SET marketing_state=?, marketing_updated_at=?, updated_at=? WHERE id=?",
            (state, now, now, customer_id),
        )
        row = c.execute("SELECT * FROM customers WHERE id=?", (customer_id,)).fetchone()
        payload = customer_payload(row, shop_row["timezone"])
        _fire(ds, c, shop_row, "customers/update", payload)
        return payload

    if conn is not None:
        return run(conn)
    with ds.store.tx() as c:
        return run(c)


def days_ago(days: float) -> dt.datetime:
    return utcnow() - dt.timedelta(days=days)
