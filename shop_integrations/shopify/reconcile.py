"""Periodic reconciliation: customers, orders and products updated since the last pass (minus an overlap) are
read page by page (GraphQL, `query: "updated_at:>…"`, sorted by UPDATED_AT) and upserted with the single-row
services, so a webhook that never arrived is repaired within the reconciliation interval. The single-row
upserts are no-ops for rows already current, so events are only sent for changes that were really missed
(receivers are idempotent anyway).

Scheduled in retention_app/schedules.py ("commerce-reconcile", every 15 minutes, with expires).
"""

from __future__ import annotations

import datetime as dt

from celery import shared_task
from django.db import IntegrityError
from django.db.models import Q
from django.utils import timezone

from retention_app.commerce import services
from retention_app.commerce.models import SyncJob
from retention_app.shops.models import Shop
from shop_integrations.shopify import normalize
from shop_integrations.shopify.client import ShopifyClient
from shop_integrations.shopify.documents import load
from shop_integrations.shopify.http import ShopifyRetryableError
from shop_integrations.shopify.sync import _fail

RECONCILE_OVERLAP = dt.timedelta(minutes=5)


def _search_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def reconcile_shop(*, shop: Shop, client: ShopifyClient | None = None) -> int:
    """Upsert customers, orders and products updated since the last pass; returns how many objects were read.
    Skipped (0) while a backfill is running or before the first one completed."""
    last = (
        SyncJob.objects.filter(shop=shop, status=SyncJob.Status.COMPLETED)
        .filter(Q(kind=SyncJob.Kind.RECONCILE) | Q(kind=SyncJob.Kind.ORDERS))
        .order_by("-created_at")
        .first()
    )
    if last is None or SyncJob.objects.filter(shop=shop, status__in=SyncJob.ACTIVE_STATUSES).exists():
        return 0
    since = (last.watermark or last.started_at or last.created_at) - RECONCILE_OVERLAP
    started = timezone.now()
    try:
        job = SyncJob.objects.create(
            shop=shop,
            kind=SyncJob.Kind.RECONCILE,
            status=SyncJob.Status.DOWNLOADING,
            started_at=started,
            writing_started_at=started,
        )
    except IntegrityError:
        return 0
    client = client or ShopifyClient.for_shop(shop)
    query = f"updated_at:>'{_search_time(since)}'"
    count = 0
    try:
        for node in _pages(client, "reconcile_customers", "customers", query):
            services.customer_upsert(shop=shop, data=normalize.customer_from_graphql(node))
            count += 1
        for node in _pages(client, "reconcile_orders", "orders", query):
            services.order_upsert(shop=shop, data=normalize.order_from_graphql(node))
            count += 1
        for node in _pages(client, "reconcile_products", "products", query):
            data = normalize.product_from_graphql(node, storefront_url=shop.storefront_url)
            services.product_upsert(shop=shop, data=data)
            count += 1
    except Exception as exc:
        _fail(job, f"{type(exc).__name__}: {exc}")
        raise
    job.status = SyncJob.Status.COMPLETED
    job.rows_done = job.rows_total = count
    job.watermark = started
    job.finished_at = timezone.now()
    job.save()
    return count


def _pages(client: ShopifyClient, document: str, field: str, query: str):
    after = None
    while True:
        # Reference: https://shopify.dev/docs/api/usage/pagination-graphql
        connection = client.execute(load(document), {"query": query, "after": after}).get(field) or {}
        yield from connection.get("nodes") or []
        page = connection.get("pageInfo") or {}
        if not page.get("hasNextPage"):
            return
        after = page.get("endCursor")


@shared_task(
    acks_late=True,
    autoretry_for=(ShopifyRetryableError,),
    retry_backoff=30,
    retry_jitter=True,
    max_retries=5,
)
def reconcile_shop_task(shop_id: int) -> int:
    shop = Shop.objects.filter(pk=shop_id, status=Shop.Status.INSTALLED).first()
    return reconcile_shop(shop=shop) if shop is not None else 0


@shared_task
def reconcile_all_shops() -> int:
    ids = list(
        Shop.objects.filter(platform=Shop.Platform.SHOPIFY, status=Shop.Status.INSTALLED).values_list(
            "pk", flat=True
        )
    )
    for shop_id in ids:
        reconcile_shop_task.delay(shop_id)
    return len(ids)
