"""Staff views of the commerce copy and of sync jobs (read-mostly: the platform is the source of truth)."""

from django.contrib import admin

from retention_app.commerce.models import (
    Customer,
    Fulfillment,
    FulfillmentEvent,
    LineItem,
    Order,
    Product,
    SyncJob,
)


class LineItemInline(admin.TabularInline):
    model = LineItem
    extra = 0
    fields = ("platform_id", "title", "sku", "quantity", "price", "product_platform_id")
    readonly_fields = fields


class FulfillmentEventInline(admin.TabularInline):
    model = FulfillmentEvent
    extra = 0
    fields = ("platform_id", "status", "happened_at", "message", "city", "country")
    readonly_fields = fields


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = (
        "platform_id",
        "shop",
        "email",
        "first_name",
        "last_name",
        "marketing_state",
        "redacted_at",
    )
    list_filter = ("marketing_state",)
    search_fields = ("platform_id", "email", "shop__domain")
    list_select_related = ("shop",)
    raw_id_fields = ("shop",)


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("name", "platform_id", "shop", "total_price", "currency", "financial_status", "placed_at")
    list_filter = ("financial_status", "fulfillment_status", "is_test")
    search_fields = ("platform_id", "name", "email", "shop__domain")
    list_select_related = ("shop",)
    raw_id_fields = ("shop", "customer")
    inlines = [LineItemInline]
    date_hierarchy = "placed_at"


@admin.register(Fulfillment)
class FulfillmentAdmin(admin.ModelAdmin):
    list_display = ("platform_id", "shop", "tracking_company", "tracking_number", "shipment_status", "status")
    list_filter = ("shipment_status",)
    search_fields = ("platform_id", "tracking_number", "shop__domain")
    raw_id_fields = ("shop", "order")
    inlines = [FulfillmentEventInline]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("title", "platform_id", "shop", "price", "currency", "status")
    search_fields = ("title", "platform_id", "shop__domain")
    raw_id_fields = ("shop",)


@admin.register(SyncJob)
class SyncJobAdmin(admin.ModelAdmin):
    list_display = ("id", "shop", "kind", "status", "rows_done", "rows_total", "started_at", "finished_at")
    list_filter = ("kind", "status")
    search_fields = ("shop__domain", "bulk_operation_id")
    raw_id_fields = ("shop",)
    # The download address is a signed URL to the shop's data: not shown.
    exclude = ("result_url",)
    readonly_fields = (
        "bulk_operation_id", "rows_done", "rows_total", "bytes_done", "bytes_total", "watermark", "attempts",
        "lease_until", "error", "started_at", "writing_started_at", "finished_at",
    )  # fmt: skip
