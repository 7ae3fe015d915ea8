from django.contrib import admin, messages

from retention_app.ingress import services
from retention_app.ingress.models import ComplianceAuditRecord, CustomerDataExport, WebhookDelivery


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("received_at", "topic", "shop_domain", "status", "attempts", "webhook_id")
    list_filter = ("status", "topic")
    search_fields = ("webhook_id", "shop_domain", "topic")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["retry_failed"]

    @admin.action(description="Retry the selected failed deliveries")
    def retry_failed(self, request, queryset):
        failed = list(queryset.filter(status=WebhookDelivery.Status.FAILED))
        for delivery in failed:
            services.webhook_delivery_retry(delivery=delivery)
        self.message_user(request, f"{len(failed)} deliveries queued again.", messages.SUCCESS)


@admin.register(ComplianceAuditRecord)
class ComplianceAuditRecordAdmin(admin.ModelAdmin):
    list_display = ("created_at", "topic", "shop_domain", "outcome", "customer_platform_id")
    list_filter = ("topic", "outcome")
    search_fields = ("shop_domain", "webhook_id", "customer_platform_id")
    readonly_fields = [f.name for f in ComplianceAuditRecord._meta.fields]


@admin.register(CustomerDataExport)
class CustomerDataExportAdmin(admin.ModelAdmin):
    list_display = ("created_at", "shop", "customer_platform_id", "data_request_id", "redacted_at")
    search_fields = ("customer_platform_id", "data_request_id")
    readonly_fields = [f.name for f in CustomerDataExport._meta.fields]
