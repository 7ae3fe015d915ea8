import pytest
import responses

from shop_integrations.shopify import client as client_module
from tests.discounts.fake_shopify import FakeShopify, connect


@pytest.fixture(autouse=True)
def _shopify_at_https(settings, monkeypatch):
    monkeypatch.setattr(client_module, "BACKOFF_BASE", 0.001)  # retries in these tests need no real wait
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    settings.SHOPIFY_CLIENT_MAX_ATTEMPTS = 2
    client_module.LocalBudget._buckets.clear()
    client_module._known_costs.clear()


@pytest.fixture
def fake_shopify(shop):
    """The shop is connected (a stored token) and its Admin API answers from FakeShopify."""
    connect(shop)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeShopify(mock, shop.domain)
