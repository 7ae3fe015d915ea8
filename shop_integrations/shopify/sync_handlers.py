"""Webhook topics that feed the commerce copy (owned by the sync work, issue 4).

`COMMERCE_TOPIC_HANDLERS` maps a Shopify topic ("orders/create" …) to `handler(shop, payload: dict) -> None`.
The webhook dispatcher (shop_integrations.shopify.webhook_handlers) merges this table into its own.
Handlers must be idempotent and must ignore payloads older than the stored copy (compare updated_at):
the commerce upserts do both. A fulfillment whose order is not stored yet raises MissingParent, which
the ingress retries (it is marked `retryable`). A malformed body raises normalize.PayloadError
(permanent).

Reference: https://shopify.dev/docs/api/webhooks?reference=toml (topics and REST body shapes)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from retention_app.commerce import services
from shop_integrations.shopify import normalize


def handle_order(shop, payload: dict) -> None:
    """orders/create, orders/updated, orders/paid, orders/cancelled, orders/fulfilled: the body is the
    whole REST order, so every one is the same upsert."""
    services.order_upsert(shop=shop, data=normalize.order_from_rest(payload))


def handle_fulfillment(shop, payload: dict) -> None:
    services.fulfillment_upsert(shop=shop, data=normalize.fulfillment_from_rest(payload))


def handle_fulfillment_event(shop, payload: dict) -> None:
    services.fulfillment_event_upsert(shop=shop, data=normalize.fulfillment_event_from_rest(payload))


def handle_customer(shop, payload: dict) -> None:
    """customers/create, customers/update (consent changes arrive here too)."""
    services.customer_upsert(shop=shop, data=normalize.customer_from_rest(payload))


def handle_bulk_operation_finish(shop, payload: dict) -> None:
    """bulk_operations/finish: wake the backfill job waiting on that operation (it polls otherwise)."""
    from shop_integrations.shopify import sync

    sync.bulk_operation_finished(shop=shop, operation_gid=str(payload.get("admin_graphql_api_id") or ""))


COMMERCE_TOPIC_HANDLERS: dict[str, Callable[[Any, dict], None]] = {
    "orders/create": handle_order,
    "orders/updated": handle_order,
    "orders/paid": handle_order,
    "orders/cancelled": handle_order,
    "orders/fulfilled": handle_order,
    "fulfillments/create": handle_fulfillment,
    "fulfillments/update": handle_fulfillment,
    "fulfillment_events/create": handle_fulfillment_event,
    "customers/create": handle_customer,
    "customers/update": handle_customer,
    "bulk_operations/finish": handle_bulk_operation_finish,
}
