"""End-to-end against the dev store over real HTTP (no mocks): backfill of a seeded store through bulk
operations, then live webhooks (placed, updated, cancelled, fulfilled; duplicated and reordered), and the
app's copy equals the store's (counts and totals per customer)."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from decimal import Decimal

import pytest
from django.utils import timezone

from retention_app.commerce.models import (
    Customer,
    Fulfillment,
    FulfillmentEvent,
    LineItem,
    Order,
    Product,
    SyncJob,
)
from retention_app.commerce.selectors import commerce_totals_by_customer
from retention_app.shops.services import AccessGrant, shop_credential_store
from shop_integrations.shopify import sync, tracking_history
from shop_integrations.shopify.client import ShopifyClient
from tests.factories import ShopFactory

pytestmark = [pytest.mark.e2e]

STORE_ORDERS = """
query($after: String) {
  orders(first: 25, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id cancelledAt customer { id } totalPriceSet { shopMoney { amount } }
      lineItems(first: 20) { nodes { id } }
    }
  }
}
"""

STORE_EVENTS = """
query($after: String) {
  orders(first: 10, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { fulfillments { id events(first: 20) { pageInfo { hasNextPage } nodes { id } } } }
  }
}
"""


def store_events(shop) -> dict[str, int]:
    """The store's tracking events per fulfillment, read over its Admin API: {fulfillment id: events}."""
    client = ShopifyClient.with_token(shop.domain, shop.devstore_token)
    found, after = {}, None
    while True:
        page = client.execute(STORE_EVENTS, {"after": after})["orders"]
        for order in page["nodes"]:
            for f in order["fulfillments"]:
                assert not f["events"]["pageInfo"]["hasNextPage"]
                found[f["id"].rsplit("/", 1)[-1]] = len(f["events"]["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def app_events(shop) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for pid in FulfillmentEvent.objects.filter(shop=shop).values_list("fulfillment__platform_id", flat=True):
        counts[pid] += 1
    return dict(counts)


STORE_PRODUCTS = """
query($after: String) {
  products(first: 50, after: $after) {
    pageInfo { hasNextPage endCursor }
    nodes { id handle title priceRangeV2 { minVariantPrice { amount } } }
  }
}
"""


def store_products(shop) -> dict[str, tuple[str, str, str]]:
    """The store's catalog read over its Admin API: {product id: (handle, title, min price)}."""
    client = ShopifyClient.with_token(shop.domain, shop.devstore_token)
    found, after = {}, None
    while True:
        page = client.execute(STORE_PRODUCTS, {"after": after})["products"]
        for node in page["nodes"]:
            price = Decimal(node["priceRangeV2"]["minVariantPrice"]["amount"])
            found[node["id"].rsplit("/", 1)[-1]] = (node["handle"], node["title"], f"{price:.2f}")
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


def app_products(shop) -> dict[str, tuple[str, str, str]]:
    return {p.platform_id: (p.handle, p.title, f"{p.price:.2f}") for p in Product.objects.filter(shop=shop)}


@pytest.fixture
def connected_shop(devstore_settings, devstore_shop):
    """The app's Shop row for a fresh dev-store shop, with a real access token from the dev store."""
    shop = ShopFactory(domain=devstore_shop, name="Test Tea Shop", storefront_url="")
    token = devstore_settings.control.grant_token(devstore_shop)["access_token"]
    shop_credential_store(
        shop=shop, grant=AccessGrant(access_token=token, scopes="read_orders,read_all_orders")
    )
    shop.devstore_token = token
    return shop


def store_copy(devstore, shop) -> tuple[dict[str, tuple[int, str]], int, int]:
    """The store's own figures, read over its Admin API: {customer id: (orders, total)} over non-cancelled
    orders, the number of orders and of line items."""
    per_customer: dict[str, list] = defaultdict(lambda: [0, Decimal("0")])
    orders = items = 0
    after = None
    # The app's paced client, so this check is not throttled (the writer under test does not use it).
    client = ShopifyClient.with_token(shop.domain, shop.devstore_token)
    while True:
        page = client.execute(STORE_ORDERS, {"after": after})["orders"]
        for node in page["nodes"]:
            orders += 1
            items += len(node["lineItems"]["nodes"])
            if node["customer"] and not node["cancelledAt"]:
                row = per_customer[node["customer"]["id"].rsplit("/", 1)[-1]]
                row[0] += 1
                row[1] += Decimal(node["totalPriceSet"]["shopMoney"]["amount"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    return {k: (n, f"{t:.2f}") for k, (n, t) in per_customer.items()}, orders, items


@pytest.mark.django_db
def test_backfill_of_a_seeded_store_equals_the_store(
    devstore_settings, connected_shop, django_capture_on_commit_callbacks
):
    devstore = devstore_settings
    devstore.control.seed(connected_shop.domain, customers=25, orders=120, months=14, seed=7)
    # when the backfill runs (Celery eager in this test: the task runs at commit)
    with django_capture_on_commit_callbacks(execute=True):
        sync.backfill_start(shop=connected_shop)
    # then both jobs completed and the copy equals the store's
    jobs = {j.kind: j for j in SyncJob.objects.filter(shop=connected_shop)}
    assert {k: j.status for k, j in jobs.items()} == {
        "customers": "completed",
        "orders": "completed",
        "products": "completed",
    }, [j.error for j in jobs.values()]
    expected, n_orders, n_items = store_copy(devstore, connected_shop)
    assert n_orders >= 100
    assert Order.objects.filter(shop=connected_shop).count() == n_orders
    assert LineItem.objects.filter(shop=connected_shop).count() == n_items
    assert commerce_totals_by_customer(shop=connected_shop) == expected
    assert jobs["orders"].rows_done == jobs["orders"].rows_total == n_orders + n_items
    assert Customer.objects.filter(shop=connected_shop).exclude(email="").count() >= 20
    # the catalog too (recommendations): every product, with its page on the storefront
    catalog = store_products(connected_shop)
    assert catalog and app_products(connected_shop) == catalog
    storefront = devstore.store_url(connected_shop.domain)
    for product in Product.objects.filter(shop=connected_shop):
        assert product.url == f"{storefront}/products/{product.handle}"
    # the tracking history of the shipments (not in the bulk export: read per fulfillment once the orders
    # job completed, by the task it queued): the shipments of the last TRACKING_HISTORY_DAYS
    since = timezone.now() - dt.timedelta(days=sync.TRACKING_HISTORY_DAYS)
    recent = set(
        Fulfillment.objects.filter(shop=connected_shop, platform_created_at__gte=since).values_list(
            "platform_id", flat=True
        )
    )
    store = store_events(connected_shop)
    expected_events = {pid: n for pid, n in store.items() if n and pid in recent}
    assert sum(expected_events.values()) > 0 and len(expected_events) < len([n for n in store.values() if n])
    assert app_events(connected_shop) == expected_events
    # read without the window, every shipment's history is there
    client = ShopifyClient.with_token(connected_shop.domain, connected_shop.devstore_token)
    tracking_history.backfill_tracking_events(shop=connected_shop, client=client)
    expected_events = {pid: n for pid, n in store.items() if n}
    assert app_events(connected_shop) == expected_events
    # a second run writes nothing new
    before = list(Order.objects.filter(shop=connected_shop).order_by("pk").values_list("pk", "updated_at"))
    with django_capture_on_commit_callbacks(execute=True):
        sync.backfill_start(shop=connected_shop)
    tracking_history.backfill_tracking_events(shop=connected_shop, client=client)
    after = list(Order.objects.filter(shop=connected_shop).order_by("pk").values_list("pk", "updated_at"))
    assert after == before
    assert app_events(connected_shop) == expected_events


@pytest.fixture
def worker_env(devstore, monkeypatch):
    """Settings the worker subprocess needs (it reads the environment): the dev store's address, small
    batches so a backfill lasts long enough to be killed in the middle."""
    monkeypatch.setenv("SHOPIFY_STORE_URL_TEMPLATE", devstore.store_url_template)
    monkeypatch.setenv("SHOPIFY_DEV_SHOP_SUFFIX", ".devstore.test")
    monkeypatch.setenv("SYNC_BULK_BATCH_ROWS", "25")
    monkeypatch.setenv("SYNC_JOB_LEASE_SECONDS", "4")


def install(devstore, domain, app_url, settings):
    """Install through the real path (shop details, webhook subscriptions, credential, shop_installed)."""
    from shop_integrations.shopify.oauth import complete_install

    settings.APP_URL = app_url
    token = devstore.control.grant_token(domain)["access_token"]
    shop, _ = complete_install(domain, AccessGrant(access_token=token, scopes="read_orders,read_all_orders"))
    shop.devstore_token = token
    return shop


def copy_equals_store(devstore, shop) -> bool:
    expected, n_orders, n_items = store_copy(devstore, shop)
    return (
        Order.objects.filter(shop=shop).count() == n_orders
        and LineItem.objects.filter(shop=shop).count() == n_items
        and commerce_totals_by_customer(shop=shop) == expected
    )


@pytest.mark.django_db(transaction=True)
def test_install_backfill_then_live_webhooks_duplicated_and_reordered(
    worker_env, devstore_settings, devstore_shop, celery_worker, live_server, settings
):
    from tests.fixtures.processes import wait_until

    devstore = devstore_settings
    devstore.control.seed(devstore_shop, customers=8, orders=30, months=6, seed=3)
    shop = install(devstore, devstore_shop, live_server.url, settings)
    wait_until(
        lambda: SyncJob.objects.filter(shop=shop, status="completed").count() == 3,
        timeout=90,
        what="backfill",
    )
    assert copy_equals_store(devstore, shop)
    # the app has the store's products, each linking to its page on the shop's storefront
    shop.refresh_from_db()
    assert shop.storefront_url and app_products(shop) == store_products(shop)
    assert all(
        p.url == f"{shop.storefront_url}/products/{p.handle}" for p in Product.objects.filter(shop=shop)
    )
    # given the store duplicates every webhook and delivers them newest first
    devstore.control.settings(webhook_mode={"duplicate": True, "reorder": True, "reorder_window": 1.0})
    placed = devstore.control.place_order(devstore_shop, email="new.buyer@example.com", first_name="Mai")
    again = devstore.control.place_order(devstore_shop, customer_id=placed["customer"]["id"])
    devstore.control.refund_order(devstore_shop, placed["id"])
    devstore.control.cancel_order(devstore_shop, again["id"])
    fulfillment = devstore.control.fulfill_order(devstore_shop, placed["id"], tracking_number="1Z999")
    fulfillment_id = (fulfillment.get("fulfillment") or fulfillment)["id"]
    devstore.control.add_tracking_event(devstore_shop, fulfillment_id, status="in_transit")
    devstore.control.add_tracking_event(devstore_shop, fulfillment_id, status="out_for_delivery")
    devstore.control.flush_webhooks(timeout=60)
    # then the copy converges to the store's (MissingParent deliveries are retried by the worker)
    wait_until(lambda: copy_equals_store(devstore, shop), timeout=90, what="copy equal to the store")
    order = Order.objects.get(shop=shop, platform_id=str(placed["id"]))
    assert order.customer.email == "new.buyer@example.com"
    assert Order.objects.get(shop=shop, platform_id=str(again["id"])).cancelled_at is not None
    wait_until(
        lambda: order.fulfillments.filter(shipment_status="OUT_FOR_DELIVERY").exists(),
        timeout=60,
        what="latest tracking status",
    )
    assert order.fulfillments.get().tracking_number == "1Z999"


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_backfill_resumes_without_duplicates(
    worker_env, devstore_settings, devstore_shop, celery_worker, live_server, settings
):
    from tests.fixtures.processes import wait_until

    devstore = devstore_settings
    devstore.control.seed(devstore_shop, customers=20, orders=300, months=12, seed=5)
    shop = install(devstore, devstore_shop, live_server.url, settings)
    orders_job = SyncJob.objects.get(shop=shop, kind="orders")
    wait_until(
        lambda: SyncJob.objects.filter(pk=orders_job.pk, rows_done__gt=0).exists(), timeout=90, what="writing"
    )
    celery_worker.stop(kill=True)  # in the middle of the download
    orders_job.refresh_from_db()
    assert orders_job.status == "downloading" and 0 < orders_job.rows_done < (orders_job.rows_total or 10**9)
    celery_worker.start()
    # the killed worker's leases run out; the periodic resume_stalled_sync_jobs (played here once a second,
    # as beat would) re-enqueues each stalled job: the orders job, and the other kinds whose retries died
    # with the worker
    last_beat = [0.0]

    def all_completed() -> bool:
        if time.monotonic() - last_beat[0] > 1.0:
            last_beat[0] = time.monotonic()
            sync.resume_stalled()
        return not SyncJob.objects.filter(shop=shop).exclude(status="completed").exists()

    wait_until(all_completed, timeout=120, what="resume")
    orders_job.refresh_from_db()
    assert copy_equals_store(devstore, shop)
    assert orders_job.rows_done == orders_job.rows_total  # each line counted once: no replayed batch


@pytest.mark.django_db
def test_throttled_store_is_synced_without_a_throttled_answer(
    devstore_settings, connected_shop, django_capture_on_commit_callbacks
):
    from shop_integrations.shopify import reconcile

    devstore = devstore_settings
    devstore.control.seed(connected_shop.domain, customers=10, orders=40, months=3, seed=11)
    devstore.control.settings(bucket_size=1000, restore_rate=200)
    with django_capture_on_commit_callbacks(execute=True):
        sync.backfill_start(shop=connected_shop)
    # reconciliation pages through everything changed (the backfill's start minus the overlap): many calls
    SyncJob.objects.filter(shop=connected_shop).update(
        started_at=SyncJob.objects.first().created_at.replace(year=2000)
    )
    assert reconcile.reconcile_shop(shop=connected_shop) >= 50
    stats = devstore.control.stats(connected_shop.domain)
    assert stats["graphql_requests"] >= 6
    assert stats["throttled"] == 0
