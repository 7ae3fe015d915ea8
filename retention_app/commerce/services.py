"""Writes to the commerce copy of a store. Every write is an idempotent upsert keyed by (shop, platform_id).

Rules every upsert follows:
- An older payload never overwrites a newer one: a payload whose `platform_updated_at` is older than the
  stored one is ignored; an equal timestamp is an idempotent no-op (the same webhook delivered twice).
  A payload without a timestamp only fills a row that has none yet (a stub).
- Order before customer, update before create: `order_upsert` creates the customer from the embedded
  customer (or a stub row keyed by its id) when it is missing; `orders/updated` before `orders/create`
  simply creates the order, and the later, older `orders/create` is then ignored as stale.
- Single-row upserts send the domain events of retention_app.commerce.events on commit, only when
  something was created or changed. The bulk writers (`*_bulk_upsert`, used by the backfill and the CSV
  import) send none: history must not trigger automations.
- A fulfillment (or tracking event) whose order (or fulfillment) is not stored yet raises MissingParent:
  the caller retries later (webhooks are not ordered), and reconciliation repairs what is left.

Input is the platform-neutral dataclasses of shop_integrations.types, so nothing here knows Shopify.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import psycopg
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.copy import FileWriter
from psycopg.types.json import set_json_dumps

from retention_app.commerce import events
from retention_app.commerce.models import Customer, Fulfillment, FulfillmentEvent, LineItem, Order, Product
from shop_integrations.types import (
    CustomerData,
    FulfillmentData,
    FulfillmentEventData,
    LineItemData,
    OrderData,
    ProductData,
)

logger = logging.getLogger(__name__)


class MissingParent(LookupError):
    """The parent row (order of a fulfillment, fulfillment of an event) is not stored yet: retry later."""

    # Read by the webhook ingress (retention_app.ingress.services.is_transient): worth a retry.
    retryable = True


@dataclass(frozen=True)
class UpsertResult:
    obj: Any
    created: bool
    changed: bool


def _is_stale(stored: dt.datetime | None, incoming: dt.datetime | None) -> bool:
    """True when the incoming payload must not overwrite the stored row (older, same, or undated)."""
    if stored is None:
        return False
    if incoming is None:
        return True
    return incoming <= stored


def _send_on_commit(signal, **kwargs) -> None:
    def send() -> None:
        # Robust: a failing receiver must not make the (committed) write look failed and retried.
        for receiver, result in signal.send_robust(**kwargs):
            if isinstance(result, Exception):
                logger.error("receiver %r of %s failed", receiver, kwargs.get("sender"), exc_info=result)

    transaction.on_commit(send)


def _lock_or_create(model, *, shop, platform_id: str, defaults: dict) -> tuple[Any, bool]:
    """Row for (shop, platform_id) locked for update, creating it when missing (race-safe)."""
    row = model.objects.select_for_update().filter(shop=shop, platform_id=platform_id).first()
    if row is not None:
        return row, False
    try:
        with transaction.atomic():
            return model.objects.create(shop=shop, platform_id=platform_id, **defaults), True
    except IntegrityError:
        # Another worker created it between our read and insert: take theirs.
        return model.objects.select_for_update().get(shop=shop, platform_id=platform_id), False


# --- customers ----------------------------------------------------------------------------------------


def _customer_fields(data: CustomerData, *, keep_personal: bool = False) -> dict:
    fields: dict[str, Any] = {
        "platform_created_at": data.platform_created_at,
        "platform_updated_at": data.platform_updated_at,
        "tags": list(data.tags),
    }
    if keep_personal:
        fields.pop("tags")  # blanked by the redaction (tags may hold personal notes)
    else:
        fields.update(
            email=data.email[:320],
            first_name=data.first_name[:255],
            last_name=data.last_name[:255],
            phone=data.phone[:64],
            locale=data.locale[:16],
        )
    if data.marketing_state is not None:
        fields["marketing_state"] = data.marketing_state
        fields["marketing_state_updated_at"] = data.marketing_state_updated_at
    return fields


def consent_is_newer(
    *,
    stored_state: str,
    stored_at: dt.datetime | None,
    incoming_state: str | None,
    incoming_at: dt.datetime | None,
) -> bool:
    """May the payload's marketing state replace the stored one? (Compliance: consent is never silently
    re-subscribed.) The store's `updated_at` says when the customer object changed, not when consent did: a
    delayed webhook or a reconciliation page read before Boomerang's unsubscribe was written back to the
    store carries the old SUBSCRIBED state with a fresh `updated_at`. So the consent timestamps decide:
    - no consent information in the payload: keep the stored state;
    - nothing recorded locally (no timestamp): take the payload's;
    - the payload's consent time is newer than (or equal to) the stored one: an explicit change on the
      store, it wins;
    - the payload's consent time is older: keep the stored state;
    - the payload has no consent time (old payloads, accepts_marketing only): it may only lower consent,
      never (re-)subscribe over a dated local state."""
    if incoming_state is None:
        return False
    if stored_at is None:
        return True
    if incoming_at is None:
        return incoming_state not in (Customer.MarketingState.SUBSCRIBED, Customer.MarketingState.PENDING)
    return incoming_at >= stored_at


def customer_upsert(*, shop, data: CustomerData) -> UpsertResult:
    """Create or update the customer; sends customer_upserted(created, previous_marketing_state).

    The marketing state follows `consent_is_newer` (a newer local consent change is kept). A redacted
    customer (customers/redact) stays redacted: personal fields stay blank, the state stays REDACTED."""
    with transaction.atomic():
        fields = _customer_fields(data)
        customer, created = _lock_or_create(
            Customer, shop=shop, platform_id=data.platform_id, defaults=fields
        )
        previous_state = "" if created else customer.marketing_state
        if not created:
            if _is_stale(customer.platform_updated_at, data.platform_updated_at):
                return UpsertResult(customer, False, False)
            # A redacted customer stays redacted: no personal data comes back.
            redacted = customer.redacted_at is not None
            fields = _customer_fields(data, keep_personal=redacted)
            if redacted or not consent_is_newer(
                stored_state=customer.marketing_state,
                stored_at=customer.marketing_state_updated_at,
                incoming_state=data.marketing_state,
                incoming_at=data.marketing_state_updated_at,
            ):
                fields.pop("marketing_state", None)
                fields.pop("marketing_state_updated_at", None)
            for name, value in fields.items():
                setattr(customer, name, value)
            customer.save()
        _send_on_commit(
            events.customer_upserted,
            sender=Customer,
            customer=customer,
            created=created,
            previous_marketing_state=previous_state,
        )
        return UpsertResult(customer, created, True)


def _customer_for_order(shop, data: OrderData) -> Customer | None:
    if data.customer is not None:
        return customer_upsert(shop=shop, data=data.customer).obj
    if data.customer_platform_id:
        # Only the id is known (GraphQL `customer{id}`): a stub that the customer payload fills later.
        customer, _ = _lock_or_create(
            Customer, shop=shop, platform_id=data.customer_platform_id, defaults={"email": data.email[:320]}
        )
        return customer
    return None


# --- orders -------------------------------------------------------------------------------------------


def _order_fields(data: OrderData) -> dict:
    return {
        "name": data.name[:64],
        "email": data.email[:320],
        "currency": data.currency[:3],
        "total_price": data.total_price,
        "subtotal_price": data.subtotal_price,
        "total_discounts": data.total_discounts,
        "financial_status": data.financial_status[:32],
        "fulfillment_status": data.fulfillment_status[:32],
        "discount_codes": list(data.discount_codes),
        "customer_locale": data.customer_locale[:16],
        "buyer_accepts_marketing": data.buyer_accepts_marketing,
        "is_test": data.is_test,
        "cancelled_at": data.cancelled_at,
        "cancel_reason": data.cancel_reason[:64],
        "placed_at": data.placed_at,
        "platform_updated_at": data.platform_updated_at,
    }


def _line_item_fields(item: LineItemData) -> dict:
    return {
        "product_platform_id": item.product_platform_id[:64],
        "variant_platform_id": item.variant_platform_id[:64],
        "title": item.title[:512],
        "sku": item.sku[:255],
        "quantity": max(0, item.quantity),
        "price": item.price,
    }


def _replace_line_items(order: Order, items: Sequence[LineItemData]) -> None:
    existing = {li.platform_id: li for li in order.line_items.all()}
    keep = set()
    for item in items:
        keep.add(item.platform_id)
        fields = _line_item_fields(item)
        row = existing.get(item.platform_id)
        if row is None:
            LineItem.objects.create(
                shop_id=order.shop_id, order=order, platform_id=item.platform_id, **fields
            )
        elif any(getattr(row, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(row, k, v)
            row.save()
    stale = [pk for pid, li in existing.items() if pid not in keep for pk in [li.pk]]
    if stale:
        LineItem.objects.filter(pk__in=stale).delete()


def order_upsert(*, shop, data: OrderData) -> UpsertResult:
    """Create or update the order with its line items (and embedded fulfillments, when the payload lists
    them); creates the customer when missing. Sends order_upserted(created, was_cancelled) on commit."""
    with transaction.atomic():
        customer = _customer_for_order(shop, data)
        fields = _order_fields(data)
        fields["customer"] = customer
        order, created = _lock_or_create(Order, shop=shop, platform_id=data.platform_id, defaults=fields)
        was_cancelled = False if created else order.cancelled_at is not None
        if not created:
            if _is_stale(order.platform_updated_at, data.platform_updated_at):
                return UpsertResult(order, False, False)
            if customer is None:
                fields.pop("customer")  # a payload without a customer does not unlink the stored one
            if order.redacted_at is not None:
                # customers/redact erased it: ids, amounts and dates are updated, personal fields stay blank.
                fields.update(email="", customer_locale="")
            for name, value in fields.items():
                setattr(order, name, value)
            order.save()
        if data.line_items is not None:
            _replace_line_items(order, data.line_items)
        for fulfillment in data.fulfillments or ():
            _fulfillment_upsert(shop=shop, data=fulfillment, order=order)
        _send_on_commit(
            events.order_upserted, sender=Order, order=order, created=created, was_cancelled=was_cancelled
        )
        return UpsertResult(order, created, True)


# --- fulfillments and tracking events -----------------------------------------------------------------


def _fulfillment_fields(data: FulfillmentData) -> dict:
    fields: dict[str, Any] = {
        "status": data.status[:32],
        "tracking_company": data.tracking_company[:255],
        "tracking_number": data.tracking_number[:255],
        "tracking_url": data.tracking_url[:2048],
        "platform_created_at": data.platform_created_at,
        "platform_updated_at": data.platform_updated_at,
    }
    if data.shipment_status is not None:
        fields["shipment_status"] = data.shipment_status
    if data.estimated_delivery_at is not None:
        fields["estimated_delivery_at"] = data.estimated_delivery_at
    if data.delivered_at is not None:
        fields["delivered_at"] = data.delivered_at
    return fields


def _store_event(fulfillment: Fulfillment, data: FulfillmentEventData) -> bool:
    """Store one tracking event; True when it was new or changed. Moves the fulfillment's latest status."""
    fields = {
        "status": data.status,
        "happened_at": data.happened_at,
        "message": data.message,
        "city": data.city[:255],
        "province": data.province[:255],
        "country": data.country[:255],
        "estimated_delivery_at": data.estimated_delivery_at,
    }
    if Order.objects.filter(pk=fulfillment.order_id, redacted_at__isnull=False).exists():
        fields.update(city="", province="")  # erased by customers/redact (the customer's address)
    event = FulfillmentEvent.objects.filter(fulfillment=fulfillment, platform_id=data.platform_id).first()
    if event is None:
        try:
            with transaction.atomic():
                FulfillmentEvent.objects.create(
                    shop_id=fulfillment.shop_id,
                    fulfillment=fulfillment,
                    platform_id=data.platform_id,
                    **fields,
                )
        except IntegrityError:
            return False
    elif all(getattr(event, k) == v for k, v in fields.items()):
        return False
    else:
        FulfillmentEvent.objects.filter(pk=event.pk).update(**fields)
    # The latest event (by time) is the shipment's current status, whatever order events arrive in.
    latest = FulfillmentEvent.objects.filter(fulfillment=fulfillment).order_by("-happened_at", "-id").first()
    if latest is not None and latest.status:
        fulfillment.shipment_status = latest.status
        if latest.estimated_delivery_at is not None:
            fulfillment.estimated_delivery_at = latest.estimated_delivery_at
        if latest.status == Fulfillment.ShipmentStatus.DELIVERED and fulfillment.delivered_at is None:
            fulfillment.delivered_at = latest.happened_at
    return True


