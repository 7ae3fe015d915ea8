"""Backfill: bulk JSONL streamed and written in batches, resumable, driven through the bulk-operation
lifecycle (Shopify mocked at the HTTP boundary with `responses`)."""

import datetime as dt
import json
import logging
from decimal import Decimal

import pytest
import responses
from django.db.models import Sum

from retention_app.commerce import selectors
from retention_app.commerce.models import (
    Customer,
    Fulfillment,
    FulfillmentEvent,
    LineItem,
    Order,
    Product,
    SyncJob,
)
from retention_app.shops.events import shop_installed
from shop_integrations.shopify import bulk, normalize, sync
from shop_integrations.shopify.client import ShopifyClient
from shop_integrations.shopify.sync_handlers import COMMERCE_TOPIC_HANDLERS
from tests.conftest import requires_postgres
from tests.sync.conftest import FIXTURES

pytestmark = pytest.mark.django_db

GRAPHQL = "https://acme.myshopify.com/admin/api/2026-01/graphql.json"
RESULT_URL = "https://storage.example.com/bulk/orders.jsonl?sig=abc"


def make_orders_jsonl(n_orders: int, items_per_order: int = 2) -> bytes:
    lines = []
    for i in range(1, n_orders + 1):
        gid = f"gid://shopify/Order/{i}"
        lines.append(
            {
                "id": gid,
                "name": f"#{1000 + i}",
                "email": f"c{i % 7}@example.com",
                "createdAt": "2025-01-01T00:00:00Z",
                "updatedAt": "2025-01-02T00:00:00Z",
                "currencyCode": "USD",
                "totalPriceSet": {"shopMoney": {"amount": f"{i}.50"}},
                "displayFinancialStatus": "PAID",
                "displayFulfillmentStatus": "FULFILLED",
                "discountCodes": [],
                "test": False,
                "customer": {"id": f"gid://shopify/Customer/{i % 7}"},
                "fulfillments": [],
            }
        )
        for j in range(items_per_order):
            lines.append(
                {
                    "id": f"gid://shopify/LineItem/{i * 10 + j}",
                    "title": "Tea",
                    "quantity": 1,
                    "originalUnitPriceSet": {"shopMoney": {"amount": "1.00"}},
                    "__parentId": gid,
                }
            )
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def lines_of(data: bytes, start: int = 0):
    offset = start
    for raw in data[start:].split(b"\n"):
        offset += len(raw) + 1
        if raw:
            yield raw, offset


def test_load_jsonl_writes_parents_and_children_across_batches(shop):
    data = make_orders_jsonl(10)
    done = bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(data), batch_rows=4)  # children split from parents
    assert done == 30
    assert Order.objects.filter(shop=shop).count() == 10
    assert LineItem.objects.filter(shop=shop).count() == 20
    assert Customer.objects.filter(shop=shop).count() == 7  # stubs for the linked customers
    assert Order.objects.filter(shop=shop, customer__isnull=True).count() == 0


def test_crash_mid_load_resumes_from_committed_offset_without_duplicates(shop):
    data = make_orders_jsonl(20)
    progress = {}

    class Crash(Exception):
        pass

    def on_batch(rows_done, bytes_done):
        if rows_done > 25:
            raise Crash  # the worker dies while writing the second batch: that batch rolls back
        progress.update(rows=rows_done, offset=bytes_done)

    with pytest.raises(Crash):
        bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(data), on_batch=on_batch, batch_rows=25)
    assert progress == {"rows": 25, "offset": progress["offset"]}
    assert LineItem.objects.count() + Order.objects.count() == 25
    done = bulk.load_jsonl(
        shop_id=shop.pk, lines=lines_of(data, progress["offset"]), rows_done=progress["rows"], batch_rows=25
    )
    assert done == 60
    assert Order.objects.count() == 20 and LineItem.objects.count() == 40
    assert Order.objects.aggregate(s=Sum("total_price"))["s"] == sum(i + 0.5 for i in range(1, 21))


