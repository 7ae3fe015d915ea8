"""Writes of the panel domain: the merchant's dashboard settings."""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction

from retention_app.panel.models import PanelSettings
from retention_app.shops.models import Shop


def panel_settings_get(*, shop: Shop) -> PanelSettings:
    row, _ = PanelSettings.objects.get_or_create(shop=shop)
    return row


@transaction.atomic
def panel_settings_update(
    *, shop: Shop, north_star_metric: str, vip_share_percent: Decimal, activity_window_days: int
) -> PanelSettings:
    """Save the dashboard settings and the shop's activity window W (used by every retention metric)."""
    row = panel_settings_get(shop=shop)
    row.north_star_metric = north_star_metric
    row.vip_share_percent = vip_share_percent
    row.full_clean(exclude=["shop"])
    row.save()
    if shop.activity_window_days != activity_window_days:
        shop.activity_window_days = activity_window_days
        shop.save(update_fields=["activity_window_days", "updated_at"])
    return row
