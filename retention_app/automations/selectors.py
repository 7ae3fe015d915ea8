"""Reads for the panel and the API (tenant-scoped: every function takes the shop)."""

from __future__ import annotations

from django.db.models import QuerySet

from retention_app.automations.models import Message, Rule, ShopAutomationSettings
from retention_app.shops.models import Shop


def rules_list(*, shop: Shop) -> list[Rule]:
    """The shop's rules, default ones installed on first access."""
    rules = list(Rule.objects.filter(shop=shop).order_by("id"))
    if not rules:
        from retention_app.automations.services import rules_install_defaults

        rules = rules_install_defaults(shop=shop)
    return rules


def rule_get(*, shop: Shop, rule_id: int) -> Rule:
    """The shop's rule; Rule.DoesNotExist for another shop's id (the view answers 404)."""
    return Rule.objects.get(shop=shop, pk=rule_id)


def shop_settings(*, shop: Shop) -> ShopAutomationSettings:
    from retention_app.automations.services import shop_settings_get

    return shop_settings_get(shop=shop)


def messages_list(
    *, shop: Shop, status: str | None = None, customer_id: int | None = None, rule_key: str | None = None
) -> QuerySet[Message]:
    """What each customer got (or why not), newest first."""
    qs = Message.objects.filter(shop=shop).select_related("rule", "customer", "order")
    if status:
        qs = qs.filter(status=status)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if rule_key:
        qs = qs.filter(rule__key=rule_key)
    return qs.order_by("-created_at", "-id")


def message_status_counts(*, shop: Shop) -> dict[str, int]:
    from django.db.models import Count

    return dict(
        Message.objects.filter(shop=shop)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
