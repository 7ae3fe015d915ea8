"""Webhook delivery, as Shopify does it: a durable queue (SQLite table webhook_queue), one background
delivery thread, real headers and HMAC, retries with backoff until a 2xx, optional duplicates/reordering.

Settings (control API /_devstore/settings): webhook_retry_delays (seconds before retry 1, 2, ...; after the
last one the delivery is given up), webhook_timeout (seconds), webhook_mode {"duplicate": bool,
"reorder": bool, "reorder_window": seconds}.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid

import requests

from . import signing

log = logging.getLogger("devstore.webhooks")


def topic_enum(topic: str) -> str:
    """ "orders/create" -> "ORDERS_CREATE" (the WebhookSubscriptionTopic enum value)."""
    return topic.upper().replace("/", "_")


class WebhookDispatcher:
    def __init__(self, devstore) -> None:
        self.ds = devstore
        self.store = devstore.store
        self.cond = threading.Condition()
        self.kick = threading.Event()
        self.stopped = False
        self.thread: threading.Thread | None = None
        self.session = requests.Session()

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="devstore-webhooks", daemon=True)
        self.thread.start()

    # Lock order: never take the store lock while holding `self.cond` (enqueue runs inside a store
    # transaction and calls wake()). The delivery thread sleeps on the `kick` event, flushers on `cond`.
    def stop(self) -> None:
        self.stopped = True
        self.kick.set()
        with self.cond:
            self.cond.notify_all()

    def wake(self) -> None:
        self.kick.set()

    def enqueue(self, shop: str, topic: str, payload: dict, *, conn=None) -> int:
        """Queue `payload` for every subscription of `shop` to `topic`; returns how many were queued.
        Pass `conn` when called inside a Store.tx() so the rows commit with the change that caused them."""
        subs = self.store.all(
            "SELECT * FROM webhook_subscriptions WHERE shop=? AND topic=?", (shop, topic_enum(topic))
        )
        if not subs:
            return 0
        mode = self.ds.setting("webhook_mode") or {}
        copies = 2 if mode.get("duplicate") else 1
        due = time.time()
        if mode.get("reorder"):
            # Hold deliveries for a window; everything queued meanwhile joins the same batch, which is then
            # delivered newest first.
            held = self.store.one(
                "SELECT max(next_at) AS t FROM webhook_queue WHERE status='pending' AND attempts=0 "
                "AND next_at>?",
                (due,),
            )["t"]
            due = held or due + float(mode.get("reorder_window", 0.3))
        body = json.dumps(payload).encode()
        event_id = str(uuid.uuid4())
        triggered = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        rows = []
        for sub in subs:
            webhook_id = str(uuid.uuid4())
            for _ in range(copies):
                rows.append(
                    (
                        shop,
                        sub["client_id"],
                        topic,
                        sub["uri"],
                        body,
                        webhook_id,
                        event_id,
                        triggered,
                        due,
                    )
                )
        sql = (
            "INSERT INTO webhook_queue(shop, client_id, topic, uri, body, webhook_id, event_id, "
            "triggered_at, next_at) VALUES(?,?,?,?,?,?,?,?,?)"
        )
        if conn is not None:
            conn.executemany(sql, rows)
        else:
            with self.store.tx() as c:
                c.executemany(sql, rows)
        self.wake()
        return len(rows)

    def pending_count(self) -> int:
        return self.store.one("SELECT count(*) AS n FROM webhook_queue WHERE status='pending'")["n"]

    def flush(self, timeout: float = 30.0) -> dict:
        """Block until no delivery is pending (delivered or given up), or `timeout` seconds."""
        deadline = time.monotonic() + timeout
        self.wake()
        while self.pending_count() and time.monotonic() < deadline:
            with self.cond:
                self.cond.wait(min(0.2, max(0.0, deadline - time.monotonic())))
        counts = {
            r["status"]: r["n"]
            for r in self.store.all("SELECT status, count(*) AS n FROM webhook_queue GROUP BY status")
        }
        return {
            "pending": counts.get("pending", 0),
            "delivered": counts.get("delivered", 0),
            "failed": counts.get("failed", 0),
        }

    def _run(self) -> None:
        while not self.stopped:
            try:
                worked = self._deliver_due()
            except Exception:  # keep the thread alive whatever happens; the row stays pending
                log.exception("webhook delivery loop failed")
                worked = False
            with self.cond:
                self.cond.notify_all()  # flushers re-check the queue
            if not worked and not self.stopped:
                nxt = self.store.one("SELECT min(next_at) AS t FROM webhook_queue WHERE status='pending'")[
                    "t"
                ]
                wait = 1.0 if nxt is None else min(1.0, max(0.0, nxt - time.time()))
                if wait > 0:
                    self.kick.wait(wait)
                self.kick.clear()

    def _deliver_due(self) -> bool:
        mode = self.ds.setting("webhook_mode") or {}
        order = "id DESC" if mode.get("reorder") else "id"
        rows = self.store.all(
            f"SELECT * FROM webhook_queue WHERE status='pending' AND next_at<=? ORDER BY {order} LIMIT 20",  # noqa: S608
            (time.time(),),
        )
        for row in rows:
            self._deliver(row)
        return bool(rows)

    def _deliver(self, row) -> None:
        # Reference: https://shopify.dev/docs/apps/build/webhooks/subscribe/https
        body = bytes(row["body"])
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": row["topic"],
            "X-Shopify-Hmac-Sha256": signing.webhook_hmac(body, self.ds.config.api_secret),
            "X-Shopify-Shop-Domain": row["shop"],
            "X-Shopify-API-Version": "2026-01",
            "X-Shopify-Webhook-Id": row["webhook_id"],
            "X-Shopify-Event-Id": row["event_id"],
            "X-Shopify-Triggered-At": row["triggered_at"],
        }
        try:
            resp = self.session.post(
                row["uri"],
                data=body,
                headers=headers,
                timeout=float(self.ds.setting("webhook_timeout") or 5),
                allow_redirects=False,
            )
            status, ok = str(resp.status_code), 200 <= resp.status_code < 300
        except requests.RequestException as exc:
            status, ok = type(exc).__name__, False
        attempts = row["attempts"] + 1
        self.ds.bump(row["shop"], "webhook_attempts")
        with self.store.tx() as c:
            if ok:
                c.execute(
                    "UPDATE webhook_queue SET status='delivered', attempts=?, last_status=?, delivered_at=? "
                    "WHERE id=?",
                    (attempts, status, time.time(), row["id"]),
                )
                self.ds.bump(row["shop"], "webhooks_delivered")
                return
            delays = list(self.ds.setting("webhook_retry_delays") or [])
            if attempts > len(delays):
                c.execute(
                    "UPDATE webhook_queue SET status='failed', attempts=?, last_status=? WHERE id=?",
                    (attempts, status, row["id"]),
                )
                self.ds.bump(row["shop"], "webhooks_failed")
            else:
                c.execute(
                    "UPDATE webhook_queue SET attempts=?, last_status=?, next_at=? WHERE id=?",
                    (attempts, status, time.time() + float(delays[attempts - 1]), row["id"]),
                )

    def deliveries(self, shop: str, topic: str | None = None) -> list[dict]:
        sql, params = "SELECT * FROM webhook_queue WHERE shop=?", [shop]
        if topic:
            sql, params = sql + " AND topic=?", [*params, topic]
        out = []
        for r in self.store.all(sql + " ORDER BY id", params):
            d = dict(r)
            d["body"] = json.loads(bytes(r["body"]))
            out.append(d)
        return out
