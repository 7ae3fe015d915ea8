"""Platform-neutral copy of a store's customers, orders, fulfillments and products.

Rows are keyed by (shop, platform_id) — the id the platform gives the object (for Shopify the numeric id,
as text). `platform_updated_at` is the platform's own `updated_at`: an upsert never lets an older payload
overwrite a newer one. `created_at`/`updated_at` are this app's bookkeeping times.
Money is Decimal with the order's currency.
"""

from __future__ import annotations

from django.db import models

MONEY = {"max_digits": 18, "decimal_places": 4}


class Customer(models.Model):
    class MarketingState(models.TextChoices):
        SUBSCRIBED = "SUBSCRIBED"
        UNSUBSCRIBED = "UNSUBSCRIBED"
        NOT_SUBSCRIBED = "NOT_SUBSCRIBED"
        PENDING = "PENDING"
        INVALID = "INVALID"
        REDACTED = "REDACTED"

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="customers")
    platform_id = models.CharField(max_length=64)
    email = models.EmailField(max_length=320, blank=True, default="")
    first_name = models.CharField(max_length=255, blank=True, default="")
    last_name = models.CharField(max_length=255, blank=True, default="")
    phone = models.CharField(max_length=64, blank=True, default="")
    locale = models.CharField(max_length=16, blank=True, default="")
    # IANA time zone of the customer when known (quiet hours, tracking-page times).
    timezone = models.CharField(max_length=64, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    marketing_state = models.CharField(
        max_length=20, choices=MarketingState.choices, default=MarketingState.NOT_SUBSCRIBED
    )
    marketing_state_updated_at = models.DateTimeField(null=True, blank=True)
    platform_created_at = models.DateTimeField(null=True, blank=True)
    platform_updated_at = models.DateTimeField(null=True, blank=True)
    # Set when personal data was erased (customers/redact); the row stays so orders keep their metrics.
    redacted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "platform_id"], name="customer_unique_shop_platform_id")
        ]
        indexes = [models.Index(fields=["shop", "email"])]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}>".strip()

    @property
    def accepts_email_marketing(self) -> bool:
        return self.marketing_state == self.MarketingState.SUBSCRIBED


class Product(models.Model):
    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="products")
    platform_id = models.CharField(max_length=64)
    title = models.CharField(max_length=512)
    handle = models.CharField(max_length=255, blank=True, default="")
    # Public product page address on the storefront.
    url = models.URLField(max_length=1024, blank=True, default="")
    image_url = models.URLField(max_length=1024, blank=True, default="")
    price = models.DecimalField(**MONEY, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    status = models.CharField(max_length=20, blank=True, default="ACTIVE")
    product_type = models.CharField(max_length=255, blank=True, default="")
    vendor = models.CharField(max_length=255, blank=True, default="")
    tags = models.JSONField(default=list, blank=True)
    # Platform ids of the collections this product belongs to (rule condition "contains collection").
    collection_ids = models.JSONField(default=list, blank=True)
    platform_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "platform_id"], name="product_unique_shop_platform_id")
        ]

    def __str__(self) -> str:
        return self.title


class Order(models.Model):
    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="orders")
    customer = models.ForeignKey(
        Customer, on_delete=models.SET_NULL, null=True, blank=True, related_name="orders"
    )
    platform_id = models.CharField(max_length=64)
    # Display name, e.g. "#1001".
    name = models.CharField(max_length=64, blank=True, default="")
    email = models.EmailField(max_length=320, blank=True, default="")
    currency = models.CharField(max_length=3)
    total_price = models.DecimalField(**MONEY)
    subtotal_price = models.DecimalField(**MONEY, null=True, blank=True)
    total_discounts = models.DecimalField(**MONEY, default=0)
    # Lowercase REST values: pending, authorized, paid, partially_paid, refunded, partially_refunded, voided.
    financial_status = models.CharField(max_length=32, blank=True, default="")
    # Lowercase: "" (unfulfilled), partial, fulfilled, restocked.
    fulfillment_status = models.CharField(max_length=32, blank=True, default="")
    # Codes used on the order, e.g. ["BACK-7QX2"] (upper-cased for matching).
    discount_codes = models.JSONField(default=list, blank=True)
    customer_locale = models.CharField(max_length=16, blank=True, default="")
    buyer_accepts_marketing = models.BooleanField(default=False)
    is_test = models.BooleanField(default=False)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=64, blank=True, default="")
    # When the order was placed on the platform (its `created_at`): the time every metric uses.
    placed_at = models.DateTimeField()
    platform_updated_at = models.DateTimeField(null=True, blank=True)
    # Set when personal fields were erased (customers/redact with orders_to_redact).
    redacted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "platform_id"], name="order_unique_shop_platform_id")
        ]
        indexes = [
            models.Index(fields=["shop", "placed_at"]),
            models.Index(fields=["shop", "customer", "placed_at"]),
            # The metrics' per-customer rollup reads only these columns of the orders that count: with this
            # index PostgreSQL answers it from the index alone (bench/dashboard.py). SQLite ignores INCLUDE.
            models.Index(
                fields=["shop", "customer", "placed_at"],
                include=["total_price"],
                condition=models.Q(cancelled_at__isnull=True, is_test=False),
                name="order_metrics_cover",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.platform_id

    @property
    def counts_for_metrics(self) -> bool:
        """Cancelled and test orders are excluded from every metric."""
        return self.cancelled_at is None and not self.is_test


class LineItem(models.Model):
    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="line_items")
    platform_id = models.CharField(max_length=64)
    product_platform_id = models.CharField(max_length=64, blank=True, default="")
    variant_platform_id = models.CharField(max_length=64, blank=True, default="")
    title = models.CharField(max_length=512, blank=True, default="")
    sku = models.CharField(max_length=255, blank=True, default="")
    quantity = models.PositiveIntegerField(default=1)
    price = models.DecimalField(**MONEY, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "platform_id"], name="lineitem_unique_order_platform_id")
        ]
        indexes = [models.Index(fields=["shop", "product_platform_id"])]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.title}"