def _fulfillment_upsert(*, shop, data: FulfillmentData, order: Order | None = None) -> UpsertResult:
    if order is None:
        order = Order.objects.filter(shop=shop, platform_id=data.order_platform_id).first()
        if order is None:
            raise MissingParent(
                f"order {data.order_platform_id} of fulfillment {data.platform_id} not stored yet"
            )
    fields = _fulfillment_fields(data)
    fulfillment, created = _lock_or_create(
        Fulfillment, shop=shop, platform_id=data.platform_id, defaults={"order": order, **fields}
    )
    previous_status = "" if created else fulfillment.shipment_status
    changed = created
    if not created and not _is_stale(fulfillment.platform_updated_at, data.platform_updated_at):
        for name, value in fields.items():
            setattr(fulfillment, name, value)
        changed = True
    for event in data.events:
        changed = _store_event(fulfillment, event) or changed
    if changed:
        fulfillment.save()
        _send_on_commit(
            events.fulfillment_upserted,
            sender=Fulfillment,
            fulfillment=fulfillment,
            created=created,
            previous_shipment_status=previous_status,
        )
    return UpsertResult(fulfillment, created, changed)


def fulfillment_upsert(*, shop, data: FulfillmentData) -> UpsertResult:
    """Create or update a fulfillment (and its embedded events). Raises MissingParent when the order is not
    stored yet. Sends fulfillment_upserted(created, previous_shipment_status) on commit when it changed."""
    with transaction.atomic():
        return _fulfillment_upsert(shop=shop, data=data)