@responses.activate
@pytest.mark.parametrize("honours_range", [True, False])
def test_stream_lines_resumes_with_range_or_skips_when_ignored(honours_range):
    data = (FIXTURES / "bulk_operations_finish__orders.jsonl").read_bytes()
    start = data.index(b"\n") + 1  # after the first line

    def answer(request):
        asked = request.headers.get("Range")
        if honours_range and asked:
            return 206, {}, data[int(asked.split("=")[1].rstrip("-")) :]
        return 200, {}, data

    responses.add_callback(responses.GET, RESULT_URL, callback=answer)
    got = list(bulk.stream_lines(RESULT_URL, start=start))
    assert [line for line, _ in got] == data[start:].rstrip(b"\n").split(b"\n")
    assert got[-1][1] == len(data)
    assert responses.calls[0].request.headers["Range"] == f"bytes={start}-"


def graphql_answers(*answers):
    """Register GraphQL answers served in order; returns the list of request bodies seen."""
    seen = []
    queue = list(answers)

    def answer(request):
        seen.append(json.loads(request.body))
        return 200, {}, json.dumps({"data": queue.pop(0)})

    responses.add_callback(responses.POST, GRAPHQL, callback=answer)
    return seen


@responses.activate
def test_sync_job_runs_bulk_operation_to_completion(shop):
    data = make_orders_jsonl(12)
    (job_c, job_o, _) = sync.backfill_start(shop=shop)
    op = "gid://shopify/BulkOperation/1"
    seen = graphql_answers(
        {"bulkOperationRunQuery": {"bulkOperation": {"id": op, "status": "CREATED"}, "userErrors": []}},
        {"bulkOperation": {"id": op, "status": "RUNNING", "objectCount": "10"}},
        {
            "bulkOperation": {
                "id": op,
                "status": "COMPLETED",
                "objectCount": "36",
                "url": RESULT_URL,
                "fileSize": str(len(data)),
            }
        },
    )
    responses.add(responses.GET, RESULT_URL, body=data)
    reports = []
    client = ShopifyClient.with_token(shop.domain, "tok", sleep=lambda s: None)
    outcome = sync.sync_job_run(
        job_id=job_o.pk, client=client, sleep=lambda s: None, progress=lambda j: reports.append(j.rows_done)
    )
    assert outcome == "completed"
    assert "bulkOperationRunQuery" in seen[0]["query"] and "lineItems" in seen[0]["variables"]["query"]
    assert seen[1]["variables"] == {"id": op}
    job_o.refresh_from_db()
    assert (job_o.status, job_o.rows_done, job_o.rows_total, job_o.bytes_done) == (
        "completed",
        36,
        36,
        len(data),
    )
    assert job_o.lease_until is None
    assert Order.objects.filter(shop=shop).count() == 12
    assert reports[-1] == 36
    progress = selectors.sync_job_progress(job=job_o)
    assert progress.percent == 100.0 and progress.eta is None
    # running it again does nothing
    assert sync.sync_job_run(job_id=job_o.pk, client=client) == "done"


@responses.activate
def test_failed_bulk_operation_marks_the_job_failed(shop):
    (_, job, _) = sync.backfill_start(shop=shop)
    graphql_answers(
        {
            "bulkOperationRunQuery": {
                "bulkOperation": {"id": "gid://shopify/BulkOperation/2"},
                "userErrors": [],
            }
        },
        {
            "bulkOperation": {
                "id": "gid://shopify/BulkOperation/2",
                "status": "FAILED",
                "errorCode": "TIMEOUT",
            }
        },
    )
    client = ShopifyClient.with_token(shop.domain, "tok", sleep=lambda s: None)
    assert sync.sync_job_run(job_id=job.pk, client=client, sleep=lambda s: None) == "failed"
    job.refresh_from_db()
    assert job.status == "failed" and "TIMEOUT" in job.error


def test_backfill_starts_once_on_install(shop, django_capture_on_commit_callbacks, monkeypatch):
    enqueued = []
    monkeypatch.setattr(sync.run_sync_job, "delay", lambda job_id: enqueued.append(job_id))
    with django_capture_on_commit_callbacks(execute=True):
        shop_installed.send(sender=None, shop=shop, reinstalled=False)
        shop_installed.send(sender=None, shop=shop, reinstalled=False)  # a repeated signal starts nothing new
    jobs = SyncJob.objects.filter(shop=shop)
    assert sorted(jobs.values_list("kind", flat=True)) == ["customers", "orders", "products"]
    assert set(enqueued) == set(jobs.values_list("pk", flat=True))


