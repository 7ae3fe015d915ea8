from django.contrib import admin

from .models import DiscountCode


@admin.register(DiscountCode)
class DiscountCodeAdmin(admin.ModelAdmin):
    """Support view of issued codes. Read-only: codes change only through the services (the store holds
    the truth, and a hand edit here would not reach it)."""

    list_display = ("code", "shop", "rule_key", "status", "value_type", "value", "expires_at", "redeemed_at")
    list_filter = ("status", "rule_key", "value_type")
    search_fields = ("code", "shop__domain", "platform_discount_id")
    raw_id_fields = ("shop", "customer", "redeemed_order")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