def fulfillment_event_upsert(*, shop, data: FulfillmentEventData) -> UpsertResult:
    """Store a tracking event and move the fulfillment's shipment_status to the latest event's status.
    Raises MissingParent when the fulfillment is not stored yet. A duplicate event is a no-op."""
    with transaction.atomic():
        fulfillment = (
            Fulfillment.objects.select_for_update()
            .filter(shop=shop, platform_id=data.fulfillment_platform_id)
            .first()
        )
        if fulfillment is None:
            raise MissingParent(f"fulfillment {data.fulfillment_platform_id} not stored yet")
        previous_status = fulfillment.shipment_status
        if not _store_event(fulfillment, data):
            return UpsertResult(fulfillment, False, False)
        fulfillment.save()
        _send_on_commit(
            events.fulfillment_upserted,
            sender=Fulfillment,
            fulfillment=fulfillment,
            created=False,
            previous_shipment_status=previous_status,
        )
        return UpsertResult(fulfillment, False, True)


# --- products -----------------------------------------------------------------------------------------


def _product_fields(data: ProductData) -> dict:
    fields = {
        "title": data.title[:512],
        "handle": data.handle[:255],
        "url": data.url[:1024],
        "image_url": data.image_url[:1024],
        "price": data.price,
        "currency": data.currency[:3],
        "status": data.status[:20],
        "product_type": data.product_type[:255],
        "vendor": data.vendor[:255],
        "tags": list(data.tags),
        "platform_updated_at": data.platform_updated_at,
    }
    if data.collection_ids is not None:
        fields["collection_ids"] = list(data.collection_ids)
    return fields


def product_upsert(*, shop, data: ProductData) -> UpsertResult:
    """Create or update a product (no domain event: products only feed recommendations)."""
    fields = _product_fields(data)
    with transaction.atomic():
        product, created = _lock_or_create(Product, shop=shop, platform_id=data.platform_id, defaults=fields)
        if created:
            return UpsertResult(product, True, True)
        if _is_stale(product.platform_updated_at, data.platform_updated_at):
            return UpsertResult(product, False, False)
        for name, value in fields.items():
            setattr(product, name, value)
        product.save()
        return UpsertResult(product, False, True)


# --- bulk writers (backfill, CSV import): no events ---------------------------------------------------


@dataclass
class BulkBatch:
    """Rows to write in one transaction. `line_items` / `fulfillments` carry their order's platform id, and
    `fulfillment_events` their fulfillment's, so children of a parent written in an earlier batch (bulk JSONL
    streams children after parents) attach."""

    customers: list[CustomerData]
    orders: list[OrderData]
    line_items: list[tuple[str, LineItemData]]
    fulfillments: list[FulfillmentData]
    products: list[ProductData] = field(default_factory=list)
    # (product platform id, collection platform id): bulk JSONL lists a product's collections as child lines.
    product_collections: list[tuple[str, str]] = field(default_factory=list)
    # Tracking events (bulk JSONL child lines of a fulfillment), keyed by fulfillment_platform_id.
    fulfillment_events: list[FulfillmentEventData] = field(default_factory=list)

    @classmethod
    def empty(cls) -> BulkBatch:
        return cls([], [], [], [])

    def __len__(self) -> int:
        return (
            len(self.customers)
            + len(self.orders)
            + len(self.line_items)
            + len(self.fulfillments)
            + len(self.products)
            + len(self.product_collections)
            + len(self.fulfillment_events)
        )


def _newest(rows: Sequence) -> list:
    """Drop duplicates inside one batch, keeping the newest (ON CONFLICT may touch a row only once)."""
    if len({row.platform_id for row in rows}) == len(rows):
        return list(rows)  # the usual case, checked cheaply
    by_id: dict = {}
    for row in rows:
        k = row.platform_id
        old = by_id.get(k)
        if old is None or (row.platform_updated_at or _EPOCH) >= (old.platform_updated_at or _EPOCH):
            by_id[k] = row
    return list(by_id.values())


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def commerce_bulk_write(*, shop_id: int, batch: BulkBatch, durable: bool = True) -> None:
    """Write a batch of history rows (customers, orders, line items, fulfillments, tracking events, products)
    with the same rules as the single-row upserts (keyed by (shop, platform_id), never older over newer,
    replays are harmless) but without domain events. Orders' embedded line items / fulfillments (and the
    fulfillments' embedded tracking events) are written too. Orders whose customer is not stored yet get a
    stub customer (filled when the customer arrives). Tracking events are inserted once per (fulfillment,
    platform id) and never changed afterwards; those whose fulfillment is not stored are skipped. Must run
    inside a transaction the caller commits (the caller records its progress in the same transaction).

    durable=False (the backfill) lets PostgreSQL acknowledge the commit before its WAL is flushed
    (synchronous_commit off for this transaction only): a server crash can then lose the last batches, but
    always together with the resume offset committed beside them, so the resumed job writes them again."""
    commerce_bulk_write_prepared(
        shop_id=shop_id, prepared=commerce_bulk_prepare(shop_id=shop_id, batch=batch), durable=durable
    )


@dataclass
class PreparedBulkBatch:
    """A batch deduplicated and, on PostgreSQL, with its new orders' rows ready as COPY data."""

    customers: list[CustomerData]
    orders: list[OrderData]
    line_items: list[tuple[str, LineItemData]]
    fulfillments: list[FulfillmentData]
    products: list[ProductData]
    product_collections: list[tuple[str, str]]
    # Orders not stored when prepared -> their reserved ids; their rows (and their line items' and
    # fulfillments') are in `copies` as (COPY statement, binary COPY data).
    new_order_ids: dict[str, int] = field(default_factory=dict)
    copies: list[tuple[str, bytes]] = field(default_factory=list)
    # Deduplicated; their fulfillments' ids are looked up at write time (see _bulk_write_fulfillment_events).
    fulfillment_events: list[FulfillmentEventData] = field(default_factory=list)


