"""Seed a shop with realistic history: customers in several locales paying in several currencies (shop
money always in the shop's currency, the customer's in the presentment columns), repeat buyers
(a few customers place many orders), varied baskets, cancellations, refunds, fulfilments with tracking
events, spread over a span of months. Rows are generated in memory and written with executemany in one
transaction (100,000 orders take seconds). No webhooks by default: history reaches the app by bulk export.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random

from .commerce import LOCALE_CURRENCY, minor_round, price_point, rate
from .store import BULK_LOAD_INDEXES, utcnow

NAMES = {
    "en": (
        ["Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Mia", "Lucas", "Grace", "Henry"],
        ["Smith", "Johnson", "Brown", "Taylor", "Walker", "Clark", "Lewis", "Hall", "Young", "King"],
    ),
    "th": (
        ["สมชาย", "สมหญิง", "อนันต์", "ปราณี", "วิชัย", "มาลี", "ธนา", "กมล"],
        ["ใจดี", "สุขสวัสดิ์", "ศรีสุข", "วงศ์ไทย", "ทองดี", "แก้วมณี"],
    ),
    "vi": (
        ["Anh", "Bảo", "Châu", "Dũng", "Hà", "Hùng", "Lan", "Minh", "Ngọc", "Trang"],
        ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Vũ", "Đặng"],
    ),
    "pl": (
        ["Anna", "Piotr", "Katarzyna", "Tomasz", "Małgorzata", "Paweł", "Agnieszka", "Łukasz"],
        ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kamińska", "Lewandowski", "Zieliński"],
    ),
    "zh-TW": (
        ["怡君", "志明", "淑芬", "家豪", "雅婷", "俊傑", "美玲", "建宏"],
        ["陳", "林", "黃", "張", "李", "王", "吳", "劉"],
    ),
}
ASCII = {"th": "somchai", "vi": "nguyen", "pl": "kowalski", "zh-TW": "chen"}
LOCALE_WEIGHTS = [("en", 50), ("th", 14), ("vi", 10), ("pl", 12), ("zh-TW", 14)]
CONSENT_WEIGHTS = [("SUBSCRIBED", 55), ("NOT_SUBSCRIBED", 30), ("UNSUBSCRIBED", 12), ("PENDING", 3)]
CARRIERS = [
    ("UPS", "https://www.ups.com/track?tracknum={}"),
    ("DHL Express", "https://www.dhl.com/track?id={}"),
    ("Thailand Post", "https://track.thailandpost.co.th/?trackNumber={}"),
    ("InPost", "https://inpost.pl/sledzenie-przesylek?number={}"),
]
CITIES = [("Bangkok", "TH"), ("Hanoi", "VN"), ("Warsaw", "PL"), ("Taipei", "TW"), ("Chicago", "US")]


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DAYS: dict[int, str] = {}


def fiso(ts: int) -> str:
    """Epoch seconds -> "YYYY-MM-DDTHH:MM:SSZ", ~10x faster than strftime (it matters at 100k orders)."""
    day, sec = divmod(int(ts), 86400)
    prefix = _DAYS.get(day)
    if prefix is None:
        prefix = _DAYS[day] = (EPOCH + dt.timedelta(days=day)).strftime("%Y-%m-%d")
    hours, rest = divmod(sec, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{prefix}T{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


def seed_shop(
    ds,
    shop: str,
    *,
    customers: int = 50,
    orders: int = 200,
    months: int = 12,
    seed: int = 1,
    webhooks: bool = False,
) -> dict:
    if customers < 1 or orders < 0 or months < 1:
        raise ValueError("customers >= 1, orders >= 0 and months >= 1 are required")
    if customers > 1_000_000 or orders > 2_000_000:
        raise ValueError("at most 1,000,000 customers and 2,000,000 orders")
    if webhooks and orders > 1000:
        raise ValueError("webhooks=True is for small seeds (at most 1000 orders)")
    rng = random.Random(seed)
    now = int(utcnow().timestamp())
    span = 86400 * 30 * months
    with ds.store.tx() as c:
        shop_row = c.execute("SELECT * FROM shops WHERE domain=?", (shop,)).fetchone()
        products = c.execute("SELECT * FROM products WHERE shop=? ORDER BY id", (shop,)).fetchall()

        def next_id(table):
            return (c.execute(f"SELECT max(id) FROM {table}").fetchone()[0] or 0) + 1  # noqa: S608

        cid0, oid0, lid0, fid0, eid0 = (
            next_id(t) for t in ("customers", "orders", "line_items", "fulfillments", "fulfillment_events")
        )
        serial = c.execute("SELECT count(*) FROM customers WHERE shop=?", (shop,)).fetchone()[0]

        # customers --------------------------------------------------------------------------------------
        cust_rows, cust_meta, created_ts = [], [], {}
        for i in range(customers):
            locale = _weighted(rng, LOCALE_WEIGHTS)
            firsts, lasts = NAMES[locale]
            first, last = rng.choice(firsts), rng.choice(lasts)
            ascii_name = first.lower() if locale == "en" else ASCII[locale]
            email = f"{ascii_name}.{serial + i + 1}@example.com"
            created = now - int(span * (rng.random() ** 0.7))
            state = _weighted(rng, CONSENT_WEIGHTS)
            cust_meta.append((cid0 + i, email, locale, created))
            created_ts[cid0 + i] = created
            cust_rows.append(
                [
                    cid0 + i,
                    shop,
                    email,
                    first,
                    last,
                    None,
                    locale,
                    "",
                    state,
                    fiso(created),
                    fiso(created),
                    fiso(created),
                ]
            )
        # Repeat buyers: customer k is picked with weight 1/(k+1)^0.9 (a long tail of one-time buyers).
        cum = list(itertools.accumulate(1 / (k + 1) ** 0.9 for k in range(customers)))
        total_w = cum[-1]

        # orders -----------------------------------------------------------------------------------------
        drafts = []
        for _ in range(orders):
            k = min(bisect.bisect_left(cum, rng.random() * total_w), customers - 1)
            cust_id, email, locale, c_created = cust_meta[k]
            created = c_created + int((now - c_created) * rng.random())
            drafts.append((created, cust_id, email, locale))
        drafts.sort(key=lambda d: d[0])
        order_rows, item_rows, ful_rows, event_rows = [], [], [], []
        last_order_at: dict[int, int] = {}
        number = shop_row["order_number"]
        lid, fid, eid = lid0, fid0, eid0
        shop_currency = shop_row["currency"]
        # The customer's price of each product in each currency (market price points); shop money is the
        # catalog price in the shop's currency.
        shown_price: dict[tuple[int, str], int] = {}
        for n, (created, cust_id, email, locale) in enumerate(drafts):
            oid = oid0 + n
            number += 1
            currency = LOCALE_CURRENCY.get(locale, shop_currency)
            basket = rng.sample(products, k=min(len(products), rng.choice((1, 1, 1, 2, 2, 3, 4))))
            subtotal = p_subtotal = 0
            for p in basket:
                qty = rng.choice((1, 1, 1, 1, 2, 3))
                price = p["price_cents"]
                shown = shown_price.get((p["id"], currency))
                if shown is None:
                    shown = shown_price[p["id"], currency] = (
                        price
                        if currency == shop_currency
                        else price_point(price * rate(shop_currency, currency), currency)
                    )
                subtotal += qty * price
                p_subtotal += qty * shown
                item_rows.append((lid, oid, p["id"], p["title"], p["sku"], qty, price, shown))
                lid += 1
            code, discount, p_discount, dtype = None, 0, 0, None
            if rng.random() < 0.1:
                code, dtype = "WELCOME10", "percentage"
                discount = minor_round(subtotal / 10, shop_currency)
                p_discount = minor_round(p_subtotal / 10, currency)
            total = subtotal - discount
            roll = rng.random()
            cancelled_at = cancel_reason = None
            financial, refunded = "paid", 0
            if roll < 0.03:
                cancelled_at, cancel_reason = created + 3600 * rng.randint(1, 48), "customer"
                financial, refunded = "refunded", total
            elif roll < 0.07:
                financial, refunded = "partially_refunded", minor_round(total / 3, shop_currency)
            age_days = (now - created) / 86400
            fulfillment_status = None
            updated = created
            if cancelled_at is None and age_days > 1:
                fulfillment_status = "fulfilled"
                carrier, url = rng.choice(CARRIERS)
                tracking = f"DS{oid:010d}"
                shipped = created + 3600 * rng.randint(4, 30)
                eta = shipped + 86400 * rng.randint(2, 6)
                delivered = age_days > 7 and rng.random() < 0.97
                status = "delivered" if delivered else ("in_transit" if age_days > 2 else "confirmed")
                in_transit_at = shipped + 6 * 3600
                city, country = rng.choice(CITIES)
                ful_rows.append(
                    (
                        fid,
                        oid,
                        shop,
                        "success",
                        status,
                        carrier,
                        tracking,
                        url.format(tracking),
                        fiso(eta),
                        fiso(in_transit_at) if status != "confirmed" else None,
                        fiso(eta) if delivered else None,
                        fiso(shipped),
                        fiso(eta if delivered else shipped),
                    )
                )
                if status != "confirmed":
                    event_rows.append(
                        (
                            eid,
                            fid,
                            oid,
                            shop,
                            "in_transit",
                            fiso(in_transit_at),
                            "Departed facility",
                            city,
                            None,
                            country,
                            fiso(eta),
                            fiso(in_transit_at),
                        )
                    )
                    eid += 1
                if delivered:
                    event_rows.append(
                        (
                            eid,
                            fid,
                            oid,
                            shop,
                            "delivered",
                            fiso(eta),
                            "Delivered",
                            city,
                            None,
                            country,
                            None,
                            fiso(eta),
                        )
                    )
                    eid += 1
                    updated = eta
                else:
                    updated = shipped
                fid += 1
            if cancelled_at is not None:
                updated = cancelled_at
            updated = min(updated, now)
            marketing = 1 if rng.random() < 0.6 else 0
            order_rows.append(
                (
                    oid,
                    shop,
                    number,
                    cust_id,
                    email,
                    shop_currency,
                    subtotal,
                    discount,
                    total,
                    refunded,
                    financial,
                    fulfillment_status,
                    fiso(cancelled_at) if cancelled_at else None,
                    cancel_reason,
                    0,
                    locale,
                    code,
                    dtype,
                    marketing,
                    "web",
                    fiso(created),
                    fiso(updated),
                    currency,
                    p_subtotal,
                    p_discount,
                    p_subtotal - p_discount,
                )
            )
            last_order_at[cust_id] = max(last_order_at.get(cust_id, created), created)
        for row in cust_rows:
            if row[0] in last_order_at:
                row[11] = fiso(max(last_order_at[row[0]], created_ts[row[0]]))
        bulk_load = orders >= 20_000
        if bulk_load:
            for statement in BULK_LOAD_INDEXES:
                c.execute("DROP INDEX IF EXISTS " + statement.split(" EXISTS ")[1].split(" ON ")[0])
        c.executemany(
            "INSERT INTO customers(id, shop, email, first_name, last_name, phone, locale, tags, "
            "marketing_state, "
            "marketing_updated_at, created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            cust_rows,
        )
        c.executemany(
            "INSERT INTO orders(id, shop, number, customer_id, email, currency, subtotal_cents, "
            "discount_cents, "
            "total_cents, refunded_cents, financial_status, fulfillment_status, cancelled_at, "
            "cancel_reason, test, "
            "customer_locale, discount_code, discount_type, buyer_accepts_marketing, source, "
            "created_at, updated_at, presentment_currency, presentment_subtotal_cents, "
            "presentment_discount_cents, presentment_total_cents) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            order_rows,
        )
        c.executemany(
            "INSERT INTO line_items(id, order_id, product_id, title, sku, quantity, price_cents, "
            "presentment_price_cents) VALUES(?,?,?,?,?,?,?,?)",
            item_rows,
        )
        c.executemany(
            "INSERT INTO fulfillments(id, order_id, shop, status, shipment_status, "
            "tracking_company, tracking_number, "
            "tracking_url, estimated_delivery_at, in_transit_at, delivered_at, created_at, updated_at) "
            "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
            ful_rows,
        )
        c.executemany(
            "INSERT INTO fulfillment_events(id, fulfillment_id, order_id, shop, status, "
            "happened_at, message, city, "
            "province, country, estimated_delivery_at, created_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
            event_rows,
        )
        if bulk_load:
            for statement in BULK_LOAD_INDEXES:
                c.execute(statement)
        c.execute("UPDATE shops SET order_number=? WHERE domain=?", (number, shop))
        if webhooks:
            from .payloads import order_payload

            for row in c.execute(
                "SELECT * FROM orders WHERE shop=? AND id>=? ORDER BY id", (shop, oid0)
            ).fetchall():
                ds.webhooks.enqueue(
                    shop,
                    "orders/create",
                    order_payload(c, shop_row, row, storefront=ds.storefront_url(shop)),
                    conn=c,
                )
    return {
        "customers": len(cust_rows),
        "orders": len(order_rows),
        "line_items": len(item_rows),
        "fulfillments": len(ful_rows),
        "fulfillment_events": len(event_rows),
        "first_order_id": oid0 if order_rows else None,
        "first_customer_id": cid0,
    }
