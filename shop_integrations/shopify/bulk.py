"""Stream a bulk-operation JSONL result into the commerce copy, in batches, resumably.

Reference: https://shopify.dev/docs/api/usage/bulk-operations/queries#download-result-data
The result is one JSON object per line; connection children (line items, a fulfillment's tracking events,
a product's collections) carry `__parentId` and may come in a later batch than their parent; list fields
(an order's fulfillments) stay embedded. Memory stays constant: the file is read as a stream
(requests stream=True) line by line, and only the current batch is held.

Resume contract: after each batch, the rows AND the byte offset just past the batch's last line are
committed in one transaction (`on_batch(rows_done, bytes_done)` runs inside it). A restart asks for the
file from that offset (HTTP Range; when the server ignores Range the skipped bytes are read and dropped),
so nothing is written twice; and the upserts make a replay harmless anyway.
"""

from __future__ import annotations

import contextlib
import gc
import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import orjson
import requests
from django.db import connection, connections, transaction

from retention_app.commerce.services import (
    BulkBatch,
    PreparedBulkBatch,
    commerce_bulk_prepare,
    commerce_bulk_write_prepared,
)
from shop_integrations.shopify import normalize
from shop_integrations.shopify.http import ShopifyPermanentError, ShopifyRetryableError

# Lines per transaction: large enough that per-commit costs vanish, small enough for constant memory.
DEFAULT_BATCH_ROWS = 20000
CHUNK_BYTES = 1 << 20


