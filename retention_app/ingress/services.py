"""Webhook ingress services (writes): receive a delivery, process it, and honour privacy requests.

Receiving is the only thing done inside the webhook request: for a commerce topic with a Redis broker, one
append to the Redis buffer (buffer.py; the worker's drain stores it); otherwise one INSERT and one enqueue
after commit. Everything else happens in `webhook_delivery_process`, run by a worker.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from enum import StrEnum
from typing import Any

import orjson
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from retention_app.commerce.models import Customer, FulfillmentEvent, Order
from retention_app.ingress import buffer
from retention_app.ingress.dispatch import resolve_topic
from retention_app.ingress.models import ComplianceAuditRecord, CustomerDataExport, WebhookDelivery
from retention_app.shops import events as shop_events
from retention_app.shops.models import Shop

logger = logging.getLogger(__name__)

# Stored deliveries are deleted after this many days (they contain personal data; see the purge task).
DELIVERY_RETENTION_DAYS = 14


class ReceiveOutcome(StrEnum):
    STORED = "stored"  # new delivery, processing enqueued
    ACCEPTED = "accepted"  # commerce delivery appended to the Redis buffer; the drain stores it (buffer.py)
    DUPLICATE = "duplicate"  # this webhook id was already stored: nothing done
    UNKNOWN_SHOP = "unknown_shop"  # no such shop here: nothing stored


class TransientProcessingError(Exception):
    """A handler failed in a way worth retrying later (network, throttling, database hiccup).

    Raised by `webhook_delivery_process` after the failure was recorded on the delivery."""

    def __init__(self, delivery_id: int, cause: BaseException) -> None:
        super().__init__(f"delivery {delivery_id}: {cause!r}")
        self.delivery_id = delivery_id
        self.cause = cause


def is_transient(exc: BaseException) -> bool:
    """Errors worth a retry: database/network trouble, or any error that says so (`retryable = True`,
    e.g. the platform client's *RetryableError). Everything else (bad payload, bug, 4xx) is permanent."""
    from django.db import InterfaceError, OperationalError

    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | TimeoutError):
        return True
    if getattr(exc, "retryable", False):
        return True
    return any("Retryable" in cls.__name__ for cls in type(exc).__mro__)


# --- receiving (inside the webhook request) ------------------------------------------------------------


class InvalidPayload(ValueError):
    """The delivery's body is not a JSON object (the endpoint answers 400 with this message)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_payload(text: str) -> dict[str, Any]:
    """The body as a JSON object, or InvalidPayload. Strict JSON (RFC 8259): NaN and Infinity, which Python
    would accept and PostgreSQL's jsonb refuses, are not JSON."""
    try:
        payload = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidPayload("body is not JSON") from exc
    if not isinstance(payload, dict):
        raise InvalidPayload("body must be a JSON object")
    return payload


def _is_strict_json_object(text: str) -> bool:
    """Is `text` a JSON object that PostgreSQL's jsonb accepts too (but for U+0000, which the drain drops)?
    orjson is strict RFC 8259 (no NaN/Infinity, no lone surrogates) and ~3x faster than json. Anything it
    refuses goes the synchronous way, where `parse_payload` decides between 400 and storing."""
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


