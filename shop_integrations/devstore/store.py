"""The dev store's SQLite storage: one file `devstore.sqlite3` in the --data folder.

Money is stored in integer cents, times as UTC ISO strings "YYYY-MM-DDTHH:MM:SSZ" (they sort as text).
One connection shared by the request threads, serialized by `Store.lock` (SQLite allows one writer anyway);
long readers (bulk exports) open their own connection (`Store.reader()`), which WAL mode lets run beside
writers.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shops (
    id INTEGER PRIMARY KEY, domain TEXT UNIQUE NOT NULL, name TEXT NOT NULL, email TEXT NOT NULL,
    currency TEXT NOT NULL, timezone TEXT NOT NULL, plan TEXT NOT NULL DEFAULT 'basic',
    granted_scope TEXT NOT NULL DEFAULT '', installed INTEGER NOT NULL DEFAULT 0,
    locales TEXT NOT NULL DEFAULT 'en',
    order_number INTEGER NOT NULL DEFAULT 1000, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS oauth_codes (
    code TEXT PRIMARY KEY, shop TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL,
    expires_at REAL NOT NULL, used INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, shop TEXT NOT NULL, client_id TEXT NOT NULL,
    scope TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL, revoked INTEGER NOT NULL DEFAULT 0,
    grant_type TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_shop ON tokens(shop);
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY, shop TEXT NOT NULL, email TEXT, first_name TEXT, last_name TEXT, phone TEXT,
    locale TEXT NOT NULL DEFAULT 'en', tags TEXT NOT NULL DEFAULT '',
    marketing_state TEXT NOT NULL DEFAULT 'NOT_SUBSCRIBED', marketing_updated_at TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS customers_shop ON customers(shop, id);
CREATE INDEX IF NOT EXISTS customers_email ON customers(shop, email);
CREATE INDEX IF NOT EXISTS customers_updated ON customers(shop, updated_at, id);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY, shop TEXT NOT NULL, handle TEXT NOT NULL, title TEXT NOT NULL,
    vendor TEXT NOT NULL, product_type TEXT NOT NULL, price_cents INTEGER NOT NULL, sku TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, UNIQUE(shop, handle));
CREATE TABLE IF NOT EXISTS orders (
    id INTEGER PRIMARY KEY, shop TEXT NOT NULL, number INTEGER NOT NULL, customer_id INTEGER,
    email TEXT, currency TEXT NOT NULL, subtotal_cents INTEGER NOT NULL, discount_cents INTEGER NOT NULL,
    total_cents INTEGER NOT NULL, refunded_cents INTEGER NOT NULL DEFAULT 0,
    financial_status TEXT NOT NULL, fulfillment_status TEXT, cancelled_at TEXT, cancel_reason TEXT,
    test INTEGER NOT NULL DEFAULT 0, customer_locale TEXT, discount_code TEXT, discount_type TEXT,
    buyer_accepts_marketing INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL DEFAULT 'web',
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_shop ON orders(shop, id);
CREATE INDEX IF NOT EXISTS orders_customer ON orders(customer_id);
CREATE INDEX IF NOT EXISTS orders_updated ON orders(shop, updated_at, id);
CREATE TABLE IF NOT EXISTS line_items (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, product_id INTEGER, title TEXT NOT NULL,
    sku TEXT, quantity INTEGER NOT NULL, price_cents INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS line_items_order ON line_items(order_id);
CREATE TABLE IF NOT EXISTS fulfillments (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, shop TEXT NOT NULL, status TEXT NOT NULL,
    shipment_status TEXT, tracking_company TEXT, tracking_number TEXT, tracking_url TEXT,
    estimated_delivery_at TEXT, in_transit_at TEXT, delivered_at TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fulfillments_order ON fulfillments(order_id);
CREATE TABLE IF NOT EXISTS fulfillment_events (
    id INTEGER PRIMARY KEY, fulfillment_id INTEGER NOT NULL, order_id INTEGER NOT NULL, shop TEXT NOT NULL,
    status TEXT NOT NULL, happened_at TEXT NOT NULL, message TEXT, city TEXT, province TEXT, country TEXT,
    estimated_delivery_at TEXT, created_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fulfillment_events_f ON fulfillment_events(fulfillment_id);
CREATE TABLE IF NOT EXISTS discounts (
    id INTEGER PRIMARY KEY, shop TEXT NOT NULL, title TEXT NOT NULL, code TEXT NOT NULL,
    starts_at TEXT NOT NULL, ends_at TEXT, usage_limit INTEGER, once_per_customer INTEGER NOT NULL DEFAULT 0,
    value_type TEXT NOT NULL, value TEXT NOT NULL, min_subtotal_cents INTEGER,
    customer_ids TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS discounts_code ON discounts(shop, code COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS discount_usages (
    discount_id INTEGER NOT NULL, order_id INTEGER NOT NULL, customer_id INTEGER, email TEXT);
CREATE TABLE IF NOT EXISTS idempotency (
    shop TEXT NOT NULL, client_id TEXT NOT NULL, key TEXT NOT NULL, field TEXT NOT NULL,
    result TEXT NOT NULL, PRIMARY KEY (shop, client_id, key, field));
CREATE TABLE IF NOT EXISTS metafields (
    id INTEGER PRIMARY KEY, shop TEXT NOT NULL, owner_id TEXT NOT NULL, namespace TEXT NOT NULL,
    key TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, UNIQUE(shop, owner_id, namespace, key));
CREATE TABLE IF NOT EXISTS webhook_subscriptions (
    id INTEGER PRIMARY KEY, shop TEXT NOT NULL, client_id TEXT NOT NULL, topic TEXT NOT NULL,
    uri TEXT NOT NULL, format TEXT NOT NULL DEFAULT 'JSON', created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, UNIQUE(shop, client_id, topic, uri));
CREATE TABLE IF NOT EXISTS webhook_queue (
    id INTEGER PRIMARY KEY, shop TEXT NOT NULL, client_id TEXT NOT NULL, topic TEXT NOT NULL,
    uri TEXT NOT NULL, body BLOB NOT NULL, webhook_id TEXT NOT NULL, event_id TEXT NOT NULL,
    triggered_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', last_status TEXT, delivered_at REAL);
CREATE INDEX IF NOT EXISTS webhook_queue_pending ON webhook_queue(status, next_at);
CREATE TABLE IF NOT EXISTS bulk_operations (
    id INTEGER PRIMARY KEY, shop TEXT NOT NULL, client_id TEXT NOT NULL, query TEXT NOT NULL,
    status TEXT NOT NULL, error_code TEXT, object_count INTEGER NOT NULL DEFAULT 0,
    root_object_count INTEGER NOT NULL DEFAULT 0, file_size INTEGER, file_name TEXT,
    created_at TEXT NOT NULL, completed_at TEXT);
"""