def test_a_held_lease_keeps_a_second_worker_out_and_expires(shop):
    (job, _, _) = sync.backfill_start(shop=shop)
    assert sync._claim(job.pk) is not None
    assert sync.sync_job_run(job_id=job.pk) == "busy"
    SyncJob.objects.filter(pk=job.pk).update(lease_until=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert sync._claim(job.pk) is not None  # a dead worker's lease ran out: taken over


def test_progress_reports_rate_and_eta(shop):
    start = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    job = SyncJob.objects.create(
        shop=shop,
        kind="orders",
        status="downloading",
        rows_total=1000,
        rows_done=400,
        rows_done_at_writing_start=100,
        writing_started_at=start,
    )
    p = selectors.sync_job_progress(job=job, now=start + dt.timedelta(seconds=10))
    assert p.rate == 30.0 and p.percent == 40.0 and p.eta == dt.timedelta(seconds=20)
    assert [x.kind for x in selectors.sync_progress_for_shop(shop=shop)] == ["orders"]


def test_commerce_topic_table_covers_the_topics_and_dispatches(shop, payload):
    assert set(COMMERCE_TOPIC_HANDLERS) == {
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "orders/fulfilled",
        "fulfillments/create",
        "fulfillments/update",
        "fulfillment_events/create",
        "customers/create",
        "customers/update",
        "bulk_operations/finish",
    }
    COMMERCE_TOPIC_HANDLERS["orders/updated"](shop, payload("orders_updated__refunded_item_removed.json"))
    COMMERCE_TOPIC_HANDLERS["orders/create"](shop, payload("orders_create__basic.json"))
    COMMERCE_TOPIC_HANDLERS["fulfillments/update"](shop, payload("fulfillments_update__in_transit.json"))
    COMMERCE_TOPIC_HANDLERS["fulfillment_events/create"](
        shop, payload("fulfillment_events_create__delivered.json")
    )
    COMMERCE_TOPIC_HANDLERS["customers/update"](shop, payload("customers_update__unsubscribed.json"))
    order = Order.objects.get(shop=shop)
    assert order.line_items.count() == 1
    assert order.fulfillments.get().shipment_status == "DELIVERED"
    assert order.customer.marketing_state == "UNSUBSCRIBED"


@responses.activate
def test_sync_shop_command_runs_every_job_with_a_progress_bar(shop):
    from django.core.management import call_command
    from django.utils import timezone

    from retention_app.shops.services import AccessGrant, shop_credential_store

    shop_credential_store(
        shop=shop,
        grant=AccessGrant(
            access_token="tok",
            scopes="read_orders",
            access_token_expires_at=timezone.now() + dt.timedelta(hours=1),
            refresh_token="ref",
            refresh_token_expires_at=timezone.now() + dt.timedelta(days=1),
        ),
    )
    customers = (FIXTURES / "bulk_operations_finish__customers.jsonl").read_bytes()
    orders = (FIXTURES / "bulk_operations_finish__orders.jsonl").read_bytes()
    products = (FIXTURES / "bulk_operations_finish__products.jsonl").read_bytes()
    graphql_answers(
        {
            "bulkOperationRunQuery": {
                "bulkOperation": {"id": "gid://shopify/BulkOperation/1"},
                "userErrors": [],
            }
        },
        {
            "bulkOperation": {
                "status": "COMPLETED",
                "objectCount": "2",
                "url": RESULT_URL + "c",
                "fileSize": "1",
            }
        },
        {
            "bulkOperationRunQuery": {
                "bulkOperation": {"id": "gid://shopify/BulkOperation/2"},
                "userErrors": [],
            }
        },
        {
            "bulkOperation": {
                "status": "COMPLETED",
                "objectCount": "5",
                "url": RESULT_URL + "o",
                "fileSize": "1",
            }
        },
        {
            "bulkOperationRunQuery": {
                "bulkOperation": {"id": "gid://shopify/BulkOperation/3"},
                "userErrors": [],
            }
        },
        {
            "bulkOperation": {
                "status": "COMPLETED",
                "objectCount": "4",
                "url": RESULT_URL + "p",
                "fileSize": "1",
            }
        },
    )
    responses.add(responses.GET, RESULT_URL + "c", body=customers)
    responses.add(responses.GET, RESULT_URL + "o", body=orders)
    responses.add(responses.GET, RESULT_URL + "p", body=products)
    import io

    out, err = io.StringIO(), io.StringIO()
    call_command("sync_shop", "--shop", shop.domain, stdout=out, stderr=err)
    assert "backfill complete" in out.getvalue()
    assert "Orders backfill" in err.getvalue() and "5/5 (100%)" in err.getvalue()
    assert Customer.objects.get(shop=shop, platform_id="706405506930370084").first_name == "พลอย"
    assert Order.objects.filter(shop=shop).count() == 2
    assert "Products backfill" in err.getvalue() and Product.objects.filter(shop=shop).count() == 2
    out = io.StringIO()
    call_command("sync_shop", "--shop", shop.domain, stdout=out)
    assert "already complete" in out.getvalue()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_pipelined_writer_outside_a_transaction_writes_everything_and_reports_errors(shop):
    from django.db import connection

    assert not connection.in_atomic_block  # the worker's situation: batches go to the writer thread
    data = make_orders_jsonl(30)
    seen = []
    done = bulk.load_jsonl(
        shop_id=shop.pk, lines=lines_of(data), batch_rows=7, on_batch=lambda r, o: seen.append(r)
    )
    assert done == 90 and seen[-1] == 90 and seen == sorted(seen)
    assert Order.objects.filter(shop=shop).count() == 30 and LineItem.objects.filter(shop=shop).count() == 60

    class Boom(Exception):
        pass

    def fail(rows_done, offset):
        raise Boom

    with pytest.raises(Boom):
        bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(make_orders_jsonl(40)), batch_rows=7, on_batch=fail)


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_pipelined_writer_with_an_order_repeated_in_the_next_batch_keeps_one_newest_row(shop):
    """Batch N+1 is prepared (its new orders checked, COPY data made) while batch N is still being written:
    an order in both is missed by the check, fails the COPY on the unique constraint, and the batch falls
    back to the upserts: one row, the newer payload, its line items once."""
    first = make_orders_jsonl(3, items_per_order=1)
    again = json.loads(first.splitlines()[0])
    again.update(name="#newer", updatedAt="2025-02-01T00:00:00Z")
    data = first + json.dumps(again).encode() + b"\n" + first.splitlines()[1] + b"\n"
    done = bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(data), batch_rows=6)
    assert done == 8
    order = Order.objects.get(shop=shop, platform_id="1")
    assert order.name == "#newer" and order.line_items.count() == 1
    assert Order.objects.filter(shop=shop).count() == 3 and LineItem.objects.filter(shop=shop).count() == 3


