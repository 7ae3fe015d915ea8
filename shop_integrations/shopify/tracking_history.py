"""Tracking history (fulfillment events) of the fulfillments a backfill stored.

The orders bulk export cannot carry it: an order's `fulfillments` is a list field, and Shopify refuses a
bulk query with a connection (`events`) inside a list field. So after the orders backfill, the events of
the shop's fulfillments are read through the Admin API, FULFILLMENTS_PER_QUERY fulfillments per query
(`nodes(ids:)`, graphql/fulfillment_events.graphql), and written by the bulk writer: each event inserted
once per (fulfillment, platform id), none changed, no domain event (history must not trigger automations).
Running it again, or after a crash, writes nothing twice. Later events arrive by the fulfillment_events/create
webhook.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction

from retention_app.commerce.models import Fulfillment
from retention_app.commerce.services import BulkBatch, commerce_bulk_write
from shop_integrations.shopify import normalize
from shop_integrations.shopify.client import ShopifyClient
from shop_integrations.shopify.documents import load

logger = logging.getLogger(__name__)

# 15 x (1 + 2 + 50 events) = 795 requested cost points: under Shopify's 1000-point single-query limit.
FULFILLMENTS_PER_QUERY = 15


def backfill_tracking_events(*, shop, client: ShopifyClient, since: dt.datetime | None = None) -> int:
    """Read and store the tracking events of the shop's stored fulfillments (those created at or after
    `since`, all when None). Returns the number of events read (stored ones included)."""
    fulfillments = Fulfillment.objects.filter(shop=shop)
    if since is not None:
        fulfillments = fulfillments.filter(platform_created_at__gte=since)
    ids = list(fulfillments.order_by("id").values_list("platform_id", flat=True))
    read = 0
    for start in range(0, len(ids), FULFILLMENTS_PER_QUERY):
        chunk = ids[start : start + FULFILLMENTS_PER_QUERY]
        data = client.execute(
            load("fulfillment_events"), {"ids": [f"gid://shopify/Fulfillment/{pid}" for pid in chunk]}
        )
        events = []
        for node in data.get("nodes") or ():
            if not node:  # deleted on the store since the backfill
                continue
            fulfillment_id, found, more = normalize.fulfillment_events_from_graphql(node)
            if more:
                logger.info(
                    "shop %s: fulfillment %s has more than %d tracking events; the oldest are left out",
                    shop.pk,
                    fulfillment_id,
                    len(found),
                )
            events.extend(found)
        if events:
            with transaction.atomic():
                commerce_bulk_write(
                    shop_id=shop.pk, batch=BulkBatch([], [], [], [], fulfillment_events=events)
                )
        read += len(events)
    return read
