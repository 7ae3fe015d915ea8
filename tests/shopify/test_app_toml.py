"""shopify.app.toml declares what the app asks for and subscribes to, in sync with the code."""

import tomllib
from pathlib import Path

from django.conf import settings

from shop_integrations.shopify.oauth import WEBHOOK_TOPICS

TOML = Path(__file__).resolve().parents[2] / "shopify.app.toml"


def config():
    return tomllib.loads(TOML.read_text(encoding="utf-8"))


def test_scopes_match_settings_and_include_read_all_orders():
    scopes = config()["access_scopes"]["scopes"].split(",")
    assert "read_all_orders" in scopes
    assert sorted(scopes) == sorted(settings.SHOPIFY_SCOPES)


def test_webhook_topics_match_the_registered_ones():
    subscriptions = config()["webhooks"]["subscriptions"]
    topics = [t for s in subscriptions for t in s.get("topics", [])]
    assert sorted(t.upper().replace("/", "_") for t in topics) == sorted(WEBHOOK_TOPICS)
    assert all(s["uri"].endswith("/webhooks/shopify") for s in subscriptions)


def test_compliance_topics_are_declared():
    subscriptions = config()["webhooks"]["subscriptions"]
    compliance = {t for s in subscriptions for t in s.get("compliance_topics", [])}
    assert compliance == {"customers/data_request", "customers/redact", "shop/redact"}


def test_api_version_and_callback():
    data = config()
    assert data["webhooks"]["api_version"] == settings.SHOPIFY_API_VERSION
    assert all(url.endswith("/shopify/callback") for url in data["auth"]["redirect_urls"])