def commerce_bulk_prepare(*, shop_id: int, batch: BulkBatch) -> PreparedBulkBatch:
    """The part of commerce_bulk_write that may run before, and outside, the write transaction (the backfill
    prepares batch N+1 in its parsing thread while batch N is written): duplicates dropped and, on
    PostgreSQL, the orders not stored yet turned into binary COPY data with ids taken from the sequence and
    their customers' ids (stub customers created, committed at once when outside a transaction: a stub is
    what the write would create anyway). An order stored after this check is caught at write time."""
    customers = _newest(batch.customers)
    orders = _newest(batch.orders)
    line_items = list(batch.line_items)
    fulfillments = list(batch.fulfillments)
    for order in orders:
        if order.line_items:
            line_items.extend((order.platform_id, li) for li in order.line_items)
        if order.fulfillments:
            fulfillments.extend(order.fulfillments)
    fulfillments = _newest(fulfillments)
    if len({li.platform_id for _, li in line_items}) != len(line_items):  # else no (order, id) repeats
        line_items = list({(o, li.platform_id): (o, li) for o, li in line_items}.values())
    prepared = PreparedBulkBatch(
        customers,
        orders,
        line_items,
        fulfillments,
        _newest(batch.products),
        batch.product_collections,
        fulfillment_events=_bulk_events(batch.fulfillment_events, fulfillments),
    )
    if connection.vendor == "postgresql" and orders:
        with connection.cursor() as cursor:
            _pg_prepare_new_orders(cursor.cursor, shop_id, prepared)
    return prepared


def commerce_bulk_write_prepared(*, shop_id: int, prepared: PreparedBulkBatch, durable: bool = True) -> None:
    """Write a batch from commerce_bulk_prepare (see commerce_bulk_write), inside the caller's transaction."""
    p = prepared
    if connection.vendor == "postgresql":
        if not durable:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        _pg_bulk_write(shop_id, p)
    else:
        _orm_bulk_write(shop_id, p.customers, p.orders, p.line_items, p.fulfillments)
    # After the fulfillments: an event of a fulfillment written just above (or in an earlier, committed
    # batch: the backfill writes batches one after the other) finds it.
    if p.fulfillment_events:
        _bulk_write_fulfillment_events(shop_id, p.fulfillment_events)
    _bulk_write_products(shop_id, p.products, p.product_collections)


def _bulk_events(
    events: list[FulfillmentEventData], fulfillments: list[FulfillmentData]
) -> list[FulfillmentEventData]:
    """The batch's tracking events (event lines and events embedded in its fulfillments), one per
    (fulfillment, platform id): the first seen, as the insert keeps the first stored."""
    embedded = [e for f in fulfillments if f.events for e in f.events]
    if embedded:
        events = [*events, *embedded]
    if len(events) < 2:
        return list(events)
    unique: dict[tuple[str, str], FulfillmentEventData] = {}
    for event in events:
        unique.setdefault((event.fulfillment_platform_id, event.platform_id), event)
    return list(unique.values())


# Fulfillment ids are looked up in chunks (SQLite limits the parameters of one statement).
_EVENT_LOOKUP_CHUNK = 5000


def _bulk_write_fulfillment_events(shop_id: int, events: list[FulfillmentEventData]) -> None:
    """Insert tracking events, ON CONFLICT (fulfillment, platform_id) DO NOTHING, on every database (a shop
    has a few events per shipment, not millions of rows: the ORM is enough). Their fulfillments' ids are read
    now, in the write transaction, so a fulfillment written by this batch or an earlier one is found; an
    event whose fulfillment is not stored (not in this shop, or its order line never came) is skipped.
    A stored event is left as it is (a webhook stored it, or a replayed batch), so a resumed backfill
    writes nothing twice. The fulfillment's shipment status is not moved: its own line carries the latest
    status (displayStatus). City and province stay blank on an order erased by customers/redact."""
    wanted = list({e.fulfillment_platform_id for e in events if e.fulfillment_platform_id})
    parents: dict[str, tuple[int, bool]] = {}
    for start in range(0, len(wanted), _EVENT_LOOKUP_CHUNK):
        found = Fulfillment.objects.filter(
            shop_id=shop_id, platform_id__in=wanted[start : start + _EVENT_LOOKUP_CHUNK]
        ).values_list("platform_id", "id", "order__redacted_at")
        parents.update((pid, (fid, redacted_at is not None)) for pid, fid, redacted_at in found)
    rows: list[FulfillmentEvent] = []
    orphans: list[FulfillmentEventData] = []
    for e in events:
        parent = parents.get(e.fulfillment_platform_id)
        if parent is None:
            orphans.append(e)
            continue
        fulfillment_id, redacted = parent
        rows.append(
            FulfillmentEvent(
                shop_id=shop_id,
                fulfillment_id=fulfillment_id,
                platform_id=e.platform_id[:64],
                status=e.status[:32],
                happened_at=e.happened_at,
                message=e.message,
                city="" if redacted else e.city[:255],
                province="" if redacted else e.province[:255],
                country=e.country[:255],
                estimated_delivery_at=e.estimated_delivery_at,
            )
        )
    if orphans:
        logger.debug(
            "bulk write for shop %s: %d tracking event(s) skipped, fulfillment not stored (e.g. event %s of"
            " fulfillment %r)",
            shop_id,
            len(orphans),
            orphans[0].platform_id,
            orphans[0].fulfillment_platform_id,
        )
    if rows:
        FulfillmentEvent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)


def _bulk_write_products(
    shop_id: int, products: list[ProductData], collections: list[tuple[str, str]]
) -> None:
    """Products through the ORM on every database (a catalog is thousands of rows, not millions). A product
    line sets the row (collection ids emptied); its collection lines, which follow it, add their ids back
    (a set union, so a replayed batch changes nothing)."""
    now = timezone.now()
    fresh = _fresh(Product, shop_id, products)
    if fresh:
        Product.objects.bulk_create(
            [
                Product(
                    shop_id=shop_id,
                    platform_id=p.platform_id,
                    created_at=now,
                    updated_at=now,
                    # A bulk product line lists no collections: they follow as child lines.
                    **{**_product_fields(p), "collection_ids": list(p.collection_ids or ())},
                )
                for p in fresh
            ],
            update_conflicts=True,
            unique_fields=["shop", "platform_id"],
            update_fields=[*{**_product_fields(fresh[0]), "collection_ids": None}, "updated_at"],
        )
    if not collections:
        return
    wanted: dict[str, set[str]] = {}
    for product_id, collection_id in collections:
        wanted.setdefault(product_id, set()).add(collection_id)
    changed = []
    for product in Product.objects.filter(shop_id=shop_id, platform_id__in=list(wanted)):
        ids = sorted(set(product.collection_ids) | wanted[product.platform_id])
        if ids != product.collection_ids:
            product.collection_ids = ids
            product.updated_at = now
            changed.append(product)
    if changed:
        Product.objects.bulk_update(changed, ["collection_ids", "updated_at"])


