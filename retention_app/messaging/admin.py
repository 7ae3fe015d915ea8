from django.contrib import admin

from .models import ConsentChange, MessageTemplate


@admin.register(MessageTemplate)
class MessageTemplateAdmin(admin.ModelAdmin):
    list_display = ("shop", "rule_key", "locale", "subject", "updated_at")
    list_filter = ("rule_key", "locale")
    search_fields = ("shop__domain", "subject")
    raw_id_fields = ("shop",)

    def has_add_permission(self, request):
        # Templates are written in the panel, which validates them (sandbox, variables) before saving.
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ConsentChange)
class ConsentChangeAdmin(admin.ModelAdmin):
    list_display = ("customer", "shop", "marketing_state", "source", "created_at", "synced_at", "gave_up_at")
    list_filter = ("marketing_state", "source")
    raw_id_fields = ("shop", "customer")
    readonly_fields = [f.name for f in ConsentChange._meta.fields]

    def has_add_permission(self, request):
        return False