def stream_lines(
    url: str, *, start: int = 0, timeout: tuple[float, float] = (5.0, 60.0)
) -> Iterator[tuple[bytes, int]]:
    """Yield (line, offset just past it) for each line of the file at `url`, starting at byte `start`."""
    # identity: byte offsets must be offsets in the file, not in a compressed transfer.
    headers = {"Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        # The result URL is a signed storage address Shopify gave us (not built from user input).
        response = requests.get(url, headers=headers, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ShopifyRetryableError(f"GET bulk result: network error: {type(exc).__name__}") from None
    with response:
        if response.status_code == 416:  # nothing left after `start`
            return
        if response.status_code >= 500 or response.status_code == 429:
            raise ShopifyRetryableError(
                f"GET bulk result: HTTP {response.status_code}", status=response.status_code
            )
        if response.status_code >= 400:
            raise ShopifyPermanentError(
                f"GET bulk result: HTTP {response.status_code}", status=response.status_code
            )
        skip = start if (start and response.status_code != 206) else 0
        offset = start
        pending = b""
        try:
            for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk = chunk[skip:]
                    skip = 0
                data = pending + chunk if pending else chunk
                lines = data.split(b"\n")
                pending = lines.pop()
                for line in lines:
                    offset += len(line) + 1
                    if line:
                        yield line, offset
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise ShopifyRetryableError(f"GET bulk result: stream broken: {type(exc).__name__}") from None
        if pending.strip():
            offset += len(pending)
            yield pending, offset


def _add_line(batch: BulkBatch, obj: dict, storefront_url: str = "") -> None:
    kind = normalize.bulk_line_kind(obj)
    parent = obj.get("__parentId")
    if kind == "LineItem" and parent:  # most lines: an order has several
        batch.line_items.append((normalize.platform_id(parent), normalize.line_item_from_graphql(obj)))
    elif kind == "Order":
        batch.orders.append(normalize.order_from_graphql(obj))
    elif kind == "Customer":
        batch.customers.append(normalize.customer_from_graphql(obj))
    elif kind == "Fulfillment":
        batch.fulfillments.append(
            normalize.fulfillment_from_graphql(obj, order_platform_id=normalize.platform_id(parent))
        )
    elif kind == "FulfillmentEvent":
        # Its fulfillment's id is resolved when the batch is written (skipped when not stored).
        batch.fulfillment_events.append(
            normalize.fulfillment_event_from_graphql(
                obj, fulfillment_platform_id=normalize.platform_id(parent)
            )
        )
    elif kind == "Product":
        batch.products.append(normalize.product_from_graphql(obj, storefront_url=storefront_url))
    elif kind == "Collection" and parent:
        batch.product_collections.append((normalize.platform_id(parent), normalize.platform_id(obj["id"])))
    # Other objects (a field we did not ask for) are skipped: counted as done, nothing written.


def load_jsonl(
    *,
    shop_id: int,
    lines: Iterable[tuple[bytes, int]],
    on_batch: Callable[[int, int], None] | None = None,
    rows_done: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    storefront_url: str = "",
) -> int:
    """Write every line of a bulk JSONL stream; returns the number of rows (lines) done in total.

    `lines` yields (line, offset just past it) (see stream_lines). Each batch is written and
    `on_batch(rows_done, bytes_done)` called in the same transaction. Product URLs are built from
    `storefront_url` (the shop's storefront address). Lines that are not valid JSON or
    lack required fields raise normalize.PayloadError (the job fails with the line's offset).

    On PostgreSQL outside a transaction (a worker), this thread parses each batch and prepares it (lookups,
    binary COPY data: all the Python work) and a second thread with its own connection writes it while
    this one goes on with the next: Python and the server work at the same time. At most one batch waits
    between them, so memory stays constant. Inside a transaction (tests, callers that need one) batches
    are written inline, in that transaction."""
    # The batch keeps ~100k container objects alive: the cyclic GC would traverse them (and the whole
    # process) again and again, ~15% of the parse CPU. Nothing here makes reference cycles.
    with _cyclic_gc_paused():
        writer = _BackgroundWriter(shop_id, on_batch) if _can_pipeline() else None
        batch = BulkBatch.empty()
        count = 0
        last_offset = None
        try:
            for line, offset in lines:
                try:
                    obj = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise normalize.PayloadError(f"line ending at byte {offset} is not JSON") from None
                if obj.__class__ is not dict:
                    raise normalize.PayloadError(f"line ending at byte {offset} is not a JSON object")
                _add_line(batch, obj, storefront_url)
                count += 1
                last_offset = offset
                if count >= batch_rows:
                    rows_done += count
                    _hand_over(shop_id, batch, writer, on_batch, rows_done, offset)
                    batch = BulkBatch.empty()
                    count = 0
            if count:
                rows_done += count
                _hand_over(shop_id, batch, writer, on_batch, rows_done, last_offset)
        finally:
            if writer:
                writer.close()  # waits for the last batch; re-raises the writer's error
    return rows_done


@contextlib.contextmanager
def _cyclic_gc_paused():
    """Pause the cyclic garbage collector (objects freed by reference counting still are), restoring it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _can_pipeline() -> bool:
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def _hand_over(shop_id, batch, writer, on_batch, rows_done, offset) -> None:
    """Prepare the batch here (lookups, COPY data: Python work) and write it in the writer thread, or here."""
    prepared = commerce_bulk_prepare(shop_id=shop_id, batch=batch)
    if writer:
        writer.submit(prepared, rows_done, offset)
    else:
        _flush(shop_id, prepared, on_batch, rows_done, offset)


def _flush(shop_id, prepared, on_batch, rows_done, offset) -> None:
    with transaction.atomic():
        commerce_bulk_write_prepared(shop_id=shop_id, prepared=prepared, durable=False)
        if on_batch is not None:
            on_batch(rows_done, offset)


class _BackgroundWriter:
    """One writer thread fed through a queue of size 1; the first error stops it and is re-raised."""

    def __init__(self, shop_id: int, on_batch) -> None:
        self.shop_id = shop_id
        self.on_batch = on_batch
        self.queue: queue.Queue = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="bulk-writer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while (item := self.queue.get()) is not None:
                if self.error is None:
                    try:
                        prepared, rows_done, offset = item
                        _flush(self.shop_id, prepared, self.on_batch, rows_done, offset)
                    except BaseException as exc:  # handed to the parsing thread
                        self.error = exc
        finally:
            connections.close_all()  # this thread's own connection

    def _put(self, item) -> None:
        while True:
            if self.error is not None and item is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def submit(self, prepared: PreparedBulkBatch, rows_done: int, offset: int) -> None:
        self._put((prepared, rows_done, offset))

    def close(self) -> None:
        self._put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
