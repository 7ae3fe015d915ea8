"""Reconciliation repairs a missed webhook: orders/customers updated since the last pass, paginated."""

import datetime as dt
import json
from decimal import Decimal

import pytest
import responses

from retention_app.commerce.models import Order, Product, SyncJob
from shop_integrations.shopify import reconcile
from shop_integrations.shopify.client import ShopifyClient
from tests.sync.conftest import load_fixture

pytestmark = pytest.mark.django_db
GRAPHQL = "https://acme.myshopify.com/admin/api/2026-01/graphql.json"


@responses.activate
def test_reconcile_reads_changes_since_last_pass_page_by_page(shop, django_capture_on_commit_callbacks):
    shop.storefront_url = "https://shop.example.co.th"
    shop.save(update_fields=["storefront_url"])
    last = SyncJob.objects.create(shop=shop, kind="orders", status="completed")
    SyncJob.objects.filter(pk=last.pk).update(started_at=dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC))
    node = load_fixture("graphql_order__node.json")
    second = dict(node, id="gid://shopify/Order/2", name="#1002", fulfillments=[])
    product = {
        "id": "gid://shopify/Product/632910392",
        "title": "Jasmine Green Tea",
        "handle": "jasmine-green-tea",
        "status": "ACTIVE",
        "updatedAt": "2026-02-02T00:00:00Z",
        "onlineStoreUrl": "https://elsewhere.example/products/jasmine-green-tea",
        "featuredMedia": {"preview": {"image": {"url": "https://cdn.shopify.com/jasmine.jpg"}}},
        "priceRangeV2": {"minVariantPrice": {"amount": "350.00", "currencyCode": "THB"}},
    }
    # known from the backfill, in a collection (the reconciliation page does not list collections)
    Product.objects.create(
        shop=shop,
        platform_id="632910392",
        title="Old title",
        collection_ids=["7"],
        platform_updated_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    pages = [
        {"customers": {"nodes": [node["customer"]], "pageInfo": {"hasNextPage": False, "endCursor": "c1"}}},
        {"orders": {"nodes": [node], "pageInfo": {"hasNextPage": True, "endCursor": "o1"}}},
        {"orders": {"nodes": [second], "pageInfo": {"hasNextPage": False, "endCursor": "o2"}}},
        {"products": {"nodes": [product], "pageInfo": {"hasNextPage": False, "endCursor": "p1"}}},
    ]
    seen, seen_documents = [], []

    def answer(request):
        body = json.loads(request.body)
        seen.append(body["variables"])
        seen_documents.append(body["query"])
        return 200, {}, json.dumps({"data": pages.pop(0)})

    responses.add_callback(responses.POST, GRAPHQL, callback=answer)
    client = ShopifyClient.with_token(shop.domain, "tok", sleep=lambda s: None)
    with django_capture_on_commit_callbacks(execute=True):
        count = reconcile.reconcile_shop(shop=shop, client=client)
    assert count == 4
    assert seen[0] == {"query": "updated_at:>'2026-02-01T11:55:00Z'", "after": None}
    assert seen[2]["after"] == "o1"
    assert set(Order.objects.filter(shop=shop).values_list("platform_id", flat=True)) == {
        "820982911946154508",
        "2",
    }
    assert "products(" in seen_documents[3] and seen[3]["query"] == seen[0]["query"]
    stored = Product.objects.get(shop=shop, platform_id="632910392")
    assert stored.url == f"{shop.storefront_url}/products/jasmine-green-tea"
    assert stored.title == "Jasmine Green Tea" and stored.price == Decimal("350.00")
    assert stored.collection_ids == ["7"] and stored.image_url == "https://cdn.shopify.com/jasmine.jpg"
    job = SyncJob.objects.get(shop=shop, kind="reconcile")
    assert job.status == "completed" and job.watermark is not None
    # the next pass starts from this pass's watermark
    responses.replace(responses.POST, GRAPHQL, json={"data": {"customers": {"nodes": [], "pageInfo": {}}}})
    assert reconcile.reconcile_shop(shop=shop, client=client) == 0


def test_reconcile_waits_for_the_first_backfill(shop):
    assert reconcile.reconcile_shop(shop=shop, client=object()) == 0
    assert not SyncJob.objects.filter(kind="reconcile").exists()
