"""Redis stream buffer for commerce webhook deliveries: the request appends, a worker drains into PostgreSQL.

Why: storing a delivery row in the request costs about 0.5 ms of PostgreSQL CPU and 0.4 ms of Python CPU
(bench/webhook_ingress.py); an XADD to Redis costs a small fraction of that. So, when the Celery broker is
Redis (and settings.INGRESS_REDIS_BUFFER is on, the default), a delivery of a commerce topic (orders/*,
customers/create, fulfillments/* ...) is verified (HMAC, headers, strict JSON object, known shop) in the
request and then appended to the stream `STREAM` in one round trip, together with `SET DRAIN_FLAG NX`; the
request that sets the flag also queues one `drain_webhook_buffer` task. Lifecycle and compliance topics
(app/uninstalled, customers/data_request, customers/redact, shop/redact) never use the buffer: they are
stored in PostgreSQL with a synchronous commit before the answer, as before.

The drain (`drain`, run by the `drain_webhook_buffer` task and by the periodic sweep) reads the stream through
a consumer group (XREADGROUP) in batches, stores each batch with ONE multi-row
`INSERT ... ON CONFLICT (webhook_id) DO NOTHING` (synchronous commit), queues the processing of the new rows,
and only then acknowledges and deletes the entries (XACK + XDEL). So:

- the webhook id stays unique: a redelivery, or an entry drained twice, hits the unique constraint and is
  dropped; only new rows are processed;
- a drainer that dies between reading and acknowledging leaves its entries in the group's pending list; the
  next drain claims those idle for `CLAIM_IDLE_MS` (XAUTOCLAIM), stores them (duplicates dropped) and queues
  the processing of any of their rows still pending (processing is idempotent);
- while Redis is unreachable, the request stores the delivery in PostgreSQL directly (the synchronous path);
- a delivery for a shop deleted between the answer and the drain is dropped (we hold nothing for it), as
  in the request.

The trade-off (documented in README.md, "Webhook ingress"): between the 200 answer and the drain (normally
milliseconds) a commerce delivery exists only in Redis. It survives a Redis restart only as far as Redis
persistence goes (docker-compose runs Redis with `appendonly yes`, fsync every second: a host crash can
lose the last second); with persistence off, a Redis crash loses the undrained entries. Shopify does not
redeliver what was answered 200, so such a loss is repaired only by the periodic reconciliation of the
sync domain, the same repair that covers the asynchronous commit (settings.INGRESS_ASYNC_COMMIT) of the
synchronous path.
Reference: https://redis.io/docs/latest/develop/data-types/streams/ (consumer groups, XAUTOCLAIM)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

STREAM = "boomerang:ingress:deliveries"
# Entries that can never be stored (a bug, not an outage): kept here for a person to look at.
DEAD_LETTERS = "boomerang:ingress:deliveries:dead"
GROUP = "drain"
# Set (NX) by the request that finds no drain queued; deleted by the drain before it reads, so an entry
# appended after the drain's last read always queues a new drain. Expires in case the queued task is lost.
DRAIN_FLAG = "boomerang:ingress:drain-queued"
DRAIN_FLAG_TTL_MS = 10_000
BATCH_SIZE = 500
MAX_BATCHES = 40  # per drain run; a longer backlog is left to the next run, queued at once
CLAIM_IDLE_MS = 60_000  # an entry read but not acknowledged this long belongs to a dead drainer

_FIELDS = (
    "webhook_id", "shop_id", "platform", "topic", "shop_domain", "event_id", "api_version", "triggered_at",
    "received_at", "body",
)  # fmt: skip


def request_url() -> str | None:
    """The Redis URL the webhook request appends to, or None when deliveries go straight to PostgreSQL:
    buffer switched off, broker not Redis, or tasks run eagerly (tests)."""
    if not getattr(settings, "INGRESS_REDIS_BUFFER", True):
        return None
    from retention_app.celery import app
    from retention_app.ingress.enqueue import _cached_fast_path_url

    return _cached_fast_path_url(app)


def drain_url() -> str | None:
    """The Redis URL the drain reads: the broker's, when it is Redis (eager or not)."""
    from retention_app.celery import app
    from retention_app.ingress.enqueue import redis_broker_url

    return redis_broker_url(app)


def append(url: str, *, received_at: dt.datetime, **fields: Any) -> None:
    """Append one verified delivery (keyword arguments: the names in `_FIELDS` but `received_at`; str, int
    or None values) and queue a drain when none is queued. One round trip; raises redis' errors (the caller
    then stores the delivery in PostgreSQL). A retried XADD may append an entry twice: the drain drops the
    second (unique webhook id)."""
    from retention_app.ingress.enqueue import roundtrip

    values = {**fields, "received_at": received_at.isoformat()}
    flat: list[Any] = []
    for name in _FIELDS:
        value = values[name]
        flat += (name, "" if value is None else value)
    replies = roundtrip(
        url, ("XADD", STREAM, "*", *flat), ("SET", DRAIN_FLAG, "1", "NX", "PX", DRAIN_FLAG_TTL_MS)
    )
    if replies[1] is not None:
        queue_drain()