class Fulfillment(models.Model):
    class ShipmentStatus(models.TextChoices):
        # GraphQL FulfillmentDisplayStatus / FulfillmentEventStatus values (REST sends them lowercase).
        LABEL_PRINTED = "LABEL_PRINTED"
        CONFIRMED = "CONFIRMED"
        IN_TRANSIT = "IN_TRANSIT"
        OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
        ATTEMPTED_DELIVERY = "ATTEMPTED_DELIVERY"
        DELAYED = "DELAYED"
        DELIVERED = "DELIVERED"
        FAILURE = "FAILURE"
        READY_FOR_PICKUP = "READY_FOR_PICKUP"
        PICKED_UP = "PICKED_UP"

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="fulfillments")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="fulfillments")
    platform_id = models.CharField(max_length=64)
    # Lowercase REST fulfillment status: pending, open, success, cancelled, error, failure.
    status = models.CharField(max_length=32, blank=True, default="")
    # Latest shipment status, upper-case (ShipmentStatus) or "" when the carrier has said nothing yet.
    shipment_status = models.CharField(max_length=32, choices=ShipmentStatus.choices, blank=True, default="")
    tracking_company = models.CharField(max_length=255, blank=True, default="")
    tracking_number = models.CharField(max_length=255, blank=True, default="")
    tracking_url = models.URLField(max_length=2048, blank=True, default="")
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    platform_created_at = models.DateTimeField(null=True, blank=True)
    platform_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "platform_id"], name="fulfillment_unique_shop_platform_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.tracking_company} {self.tracking_number}".strip() or self.platform_id


class FulfillmentEvent(models.Model):
    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="+")
    fulfillment = models.ForeignKey(Fulfillment, on_delete=models.CASCADE, related_name="events")
    platform_id = models.CharField(max_length=64)
    status = models.CharField(max_length=32, choices=Fulfillment.ShipmentStatus.choices)
    happened_at = models.DateTimeField()
    message = models.TextField(blank=True, default="")
    city = models.CharField(max_length=255, blank=True, default="")
    province = models.CharField(max_length=255, blank=True, default="")
    country = models.CharField(max_length=255, blank=True, default="")
    estimated_delivery_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["fulfillment", "platform_id"], name="fulfillmentevent_unique_fulfillment_platform_id"
            )
        ]
        ordering = ["happened_at", "id"]

    def __str__(self) -> str:
        return f"{self.status} at {self.happened_at:%Y-%m-%d %H:%M}"


class SyncJob(models.Model):
    """One sync run of a shop's history (issue 4): a bulk backfill of customers, orders or products, a
    reconciliation pass, or a CSV import. Holds the progress the panel shows (rows done / total, rate, ETA)
    and, for a bulk backfill, the resume point: `bytes_done` is the byte offset in the JSONL result just after
    the last line whose rows are committed (written in the same transaction as those rows)."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", "Customers backfill"
        ORDERS = "orders", "Orders backfill"
        PRODUCTS = "products", "Products backfill"
        RECONCILE = "reconcile", "Reconciliation"
        CSV_IMPORT = "csv_import", "CSV import"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to start"
        RUNNING = "running", "Shopify is preparing the export"
        DOWNLOADING = "downloading", "Writing rows"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING, Status.DOWNLOADING)

    shop = models.ForeignKey("shops.Shop", on_delete=models.CASCADE, related_name="sync_jobs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    bulk_operation_id = models.CharField(max_length=255, blank=True, default="")
    # Signed download address of the bulk result (expires after a week on Shopify).
    result_url = models.TextField(blank=True, default="")
    rows_total = models.BigIntegerField(null=True, blank=True)
    rows_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(null=True, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    # Reconciliation: everything updated up to this time is synced (the next pass asks for updated_at:>it).
    watermark = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # A worker owns the job until then (renewed after every batch); a crashed worker's lease runs out and
    # the job is resumed from bytes_done by the next worker (see shop_integrations.shopify.sync).
    lease_until = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    # When rows started being written (rate and ETA are measured from here).
    writing_started_at = models.DateTimeField(null=True, blank=True)
    rows_done_at_writing_start = models.BigIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # At most one active job of a kind per shop: starting a backfill twice starts it once.
            models.UniqueConstraint(
                fields=["shop", "kind"],
                condition=models.Q(status__in=["pending", "running", "downloading"]),
                name="syncjob_one_active_per_shop_kind",
            )
        ]
        indexes = [models.Index(fields=["shop", "kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.shop_id}: {self.status}"