# PostgreSQL: COPY each kind into a temporary table, then one INSERT … SELECT … ON CONFLICT per kind.
# Parents are found with correlated scalar subqueries (one probe of the (shop, platform_id) unique index per
# row), never joins: a batch is tiny beside the shop's tables, but the planner knows neither size (temporary
# tables have no statistics; a shop's rows grow faster than autovacuum analyzes) and with a join it may read
# every row of the shop once per batch, O(N^2) over a backfill.
_PG_TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS boomerang_tmp_customer (
    platform_id text, email text, first_name text, last_name text, phone text, locale text, tags jsonb,
    marketing_state text, marketing_state_updated_at timestamptz, platform_created_at timestamptz,
    platform_updated_at timestamptz) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS boomerang_tmp_order (
    platform_id text, customer_platform_id text, name text, email text, currency text, total_price numeric,
    subtotal_price numeric, total_discounts numeric, financial_status text, fulfillment_status text,
    discount_codes jsonb, customer_locale text, buyer_accepts_marketing boolean, is_test boolean,
    cancelled_at timestamptz, cancel_reason text, placed_at timestamptz, platform_updated_at timestamptz)
    ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS boomerang_tmp_lineitem (
    order_platform_id text, platform_id text, product_platform_id text, variant_platform_id text,
    title text, sku text, quantity integer, price numeric) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS boomerang_tmp_fulfillment (
    order_platform_id text, platform_id text, status text, shipment_status text, tracking_company text,
    tracking_number text, tracking_url text, estimated_delivery_at timestamptz, delivered_at timestamptz,
    platform_created_at timestamptz, platform_updated_at timestamptz) ON COMMIT DELETE ROWS;
"""

# The WHERE of each ON CONFLICT: only a newer payload (or one filling a stub) overwrites a stored row.
_PG_UPSERT_CUSTOMERS = """
INSERT INTO commerce_customer (shop_id, platform_id, email, first_name, last_name, phone, locale, timezone,
    tags, marketing_state, marketing_state_updated_at, platform_created_at, platform_updated_at,
    created_at, updated_at)
SELECT %(shop)s, platform_id, email, first_name, last_name, phone, locale, '', tags,
    COALESCE(marketing_state, 'NOT_SUBSCRIBED'), marketing_state_updated_at, platform_created_at,
    platform_updated_at, now(), now()
FROM boomerang_tmp_customer
ON CONFLICT (shop_id, platform_id) DO UPDATE SET
    email = CASE WHEN commerce_customer.redacted_at IS NULL THEN EXCLUDED.email
        ELSE commerce_customer.email END,
    first_name = CASE WHEN commerce_customer.redacted_at IS NULL THEN EXCLUDED.first_name
        ELSE commerce_customer.first_name END,
    last_name = CASE WHEN commerce_customer.redacted_at IS NULL THEN EXCLUDED.last_name
        ELSE commerce_customer.last_name END,
    phone = CASE WHEN commerce_customer.redacted_at IS NULL THEN EXCLUDED.phone
        ELSE commerce_customer.phone END,
    locale = CASE WHEN commerce_customer.redacted_at IS NULL THEN EXCLUDED.locale
        ELSE commerce_customer.locale END,
    tags = CASE WHEN commerce_customer.redacted_at IS NULL THEN EXCLUDED.tags
        ELSE commerce_customer.tags END,
    marketing_state = CASE WHEN {consent_wins} THEN EXCLUDED.marketing_state
        ELSE commerce_customer.marketing_state END,
    marketing_state_updated_at = CASE WHEN {consent_wins} THEN EXCLUDED.marketing_state_updated_at
        ELSE commerce_customer.marketing_state_updated_at END,
    platform_created_at = EXCLUDED.platform_created_at, platform_updated_at = EXCLUDED.platform_updated_at,
    updated_at = now()
WHERE (commerce_customer.platform_updated_at IS NULL
    OR EXCLUDED.platform_updated_at > commerce_customer.platform_updated_at)
""".replace(
    # consent_is_newer in SQL (a redacted customer keeps REDACTED).
    "{consent_wins}",
    """commerce_customer.redacted_at IS NULL AND (commerce_customer.marketing_state_updated_at IS NULL
        OR EXCLUDED.marketing_state_updated_at >= commerce_customer.marketing_state_updated_at
        OR (EXCLUDED.marketing_state_updated_at IS NULL
            AND EXCLUDED.marketing_state NOT IN ('SUBSCRIBED', 'PENDING')))""",
)

_PG_STUB_CUSTOMERS = """
INSERT INTO commerce_customer (shop_id, platform_id, email, first_name, last_name, phone, locale, timezone,
    tags, marketing_state, created_at, updated_at)
SELECT DISTINCT ON (customer_platform_id) %(shop)s, customer_platform_id, email, '', '', '', '', '',
    '[]'::jsonb, 'NOT_SUBSCRIBED', now(), now()
FROM boomerang_tmp_order t
WHERE customer_platform_id <> '' AND (
    SELECT c.id FROM commerce_customer c WHERE c.shop_id = %(shop)s AND c.platform_id = t.customer_platform_id
) IS NULL
ON CONFLICT (shop_id, platform_id) DO NOTHING
"""

_PG_UPSERT_ORDERS = """
INSERT INTO commerce_order (shop_id, customer_id, platform_id, name, email, currency, total_price,
    subtotal_price, total_discounts, financial_status, fulfillment_status, discount_codes, customer_locale,
    buyer_accepts_marketing, is_test, cancelled_at, cancel_reason, placed_at, platform_updated_at,
    created_at, updated_at)
SELECT %(shop)s,
    (SELECT c.id FROM commerce_customer c
     WHERE c.shop_id = %(shop)s AND c.platform_id = t.customer_platform_id),
    t.platform_id, t.name, t.email, t.currency, t.total_price, t.subtotal_price,
    t.total_discounts, t.financial_status, t.fulfillment_status, t.discount_codes, t.customer_locale,
    t.buyer_accepts_marketing, t.is_test, t.cancelled_at, t.cancel_reason, t.placed_at, t.platform_updated_at,
    now(), now()
FROM boomerang_tmp_order t
ON CONFLICT (shop_id, platform_id) DO UPDATE SET
    customer_id = COALESCE(EXCLUDED.customer_id, commerce_order.customer_id), name = EXCLUDED.name,
    email = CASE WHEN commerce_order.redacted_at IS NULL THEN EXCLUDED.email ELSE '' END,
    customer_locale = CASE WHEN commerce_order.redacted_at IS NULL THEN EXCLUDED.customer_locale ELSE '' END,
    currency = EXCLUDED.currency, total_price = EXCLUDED.total_price,
    subtotal_price = EXCLUDED.subtotal_price, total_discounts = EXCLUDED.total_discounts,
    financial_status = EXCLUDED.financial_status, fulfillment_status = EXCLUDED.fulfillment_status,
    discount_codes = EXCLUDED.discount_codes,
    buyer_accepts_marketing = EXCLUDED.buyer_accepts_marketing, is_test = EXCLUDED.is_test,
    cancelled_at = EXCLUDED.cancelled_at, cancel_reason = EXCLUDED.cancel_reason,
    placed_at = EXCLUDED.placed_at, platform_updated_at = EXCLUDED.platform_updated_at, updated_at = now()
