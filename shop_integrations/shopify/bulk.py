"""Stream a bulk-operation JSONL result into the commerce copy, in batches, resumably.

Reference: https://shopify.dev/docs/api/usage/bulk-operations/queries#download-result-data
The result is one JSON object per line; connection children (line items) follow their parent and carry
`__parentId`; list fields (an order's fulfillments) stay embedded. Memory stays constant: the file is read
as a stream (requests stream=True) line by line, and only the current batch is held.

Resume contract: after each batch, the rows AND the byte offset just past the batch's last line are
committed in one transaction (`on_batch(rows_done, bytes_done)` runs inside it). A restart asks for the
file from that offset (HTTP Range; when the server ignores Range the skipped bytes are read and dropped),
so nothing is written twice; and the upserts make a replay harmless anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator

import requests
from django.db import transaction

from retention_app.commerce.services import BulkBatch, commerce_bulk_write
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


def _add_line(batch: BulkBatch, obj: dict) -> None:
    kind = normalize.bulk_line_kind(obj)
    parent = obj.get("__parentId")
    if kind == "Order":
        batch.orders.append(normalize.order_from_graphql(obj))
    elif kind == "Customer":
        batch.customers.append(normalize.customer_from_graphql(obj))
    elif kind == "LineItem" and parent:
        batch.line_items.append((normalize.platform_id(parent), normalize.line_item_from_graphql(obj)))
    elif kind == "Fulfillment":
        batch.fulfillments.append(
            normalize.fulfillment_from_graphql(obj, order_platform_id=normalize.platform_id(parent))
        )
    # Other objects (a field we did not ask for) are skipped: counted as done, nothing written.


def load_jsonl(
    *,
    shop_id: int,
    lines: Iterable[tuple[bytes, int]],
    on_batch: Callable[[int, int], None] | None = None,
    rows_done: int = 0,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> int:
    """Write every line of a bulk JSONL stream; returns the number of rows (lines) done in total.

    `lines` yields (line, offset just past it) (see stream_lines). Each batch is written and
    `on_batch(rows_done, bytes_done)` called in the same transaction. Lines that are not valid JSON or
    lack required fields raise normalize.PayloadError (the job fails with the line's offset)."""
    batch = BulkBatch.empty()
    count = 0
    last_offset = None
    for line, offset in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            raise normalize.PayloadError(f"line ending at byte {offset} is not JSON") from None
        _add_line(batch, obj)
        count += 1
        last_offset = offset
        if count >= batch_rows:
            rows_done += count
            _flush(shop_id, batch, on_batch, rows_done, offset)
            batch = BulkBatch.empty()
            count = 0
    if count:
        rows_done += count
        _flush(shop_id, batch, on_batch, rows_done, last_offset)
    return rows_done


def _flush(shop_id, batch, on_batch, rows_done, offset) -> None:
    with transaction.atomic():
        commerce_bulk_write(shop_id=shop_id, batch=batch, durable=False)
        if on_batch is not None:
            on_batch(rows_done, offset)
