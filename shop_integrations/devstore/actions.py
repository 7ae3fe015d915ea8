"""Store actions behind the control API (/_devstore/shops/{shop}/{action}[/{id}]).

Each action is `handler(ds, shop, obj_id, body) -> JSON-able`; ValueError -> 400, LookupError -> 404.
"""

from __future__ import annotations

import json
import time

from . import signing
from .store import now_iso

ACTIONS: dict[tuple[str, str], object] = {}


def action(name: str, method: str = "POST"):
    def register(fn):
        ACTIONS[(name, method)] = fn
        return fn

    return register


CATALOG = [
    # handle, title, product_type, price
    ("jasmine-green-tea", "Jasmine Green Tea", "Tea", "12.50"),
    ("oolong-reserve", "Oolong Reserve", "Tea", "24.00"),
    ("earl-grey", "Earl Grey", "Tea", "9.90"),
    ("matcha-ceremonial", "Ceremonial Matcha", "Tea", "32.00"),
    ("ceramic-teapot", "Ceramic Teapot", "Teaware", "45.00"),
    ("glass-mug", "Double-wall Glass Mug", "Teaware", "14.00"),
    ("bamboo-whisk", "Bamboo Whisk", "Teaware", "11.00"),
    ("gift-box", "Tasting Gift Box", "Gift", "39.00"),
    ("tea-towel", "Linen Tea Towel", "Home", "8.50"),
    ("travel-tumbler", "Travel Tumbler", "Teaware", "27.00"),
]


def ensure_catalog(ds, shop: str) -> None:
    """Give a new shop its product catalog (idempotent), priced in the shop's currency at its usual price
    points (CATALOG is in US dollars: a THB shop sells the jasmine tea at ฿440, a VND shop at 312,000₫)."""
    from .commerce import price_point, rate
    from .store import cents

    now = now_iso()
    with ds.store.tx() as c:
        currency = c.execute("SELECT currency FROM shops WHERE domain=?", (shop,)).fetchone()["currency"]

        def local(usd: str) -> int:
            return (
                cents(usd) if currency == "USD" else price_point(cents(usd) * rate("USD", currency), currency)
            )

        c.executemany(
            "INSERT OR IGNORE INTO products(shop, handle, title, vendor, product_type, price_cents, sku, "
            "created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?)",
            [
                (shop, h, t, "Dev Store Co.", pt, local(p), h.upper()[:12], now, now)
                for h, t, pt, p in CATALOG
            ],
        )


@action("tokens", "GET")
def list_tokens(ds, shop, _id, body):
    now = time.time()
    return [
        {
            "token": r["token"],
            "kind": r["kind"],
            "scope": r["scope"],
            "grant_type": r["grant_type"],
            "revoked": bool(r["revoked"]),
            "expires_at": r["expires_at"],
            "valid": not r["revoked"] and (r["expires_at"] is None or r["expires_at"] > now),
        }
        for r in ds.store.all("SELECT * FROM tokens WHERE shop=? ORDER BY created_at, rowid", (shop,))
    ]


@action("tokens")
def grant_tokens(ds, shop, _id, body):
    """Issue a token pair directly (tests of the GraphQL API that do not need to go through OAuth)."""
    with ds.store.tx() as c:
        return ds._issue_tokens(
            c,
            shop,
            body.get("scope") or ds.config.scopes,
            expiring=bool(body.get("expiring", True)),
            grant_type="control",
        )


@action("expire_tokens")
def expire_tokens(ds, shop, _id, body):
    """Make every access token of the shop expired now (refresh tokens too if body.refresh)."""
    kinds = ("access", "refresh") if body.get("refresh") else ("access",)
    with ds.store.tx() as c:
        cur = c.execute(
            f"UPDATE tokens SET expires_at=? WHERE shop=? AND kind IN ({','.join('?' * len(kinds))})",  # noqa: S608
            (time.time() - 1, shop, *kinds),
        )
    return {"expired": cur.rowcount}


@action("session_token")
def session_token(ds, shop, _id, body):
    claims = signing.session_token_claims(
        shop=shop,
        client_id=body.get("client_id") or ds.config.api_key,
        user_id=int(body.get("user_id", 1)),
        lifetime=int(body.get("lifetime", 60)),
    )
    claims.update(body.get("claims") or {})
    return {"token": signing.jwt_encode(claims, body.get("secret") or ds.config.api_secret), "claims": claims}


@action("stats", "GET")
def stats(ds, shop, _id, body):
    with ds.stats_lock:
        result = dict(ds.stats[shop])
    store = ds.store
    for name, sql in (
        ("customers", "SELECT count(*) AS n FROM customers WHERE shop=?"),
        ("orders", "SELECT count(*) AS n FROM orders WHERE shop=?"),
        ("webhook_subscriptions", "SELECT count(*) AS n FROM webhook_subscriptions WHERE shop=?"),
        ("discounts", "SELECT count(*) AS n FROM discounts WHERE shop=?"),
        ("tokens_valid", "SELECT count(*) AS n FROM tokens WHERE shop=? AND kind='access' AND revoked=0"),
    ):
        result[name] = store.one(sql, (shop,))["n"]
    for key in (
        "requests",
        "graphql_requests",
        "throttled",
        "tokens_issued",
        "refreshes",
        "token_exchanges",
        "webhook_attempts",
        "webhooks_delivered",
        "webhooks_failed",
        "faults_injected",
    ):
        result.setdefault(key, 0)
    return result


