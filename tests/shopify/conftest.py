"""Helpers for the Shopify integration tests (H2): a clean cost budget per test, stored credentials."""

import datetime as dt

import pytest
from django.utils import timezone

from shop_integrations.shopify import client as client_module


@pytest.fixture(autouse=True)
def _fresh_local_cost_buckets():
    client_module.LocalBudget._buckets.clear()
    client_module._known_costs.clear()
    yield
    client_module.LocalBudget._buckets.clear()
    client_module._known_costs.clear()


@pytest.fixture
def store_credential():
    """store_credential(shop, access_token=..., expires_in=..., refresh_token=...) -> ShopCredential"""
    from retention_app.shops.services import AccessGrant, shop_credential_store

    def make(shop, *, access_token="tok-1", expires_in=3600, refresh_token="ref-1", refresh_expires_in=86400):  # noqa: S107
        now = timezone.now()
        return shop_credential_store(
            shop=shop,
            grant=AccessGrant(
                access_token=access_token,
                scopes="read_orders",
                access_token_expires_at=now + dt.timedelta(seconds=expires_in)
                if expires_in is not None
                else None,
                refresh_token=refresh_token,
                refresh_token_expires_at=now + dt.timedelta(seconds=refresh_expires_in),
            ),
        )

    return make
