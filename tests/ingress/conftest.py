"""Helpers for webhook ingress tests: sign and post deliveries like Shopify does."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from shop_integrations.shopify.webhooks import sign_webhook_body

SECRET = "test-webhook-secret-current"
OLD_SECRET = "test-webhook-secret-previous"


@dataclass
class WebhookPoster:
    client: object
    secret: str = SECRET
    sent: list[str] = field(default_factory=list)

    def post(
        self,
        topic: str,
        payload: dict | list | bytes,
        *,
        shop_domain: str = "acme.myshopify.com",
        webhook_id: str | None = None,
        secret: str | None = None,
        hmac_header: str | None = None,
        omit: tuple[str, ...] = (),
        extra: dict | None = None,
    ):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        webhook_id = webhook_id or str(uuid.uuid4())
        headers = {
            "X-Shopify-Hmac-Sha256": hmac_header
            if hmac_header is not None
            else sign_webhook_body(body, secret or self.secret),
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": shop_domain,
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-API-Version": "2026-01",
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": timezone.now().isoformat(),
            **(extra or {}),
        }
        for name in omit:
            headers.pop(name, None)
        self.sent.append(webhook_id)
        return self.client.post(
            "/webhooks/shopify", data=body, content_type="application/json", headers=headers
        )


@pytest.fixture
def webhook_settings(settings):
    settings.SHOPIFY_API_SECRET = SECRET
    settings.SHOPIFY_API_SECRET_PREVIOUS = ""
    return settings


@pytest.fixture
def webhooks(client, webhook_settings) -> WebhookPoster:
    return WebhookPoster(client)
