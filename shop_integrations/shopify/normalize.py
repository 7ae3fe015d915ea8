"""Shopify payloads -> platform-neutral dataclasses (shop_integrations.types).

Shopify sends the same objects in two shapes, and both end here:
- webhook bodies are REST resources (snake_case, numeric ids, money as strings, lowercase enums);
  Reference: https://shopify.dev/docs/api/webhooks?reference=toml
- GraphQL answers and bulk-operation JSONL lines are GraphQL nodes (camelCase, `gid://` ids, MoneyBag,
  upper-case enums). In bulk JSONL, connection children (line items) are separate lines carrying
  `__parentId`; list fields (an order's fulfillments) stay embedded in the parent line.
  Reference: https://shopify.dev/docs/api/usage/bulk-operations/queries#the-jsonl-data-format

Every function is pure (no database, no network) so both shapes are unit-tested on real payloads.
A value the payload does not carry becomes the dataclass default / None, never an invented value.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from shop_integrations.types import (
    CustomerData,
    FulfillmentData,
    FulfillmentEventData,
    LineItemData,
    OrderData,
    ProductData,
)

SHIPMENT_STATUSES = frozenset(
    {
        "LABEL_PRINTED",
        "CONFIRMED",
        "IN_TRANSIT",
        "OUT_FOR_DELIVERY",
        "ATTEMPTED_DELIVERY",
        "DELAYED",
        "DELIVERED",
        "FAILURE",
        "READY_FOR_PICKUP",
        "PICKED_UP",
    }
)
MARKETING_STATES = frozenset(
    {"SUBSCRIBED", "UNSUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "INVALID", "REDACTED"}
)
# GraphQL OrderDisplayFulfillmentStatus -> the REST spelling stored on Order.fulfillment_status.
_ORDER_FULFILLMENT_STATUS = {
    "FULFILLED": "fulfilled",
    "PARTIALLY_FULFILLED": "partial",
    "RESTOCKED": "restocked",
}


class PayloadError(ValueError):
    """The payload lacks something every object of its kind must have (an id, a creation time)."""


# --- scalars -------------------------------------------------------------------------------------------


def platform_id(value: Any) -> str:
    """Numeric id as text from a REST id (123) or a GraphQL gid ("gid://shopify/Order/123?x=1")."""
    if value.__class__ is not str:
        if value is None:
            return ""
        value = str(value)
    if value.startswith("gid://"):
        value = value.rpartition("/")[2]
        if "?" in value:
            value = value.partition("?")[0]
    return value


def parse_time(value: Any) -> dt.datetime | None:
    """ISO 8601 (with Z or an offset) -> aware datetime; naive times are taken as UTC."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        try:
            parsed = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise PayloadError(f"unparsable time {str(value)[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def parse_money(value: Any) -> Decimal | None:
    """ "12.50" / 12.5 / {"shopMoney": {"amount": "12.50"}} / {"amount": "12.50"} -> Decimal."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        inner = value.get("shopMoney", value)
        value = inner.get("amount") if isinstance(inner, dict) else None
        if value is None:
            return None
    try:
        amount = Decimal(value if value.__class__ is str else str(value))
    except InvalidOperation:
        raise PayloadError(f"unparsable amount {str(value)[:40]!r}") from None
    if not amount.is_finite():
        raise PayloadError(f"unparsable amount {str(value)[:40]!r}")
    return amount


def shipment_status(value: Any) -> str:
    """REST "in_transit" / GraphQL "IN_TRANSIT" -> "IN_TRANSIT"; anything not a carrier status -> ""."""
    if not value:
        return ""
    upper = str(value).upper()
    return upper if upper in SHIPMENT_STATUSES else ""


def _marketing_state(value: Any) -> str | None:
    if not value:
        return None
    upper = str(value).upper()
    return upper if upper in MARKETING_STATES else None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _tags(value: Any) -> tuple[str, ...]:
    # REST sends "a, b"; GraphQL sends ["a", "b"].
    if not value:
        return ()
    items = value.split(",") if isinstance(value, str) else value
    return tuple(t.strip() for t in items if t and t.strip())


def _require(obj: dict, key: str, what: str) -> Any:
    value = obj.get(key)
    if value is None or value == "":
        raise PayloadError(f"{what} without {key!r}")
    return value


# --- REST (webhook bodies) -----------------------------------------------------------------------------


def customer_from_rest(payload: dict) -> CustomerData:
    """A REST `customer` (customers/create, customers/update, or embedded in an order)."""
    consent = payload.get("email_marketing_consent") or {}
    state = _marketing_state(consent.get("state")) if isinstance(consent, dict) else None
    if state is None and isinstance(payload.get("accepts_marketing"), bool):
        # Older payloads only say yes/no.
        state = "SUBSCRIBED" if payload["accepts_marketing"] else "NOT_SUBSCRIBED"
    return CustomerData(
        platform_id=platform_id(_require(payload, "id", "customer")),
        email=_text(payload.get("email")),
        first_name=_text(payload.get("first_name")),
        last_name=_text(payload.get("last_name")),
        phone=_text(payload.get("phone")),
        locale=_text(payload.get("locale")),
        tags=_tags(payload.get("tags")),
        marketing_state=state,
        marketing_state_updated_at=parse_time(consent.get("consent_updated_at"))
        if isinstance(consent, dict)
        else None,
        platform_created_at=parse_time(payload.get("created_at")),
        platform_updated_at=parse_time(payload.get("updated_at")),
    )


def line_item_from_rest(payload: dict) -> LineItemData:
    return LineItemData(
        platform_id=platform_id(_require(payload, "id", "line item")),
        product_platform_id=platform_id(payload.get("product_id")),
        variant_platform_id=platform_id(payload.get("variant_id")),
        title=_text(payload.get("title") or payload.get("name")),
        sku=_text(payload.get("sku")),
        quantity=int(payload.get("quantity") or 0),
        price=parse_money(payload.get("price")) or Decimal("0"),
    )


def fulfillment_event_from_rest(payload: dict) -> FulfillmentEventData:
    """A REST `fulfillment_event` (fulfillment_events/create)."""
    return FulfillmentEventData(
        platform_id=platform_id(_require(payload, "id", "fulfillment event")),
        fulfillment_platform_id=platform_id(_require(payload, "fulfillment_id", "fulfillment event")),
        order_platform_id=platform_id(payload.get("order_id")),
        status=shipment_status(payload.get("status")),
        happened_at=parse_time(payload.get("happened_at") or payload.get("created_at"))
        or parse_time(_require(payload, "happened_at", "fulfillment event")),
        message=_text(payload.get("message")),
        city=_text(payload.get("city")),
        province=_text(payload.get("province")),
        country=_text(payload.get("country")),
        estimated_delivery_at=parse_time(payload.get("estimated_delivery_at")),
    )


def fulfillment_from_rest(payload: dict, *, order_platform_id: str = "") -> FulfillmentData:
    """A REST `fulfillment` (fulfillments/create, fulfillments/update, or embedded in an order)."""
    numbers = payload.get("tracking_numbers") or []
    urls = payload.get("tracking_urls") or []
    return FulfillmentData(
        platform_id=platform_id(_require(payload, "id", "fulfillment")),
        order_platform_id=platform_id(payload.get("order_id")) or order_platform_id,
        status=_text(payload.get("status")).lower(),
        # REST always carries the key (null until the carrier says something).
        shipment_status=shipment_status(payload.get("shipment_status"))
        if "shipment_status" in payload
        else None,
        tracking_company=_text(payload.get("tracking_company")),
        tracking_number=_text(payload.get("tracking_number") or (numbers[0] if numbers else "")),
        tracking_url=_text(payload.get("tracking_url") or (urls[0] if urls else "")),
        estimated_delivery_at=parse_time(payload.get("estimated_delivery_at")),
        delivered_at=parse_time(payload.get("delivered_at")),
        platform_created_at=parse_time(payload.get("created_at")),
        platform_updated_at=parse_time(payload.get("updated_at")),
    )


def order_from_rest(payload: dict) -> OrderData:
    """A REST `order` (orders/create, orders/updated, orders/paid, orders/cancelled, orders/fulfilled)."""
    order_id = platform_id(_require(payload, "id", "order"))
    customer = payload.get("customer") or None
    customer_data = (
        customer_from_rest(customer) if isinstance(customer, dict) and customer.get("id") else None
    )
    codes = []
    for code in payload.get("discount_codes") or []:
        value = code.get("code") if isinstance(code, dict) else code
        if value:
            codes.append(str(value).upper())
    line_items = payload.get("line_items")
    fulfillments = payload.get("fulfillments")
    return OrderData(
        platform_id=order_id,
        name=_text(payload.get("name")),
        email=_text(payload.get("email") or payload.get("contact_email")),
        currency=_text(payload.get("currency") or payload.get("presentment_currency")).upper(),
        total_price=parse_money(payload.get("total_price")) or Decimal("0"),
        subtotal_price=parse_money(payload.get("subtotal_price")),
        total_discounts=parse_money(payload.get("total_discounts")) or Decimal("0"),
        financial_status=_text(payload.get("financial_status")).lower(),
        fulfillment_status=_text(payload.get("fulfillment_status")).lower(),
        discount_codes=tuple(codes),
        customer_locale=_text(payload.get("customer_locale")),
        buyer_accepts_marketing=bool(payload.get("buyer_accepts_marketing")),
        is_test=bool(payload.get("test")),
        cancelled_at=parse_time(payload.get("cancelled_at")),
        cancel_reason=_text(payload.get("cancel_reason")).lower(),
        placed_at=parse_time(_require(payload, "created_at", "order")),
        platform_updated_at=parse_time(payload.get("updated_at")),
        customer_platform_id=customer_data.platform_id if customer_data else "",
        customer=customer_data,
        line_items=tuple(line_item_from_rest(li) for li in line_items)
        if isinstance(line_items, list)
        else None,
        fulfillments=(
            tuple(fulfillment_from_rest(f, order_platform_id=order_id) for f in fulfillments)
            if isinstance(fulfillments, list)
            else None
        ),
    )


def product_from_rest(payload: dict, *, storefront_url: str = "", currency: str = "") -> ProductData:
    variants = payload.get("variants") or []
    image = payload.get("image") or {}
    handle = _text(payload.get("handle"))
    return ProductData(
        platform_id=platform_id(_require(payload, "id", "product")),
        title=_text(payload.get("title")),
        handle=handle,
        url=f"{storefront_url.rstrip('/')}/products/{handle}" if storefront_url and handle else "",
        image_url=_text(image.get("src")) if isinstance(image, dict) else "",
        price=parse_money(variants[0].get("price")) if variants else None,
        currency=currency,
        status=_text(payload.get("status") or "active").upper(),
        product_type=_text(payload.get("product_type")),
        vendor=_text(payload.get("vendor")),
        tags=_tags(payload.get("tags")),
        platform_updated_at=parse_time(payload.get("updated_at")),
    )


# --- GraphQL nodes and bulk JSONL lines ----------------------------------------------------------------


def customer_from_graphql(node: dict) -> CustomerData:
    """A GraphQL `Customer` node (defaultEmailAddress{emailAddress marketingState marketingUpdatedAt})."""
    email_address = node.get("defaultEmailAddress") or {}
    phone = node.get("defaultPhoneNumber") or {}
    state = _marketing_state(email_address.get("marketingState"))
    if state is None:
        consent = node.get("emailMarketingConsent") or {}
        state = _marketing_state(consent.get("marketingState"))
    return CustomerData(
        platform_id=platform_id(_require(node, "id", "customer")),
        email=_text(email_address.get("emailAddress") or node.get("email")),
        first_name=_text(node.get("firstName")),
        last_name=_text(node.get("lastName")),
        phone=_text(phone.get("phoneNumber") or node.get("phone")),
        locale=_text(node.get("locale")),
        tags=_tags(node.get("tags")),
        marketing_state=state,
        marketing_state_updated_at=parse_time(email_address.get("marketingUpdatedAt")),
        platform_created_at=parse_time(node.get("createdAt")),
        platform_updated_at=parse_time(node.get("updatedAt")),
    )


def line_item_from_graphql(node: dict) -> LineItemData:
    product = node.get("product") or {}
    variant = node.get("variant") or {}
    return LineItemData(
        platform_id=platform_id(_require(node, "id", "line item")),
        product_platform_id=platform_id(product.get("id")),
        variant_platform_id=platform_id(variant.get("id")),
        title=_text(node.get("title") or node.get("name")),
        sku=_text(node.get("sku")),
        quantity=int(node.get("quantity") or 0),
        price=parse_money(node.get("originalUnitPriceSet")) or Decimal("0"),
    )


def fulfillment_event_from_graphql(node: dict, *, fulfillment_platform_id: str) -> FulfillmentEventData:
    """A GraphQL `FulfillmentEvent` node: embedded in a fulfillment's `events` connection, or a bulk JSONL
    line whose `__parentId` is the fulfillment (the caller passes its platform id)."""
    return FulfillmentEventData(
        platform_id=platform_id(_require(node, "id", "fulfillment event")),
        fulfillment_platform_id=fulfillment_platform_id,
        status=shipment_status(node.get("status")),
        happened_at=parse_time(_require(node, "happenedAt", "fulfillment event")),
        message=_text(node.get("message")),
        city=_text(node.get("city")),
        province=_text(node.get("province")),
        country=_text(node.get("country")),
        estimated_delivery_at=parse_time(node.get("estimatedDeliveryAt")),
    )


def _nodes(connection: Any) -> list[dict]:
    if isinstance(connection, list):
        return connection
    if not isinstance(connection, dict):
        return []
    if "nodes" in connection:
        return connection["nodes"] or []
    return [edge["node"] for edge in connection.get("edges") or [] if edge.get("node")]


def _has_next_page(connection: Any) -> bool:
    return isinstance(connection, dict) and bool((connection.get("pageInfo") or {}).get("hasNextPage"))


def fulfillment_events_from_graphql(node: dict) -> tuple[str, tuple[FulfillmentEventData, ...], bool]:
    """A GraphQL `Fulfillment` node with its `events` connection -> (fulfillment platform id, its events,
    whether the connection has more pages)."""
    fid = platform_id(_require(node, "id", "fulfillment"))
    connection = node.get("events")
    events = tuple(fulfillment_event_from_graphql(e, fulfillment_platform_id=fid) for e in _nodes(connection))
    return fid, events, _has_next_page(connection)


def fulfillment_from_graphql(node: dict, *, order_platform_id: str = "") -> FulfillmentData:
    """A GraphQL `Fulfillment` (displayStatus is the latest shipment status)."""
    fid = platform_id(_require(node, "id", "fulfillment"))
    tracking = (node.get("trackingInfo") or [{}])[0] or {}
    order = node.get("order") or {}
    events = tuple(
        fulfillment_event_from_graphql(e, fulfillment_platform_id=fid) for e in _nodes(node.get("events"))
    )
    return FulfillmentData(
        platform_id=fid,
        order_platform_id=platform_id(order.get("id")) or order_platform_id,
        status=_text(node.get("status")).lower(),
        shipment_status=shipment_status(node.get("displayStatus")) if "displayStatus" in node else None,
        tracking_company=_text(tracking.get("company")),
        tracking_number=_text(tracking.get("number")),
        tracking_url=_text(tracking.get("url")),
        estimated_delivery_at=parse_time(node.get("estimatedDeliveryAt")),
        delivered_at=parse_time(node.get("deliveredAt")),
        platform_created_at=parse_time(node.get("createdAt")),
        platform_updated_at=parse_time(node.get("updatedAt")),
        events=events,
    )


def order_from_graphql(node: dict) -> OrderData:
    """A GraphQL `Order` node. Line items are read from `lineItems{nodes}` when present (paginated query);
    in bulk JSONL they arrive as separate lines and `line_items` stays None here."""
    order_id = platform_id(_require(node, "id", "order"))
    customer = node.get("customer") or None
    customer_data = None
    customer_id = ""
    if isinstance(customer, dict) and customer.get("id"):
        customer_id = platform_id(customer["id"])
        if len(customer) > 1:  # more than {id}: a full node we can create the row from
            customer_data = customer_from_graphql(customer)
    fulfillment_status = _text(node.get("displayFulfillmentStatus")).upper()
    codes = node.get("discountCodes")
    line_items = node.get("lineItems")
    fulfillments = node.get("fulfillments")
    return OrderData(
        platform_id=order_id,
        name=_text(node.get("name")),
        email=_text(node.get("email")),
        currency=_text(node.get("currencyCode")).upper(),
        total_price=parse_money(node.get("totalPriceSet")) or Decimal("0"),
        subtotal_price=parse_money(node.get("subtotalPriceSet")),
        total_discounts=parse_money(node.get("totalDiscountsSet")) or Decimal("0"),
        financial_status=_text(node.get("displayFinancialStatus")).lower(),
        fulfillment_status=_ORDER_FULFILLMENT_STATUS.get(fulfillment_status, ""),
        discount_codes=tuple(str(c).upper() for c in codes if c) if codes else (),
        customer_locale=_text(node.get("customerLocale")),
        buyer_accepts_marketing=bool(node.get("customerAcceptsMarketing")),
        is_test=bool(node.get("test")),
        cancelled_at=parse_time(node.get("cancelledAt")),
        cancel_reason=_text(node.get("cancelReason")).lower(),
        placed_at=parse_time(_require(node, "createdAt", "order")),
        platform_updated_at=parse_time(node.get("updatedAt")),
        customer_platform_id=customer_id,
        customer=customer_data,
        line_items=(
            tuple(line_item_from_graphql(li) for li in _nodes(line_items))
            if line_items is not None and not _has_next_page(line_items)
            else None  # absent, or only a first page: the stored items must not be cut to it
        ),
        fulfillments=(
            tuple(fulfillment_from_graphql(f, order_platform_id=order_id) for f in fulfillments)
            if isinstance(fulfillments, list)
            else None
        ),
    )


def product_from_graphql(node: dict, *, storefront_url: str = "", currency: str = "") -> ProductData:
    """A GraphQL `Product` node (API page or bulk JSONL line). `url` is the product page on the shop's
    storefront (`storefront_url` + /products/{handle}), else `onlineStoreUrl` when the storefront address is
    not known. `collection_ids` is None when the node does not select `collections` (in bulk JSONL they
    arrive as separate lines)."""
    media = node.get("featuredMedia") or {}
    image = node.get("featuredImage") or ((media.get("preview") or {}).get("image")) or {}
    price_range = node.get("priceRangeV2") or {}
    min_price = price_range.get("minVariantPrice") or {}
    handle = _text(node.get("handle"))
    return ProductData(
        platform_id=platform_id(_require(node, "id", "product")),
        title=_text(node.get("title")),
        handle=handle,
        url=f"{storefront_url.rstrip('/')}/products/{handle}"
        if storefront_url and handle
        else _text(node.get("onlineStoreUrl")),
        image_url=_text(image.get("url")),
        price=parse_money(min_price.get("amount")),
        currency=_text(min_price.get("currencyCode")) or currency,
        status=_text(node.get("status") or "ACTIVE").upper(),
        product_type=_text(node.get("productType")),
        vendor=_text(node.get("vendor")),
        tags=_tags(node.get("tags")),
        collection_ids=tuple(platform_id(c.get("id")) for c in _nodes(node["collections"]))
        if node.get("collections") is not None and not _has_next_page(node["collections"])
        else None,
        platform_updated_at=parse_time(node.get("updatedAt")),
    )


def bulk_line_kind(line: dict) -> str:
    """Which object a bulk JSONL line holds: "Customer", "Order", "LineItem", "Product" … (from the gid)."""
    gid = line.get("id")
    if gid.__class__ is not str or not gid.startswith("gid://shopify/"):
        return ""
    end = gid.find("/", 14)  # len("gid://shopify/")
    return gid[14:end] if end >= 0 else gid[14:]