WHERE (commerce_order.platform_updated_at IS NULL
    OR EXCLUDED.platform_updated_at > commerce_order.platform_updated_at)
"""

_PG_UPSERT_LINE_ITEMS = """
INSERT INTO commerce_lineitem (shop_id, order_id, platform_id, product_platform_id, variant_platform_id,
    title, sku, quantity, price)
SELECT %(shop)s, t.order_id, t.platform_id, t.product_platform_id, t.variant_platform_id, t.title, t.sku,
    t.quantity, t.price
FROM (
    SELECT *, (SELECT o.id FROM commerce_order o
               WHERE o.shop_id = %(shop)s AND o.platform_id = l.order_platform_id) AS order_id
    FROM boomerang_tmp_lineitem l OFFSET 0
) t
WHERE t.order_id IS NOT NULL
ON CONFLICT (order_id, platform_id) DO UPDATE SET
    product_platform_id = EXCLUDED.product_platform_id, variant_platform_id = EXCLUDED.variant_platform_id,
    title = EXCLUDED.title, sku = EXCLUDED.sku, quantity = EXCLUDED.quantity, price = EXCLUDED.price
WHERE (commerce_lineitem.title, commerce_lineitem.quantity, commerce_lineitem.price, commerce_lineitem.sku)
    IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.quantity, EXCLUDED.price, EXCLUDED.sku)
"""

_PG_UPSERT_FULFILLMENTS = """
INSERT INTO commerce_fulfillment (shop_id, order_id, platform_id, status, shipment_status, tracking_company,
    tracking_number, tracking_url, estimated_delivery_at, delivered_at, platform_created_at,
    platform_updated_at, created_at, updated_at)
SELECT %(shop)s, t.order_id, t.platform_id, t.status, t.shipment_status, t.tracking_company,
    t.tracking_number, t.tracking_url, t.estimated_delivery_at, t.delivered_at, t.platform_created_at,
    t.platform_updated_at,
    now(), now()
FROM (
    SELECT *, (SELECT o.id FROM commerce_order o
               WHERE o.shop_id = %(shop)s AND o.platform_id = f.order_platform_id) AS order_id
    FROM boomerang_tmp_fulfillment f OFFSET 0
) t
WHERE t.order_id IS NOT NULL
ON CONFLICT (shop_id, platform_id) DO UPDATE SET
    status = EXCLUDED.status, shipment_status = EXCLUDED.shipment_status,
    tracking_company = EXCLUDED.tracking_company, tracking_number = EXCLUDED.tracking_number,
    tracking_url = EXCLUDED.tracking_url,
    estimated_delivery_at = COALESCE(EXCLUDED.estimated_delivery_at,
        commerce_fulfillment.estimated_delivery_at),
    delivered_at = COALESCE(EXCLUDED.delivered_at, commerce_fulfillment.delivered_at),
    platform_created_at = EXCLUDED.platform_created_at, platform_updated_at = EXCLUDED.platform_updated_at,
    updated_at = now()
WHERE (commerce_fulfillment.platform_updated_at IS NULL
    OR EXCLUDED.platform_updated_at > commerce_fulfillment.platform_updated_at)
"""


def _pg_copy(cursor, table: str, columns: str, rows: Iterable[tuple]) -> None:
    raw = cursor.cursor  # the psycopg cursor under Django's wrapper
    with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _pg_bulk_write(shop_id: int, prepared: PreparedBulkBatch) -> None:
    params = {"shop": shop_id}
    orders, line_items, fulfillments = prepared.orders, prepared.line_items, prepared.fulfillments
    with connection.cursor() as cursor:
        cursor.execute(_PG_TEMP_TABLES)
        if prepared.customers:
            _pg_upsert_customers(cursor, prepared.customers, params)
        if prepared.copies and _pg_copy_new_orders(cursor.cursor, prepared.copies):
            new_ids = prepared.new_order_ids
            orders = [o for o in orders if o.platform_id not in new_ids]
            line_items = [(o, li) for o, li in line_items if o not in new_ids]
            fulfillments = [f for f in fulfillments if f.order_platform_id not in new_ids]
        _pg_upsert(cursor, orders, line_items, fulfillments, params)


def _pg_upsert_customers(cursor, customers, params) -> None:
    _pg_copy(
        cursor,
        "boomerang_tmp_customer",
        "platform_id, email, first_name, last_name, phone, locale, tags, marketing_state,"
        " marketing_state_updated_at, platform_created_at, platform_updated_at",
        (
            (
                c.platform_id,
                c.email[:320],
                c.first_name[:255],
                c.last_name[:255],
                c.phone[:64],
                c.locale[:16],
                json.dumps(list(c.tags)),
                c.marketing_state,
                c.marketing_state_updated_at,
                c.platform_created_at,
                c.platform_updated_at,
            )
            for c in customers
        ),
    )
    cursor.execute(_PG_UPSERT_CUSTOMERS, params)


# The columns both PostgreSQL write paths (upsert through temporary tables, COPY of new orders) take from the
# neutral dataclasses, as tuples (the hot path), truncated like _order_fields / _line_item_fields /
# _fulfillment_fields above (the ORM path): one place for the two PostgreSQL paths.
def _order_row_head(o: OrderData) -> tuple:
    return (
        o.name[:64], o.email[:320], o.currency[:3], o.total_price, o.subtotal_price, o.total_discounts,
        o.financial_status[:32], o.fulfillment_status[:32],
    )  # fmt: skip


def _order_row_tail(o: OrderData) -> tuple:
    return (
        o.customer_locale[:16], o.buyer_accepts_marketing, o.is_test, o.cancelled_at, o.cancel_reason[:64],
        o.placed_at, o.platform_updated_at,
    )  # fmt: skip


def _line_item_row(li: LineItemData) -> tuple:
    return (
        li.platform_id, li.product_platform_id[:64], li.variant_platform_id[:64], li.title[:512],
        li.sku[:255], max(0, li.quantity), li.price,
    )  # fmt: skip


def _fulfillment_row(f: FulfillmentData) -> tuple:
    return (
        f.platform_id, f.status[:32], f.shipment_status or "", f.tracking_company[:255],
        f.tracking_number[:255], f.tracking_url[:2048], f.estimated_delivery_at, f.delivered_at,
        f.platform_created_at, f.platform_updated_at,
    )  # fmt: skip


def _pg_upsert(cursor, orders, line_items, fulfillments, params) -> None:
    """COPY into temporary tables, then INSERT … SELECT … ON CONFLICT (rows that may be stored already)."""
    if orders:
        _pg_copy(
            cursor,
            "boomerang_tmp_order",
            "platform_id, customer_platform_id, name, email, currency, total_price, subtotal_price,"
            " total_discounts, financial_status, fulfillment_status, discount_codes, customer_locale,"
            " buyer_accepts_marketing, is_test, cancelled_at, cancel_reason, placed_at,"
            " platform_updated_at",
            (
                (o.platform_id, o.customer_platform_id)
                + _order_row_head(o)
                + (json.dumps(list(o.discount_codes)) if o.discount_codes else "[]",)
                + _order_row_tail(o)
                for o in orders
            ),
        )
        cursor.execute(_PG_STUB_CUSTOMERS, params)
        cursor.execute(_PG_UPSERT_ORDERS, params)
    if line_items:
        _pg_copy(
            cursor,
            "boomerang_tmp_lineitem",
            "order_platform_id, platform_id, product_platform_id, variant_platform_id, title, sku,"
            " quantity, price",
            ((order_id, *_line_item_row(li)) for order_id, li in line_items),
        )
        cursor.execute(_PG_UPSERT_LINE_ITEMS, params)
    if fulfillments:
        _pg_copy(
            cursor,
            "boomerang_tmp_fulfillment",
            "order_platform_id, platform_id, status, shipment_status, tracking_company, tracking_number,"
            " tracking_url, estimated_delivery_at, delivered_at, platform_created_at,"
            " platform_updated_at",
            ((f.order_platform_id, *_fulfillment_row(f)) for f in fulfillments),
        )
        cursor.execute(_PG_UPSERT_FULFILLMENTS, params)


# Orders not stored yet (in a first backfill: all of them) skip the temporary tables and ON CONFLICT: their
# ids are taken from the table's sequence up front, so they and their line items and fulfillments go in by
# plain COPY into the indexed tables, the way PostgreSQL's own COPY loads them. Nothing stored can be
# overwritten (none of these rows exists), so the upsert rules hold. An order stored after the check (by a
# webhook, or by a batch still being written when this one was prepared) fails the COPY on the unique
# constraint; the savepoint then drops the COPY and the batch takes the upsert path.
_PG_STUB_CUSTOMERS_FROM_ARRAYS = """
INSERT INTO commerce_customer (shop_id, platform_id, email, first_name, last_name, phone, locale, timezone,
    tags, marketing_state, created_at, updated_at)