def webhook_delivery_receive(
    *,
    platform: str,
    shop_domain: str,
    topic: str,
    webhook_id: str,
    payload: dict[str, Any] | None = None,
    raw_body: str | None = None,
    event_id: str = "",
    api_version: str = "",
    triggered_at: dt.datetime | None = None,
    is_compliance: bool = False,
    critical: bool = False,
) -> ReceiveOutcome:
    """Store a verified delivery once (unique webhook id) and enqueue its processing after commit.

    Give `payload` (the parsed body) or `raw_body` (the body's text) or both. `raw_body` is stored as is,
    which spares re-serializing the payload. With `raw_body` alone the body is not parsed in Python when
    PostgreSQL can check it: the INSERT casts it to jsonb, which refuses anything that is not JSON, and a
    body that is not `{...}` is parsed up front. Either way a body that is not a JSON object raises
    InvalidPayload and nothing is stored (the endpoint answers 400).

    A delivery for a shop unknown here is not stored (we hold nothing for it); for a compliance topic an
    audit record says so, since the platform expects privacy requests to be answered.

    With settings.INGRESS_ASYNC_COMMIT, deliveries that are not `critical` are committed without waiting
    for the WAL flush (PostgreSQL asynchronous commit). Lifecycle and privacy topics are always `critical`:
    losing one could not be repaired, while a lost commerce delivery is repaired by the periodic
    reconciliation of the sync domain.

    When the Redis buffer is on (retention_app/ingress/buffer.py), a `raw_body` delivery that is neither
    `critical` nor `is_compliance` is checked here, appended to the buffer and answered ACCEPTED: the drain
    stores it (same
    unique webhook id: a duplicate is dropped there) and queues its processing. Should Redis fail, it is
    stored here as below."""
    if payload is None and raw_body is None:
        raise TypeError("webhook_delivery_receive needs payload or raw_body")
    if not critical and not is_compliance:
        url = buffer.request_url()
        if url is not None and raw_body is not None and _is_strict_json_object(raw_body):
            shop_id = shop_id_for_domain(platform=platform, domain=shop_domain)
            if shop_id is None:
                logger.info("webhook %s for unknown shop %s ignored (id %s)", topic, shop_domain, webhook_id)
                return ReceiveOutcome.UNKNOWN_SHOP
            try:
                buffer.append(
                    url,
                    received_at=timezone.now(),
                    webhook_id=webhook_id,
                    shop_id=shop_id,
                    platform=platform,
                    topic=topic,
                    shop_domain=shop_domain,
                    event_id=event_id,
                    api_version=api_version,
                    triggered_at=triggered_at.isoformat() if triggered_at else "",
                    body=raw_body,
                )
                return ReceiveOutcome.ACCEPTED
            except Exception:
                logger.warning(
                    "webhook buffer unavailable: storing %s in the database", webhook_id, exc_info=True
                )
    if payload is None:
        stripped = raw_body.strip()
        if (
            connection.vendor != "postgresql"
            or "\\u0000" in raw_body
            or stripped[:1] != "{"
            or stripped[-1:] != "}"
        ):
            payload = parse_payload(raw_body)
    shop_id = shop_id_for_domain(platform=platform, domain=shop_domain)
    if shop_id is None:
        if payload is None:
            payload = parse_payload(raw_body)  # a non-JSON body is a 400 whatever the shop
        logger.info("webhook %s for unknown shop %s ignored (id %s)", topic, shop_domain, webhook_id)
        if is_compliance:
            compliance_audit_record_unknown_shop(
                topic=topic, shop_domain=shop_domain, webhook_id=webhook_id, payload=payload
            )
        return ReceiveOutcome.UNKNOWN_SHOP
    row = {
        "platform": platform,
        "webhook_id": webhook_id,
        "event_id": event_id,
        "topic": topic,
        "shop_domain": shop_domain,
        "api_version": api_version,
        "triggered_at": triggered_at,
        "async_commit": not critical and settings.INGRESS_ASYNC_COMMIT,
        "payload": raw_body
        if raw_body is not None and "\\u0000" not in raw_body
        else json.dumps(_without_nul(payload)),
    }
    unchecked = payload is None
    try:
        delivery_id = _insert_delivery_checked(unchecked, shop_id=shop_id, **row)
    except IntegrityError:
        # The cached shop id is stale (shop deleted, maybe re-created): look it up again, once.
        forget_shop_id(platform=platform, domain=shop_domain)
        shop_id = shop_id_for_domain(platform=platform, domain=shop_domain)
        if shop_id is None:
            return ReceiveOutcome.UNKNOWN_SHOP
        delivery_id = _insert_delivery_checked(unchecked, shop_id=shop_id, **row)
    if delivery_id is None:
        return ReceiveOutcome.DUPLICATE
    transaction.on_commit(lambda: webhook_delivery_enqueue(delivery_id=delivery_id))
    return ReceiveOutcome.STORED


def _insert_delivery_checked(unchecked: bool, **row: Any) -> int | None:
    """`_insert_delivery`; for a body not parsed in Python (`unchecked`), a database error is first put down
    to the body: when it is not a JSON object, InvalidPayload; otherwise the error itself. Inside a
    transaction the statement runs in a savepoint, so a refused body leaves the transaction usable."""
    if not unchecked:
        return _insert_delivery(**row)
    try:
        if connection.in_atomic_block:
            with transaction.atomic():
                return _insert_delivery(**row)
        return _insert_delivery(**row)
    except DatabaseError:
        parse_payload(row["payload"])  # raises InvalidPayload for a body PostgreSQL refused as JSON
        raise