@action("webhooks", "GET")
def webhook_deliveries(ds, shop, _id, body):
    return ds.webhooks.deliveries(shop, body.get("topic"))


@action("subscriptions", "GET")
def subscriptions(ds, shop, _id, body):
    return [
        dict(r) for r in ds.store.all("SELECT * FROM webhook_subscriptions WHERE shop=? ORDER BY id", (shop,))
    ]


@action("uninstall")
def uninstall(ds, shop, _id, body):
    """Uninstall the app: fires app/uninstalled (with the shop body), revokes every token, drops the
    app's webhook subscriptions after the uninstall webhook was queued."""
    from .payloads import shop_payload

    row = ds.store.shop(shop)
    with ds.store.tx() as c:
        queued = ds.webhooks.enqueue(shop, "app/uninstalled", shop_payload(row), conn=c)
        c.execute("UPDATE tokens SET revoked=1 WHERE shop=?", (shop,))
        c.execute("DELETE FROM webhook_subscriptions WHERE shop=?", (shop,))
        c.execute("UPDATE shops SET installed=0 WHERE domain=?", (shop,))
    return {"uninstalled": True, "webhooks_queued": queued}


# store actions -----------------------------------------------------------------------------------------
def _pick(body: dict, *names: str) -> dict:
    return {n: body[n] for n in names if body.get(n) is not None}


@action("seed")
def seed(ds, shop, _id, body):
    from .seed import seed_shop

    return seed_shop(ds, shop, **_pick(body, "customers", "orders", "months", "seed", "webhooks"))


@action("customers")
def create_customer(ds, shop, _id, body):
    from .commerce import create_customer as create

    args = _pick(body, "email", "first_name", "last_name", "locale", "marketing_state", "phone", "tags")
    customer_id = create(ds, shop, **args)
    return customer(ds, shop, customer_id, {})


@action("customer")
def customer(ds, shop, customer_id, body):
    from .payloads import customer_payload

    row = ds.store.one("SELECT * FROM customers WHERE id=? AND shop=?", (customer_id, shop))
    if row is None:
        raise LookupError(f"customer {customer_id} not found")
    return customer_payload(row, ds.store.shop(shop)["timezone"])


@action("orders")
def place_order(ds, shop, _id, body):
    from .commerce import place_order as place

    args = _pick(
        body,
        "email",
        "customer_id",
        "items",
        "discount_code",
        "currency",
        "locale",
        "first_name",
        "last_name",
        "accepts_marketing",
        "paid",
        "test",
        "created_at",
    )
    return place(ds, shop, **args)


@action("order")
def order(ds, shop, order_id, body):
    from .payloads import order_payload

    with ds.store.lock:
        row = ds.store.conn.execute("SELECT * FROM orders WHERE id=? AND shop=?", (order_id, shop)).fetchone()
        if row is None:
            raise LookupError(f"order {order_id} not found")
        return order_payload(ds.store.conn, ds.store.shop(shop), row, storefront=ds.storefront_url(shop))


@action("cancel")
def cancel(ds, shop, order_id, body):
    from .commerce import cancel_order

    return cancel_order(ds, shop, order_id, **_pick(body, "reason"))


@action("refund")
def refund(ds, shop, order_id, body):
    from .commerce import refund_order

    return refund_order(ds, shop, order_id, **_pick(body, "amount"))


@action("fulfill")
def fulfill(ds, shop, order_id, body):
    from .commerce import fulfill_order

    return fulfill_order(
        ds,
        shop,
        order_id,
        **_pick(body, "tracking_company", "tracking_number", "tracking_url", "estimated_delivery_at"),
    )


@action("tracking_event")
def tracking_event(ds, shop, fulfillment_id, body):
    from .commerce import add_tracking_event

    args = _pick(
        body, "status", "message", "city", "province", "country", "happened_at", "estimated_delivery_at"
    )
    if "status" not in args:
        raise ValueError("status is required")
    return add_tracking_event(ds, shop, fulfillment_id, **args)


@action("consent")
def consent(ds, shop, customer_id, body):
    from .commerce import set_consent

    if not body.get("state"):
        raise ValueError("state is required")
    return set_consent(ds, shop, customer_id, state=body["state"])


@action("discounts", "GET")
def discounts(ds, shop, _id, body):
    out = []
    for r in ds.store.all("SELECT * FROM discounts WHERE shop=? ORDER BY id", (shop,)):
        d = dict(r)
        d["customer_ids"] = json.loads(d["customer_ids"])
        d["usage_count"] = ds.store.one(
            "SELECT count(*) AS n FROM discount_usages WHERE discount_id=?", (r["id"],)
        )["n"]
        out.append(d)
    return out


@action("bulk_operations", "GET")
def bulk_operations(ds, shop, _id, body):
    return [dict(r) for r in ds.store.all("SELECT * FROM bulk_operations WHERE shop=? ORDER BY id", (shop,))]