SELECT %s, u.platform_id, u.email, '', '', '', '', '', '[]'::jsonb, 'NOT_SUBSCRIBED', now(), now()
FROM unnest(%s::text[], %s::text[]) AS u(platform_id, email)
ON CONFLICT (shop_id, platform_id) DO NOTHING
"""
# Binary COPY: nothing to escape, and the server reads numbers and times without parsing text.
_ORDER_COPY = (
    "COPY commerce_order (id, shop_id, customer_id, platform_id, name, email, currency, total_price,"
    " subtotal_price, total_discounts, financial_status, fulfillment_status, discount_codes, customer_locale,"
    " buyer_accepts_marketing, is_test, cancelled_at, cancel_reason, placed_at, platform_updated_at,"
    " created_at, updated_at) FROM STDIN (FORMAT BINARY)",
    ["int8", "int8", "int8", "text", "text", "text", "text", "numeric", "numeric", "numeric", "text", "text"]
    + ["jsonb", "text", "bool", "bool", "timestamptz", "text", "timestamptz", "timestamptz", "timestamptz"]
    + ["timestamptz"],
)
_LINE_ITEM_COPY = (
    "COPY commerce_lineitem (shop_id, order_id, platform_id, product_platform_id, variant_platform_id, title,"
    " sku, quantity, price) FROM STDIN (FORMAT BINARY)",
    ["int8", "int8", "text", "text", "text", "text", "text", "int4", "numeric"],
)
_FULFILLMENT_COPY = (
    "COPY commerce_fulfillment (shop_id, order_id, platform_id, status, shipment_status, tracking_company,"
    " tracking_number, tracking_url, estimated_delivery_at, delivered_at, platform_created_at,"
    " platform_updated_at, created_at, updated_at) FROM STDIN (FORMAT BINARY)",
    ["int8", "int8", "text", "text", "text", "text", "text", "text", "timestamptz", "timestamptz"]
    + ["timestamptz", "timestamptz", "timestamptz", "timestamptz"],
)


def _pg_copy_data(raw, statement: tuple[str, list[str]], rows: Iterable[tuple]) -> bytes:
    """Binary COPY data of `rows`, made without the server (b"" when there is no row)."""
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        return b""
    buffer = io.BytesIO()
    with raw.connection.cursor() as unused:  # a cursor that ran nothing (Copy requires it); only its adapters
        set_json_dumps(orjson.dumps, unused)  # jsonb: orjson instead of json.dumps, for this cursor only
        with psycopg.Copy(unused, binary=True, writer=FileWriter(buffer)) as copy:
            copy.set_types(statement[1])
            copy.write_row(first)
            for row in rows:
                copy.write_row(row)
    return buffer.getvalue()


def _pg_customer_ids(raw, shop_id: int, orders: list[OrderData]) -> dict[str, int]:
    """{customer platform id: id} for the orders' customers, creating stubs for the missing ones."""
    wanted: dict[str, str] = {}
    for o in orders:
        if o.customer_platform_id and o.customer_platform_id not in wanted:
            wanted[o.customer_platform_id] = o.email[:320]
    if not wanted:
        return {}
    select = "SELECT platform_id, id FROM commerce_customer WHERE shop_id = %s AND platform_id = ANY(%s)"
    raw.execute(select, [shop_id, list(wanted)])
    ids = dict(raw.fetchall())
    missing = [pid for pid in wanted if pid not in ids]
    if missing:
        raw.execute(_PG_STUB_CUSTOMERS_FROM_ARRAYS, [shop_id, missing, [wanted[pid] for pid in missing]])
        raw.execute(select, [shop_id, missing])
        ids.update(raw.fetchall())
    return ids


def _pg_stored_order_ids(raw, shop_id: int, orders: list[OrderData]) -> set[str]:
    raw.execute(
        "SELECT platform_id FROM commerce_order WHERE shop_id = %s AND platform_id = ANY(%s)",
        [shop_id, [o.platform_id for o in orders]],
    )
    return {row[0] for row in raw.fetchall()}


