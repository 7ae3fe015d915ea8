"""Unit tests here use the fake https Shopify of tests/discounts/fake_shopify.py."""

import pytest

from tests.discounts.fake_shopify import _shopify_at_https, fake_shopify  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def _fake_shopify_settings(_shopify_at_https):  # noqa: F811
    pass