def queue_drain() -> None:
    """Queue one `drain_webhook_buffer` task. A broker failure is logged: the flag expires, and the next
    request or the periodic sweep drains."""
    from retention_app.ingress.enqueue import enqueue_task
    from retention_app.ingress.tasks import drain_webhook_buffer
    from retention_app.queues import Queue

    try:
        enqueue_task(drain_webhook_buffer, (), queue=Queue.INGRESS.value)
    except Exception:
        logger.exception("could not queue the webhook buffer drain; the sweep will drain")


def _client(url: str):
    from retention_app.ingress.enqueue import _redis_client

    return _redis_client(url)


def _ensure_group(client) -> None:
    from redis.exceptions import ResponseError

    try:
        # From the start of the stream ("0"): entries appended before the group existed are drained too.
        client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def drain(
    *,
    url: str | None = None,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
    claim_idle_ms: int = CLAIM_IDLE_MS,
) -> int:
    """Move buffered deliveries into PostgreSQL (see the module docstring); return how many new rows were
    stored. Safe to run in several workers at once (consumer group: each entry goes to one of them)."""
    url = url or drain_url()
    if url is None:
        return 0
    client = _client(url)
    _ensure_group(client)
    client.delete(DRAIN_FLAG)
    consumer = f"{socket.gethostname()}:{os.getpid()}"
    stored = 0
    # Entries a dead drainer read but never acknowledged.
    start = "0-0"
    while True:
        start, claimed, *_ = client.xautoclaim(
            STREAM, GROUP, consumer, min_idle_time=claim_idle_ms, start_id=start, count=batch_size
        )
        if claimed:
            stored += _drain_entries(client, claimed, recovered=True)
        if start in (b"0-0", "0-0"):
            break
    # Entries this process read in a run that failed (database down: the task is retried) are its own
    # pending ones: take them again at once rather than after CLAIM_IDLE_MS.
    for _ in range(max_batches):
        answer = client.xreadgroup(GROUP, consumer, {STREAM: "0"}, count=batch_size)
        own = [entry for entry in (answer[0][1] if answer else []) if entry[1]]
        if not own:
            break
        stored += _drain_entries(client, own, recovered=True)
    for _ in range(max_batches):
        answer = client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=batch_size)
        entries = answer[0][1] if answer else []
        if not entries:
            return stored
        stored += _drain_entries(client, entries, recovered=False)
    # A backlog is left: another run takes it (the flag was deleted above, so queue one explicitly).
    if client.set(DRAIN_FLAG, "1", nx=True, px=DRAIN_FLAG_TTL_MS):
        queue_drain()
    return stored


def _drain_entries(client, entries: list, *, recovered: bool) -> int:
    """Store one batch, queue the processing of its new rows, then acknowledge and delete the entries.

    Database trouble (OperationalError, InterfaceError) is raised: the entries stay pending and are taken
    again. An entry that can never be stored (malformed, or refused by the database) must not block every
    later drain: it is moved to `DEAD_LETTERS` with the error and logged, and the rest of the batch stored."""
    from django.db import InterfaceError, OperationalError

    from retention_app.ingress import services

    ids = [entry_id for entry_id, _ in entries]
    rows = [(entry_id, _decode(fields)) for entry_id, fields in entries if fields]
    dead: list[tuple[bytes, dict[str, str], str]] = []
    try:
        new_ids, pending_ids = services.webhook_deliveries_store_buffered(
            [row for _, row in rows], recovered=recovered
        )
    except (OperationalError, InterfaceError):
        raise
    except Exception:
        new_ids, pending_ids = [], []
        for entry_id, row in rows:  # one by one, to find the entries at fault
            try:
                new, pending = services.webhook_deliveries_store_buffered([row], recovered=recovered)
            except (OperationalError, InterfaceError):
                raise
            except Exception as exc:
                dead.append((entry_id, row, f"{type(exc).__name__}: {exc}"[:500]))
                continue
            new_ids += new
            pending_ids += pending
    services.webhook_deliveries_enqueue(delivery_ids=[*new_ids, *pending_ids])
    pipe = client.pipeline(transaction=False)
    for entry_id, row, error in dead:
        logger.error(
            "buffered webhook %s (entry %s) cannot be stored, moved to %s: %s",
            row.get("webhook_id"), entry_id, DEAD_LETTERS, error,
        )  # fmt: skip
        pipe.xadd(DEAD_LETTERS, {**row, "error": error})
    pipe.xack(STREAM, GROUP, *ids)
    pipe.xdel(STREAM, *ids)
    pipe.execute()
    return len(new_ids)


def _decode(fields: dict) -> dict[str, str]:
    return {
        (k.decode() if isinstance(k, bytes) else k): (
            v.decode(errors="replace") if isinstance(v, bytes) else v
        )
        for k, v in fields.items()
    }


def backlog(url: str | None = None) -> int:
    """Entries in the stream (appended, not yet drained and deleted): for monitoring and tests."""
    url = url or drain_url()
    return int(_client(url).xlen(STREAM)) if url else 0