def _pg_prepare_new_orders(raw, shop_id: int, prepared: PreparedBulkBatch) -> None:
    """Fill prepared.new_order_ids / copies with the orders not stored yet and their line items and
    fulfillments."""
    orders, line_items, fulfillments = prepared.orders, prepared.line_items, prepared.fulfillments
    stored = _pg_stored_order_ids(raw, shop_id, orders)
    new = [o for o in orders if o.platform_id not in stored] if stored else orders
    if not new:
        return
    customer_ids = _pg_customer_ids(raw, shop_id, new)
    raw.execute(
        "SELECT nextval(pg_get_serial_sequence('commerce_order', 'id')) FROM generate_series(1, %s)",
        [len(new)],
    )
    order_ids = {o.platform_id: row[0] for o, row in zip(new, raw.fetchall(), strict=True)}
    now = timezone.now()
    orders_data = _pg_copy_data(
        raw,
        _ORDER_COPY,
        (
            (order_ids[o.platform_id], shop_id, customer_ids.get(o.customer_platform_id), o.platform_id)
            + _order_row_head(o)
            + (list(o.discount_codes),)
            + _order_row_tail(o)
            + (now, now)
            for o in new
        ),
    )
    items_data = _pg_copy_data(
        raw,
        _LINE_ITEM_COPY,
        ((shop_id, order_ids[o], *_line_item_row(li)) for o, li in line_items if o in order_ids),
    )
    fulfillments_data = _pg_copy_data(
        raw,
        _FULFILLMENT_COPY,
        (
            (shop_id, order_ids[f.order_platform_id], *_fulfillment_row(f), now, now)
            for f in fulfillments
            if f.order_platform_id in order_ids
        ),
    )
    prepared.new_order_ids = order_ids
    prepared.copies = [
        (statement[0], data)
        for statement, data in (
            (_ORDER_COPY, orders_data),
            (_LINE_ITEM_COPY, items_data),
            (_FULFILLMENT_COPY, fulfillments_data),
        )
        if data
    ]


def _pg_copy_new_orders(raw, copies: list[tuple[str, bytes]]) -> bool:
    """COPY prepared data in a savepoint; False (nothing written) when a row exists by now."""
    try:
        with transaction.atomic():
            for sql, data in copies:
                with raw.copy(sql) as copy:
                    copy.write(data)
    except (IntegrityError, psycopg.IntegrityError):
        return False
    return True


def _fresh(model, shop_id: int, rows: list) -> list:
    """Rows that are new or newer than the stored copy (the ORM path's version of the ON CONFLICT WHERE)."""
    if not rows:
        return []
    stored = dict(
        model.objects.filter(shop_id=shop_id, platform_id__in=[r.platform_id for r in rows]).values_list(
            "platform_id", "platform_updated_at"
        )
    )
    return [
        r
        for r in rows
        if r.platform_id not in stored or not _is_stale(stored[r.platform_id], r.platform_updated_at)
    ]


def _orm_bulk_write(shop_id, customers, orders, line_items, fulfillments) -> None:
    """Portable path (SQLite): bulk_create(update_conflicts=True) after dropping stale rows."""
    now = timezone.now()
    customers = _fresh(Customer, shop_id, customers)
    redacted = set(
        Customer.objects.filter(
            shop_id=shop_id, platform_id__in=[c.platform_id for c in customers], redacted_at__isnull=False
        ).values_list("platform_id", flat=True)
    )
    customers = [c for c in customers if c.platform_id not in redacted]
    consent = {
        pid: (state, at)
        for pid, state, at in Customer.objects.filter(
            shop_id=shop_id, platform_id__in=[c.platform_id for c in customers]
        ).values_list("platform_id", "marketing_state", "marketing_state_updated_at")
    }
    customers = [
        c
        if c.platform_id not in consent
        or consent_is_newer(
            stored_state=consent[c.platform_id][0],
            stored_at=consent[c.platform_id][1],
            incoming_state=c.marketing_state or Customer.MarketingState.NOT_SUBSCRIBED,
            incoming_at=c.marketing_state_updated_at,
        )
        else replace(
            c, marketing_state=consent[c.platform_id][0], marketing_state_updated_at=consent[c.platform_id][1]
        )
        for c in customers
    ]
    if customers:
        Customer.objects.bulk_create(
            [
                Customer(
                    shop_id=shop_id,
                    platform_id=c.platform_id,
                    marketing_state=c.marketing_state or Customer.MarketingState.NOT_SUBSCRIBED,
                    created_at=now,
                    updated_at=now,
                    **{k: v for k, v in _customer_fields(c).items() if k != "marketing_state"},
                )
                for c in customers
            ],
            update_conflicts=True,
            unique_fields=["shop", "platform_id"],
            update_fields=[
                "email",
                "first_name",
                "last_name",
                "phone",
                "locale",
                "tags",
                "marketing_state",
                "marketing_state_updated_at",
                "platform_created_at",
                "platform_updated_at",
                "updated_at",
            ],
        )
    if orders:
        wanted = {o.customer_platform_id: o.email for o in orders if o.customer_platform_id}
        Customer.objects.bulk_create(
            [
                Customer(shop_id=shop_id, platform_id=pid, email=email[:320], created_at=now, updated_at=now)
                for pid, email in wanted.items()
            ],
            ignore_conflicts=True,
        )
        customer_ids = dict(
            Customer.objects.filter(shop_id=shop_id, platform_id__in=list(wanted)).values_list(
                "platform_id", "id"
            )
        )
        fresh = _fresh(Order, shop_id, orders)
        redacted_orders = set(
            Order.objects.filter(
                shop_id=shop_id, platform_id__in=[o.platform_id for o in fresh], redacted_at__isnull=False
            ).values_list("platform_id", flat=True)
        )
        fresh = [
            replace(o, email="", customer_locale="") if o.platform_id in redacted_orders else o for o in fresh
        ]
        Order.objects.bulk_create(
            [
                Order(
                    shop_id=shop_id,
                    platform_id=o.platform_id,
                    customer_id=customer_ids.get(o.customer_platform_id),
                    created_at=now,
                    updated_at=now,
                    **_order_fields(o),
                )
                for o in fresh
            ],
            update_conflicts=True,
            unique_fields=["shop", "platform_id"],
            update_fields=[*_order_fields(orders[0]).keys(), "customer", "updated_at"],
        )
    order_ids = dict(
        Order.objects.filter(
            shop_id=shop_id,
            platform_id__in={o for o, _ in line_items} | {f.order_platform_id for f in fulfillments},
        ).values_list("platform_id", "id")
    )
    items = [
        LineItem(shop_id=shop_id, order_id=order_ids[o], platform_id=li.platform_id, **_line_item_fields(li))
        for o, li in line_items
        if o in order_ids
    ]
    if items:
        LineItem.objects.bulk_create(
            items,
            update_conflicts=True,
            unique_fields=["order", "platform_id"],
            update_fields=list(_line_item_fields(line_items[0][1]).keys()),
        )
    fresh_fulfillments = [
        f for f in _fresh(Fulfillment, shop_id, fulfillments) if f.order_platform_id in order_ids
    ]
    if fresh_fulfillments:
        Fulfillment.objects.bulk_create(
            [
                Fulfillment(
                    shop_id=shop_id,
                    order_id=order_ids[f.order_platform_id],
                    platform_id=f.platform_id,
                    created_at=now,
                    updated_at=now,
                    **{"shipment_status": "", **_fulfillment_fields(f)},
                )
                for f in fresh_fulfillments
            ],
            update_conflicts=True,
            unique_fields=["shop", "platform_id"],
            update_fields=[
                "order",
                "status",
                "shipment_status",
                "tracking_company",
                "tracking_number",
                "tracking_url",
                "estimated_delivery_at",
                "delivered_at",
                "platform_created_at",
                "platform_updated_at",
                "updated_at",
            ],
        )