def _without_nul(value: Any) -> Any:
    """PostgreSQL's jsonb refuses U+0000 in strings: drop it (it carries no meaning in a Shopify payload)."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


_INSERT_COLUMNS = (
    "shop_id", "platform", "webhook_id", "event_id", "topic", "shop_domain", "api_version", "triggered_at",
    "payload", "status", "attempts", "last_error", "received_at", "updated_at",
)  # fmt: skip
# Columns whose value is the same for every new delivery: written as SQL literals (fixed strings from this
# module, never request data), which spares binding and escaping three parameters per request.
_INSERT_CONSTANTS = {
    "status": f"'{WebhookDelivery.Status.PENDING.value}'",
    "attempts": "0",
    "last_error": "''",
}
_insert_sql: dict[str, str] = {}


def _insert_delivery_sql(rows: int = 1) -> str:
    """The INSERT statement of `rows` deliveries for the current database vendor (identifiers come from the
    model's meta and are quoted; every value is a query parameter). The one-row statement is built once."""
    sql = _insert_sql.get(connection.vendor) if rows == 1 else None
    if sql is None:
        meta, qn = WebhookDelivery._meta, connection.ops.quote_name
        columns = ", ".join(qn(meta.get_field(name).column) for name in _INSERT_COLUMNS)
        jsonb = "::jsonb" if connection.vendor == "postgresql" else ""
        values = ", ".join(
            _INSERT_CONSTANTS.get(name) or (f"%s{jsonb}" if name == "payload" else "%s")
            for name in _INSERT_COLUMNS
        )
        conflict, pk = qn(meta.get_field("webhook_id").column), qn(meta.pk.column)
        sql = (
            f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES {', '.join([f'({values})'] * rows)} "  # noqa: S608
            f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {pk}"
        )
        if rows == 1:
            _insert_sql[connection.vendor] = sql
    return sql


def _insert_delivery(
    *, shop_id: int, payload: str, triggered_at: dt.datetime | None, async_commit: bool, **fields: str
) -> int | None:
    """One INSERT ... ON CONFLICT (webhook_id) DO NOTHING RETURNING id: the id of the new row, or None for
    a duplicate. A single statement (no savepoint, no model machinery) keeps the request cheap and never
    raises on a duplicate, inside or outside a transaction. PostgreSQL and SQLite >= 3.35."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    values = {
        "shop_id": shop_id,
        **fields,
        "triggered_at": connection.ops.adapt_datetimefield_value(triggered_at),
        "payload": payload,
        "received_at": now,
        "updated_at": now,
    }
    params = [values[name] for name in _INSERT_COLUMNS if name not in _INSERT_CONSTANTS]
    if async_commit and connection.vendor == "postgresql":
        # Do not wait for the WAL flush (the largest cost of the request on a busy disk). Only a crash of
        # the database server within ~0.6 s can lose the row; see INGRESS_ASYNC_COMMIT in settings.
        # Reference: https://www.postgresql.org/docs/current/wal-async-commit.html
        with connection.cursor() as cursor:
            if _client_side_binding(cursor):
                # One round trip: both statements of one simple query run in one (implicit) transaction,
                # so the transaction-local setting covers the INSERT and nothing after it.
                cursor.execute(_ASYNC_COMMIT_PREFIX + _insert_delivery_sql(), params)
                cursor.nextset()
                row = cursor.fetchone()
            else:
                with transaction.atomic():
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
                    cursor.execute(_insert_delivery_sql(), params)
                    row = cursor.fetchone()
    else:
        with connection.cursor() as cursor:
            cursor.execute(_insert_delivery_sql(), params)
            row = cursor.fetchone()
    return row[0] if row else None


_ASYNC_COMMIT_PREFIX = "SELECT set_config('synchronous_commit', 'off', true); "


def _client_side_binding(cursor) -> bool:
    """psycopg 3 client-side binding cursor (Django's default): it may send several statements at once."""
    try:
        import psycopg
    except ImportError:
        return False
    return isinstance(cursor.cursor, psycopg.ClientCursor)


# Process-local cache of shop domain -> shop id, so a webhook request needs one statement, not two.
# Only existing shops are cached (a new install is seen at once); entries live SHOP_ID_CACHE_SECONDS and
# are dropped when this process saves or deletes a Shop. A stale id in another process makes the INSERT
# fail on the foreign key, and the receiver looks the shop up again.
SHOP_ID_CACHE_SECONDS = 60.0
_shop_ids: dict[tuple[str, str], tuple[int, float]] = {}


def shop_id_for_domain(*, platform: str, domain: str) -> int | None:
    key = (platform, domain)
    cached = _shop_ids.get(key)
    now = time.monotonic()
    if cached is not None and cached[1] > now:
        return cached[0]
    shop_id = Shop.objects.filter(platform=platform, domain=domain).values_list("pk", flat=True).first()
    if shop_id is not None:
        if len(_shop_ids) > 10_000:
            _shop_ids.clear()
        _shop_ids[key] = (shop_id, now + SHOP_ID_CACHE_SECONDS)
    return shop_id


def forget_shop_id(*, platform: str, domain: str) -> None:
    _shop_ids.pop((platform, domain), None)


def forget_all_shop_ids() -> None:
    _shop_ids.clear()


def webhook_delivery_enqueue(*, delivery_id: int) -> None:
    """Queue the processing. A broker failure is logged, not raised: the row is stored and the
    `requeue_stale_webhook_deliveries` sweep enqueues it again."""
    from retention_app.ingress.enqueue import enqueue_task
    from retention_app.ingress.tasks import process_webhook_delivery
    from retention_app.queues import Queue

    try:
        enqueue_task(process_webhook_delivery, (delivery_id,), queue=Queue.WEBHOOKS.value)
    except Exception:
        logger.exception("could not enqueue webhook delivery %s; the sweep will retry", delivery_id)


def webhook_deliveries_enqueue(*, delivery_ids: list[int]) -> None:
    """Queue the processing of several deliveries (one LPUSH on Redis). A broker failure is logged, not
    raised: the rows are stored and the `requeue_stale_webhook_deliveries` sweep enqueues them again."""
    from retention_app.ingress.enqueue import enqueue_tasks
    from retention_app.ingress.tasks import process_webhook_delivery
    from retention_app.queues import Queue

    try:
        enqueue_tasks(process_webhook_delivery, [(i,) for i in delivery_ids], queue=Queue.WEBHOOKS.value)
    except Exception:
        logger.exception("could not enqueue %s webhook deliveries; the sweep will retry", len(delivery_ids))


_BATCH_INSERT_ROWS = 100


def webhook_deliveries_store_buffered(
    rows: list[dict[str, str]], *, recovered: bool = False
) -> tuple[list[int], list[int]]:
    """Store deliveries drained from the Redis buffer (buffer.py: string fields as the request appended
    them) in one transaction with a synchronous commit, a multi-row INSERT per 100 rows; a webhook id
    already stored is skipped. Returns (ids of the new rows, ids of `recovered` entries' rows stored earlier
    and still pending: a dead drainer may have stored them without queueing their processing).

    A row whose shop id is stale (shop deleted, maybe re-created) is stored under the shop now holding
    its domain, or dropped and logged when there is none (as the request does for an unknown shop)."""
    if not rows:
        return [], []
    now = timezone.now()
    values = []
    for row in rows:
        body = row["body"]
        if "\\u0000" in body:  # jsonb refuses U+0000: drop it (as the synchronous path does)
            body = json.dumps(_without_nul(parse_payload(body)))
        triggered_at = dt.datetime.fromisoformat(row["triggered_at"]) if row["triggered_at"] else None
        values.append(
            {
                "shop_id": int(row["shop_id"]),
                "platform": row["platform"],
                "webhook_id": row["webhook_id"],
                "event_id": row["event_id"],
                "topic": row["topic"],
                "shop_domain": row["shop_domain"],
                "api_version": row["api_version"],
                "triggered_at": connection.ops.adapt_datetimefield_value(triggered_at),
                "payload": body,
                "received_at": connection.ops.adapt_datetimefield_value(
                    dt.datetime.fromisoformat(row["received_at"])
                ),
                "updated_at": connection.ops.adapt_datetimefield_value(now),
            }
        )
    new_ids: list[int] = []
    with transaction.atomic():
        values = _with_live_shops(values)
        for start in range(0, len(values), _BATCH_INSERT_ROWS):
            new_ids += _insert_rows(values[start : start + _BATCH_INSERT_ROWS])
        pending_ids: list[int] = []
        if recovered:
            new = set(new_ids)
            pending_ids = [
                pk
                for pk in WebhookDelivery.objects.filter(
                    webhook_id__in=[v["webhook_id"] for v in values], status=WebhookDelivery.Status.PENDING
                ).values_list("pk", flat=True)
                if pk not in new
            ]
    return new_ids, pending_ids


def _with_live_shops(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows whose shop exists, locked against deletion until the transaction ends (the foreign key is
    checked at commit: a shop deleted meanwhile would fail the whole batch). A row with a stale shop id is
    moved to the shop now holding its domain, or dropped and logged when there is none."""
    live = _lock_shops({v["shop_id"] for v in values})
    kept = []
    for value in values:
        if value["shop_id"] not in live:
            forget_shop_id(platform=value["platform"], domain=value["shop_domain"])
            shop_id = shop_id_for_domain(platform=value["platform"], domain=value["shop_domain"])
            if shop_id is None or not _lock_shops({shop_id}):
                logger.warning(
                    "buffered webhook %s for %s (id %s) dropped: the shop is gone",
                    value["topic"], value["shop_domain"], value["webhook_id"],
                )  # fmt: skip
                continue
            value = {**value, "shop_id": shop_id}
            live.add(shop_id)
        kept.append(value)
    return kept


def _lock_shops(shop_ids: set[int]) -> set[int]:
    """Those of `shop_ids` that exist; on PostgreSQL locked FOR KEY SHARE (a DELETE waits for our commit)."""
    if connection.vendor != "postgresql":
        return set(Shop.objects.filter(pk__in=shop_ids).values_list("pk", flat=True))
    pk, table = (
        connection.ops.quote_name(Shop._meta.pk.column),
        connection.ops.quote_name(Shop._meta.db_table),
    )
    sql = f"SELECT {pk} FROM {table} WHERE {pk} = ANY(%s) FOR KEY SHARE"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [sorted(shop_ids)])
        return {row[0] for row in cursor.fetchall()}


def _insert_rows(values: list[dict[str, Any]]) -> list[int]:
    params = [v[name] for v in values for name in _INSERT_COLUMNS if name not in _INSERT_CONSTANTS]
    with connection.cursor() as cursor:
        cursor.execute(_insert_delivery_sql(len(values)), params)
        return [row[0] for row in cursor.fetchall()]


# --- processing (in a worker) --------------------------------------------------------------------------


def webhook_delivery_process(*, delivery_id: int) -> str | None:
    """Process one stored delivery exactly once; return its new status, or None when there was nothing to
    do (already processed, being processed by another worker, or deleted).

    The delivery row is locked (skip_locked: a concurrent duplicate task walks away) and the handler runs
    in a savepoint: when it raises, its writes are rolled back, the delivery is marked failed with the error
    (so it is never lost and stays visible), and a transient error is re-raised as
    TransientProcessingError for the task to retry with backoff."""
    failure: BaseException | None = None
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("shop")
            .filter(
                pk=delivery_id, status__in=[WebhookDelivery.Status.PENDING, WebhookDelivery.Status.FAILED]
            )
            .first()
        )
        if delivery is None:
            return None
        status, error = _run_handler(delivery)
        if isinstance(error, BaseException):
            failure = error
            error = f"{type(error).__name__}: {error}"[:2000]
        # update(), not save(): shop/redact may have deleted this very row (cascade); then 0 rows change.
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            status=status,
            attempts=delivery.attempts + 1,
            last_error=error or "",
            processed_at=timezone.now() if status != WebhookDelivery.Status.FAILED else None,
            updated_at=timezone.now(),
        )
    if failure is not None and is_transient(failure):
        raise TransientProcessingError(delivery_id, failure) from failure
    return status


def _run_handler(delivery: WebhookDelivery) -> tuple[str, str | BaseException]:
    log_args = (delivery.topic, delivery.shop_domain, delivery.webhook_id)
    if delivery.redacted_at is not None:
        return WebhookDelivery.Status.IGNORED, "payload redacted before processing"
    handler = resolve_topic(delivery.platform, delivery.topic)
    if handler is None:
        logger.warning("webhook %s for %s (id %s): no handler, ignored", *log_args)
        return WebhookDelivery.Status.IGNORED, "no handler for this topic"
    if not delivery.shop.is_installed and not handler.when_uninstalled:
        logger.info("webhook %s for %s (id %s): shop not installed, ignored", *log_args)
        return WebhookDelivery.Status.IGNORED, "shop not installed"
    try:
        with transaction.atomic():
            handler.handle(delivery.shop, delivery.payload, delivery)
    except Exception as exc:
        logger.warning("webhook %s for %s (id %s) failed: %s", *log_args, type(exc).__name__, exc_info=True)
        return WebhookDelivery.Status.FAILED, exc
    return WebhookDelivery.Status.PROCESSED, ""


def webhook_deliveries_requeue_stale(*, older_than: dt.timedelta = dt.timedelta(minutes=10)) -> int:
    """Enqueue again deliveries still pending after `older_than` (lost enqueue: broker down at commit,
    worker killed after its retries ran out). Processing is idempotent, so a spare enqueue is harmless."""
    cutoff = timezone.now() - older_than
    ids = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, updated_at__lt=cutoff, redacted_at__isnull=True
        ).values_list("pk", flat=True)[:1000]
    )
    for delivery_id in ids:
        webhook_delivery_enqueue(delivery_id=delivery_id)
    return len(ids)


def webhook_delivery_retry(*, delivery: WebhookDelivery) -> None:
    """Put a failed delivery back in the queue (admin action)."""
    updated = WebhookDelivery.objects.filter(pk=delivery.pk, status=WebhookDelivery.Status.FAILED).update(
        status=WebhookDelivery.Status.PENDING, updated_at=timezone.now()
    )
    if updated:
        transaction.on_commit(lambda: webhook_delivery_enqueue(delivery_id=delivery.pk))


def webhook_deliveries_purge(*, older_than_days: int = DELIVERY_RETENTION_DAYS) -> int:
    """Delete processed/ignored deliveries older than the retention period (they hold personal data)."""
    cutoff = timezone.now() - dt.timedelta(days=older_than_days)
    deleted, _ = WebhookDelivery.objects.filter(
        received_at__lt=cutoff,
        status__in=[WebhookDelivery.Status.PROCESSED, WebhookDelivery.Status.IGNORED],
    ).delete()
    return deleted


# --- shop lifecycle --------------------------------------------------------------------------------------


def shop_uninstall_apply(*, shop: Shop, uninstalled_at: dt.datetime | None) -> bool:
    """app/uninstalled: mark the shop uninstalled (status, uninstalled_at), drop its tokens, and send
    `shop_uninstalled` on commit (automations stop, scheduled messages are cancelled).

    A stale uninstall (triggered before the latest install, e.g. delivered late after a reinstall) is
    ignored. Returns True when the shop was marked uninstalled."""
    from retention_app.shops.services import shop_credentials_drop

    uninstalled_at = uninstalled_at or timezone.now()
    if shop.installed_at and uninstalled_at < shop.installed_at:
        logger.info("stale app/uninstalled for %s ignored (shop reinstalled since)", shop.domain)
        return False
    Shop.objects.filter(pk=shop.pk).update(
        status=Shop.Status.UNINSTALLED, uninstalled_at=uninstalled_at, updated_at=timezone.now()
    )
    shop.refresh_from_db()
    shop_credentials_drop(shop=shop)

    def notify() -> None:
        for receiver, result in shop_events.shop_uninstalled.send_robust(sender=Shop, shop=shop):
            if isinstance(result, Exception):
                logger.error("shop_uninstalled receiver %r failed", receiver, exc_info=result)

    transaction.on_commit(notify)
    logger.info("shop uninstalled: %s", shop.domain)
    return True


# --- compliance --------------------------------------------------------------------------------------------


def _as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _row(obj: Any, *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    data = {}
    for field in obj._meta.concrete_fields:
        if field.name in exclude:
            continue
        data[field.attname if field.is_relation else field.name] = getattr(obj, field.attname)
    return data


def _matching_customers(shop: Shop, customer_platform_id: str, email: str):
    cond = Q(pk__in=[])
    if customer_platform_id:
        cond |= Q(platform_id=customer_platform_id)
    if email:
        cond |= Q(email__iexact=email)
    return Customer.objects.filter(cond, shop=shop)


def _matching_orders(shop: Shop, customers, order_platform_ids: list[str], email: str):
    cond = Q(customer__in=customers)
    if order_platform_ids:
        cond |= Q(platform_id__in=order_platform_ids)
    if email:
        cond |= Q(email__iexact=email)
    return Order.objects.filter(cond, shop=shop)


def customer_data_export_create(
    *,
    shop: Shop,
    webhook_id: str,
    customer_platform_id: str,
    email: str = "",
    phone: str = "",
    order_platform_ids: list[str] | None = None,
    data_request_id: str = "",
    topic: str = "customers/data_request",
) -> CustomerDataExport:
    """customers/data_request: gather everything held about the customer (commerce rows read here, plus the
    answers of every `customer_data_export` receiver) into a CustomerDataExport the merchant can see.
    Idempotent per webhook id. Leaves a ComplianceAuditRecord without personal data."""
    existing = CustomerDataExport.objects.filter(webhook_id=webhook_id).first()
    if existing is not None:
        return existing
    order_platform_ids = [str(i) for i in order_platform_ids or []]
    customers = list(_matching_customers(shop, customer_platform_id, email))
    orders = list(
        _matching_orders(shop, customers, order_platform_ids, email)
        .prefetch_related("line_items", "fulfillments__events")
        .order_by("placed_at", "pk")
    )
    primary = next((c for c in customers if c.platform_id == customer_platform_id), None) or (
        customers[0] if customers else None
    )
    sections = []
    for _receiver, response in shop_events.customer_data_export.send(
        sender=CustomerDataExport,
        shop=shop,
        customer=primary,
        customer_platform_id=customer_platform_id,
        email=email,
        phone=phone,
    ):
        if response:
            sections.append(response)
    data = _as_json(
        {
            "customer_platform_id": customer_platform_id,
            "data_request_id": data_request_id,
            "generated_at": timezone.now(),
            "customers": [_row(c, exclude=("shop",)) for c in customers],
            "orders": [
                {
                    **_row(o, exclude=("shop",)),
                    "line_items": [_row(li, exclude=("shop", "order")) for li in o.line_items.all()],
                    "fulfillments": [
                        {
                            **_row(f, exclude=("shop", "order")),
                            "events": [_row(e, exclude=("shop", "fulfillment")) for e in f.events.all()],
                        }
                        for f in o.fulfillments.all()
                    ],
                }
                for o in orders
            ],
            "sections": sections,
        }
    )
    export = CustomerDataExport.objects.create(
        shop=shop,
        webhook_id=webhook_id,
        customer_platform_id=customer_platform_id,
        data_request_id=data_request_id,
        data=data,
    )
    ComplianceAuditRecord.objects.get_or_create(
        webhook_id=webhook_id,
        defaults={
            "topic": topic,
            "shop_domain": shop.domain,
            "platform_shop_id": shop.platform_shop_id,
            "customer_platform_id": customer_platform_id,
            "data_request_id": data_request_id,
            "order_platform_ids": order_platform_ids,
            "counts": {"customers": len(customers), "orders": len(orders), "sections": len(sections)},
            "outcome": ComplianceAuditRecord.Outcome.EXPORTED,
        },
    )
    return export


def customer_personal_data_erase(
    *,
    shop: Shop,
    webhook_id: str,
    customer_platform_id: str,
    email: str = "",
    phone: str = "",
    order_platform_ids: list[str] | None = None,
    topic: str = "customers/redact",
) -> ComplianceAuditRecord:
    """customers/redact: erase the customer's personal data everywhere, keep non-personal facts (orders
    and their amounts stay for the metrics, without email).

    - `customer_redact` is sent first (while the customer row still holds its email) so every other
      domain erases its own rows; it gets `email`/`phone` as extra keyword arguments too.
    - Customer: email, names, phone, tags, locale, time zone blanked; marketing state REDACTED.
    - Orders of the customer, orders listed in `order_platform_ids`, guest orders with that email: email and
      locale blanked; their fulfillment events lose city/province (a delivery trail).
    - Stored webhook deliveries mentioning the customer or those orders: payload replaced by ids only.
    - Data exports of the customer: emptied.
    Idempotent (per webhook id, and erasing twice changes nothing). Returns the audit record."""
    existing = ComplianceAuditRecord.objects.filter(webhook_id=webhook_id).first()
    if existing is not None:
        return existing
    now = timezone.now()
    order_platform_ids = [str(i) for i in order_platform_ids or []]
    customers_qs = _matching_customers(shop, customer_platform_id, email)
    customers = list(customers_qs)
    primary = next((c for c in customers if c.platform_id == customer_platform_id), None) or (
        customers[0] if customers else None
    )
    orders_qs = _matching_orders(shop, customers, order_platform_ids, email)
    order_ids = list(orders_qs.values_list("pk", flat=True))
    all_order_platform_ids = sorted(
        set(order_platform_ids) | set(orders_qs.values_list("platform_id", flat=True))
    )

    shop_events.customer_redact.send(
        sender=ComplianceAuditRecord,
        shop=shop,
        customer=primary,
        customer_platform_id=customer_platform_id,
        order_platform_ids=all_order_platform_ids,
        email=email,
        phone=phone,
    )

    needles = {
        s.lower() for s in [email, phone, *(c.email for c in customers), *(c.phone for c in customers)]
    }
    needles.discard("")
    customer_ids = {customer_platform_id, *(c.platform_id for c in customers)} - {""}

    n_customers = Customer.objects.filter(pk__in=[c.pk for c in customers]).update(
        email="",
        first_name="",
        last_name="",
        phone="",
        tags=[],
        locale="",
        timezone="",
        marketing_state=Customer.MarketingState.REDACTED,
        marketing_state_updated_at=now,
        redacted_at=now,
        updated_at=now,
    )
    n_orders = Order.objects.filter(pk__in=order_ids).update(
        email="", customer_locale="", redacted_at=now, updated_at=now
    )
    n_events = FulfillmentEvent.objects.filter(fulfillment__order_id__in=order_ids).update(
        city="", province=""
    )
    n_deliveries = _scrub_deliveries(
        shop=shop, needles=needles, customer_ids=customer_ids, order_ids=set(all_order_platform_ids), now=now
    )
    n_exports = _erase_exports(shop=shop, needles=needles, customer_ids=customer_ids, now=now)

    record, _ = ComplianceAuditRecord.objects.get_or_create(
        webhook_id=webhook_id,
        defaults={
            "topic": topic,
            "shop_domain": shop.domain,
            "platform_shop_id": shop.platform_shop_id,
            "customer_platform_id": customer_platform_id,
            "order_platform_ids": all_order_platform_ids,
            "counts": {
                "customers": n_customers,
                "orders": n_orders,
                "fulfillment_events": n_events,
                "webhook_deliveries_scrubbed": n_deliveries,
                "data_exports_erased": n_exports,
            },
            "outcome": ComplianceAuditRecord.Outcome.REDACTED,
        },
    )
    return record


def _mentions(value: Any, *, needles: set[str], customer_ids: set[str], order_ids: set[str]) -> bool:
    """Does a stored JSON payload mention the customer (email/phone anywhere, or a `customer` object with
    its id) or one of the orders (`order_id`, or an order object's own id under `orders/*`)?"""
    text = json.dumps(value).lower()
    if any(n in text for n in needles):
        return True

    def walk(node: Any, parent_key: str) -> bool:
        if isinstance(node, dict):
            node_id = str(node.get("id", ""))
            if parent_key == "customer" and node_id in customer_ids:
                return True
            if str(node.get("customer_id", "")) in customer_ids or str(node.get("order_id", "")) in order_ids:
                return True
            return any(walk(v, k) for k, v in node.items())
        if isinstance(node, list):
            return any(walk(v, parent_key) for v in node)
        return False

    return walk(value, "")


def _scrub_deliveries(
    *, shop: Shop, needles: set[str], customer_ids: set[str], order_ids: set[str], now: dt.datetime
) -> int:
    scrubbed = 0
    rows = WebhookDelivery.objects.filter(shop=shop).only("pk", "topic", "payload").iterator(chunk_size=500)
    for delivery in rows:
        payload = delivery.payload
        top_id = str(payload.get("id", "")) if isinstance(payload, dict) else ""
        own = (delivery.topic.startswith("customers/") and top_id in customer_ids) or (
            delivery.topic.startswith("orders/") and top_id in order_ids
        )
        if own or _mentions(payload, needles=needles, customer_ids=customer_ids, order_ids=order_ids):
            # last_error too: an exception message may quote the payload.
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                payload={"redacted": True, "id": top_id}, last_error="", redacted_at=now, updated_at=now
            )
            scrubbed += 1
    return scrubbed


def _erase_exports(*, shop: Shop, needles: set[str], customer_ids: set[str], now: dt.datetime) -> int:
    erased = 0
    for export in CustomerDataExport.objects.filter(shop=shop, redacted_at__isnull=True).iterator():
        if export.customer_platform_id in customer_ids or _mentions(
            export.data, needles=needles, customer_ids=customer_ids, order_ids=set()
        ):
            CustomerDataExport.objects.filter(pk=export.pk).update(data={}, redacted_at=now)
            erased += 1
    return erased


def shop_data_delete(*, shop: Shop, webhook_id: str, topic: str = "shop/redact") -> ComplianceAuditRecord:
    """shop/redact: delete the Shop; every tenant-owned row cascades (including this delivery). The audit
    record keeps only the domain, the platform shop id and the number of rows deleted per model."""
    existing = ComplianceAuditRecord.objects.filter(webhook_id=webhook_id).first()
    if existing is not None:
        return existing
    domain, platform_shop_id = shop.domain, shop.platform_shop_id
    total, per_model = Shop.objects.filter(pk=shop.pk).delete()
    logger.info("shop/redact: deleted %s rows of shop %s", total, domain)
    record, _ = ComplianceAuditRecord.objects.get_or_create(
        webhook_id=webhook_id,
        defaults={
            "topic": topic,
            "shop_domain": domain,
            "platform_shop_id": platform_shop_id,
            "counts": {"total": total, **per_model},
            "outcome": ComplianceAuditRecord.Outcome.SHOP_DELETED,
        },
    )
    return record


def compliance_audit_record_unknown_shop(
    *, topic: str, shop_domain: str, webhook_id: str, payload: dict[str, Any]
) -> ComplianceAuditRecord:
    """A privacy request for a shop we hold nothing about: record that it was received and that nothing
    was held. Only ids are copied from the payload."""
    customer = payload.get("customer") if isinstance(payload.get("customer"), dict) else {}
    record, _ = ComplianceAuditRecord.objects.get_or_create(
        webhook_id=webhook_id,
        defaults={
            "topic": topic,
            "shop_domain": shop_domain,
            "platform_shop_id": str(payload.get("shop_id", "") or ""),
            "customer_platform_id": str(customer.get("id", "") or ""),
            "data_request_id": str((payload.get("data_request") or {}).get("id", "") or "")
            if isinstance(payload.get("data_request"), dict)
            else "",
            "outcome": ComplianceAuditRecord.Outcome.NO_DATA,
        },
    )
    return record
