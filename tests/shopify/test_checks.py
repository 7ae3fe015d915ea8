"""System checks boomerang.E00x for misconfigured Shopify settings."""

import pytest
from cryptography.fernet import Fernet

from shop_integrations.shopify.checks import check_shopify_settings


@pytest.fixture(autouse=True)
def _development_settings(settings):
    # pytest-django runs tests with DEBUG off; the test settings are a development configuration.
    settings.DEBUG = True


def ids(settings):
    return sorted(message.id for message in check_shopify_settings())


def test_test_settings_pass(settings):
    assert ids(settings) == []


def test_production_like_settings_pass(settings):
    settings.DEBUG = False
    settings.APP_URL = "https://boomerang.example.com"
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    settings.SHOPIFY_DEV_SHOP_SUFFIX = ""
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert ids(settings) == []


@pytest.mark.parametrize(
    "template",
    [
        "https://shop.example",
        "https://{shop}/{x}",
        "ftp://{shop}",
        "{shop}",
        "https://{shop}?a=1",
        "https://{}",
    ],
)
def test_store_url_template_without_shop_is_e001(settings, template):
    settings.SHOPIFY_STORE_URL_TEMPLATE = template
    assert "boomerang.E001" in ids(settings)


def test_dev_store_template_passes(settings):
    settings.SHOPIFY_STORE_URL_TEMPLATE = "http://127.0.0.1:8100/s/{shop}"
    assert ids(settings) == []


@pytest.mark.parametrize("version", ["2026-02", "2026-1", "latest", "", "26-01"])
def test_bad_api_version_is_e002(settings, version):
    settings.SHOPIFY_API_VERSION = version
    assert ids(settings) == ["boomerang.E002"]


@pytest.mark.parametrize("app_url", ["http://boomerang.example.com", "https://", "https://x.com/app", ""])
def test_app_url_not_https_in_production_is_e003(settings, app_url):
    settings.DEBUG = False
    settings.SHOPIFY_DEV_SHOP_SUFFIX = ""
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    settings.APP_URL = app_url
    assert ids(settings) == ["boomerang.E003"]


def test_http_app_url_is_fine_in_debug(settings):
    settings.APP_URL = "http://127.0.0.1:8000"
    assert ids(settings) == []


def test_dev_suffix_with_debug_off_is_w004(settings):
    settings.DEBUG = False
    settings.APP_URL = "https://boomerang.example.com"
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    settings.SHOPIFY_DEV_SHOP_SUFFIX = ".devstore.test"
    assert ids(settings) == ["boomerang.W004"]


def test_malformed_dev_suffix_is_e005(settings):
    settings.SHOPIFY_DEV_SHOP_SUFFIX = "devstore.test"
    assert ids(settings) == ["boomerang.E005"]


@pytest.mark.parametrize("keys", [[], ["not-a-key"], [Fernet.generate_key().decode(), "short"]])
def test_bad_encryption_keys_are_e006(settings, keys):
    settings.FIELD_ENCRYPTION_KEYS = keys
    assert ids(settings) == ["boomerang.E006"]


def test_missing_read_all_orders_is_e007(settings):
    settings.SHOPIFY_SCOPES = ["read_orders"]
    assert ids(settings) == ["boomerang.E007"]


@pytest.mark.parametrize("max_age", [0, -5, 100000])
def test_bad_oauth_max_age_is_e008(settings, max_age):
    settings.SHOPIFY_OAUTH_MAX_AGE = max_age
    assert ids(settings) == ["boomerang.E008"]


def test_non_shopify_store_template_in_production_is_w009(settings):
    settings.DEBUG = False
    settings.APP_URL = "https://boomerang.example.com"
    settings.SHOPIFY_DEV_SHOP_SUFFIX = ""
    settings.SHOPIFY_STORE_URL_TEMPLATE = "http://127.0.0.1:8100/s/{shop}"
    assert ids(settings) == ["boomerang.W009"]


def test_checks_are_registered_with_django():
    from django.core import checks

    assert check_shopify_settings in checks.registry.registry.get_checks()
