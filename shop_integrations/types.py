"""Platform-neutral, immutable snapshots of a store's objects, as every platform adapter returns them.

An adapter (shop_integrations.shopify.normalize, shop_integrations.csv …) turns whatever its platform sends
into these dataclasses; retention_app.commerce.services stores them. Nothing here knows about Shopify.

Conventions:
- `platform_id` is the platform's own id as text (Shopify: the numeric id, never the `gid://` form).
- Money is Decimal; the currency is the order's ISO 4217 code.
- Times are timezone-aware datetimes (UTC when the platform says so).
- `None` means "the payload did not say" (the stored value is kept); "" means "the payload said empty".
- Statuses are stored as the models expect: order financial/fulfillment status lowercase (REST spelling),
  shipment statuses upper-case (Fulfillment.ShipmentStatus), marketing states upper-case
  (Customer.MarketingState).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class CustomerData:
    platform_id: str
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    locale: str = ""
    tags: tuple[str, ...] = ()
    # None when the payload carries no consent information (the stored state is then kept).
    marketing_state: str | None = None
    marketing_state_updated_at: dt.datetime | None = None
    platform_created_at: dt.datetime | None = None
    platform_updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ProductData:
    platform_id: str
    title: str
    handle: str = ""
    url: str = ""
    image_url: str = ""
    price: Decimal | None = None
    currency: str = ""
    status: str = "ACTIVE"
    product_type: str = ""
    vendor: str = ""
    tags: tuple[str, ...] = ()
    # None when the payload does not list the product's collections (the stored ids are then kept).
    collection_ids: tuple[str, ...] | None = None
    platform_updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class LineItemData:
    platform_id: str
    product_platform_id: str = ""
    variant_platform_id: str = ""
    title: str = ""
    sku: str = ""
    quantity: int = 1
    price: Decimal = Decimal("0")


@dataclass(frozen=True, slots=True)
class FulfillmentEventData:
    platform_id: str
    fulfillment_platform_id: str
    # Upper-case shipment status (Fulfillment.ShipmentStatus).
    status: str
    happened_at: dt.datetime
    order_platform_id: str = ""
    message: str = ""
    city: str = ""
    province: str = ""
    country: str = ""
    estimated_delivery_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class FulfillmentData:
    platform_id: str
    order_platform_id: str
    # Lowercase fulfillment status: pending, open, success, cancelled, error, failure.
    status: str = ""
    # Latest upper-case shipment status, "" when the carrier said nothing, None when the payload is silent.
    shipment_status: str | None = None
    tracking_company: str = ""
    tracking_number: str = ""
    tracking_url: str = ""
    estimated_delivery_at: dt.datetime | None = None
    delivered_at: dt.datetime | None = None
    platform_created_at: dt.datetime | None = None
    platform_updated_at: dt.datetime | None = None
    events: tuple[FulfillmentEventData, ...] = ()


@dataclass(frozen=True, slots=True)
class OrderData:
    platform_id: str
    currency: str
    total_price: Decimal
    placed_at: dt.datetime
    name: str = ""
    email: str = ""
    subtotal_price: Decimal | None = None
    total_discounts: Decimal = Decimal("0")
    financial_status: str = ""
    fulfillment_status: str = ""
    discount_codes: tuple[str, ...] = ()
    customer_locale: str = ""
    buyer_accepts_marketing: bool = False
    is_test: bool = False
    cancelled_at: dt.datetime | None = None
    cancel_reason: str = ""
    platform_updated_at: dt.datetime | None = None
    customer_platform_id: str = ""
    # The customer embedded in the payload, when there is one (used to create the row when missing).
    customer: CustomerData | None = None
    # None when the payload does not list line items / fulfillments (they are then left as stored).
    line_items: tuple[LineItemData, ...] | None = None
    fulfillments: tuple[FulfillmentData, ...] | None = field(default=None)
