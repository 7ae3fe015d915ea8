"""Shopify webhook topic -> handler table, used by the ingress processor (no signals for dispatch).

`TOPIC_HANDLERS` holds the lifecycle and compliance topics handled here; the commerce topics come from
`sync_handlers.COMMERCE_TOPIC_HANDLERS` (issue 4), read at lookup time so handlers registered there later
are found. `resolve(topic)` is the ingress entry point (settings.INGRESS_TOPIC_RESOLVERS["shopify"]).

Handlers run inside the processing transaction of one delivery; an exception rolls back their writes and
marks the delivery failed (retried when transient).

# Reference: https://shopify.dev/docs/apps/build/compliance/privacy-law-compliance
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from retention_app.ingress import services as ingress
from retention_app.ingress.dispatch import TopicHandler
from shop_integrations.shopify.sync_handlers import COMMERCE_TOPIC_HANDLERS

COMPLIANCE_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
# Deliveries whose loss could not be repaired later (no reconciliation brings them back): always stored
# with a synchronous commit, whatever settings.INGRESS_ASYNC_COMMIT says.
CRITICAL_TOPICS = COMPLIANCE_TOPICS | {"app/uninstalled"}


class InvalidWebhookPayload(ValueError):
    """The body lacks what the topic needs: a permanent error (no retry)."""


def _customer_ref(payload: dict[str, Any]) -> tuple[str, str, str]:
    customer = payload.get("customer")
    if not isinstance(customer, dict):
        raise InvalidWebhookPayload("payload has no customer object")
    customer_id = str(customer.get("id") or "")
    email = str(customer.get("email") or "").strip()
    phone = str(customer.get("phone") or "").strip()
    if not customer_id and not email:
        raise InvalidWebhookPayload("customer has neither id nor email")
    return customer_id, email, phone


def _ids(values: Any) -> list[str]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise InvalidWebhookPayload("expected a list of ids")
    return [str(v) for v in values if v not in (None, "")]


def handle_app_uninstalled(shop, payload: dict[str, Any], delivery) -> None:
    """app/uninstalled: the body is the REST shop object; only the delivery time matters."""
    ingress.shop_uninstall_apply(shop=shop, uninstalled_at=delivery.triggered_at or delivery.received_at)


def handle_customers_data_request(shop, payload: dict[str, Any], delivery) -> None:
    customer_id, email, phone = _customer_ref(payload)
    data_request = payload.get("data_request") if isinstance(payload.get("data_request"), dict) else {}
    ingress.customer_data_export_create(
        shop=shop,
        webhook_id=delivery.webhook_id,
        customer_platform_id=customer_id,
        email=email,
        phone=phone,
        order_platform_ids=_ids(payload.get("orders_requested")),
        data_request_id=str(data_request.get("id") or ""),
        topic=delivery.topic,
    )


def handle_customers_redact(shop, payload: dict[str, Any], delivery) -> None:
    customer_id, email, phone = _customer_ref(payload)
    ingress.customer_personal_data_erase(
        shop=shop,
        webhook_id=delivery.webhook_id,
        customer_platform_id=customer_id,
        email=email,
        phone=phone,
        order_platform_ids=_ids(payload.get("orders_to_redact")),
        topic=delivery.topic,
    )


def handle_shop_redact(shop, payload: dict[str, Any], delivery) -> None:
    ingress.shop_data_delete(shop=shop, webhook_id=delivery.webhook_id, topic=delivery.topic)


TOPIC_HANDLERS: dict[str, TopicHandler] = {
    "app/uninstalled": TopicHandler(handle_app_uninstalled, when_uninstalled=True),
    "customers/data_request": TopicHandler(handle_customers_data_request, when_uninstalled=True),
    "customers/redact": TopicHandler(handle_customers_redact, when_uninstalled=True),
    "shop/redact": TopicHandler(handle_shop_redact, when_uninstalled=True),
}


def _commerce(handler):
    def handle(shop, payload: dict[str, Any], delivery) -> None:
        handler(shop, payload)

    return TopicHandler(handle)


def resolve(topic: str) -> TopicHandler | None:
    """The handler of a Shopify topic ("orders/create" …), or None for a topic this app does not handle."""
    own = TOPIC_HANDLERS.get(topic)
    if own is not None:
        return own
    commerce = COMMERCE_TOPIC_HANDLERS.get(topic)
    return _commerce(commerce) if commerce is not None else None


def is_known_topic(topic: str) -> bool:
    return topic in TOPIC_HANDLERS or topic in COMMERCE_TOPIC_HANDLERS


def parse_triggered_at(value: str):
    """X-Shopify-Triggered-At (ISO 8601) -> aware datetime (UTC when it has no offset), or None when
    absent or garbled."""
    try:
        parsed = parse_datetime(value) if value else None
    except ValueError:
        return None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return parsed
