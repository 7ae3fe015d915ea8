"""Webhook topics that feed the commerce copy (owned by the sync work, issue 4).

`COMMERCE_TOPIC_HANDLERS` maps a Shopify topic ("orders/create" …) to `handler(shop, payload: dict) -> None`.
The webhook dispatcher (shop_integrations.shopify.webhook_handlers) merges this table into its own.
Handlers must be idempotent and must ignore payloads older than the stored copy (compare updated_at).
"""

from collections.abc import Callable
from typing import Any

COMMERCE_TOPIC_HANDLERS: dict[str, Callable[[Any, dict], None]] = {}
