"""How the platform-neutral ingress finds the handler of a stored delivery.

The ingress never imports platform code: `settings.INGRESS_TOPIC_RESOLVERS` maps a platform name to the
dotted path of a function `resolve(topic: str) -> TopicHandler | None` (for Shopify:
`shop_integrations.shopify.webhook_handlers.resolve`, which looks the topic up in its topic -> handler dict).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from retention_app.ingress.models import WebhookDelivery
    from retention_app.shops.models import Shop

DEFAULT_RESOLVERS = {"shopify": "shop_integrations.shopify.webhook_handlers.resolve"}


@dataclass(frozen=True)
class TopicHandler:
    """`handle(shop, payload, delivery)` does the work of one topic inside the processing transaction.

    `when_uninstalled`: also run when the shop is no longer installed (lifecycle and compliance topics);
    other topics of an uninstalled shop are ignored.
    """

    handle: Callable[[Shop, dict[str, Any], WebhookDelivery], None]
    when_uninstalled: bool = False


@cache
def _resolver(platform: str) -> Callable[[str], TopicHandler | None]:
    paths = getattr(settings, "INGRESS_TOPIC_RESOLVERS", None) or DEFAULT_RESOLVERS
    return import_string(paths[platform])


def resolve_topic(platform: str, topic: str) -> TopicHandler | None:
    return _resolver(platform)(topic)
