from django.contrib import admin

from retention_app.automations.models import Message, Rule, ShopAutomationSettings


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ("shop", "key", "name", "enabled", "delay_minutes", "is_marketing")
    list_filter = ("key", "enabled")


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "shop", "rule", "customer", "status", "due_at", "sent_at", "attempts")
    list_filter = ("status", "rule__key")
    raw_id_fields = ("customer", "order", "fulfillment")
    readonly_fields = ("claimed_at", "claimed_by", "smtp_started_at", "cap_counted_at", "message_id")


admin.site.register(ShopAutomationSettings)