def test_products_backfill_stores_the_catalog_with_storefront_urls_and_collections(shop):
    shop.storefront_url = "https://shop.example.co.th"
    shop.save(update_fields=["storefront_url"])
    data = (FIXTURES / "bulk_operations_finish__products.jsonl").read_bytes()
    for _ in range(2):  # a replay (resumed job, second backfill) changes nothing
        done = bulk.load_jsonl(
            shop_id=shop.pk, lines=lines_of(data), batch_rows=1, storefront_url=shop.storefront_url
        )
        assert done == 4
        tea = Product.objects.get(shop=shop, platform_id="632910392")
        assert tea.url == "https://shop.example.co.th/products/jasmine-green-tea"
        assert tea.image_url == "https://cdn.shopify.com/s/files/1/jasmine.jpg"
        assert (tea.price, tea.currency, tea.status) == (Decimal("350.0"), "THB", "ACTIVE")
        assert tea.tags == ["green", "bestseller"] and tea.vendor == "Doi Tea Co."
        assert tea.collection_ids == ["395646240", "841564295"]  # child lines written in later batches
    teapot = Product.objects.get(shop=shop, platform_id="921728736")
    assert teapot.status == "DRAFT" and teapot.url == "https://shop.example.co.th/products/teapot"
    assert Product.objects.count() == 2


# --- tracking events (FulfillmentEvent lines, `__parentId` = the fulfillment) -----------------------------


