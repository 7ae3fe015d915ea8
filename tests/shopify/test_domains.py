"""Shop-domain validation and store URLs (no SSRF through shop domains)."""

import pytest

from shop_integrations.shopify.domains import (
    InvalidShopDomain,
    normalize_shop_domain,
    shop_domain_from_store_url,
    store_base_url,
)


@pytest.mark.parametrize(
    "value,expected",
    [
        ("acme.myshopify.com", "acme.myshopify.com"),
        ("Acme-Tea.myshopify.com", "acme-tea.myshopify.com"),
        ("demo.devstore.test", "demo.devstore.test"),  # the tests' dev suffix
    ],
)
def test_valid_domains(value, expected):
    assert normalize_shop_domain(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "evil.com",
        "x.myshopify.com.evil.com",
        "x.myshopify.com:8080",
        "x.myshopify.com/admin",
        "user@x.myshopify.com",
        "https://x.myshopify.com",
        "x.myshopify.com\n",
        "-x.myshopify.com",
        "a.b.myshopify.com",
        ".myshopify.com",
        "x.myshopify.co",
        "x_y.myshopify.com",
        "x.devstore.test.evil.com",
        "a.b.devstore.test",
        "",
        None,
        ["x.myshopify.com"],
        "x" * 300 + ".myshopify.com",
    ],
)
def test_invalid_domains(value):
    assert normalize_shop_domain(value) is None


def test_dev_suffix_only_when_configured(settings):
    settings.SHOPIFY_DEV_SHOP_SUFFIX = ""
    assert normalize_shop_domain("demo.devstore.test") is None
    assert normalize_shop_domain("acme.myshopify.com") == "acme.myshopify.com"


def test_store_base_url_uses_template_and_refuses_bad_domains(settings):
    settings.SHOPIFY_STORE_URL_TEMPLATE = "http://127.0.0.1:8100/s/{shop}"
    assert store_base_url("demo.devstore.test") == "http://127.0.0.1:8100/s/demo.devstore.test"
    with pytest.raises(InvalidShopDomain):
        store_base_url("evil.com")
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    assert store_base_url("acme.myshopify.com") == "https://acme.myshopify.com"


def test_shop_domain_from_store_url(settings):
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    assert shop_domain_from_store_url("https://acme.myshopify.com") == "acme.myshopify.com"
    assert shop_domain_from_store_url("https://acme.myshopify.com/") == "acme.myshopify.com"
    assert shop_domain_from_store_url("http://acme.myshopify.com") is None
    assert shop_domain_from_store_url("https://evil.com") is None
    assert shop_domain_from_store_url("https://a@acme.myshopify.com") is None
    assert shop_domain_from_store_url("https://acme.myshopify.com:444") is None
    settings.SHOPIFY_STORE_URL_TEMPLATE = "http://127.0.0.1:8100/s/{shop}"
    assert shop_domain_from_store_url("http://127.0.0.1:8100/s/demo.devstore.test") == "demo.devstore.test"
    assert shop_domain_from_store_url("http://127.0.0.1:8100/s/demo.devstore.test/x") is None