# Secondary indexes of the seeded tables: a big seed drops them and builds them again afterwards (a
# sorted index build is much cheaper than 100,000s of random B-tree inserts).
BULK_LOAD_INDEXES = [
    line.strip().rstrip(";")
    for line in SCHEMA.splitlines()
    if line.startswith("CREATE INDEX")
    and any(
        f" ON {t}(" in line
        for t in ("customers", "orders", "line_items", "fulfillments", "fulfillment_events")
    )
]


# Columns added after the first release: added to an existing data folder at start (NULL there means "paid
# in the shop's currency"). Orders keep shop money in currency/*_cents (the shop's currency) and what the
# customer paid in presentment_currency/presentment_*_cents.
ADDED_COLUMNS = [
    ("orders", "presentment_currency", "TEXT"),
    ("orders", "presentment_subtotal_cents", "INTEGER"),
    ("orders", "presentment_discount_cents", "INTEGER"),
    ("orders", "presentment_total_cents", "INTEGER"),
    ("line_items", "presentment_price_cents", "INTEGER"),
]


def presentment(order) -> dict:
    """An order's amounts in the customer's currency (cents): currency, subtotal, discount, total,
    refunded (refunds are recorded in shop money and converted in proportion)."""
    if order["presentment_currency"] is None:
        return {
            "currency": order["currency"],
            "subtotal": order["subtotal_cents"],
            "discount": order["discount_cents"],
            "total": order["total_cents"],
            "refunded": order["refunded_cents"],
        }
    total = order["presentment_total_cents"]
    refunded = order["refunded_cents"]
    if refunded and order["total_cents"]:
        refunded = round(refunded * total / order["total_cents"])
        if order["presentment_currency"] in ("JPY", "VND"):
            refunded = round(refunded / 100) * 100
    return {
        "currency": order["presentment_currency"],
        "subtotal": order["presentment_subtotal_cents"],
        "discount": order["presentment_discount_cents"],
        "total": total,
        "refunded": min(refunded, total),
    }


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso() -> str:
    return iso(utcnow())


def parse_time(text: str) -> dt.datetime:
    """Parse an ISO date or datetime (naive = UTC)."""
    text = text.strip().strip("'\"")
    if len(text) == 10:
        text += "T00:00:00"
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value


def cents(amount) -> int:
    """Decimal/str/int money -> integer cents, rounding half up."""
    from decimal import ROUND_HALF_UP, Decimal

    return int((Decimal(str(amount)) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def money(value_cents: int) -> str:
    sign = "-" if value_cents < 0 else ""
    value_cents = abs(int(value_cents))
    return f"{sign}{value_cents // 100}.{value_cents % 100:02d}"


class Store:
    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "bulk").mkdir(exist_ok=True)
        self.path = self.data_dir / "devstore.sqlite3"
        self.lock = threading.RLock()
        self.conn = self._connect()
        with self.lock:
            self.conn.executescript(SCHEMA)
            for table, column, kind in ADDED_COLUMNS:
                have = {r["name"] for r in self.conn.execute(f"PRAGMA table_info({table})")}
                if column not in have:
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A separate connection for long reads (bulk exports); it never blocks the request threads."""
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, serialized with every other use of the shared connection."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def one(self, sql: str, params=()) -> sqlite3.Row | None:
        with self.lock:
            return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, params=()) -> list[sqlite3.Row]:
        with self.lock:
            return self.conn.execute(sql, params).fetchall()

    # settings (control API) ---------------------------------------------------------------------------
    def get_setting(self, key: str, default=None):
        row = self.one("SELECT value FROM settings WHERE key=?", (key,))
        return json.loads(row["value"]) if row else default

    def set_setting(self, key: str, value) -> None:
        with self.tx() as c:
            c.execute(
                "INSERT INTO settings(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key, json.dumps(value)),
            )

    def shop(self, domain: str) -> sqlite3.Row | None:
        return self.one("SELECT * FROM shops WHERE domain=?", (domain,))