def order_line(i: int, *, fulfilled: bool = True) -> dict:
    return {
        "id": f"gid://shopify/Order/{i}",
        "name": f"#{1000 + i}",
        "createdAt": "2025-01-01T00:00:00Z",
        "updatedAt": "2025-01-02T00:00:00Z",
        "currencyCode": "USD",
        "totalPriceSet": {"shopMoney": {"amount": "10.00"}},
        "customer": None,
        "fulfillments": [
            {
                "id": f"gid://shopify/Fulfillment/{i}00",
                "status": "SUCCESS",
                "displayStatus": "IN_TRANSIT",
                "createdAt": "2025-01-02T00:00:00Z",
                "updatedAt": "2025-01-03T00:00:00Z",
                "trackingInfo": [{"company": "Kerry Express", "number": f"KEX{i}", "url": None}],
            }
        ]
        if fulfilled
        else [],
    }


def event_line(event_id: int, fulfillment_gid: str, status: str = "IN_TRANSIT", **extra) -> dict:
    return {
        "id": f"gid://shopify/FulfillmentEvent/{event_id}",
        "status": status,
        "happenedAt": f"2025-01-0{3 + event_id % 5}T08:00:00Z",
        "message": "Departed facility",
        "city": "Bangkok",
        "province": "Bangkok",
        "country": "Thailand",
        "zip": "10110",
        "estimatedDeliveryAt": "2025-01-09T00:00:00Z",
        "__parentId": fulfillment_gid,
        **extra,
    }


def jsonl(*objects: dict) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objects)


F1, F2 = "gid://shopify/Fulfillment/100", "gid://shopify/Fulfillment/200"
EVENTS_JSONL = jsonl(
    order_line(1),
    event_line(1, F1, "CONFIRMED"),
    order_line(2),
    order_line(3, fulfilled=False),
    event_line(2, F2),
    event_line(3, F1),  # its fulfillment's order line is in an earlier batch
    event_line(2, F2),  # the same event twice
    event_line(4, "gid://shopify/Fulfillment/999"),  # a fulfillment that is not stored
    event_line(5, F1, "DELIVERED", message="Delivered", estimatedDeliveryAt=None),
)


def stored_events(shop) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for e in FulfillmentEvent.objects.filter(shop=shop).select_related("fulfillment"):
        found.setdefault(e.fulfillment.platform_id, []).append((e.platform_id, e.status))
    return {k: sorted(v) for k, v in found.items()}


EXPECTED_EVENTS = {
    "100": [("1", "CONFIRMED"), ("3", "IN_TRANSIT"), ("5", "DELIVERED")],
    "200": [("2", "IN_TRANSIT")],
}


@pytest.mark.parametrize("batch_rows", [2, 3, 100])
def test_backfill_stores_tracking_events_once_and_skips_unknown_fulfillments(shop, caplog, batch_rows):
    caplog.set_level(logging.DEBUG, logger="retention_app.commerce.services")
    for _ in range(2):  # a replay (resumed job, second backfill) adds nothing
        done = bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(EVENTS_JSONL), batch_rows=batch_rows)
        assert done == 9
        assert stored_events(shop) == EXPECTED_EVENTS
    assert FulfillmentEvent.objects.count() == 4
    event = FulfillmentEvent.objects.get(shop=shop, platform_id="1")
    assert (event.message, event.city, event.province, event.country) == (
        "Departed facility",
        "Bangkok",
        "Bangkok",
        "Thailand",
    )
    assert event.happened_at == dt.datetime(2025, 1, 4, 8, 0, tzinfo=dt.UTC)
    assert event.estimated_delivery_at == dt.datetime(2025, 1, 9, tzinfo=dt.UTC)
    assert FulfillmentEvent.objects.get(platform_id="5").estimated_delivery_at is None
    # the fulfillment keeps the status its own line says (history writes no status nor domain event)
    assert Fulfillment.objects.get(shop=shop, platform_id="100").shipment_status == "IN_TRANSIT"
    assert any(
        "fulfillment not stored" in r.getMessage() and "'999'" in r.getMessage() for r in caplog.records
    )
    assert all(
        r.levelno == logging.DEBUG for r in caplog.records if "fulfillment not stored" in r.getMessage()
    )


