"""Reads of the webhook ingress, always scoped to one shop (tenant isolation)."""

from __future__ import annotations

from django.db.models import QuerySet

from retention_app.ingress.models import ComplianceAuditRecord, CustomerDataExport, WebhookDelivery
from retention_app.shops.models import Shop


def customer_data_exports_for_shop(*, shop: Shop) -> QuerySet[CustomerDataExport]:
    """The shop's customer data exports (customers/data_request), newest first.

    For the panel: list them, and fetch one with
    `get_object_or_404(customer_data_exports_for_shop(shop=shop), pk=...)` so another merchant gets 404."""
    return CustomerDataExport.objects.filter(shop=shop).order_by("-created_at", "-pk")


def customer_data_export_get(*, shop: Shop, export_id: int) -> CustomerDataExport | None:
    """One export of this shop, or None (also when it belongs to another shop)."""
    return customer_data_exports_for_shop(shop=shop).filter(pk=export_id).first()


def compliance_audit_records_for_shop(*, shop: Shop) -> QuerySet[ComplianceAuditRecord]:
    """Privacy requests received for this shop's domain, newest first (records hold no personal data)."""
    return ComplianceAuditRecord.objects.filter(shop_domain=shop.domain).order_by("-created_at", "-pk")


def webhook_deliveries_for_shop(*, shop: Shop) -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.filter(shop=shop).order_by("-received_at", "-pk")