def test_backfill_events_never_attach_to_another_shops_fulfillment(shop, other_shop):
    bulk.load_jsonl(shop_id=other_shop.pk, lines=lines_of(jsonl(order_line(1))))
    assert Fulfillment.objects.filter(shop=other_shop, platform_id="100").exists()
    done = bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(jsonl(event_line(1, F1))))
    assert done == 1
    assert FulfillmentEvent.objects.count() == 0


def test_backfill_events_keep_a_redacted_orders_address_blank_and_a_stored_event_as_is(shop):
    bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(jsonl(order_line(1), event_line(1, F1))))
    Order.objects.filter(shop=shop, platform_id="1").update(
        redacted_at=dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
    )
    data = jsonl(event_line(1, F1, "DELIVERED"), event_line(2, F1))
    bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(data))
    first, second = FulfillmentEvent.objects.filter(shop=shop).order_by("platform_id")
    assert (first.status, first.city) == ("IN_TRANSIT", "Bangkok")  # stored before: left as it was
    assert (second.city, second.province, second.country) == ("", "", "Thailand")


def test_crash_mid_load_resumes_without_duplicate_events(shop):
    progress = {}

    class Crash(Exception):
        pass

    def on_batch(rows_done, bytes_done):
        if rows_done > 4:
            raise Crash  # the second batch (with events of the first batch's fulfillment) rolls back
        progress.update(rows=rows_done, offset=bytes_done)

    with pytest.raises(Crash):
        bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(EVENTS_JSONL), on_batch=on_batch, batch_rows=4)
    assert progress["rows"] == 4
    assert stored_events(shop) == {"100": [("1", "CONFIRMED")]}
    done = bulk.load_jsonl(
        shop_id=shop.pk, lines=lines_of(EVENTS_JSONL, progress["offset"]), rows_done=4, batch_rows=4
    )
    assert done == 9
    assert stored_events(shop) == EXPECTED_EVENTS


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_pipelined_writer_stores_events_whose_fulfillment_came_in_an_earlier_batch(shop):
    from django.db import connection

    assert not connection.in_atomic_block  # batches go to the writer thread
    seen = []
    done = bulk.load_jsonl(
        shop_id=shop.pk, lines=lines_of(EVENTS_JSONL), batch_rows=2, on_batch=lambda r, o: seen.append(r)
    )
    assert done == 9 and seen == [2, 4, 6, 8, 9]
    assert stored_events(shop) == EXPECTED_EVENTS


def test_an_event_line_without_its_time_fails_like_any_malformed_line(shop):
    bad = event_line(1, F1)
    del bad["happenedAt"]
    with pytest.raises(normalize.PayloadError, match="happenedAt"):
        bulk.load_jsonl(shop_id=shop.pk, lines=lines_of(jsonl(order_line(1), bad)))


@responses.activate
def test_tracking_history_reads_events_of_stored_fulfillments_and_stores_them_once(shop, monkeypatch):
    from shop_integrations.shopify import tracking_history

    bulk.load_jsonl(
        shop_id=shop.pk, lines=lines_of(jsonl(order_line(1), order_line(2), order_line(3, fulfilled=False)))
    )
    monkeypatch.setattr(tracking_history, "FULFILLMENTS_PER_QUERY", 1)

    def events_of(fid: str, *ids: int, more: bool = False) -> dict:
        nodes = [{k: v for k, v in event_line(i, fid).items() if k != "__parentId"} for i in ids]
        return {"id": fid, "events": {"pageInfo": {"hasNextPage": more}, "nodes": nodes}}

    answers = [
        {"nodes": [events_of(F1, 1, 3, more=True)]},
        {"nodes": [None]},  # deleted on the store since
    ] * 2
    seen = graphql_answers(*answers)
    client = ShopifyClient.with_token(shop.domain, "tok", sleep=lambda s: None)
    for _ in range(2):  # run again: nothing written twice
        assert tracking_history.backfill_tracking_events(shop=shop, client=client) == 2
        assert stored_events(shop) == {"100": [("1", "IN_TRANSIT"), ("3", "IN_TRANSIT")]}
    assert [s["variables"]["ids"] for s in seen[:2]] == [[F1], [F2]]  # order 3 has no fulfillment
    assert "nodes(ids:" in seen[0]["query"]
