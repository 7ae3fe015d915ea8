"""The Admin GraphQL API of the dev store over real HTTP: answers shaped by the real schema, pagination,
search, errors like Shopify's, cost extensions and throttling, mutations, @idempotent, bulk JSONL."""

from __future__ import annotations

import json

import pytest
import requests

from shop_integrations.devstore.control import DevStoreError
from tests.fixtures.processes import wait_until

CUSTOMER_FIELDS = """id email firstName lastName locale tags numberOfOrders createdAt updatedAt
  amountSpent { amount currencyCode } defaultEmailAddress { emailAddress marketingState }"""
ORDER_FIELDS = """id name createdAt updatedAt cancelledAt cancelReason test currencyCode
  presentmentCurrencyCode customerLocale
  displayFinancialStatus displayFulfillmentStatus discountCodes
  totalPriceSet { shopMoney { amount currencyCode } } subtotalPriceSet { shopMoney { amount } }
  totalDiscountsSet { shopMoney { amount currencyCode } } customer { id email }
  lineItems(first: 10) { nodes { id title quantity sku originalUnitPriceSet { shopMoney { amount } } } }
  fulfillments { id status displayStatus estimatedDeliveryAt deliveredAt trackingInfo { company number url }
    events(first: 10) { nodes { status happenedAt message city country estimatedDeliveryAt } } }"""


def test_shop_query_carries_cost_extension(admin):
    answer = admin.gql("{ shop { name myshopifyDomain currencyCode ianaTimezone } }")
    assert answer["data"]["shop"] == {
        "name": "Test Tea Shop",
        "myshopifyDomain": admin.shop,
        "currencyCode": "USD",
        "ianaTimezone": "America/New_York",
    }
    cost = answer["extensions"]["cost"]
    assert cost["requestedQueryCost"] >= 1 and cost["actualQueryCost"] >= 1
    assert cost["throttleStatus"]["maximumAvailable"] == 1000
    assert cost["throttleStatus"]["restoreRate"] == 100
    assert cost["throttleStatus"]["currentlyAvailable"] <= 1000


def test_customers_pagination_and_updated_at_search(admin):
    admin.control.seed(admin.shop, customers=7, orders=20)
    seen, after = [], None
    while True:
        page = admin.data(
            f"query($after: String) {{ customers(first: 3, after: $after) {{ edges {{ cursor node "
            f"{{ {CUSTOMER_FIELDS} }} }}"
            " pageInfo { hasNextPage endCursor } } }",
            {"after": after},
        )["customers"]
        seen += [e["node"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 7 and len({c["id"] for c in seen}) == 7
    assert all(c["id"].startswith("gid://shopify/Customer/") for c in seen)
    assert sum(int(c["numberOfOrders"]) for c in seen) <= 20
    assert {c["defaultEmailAddress"]["marketingState"] for c in seen} <= {
        "SUBSCRIBED",
        "NOT_SUBSCRIBED",
        "UNSUBSCRIBED",
        "PENDING",
    }

    cutoff = sorted(c["updatedAt"] for c in seen)[3]
    newer = admin.data(
        "query($q: String) { customers(first: 50, query: $q) { nodes { id updatedAt } } }",
        {"q": f"updated_at:>'{cutoff}'"},
    )["customers"]["nodes"]
    assert {c["id"] for c in newer} == {c["id"] for c in seen if c["updatedAt"] > cutoff}


def test_order_with_discount_fulfillment_and_tracking(admin):
    ctl, shop = admin.control, admin.shop
    customer = ctl.create_customer(shop, email="ploy@example.com", first_name="Ploy", locale="th")
    created = admin.data(
        """mutation { discountCodeBasicCreate(basicCodeDiscount: {title: "Thanks", code: "THANKS15",
        startsAt: "2020-01-01T00:00:00Z", customerGets: {value: {percentage: 0.15}, items: {all: true}}}) {
        codeDiscountNode { id } userErrors { field message } } }"""
    )["discountCodeBasicCreate"]
    assert created["userErrors"] == []
    order = ctl.place_order(
        shop,
        customer_id=customer["id"],
        items=[{"handle": "oolong-reserve", "quantity": 2}],
        discount_code="thanks15",
    )
    fulfilled = ctl.fulfill_order(
        shop,
        order["id"],
        tracking_company="Thailand Post",
        tracking_number="EF123TH",
        estimated_delivery_at="2030-01-05T12:00:00Z",
    )
    ctl.add_tracking_event(
        shop, fulfilled["fulfillment"]["id"], status="in_transit", city="Bangkok", country="TH"
    )
    ctl.add_tracking_event(
        shop, fulfilled["fulfillment"]["id"], status="delivered", city="Bangkok", country="TH"
    )

    node = admin.data(f'{{ order(id: "gid://shopify/Order/{order["id"]}") {{ {ORDER_FIELDS} }} }}')["order"]
    assert node["name"] == order["name"]
    # shop money in the shop's currency (USD), the Thai customer paid in THB
    assert node["currencyCode"] == "USD" and node["customerLocale"] == "th"
    assert node["presentmentCurrencyCode"] == "THB"
    assert node["discountCodes"] == ["THANKS15"]
    subtotal = float(node["lineItems"]["nodes"][0]["originalUnitPriceSet"]["shopMoney"]["amount"]) * 2
    assert float(node["totalDiscountsSet"]["shopMoney"]["amount"]) == pytest.approx(subtotal * 0.15, abs=0.01)
    assert float(node["totalPriceSet"]["shopMoney"]["amount"]) == pytest.approx(subtotal * 0.85, abs=0.01)
    assert node["displayFinancialStatus"] == "PAID" and node["displayFulfillmentStatus"] == "FULFILLED"
    assert node["customer"]["email"] == "ploy@example.com"
    (fulfillment,) = node["fulfillments"]
    assert fulfillment["displayStatus"] == "DELIVERED" and fulfillment["deliveredAt"]
    assert fulfillment["trackingInfo"] == [
        {
            "company": "Thailand Post",
            "number": "EF123TH",
            "url": "https://tracking.devstore.test/thailand post/EF123TH",
        }
    ]
    assert [e["status"] for e in fulfillment["events"]["nodes"]] == ["IN_TRANSIT", "DELIVERED"]
    assert fulfillment["estimatedDeliveryAt"] == "2030-01-05T12:00:00Z"


def test_products_and_orders_connections(admin):
    admin.control.seed(admin.shop, customers=3, orders=5)
    data = admin.data(
        "{ products(first: 3) { nodes { id title handle variants(first: 1) { nodes { id price } } } }"
        "  orders(first: 2, reverse: true) { nodes { id name } pageInfo { hasNextPage } } }"
    )
    assert len(data["products"]["nodes"]) == 3
    assert data["products"]["nodes"][0]["variants"]["nodes"][0]["price"]
    assert data["orders"]["pageInfo"]["hasNextPage"] is True
    names = [o["name"] for o in data["orders"]["nodes"]]
    assert names == sorted(names, reverse=True)


def test_missing_wrong_or_expired_token_is_401(admin):
    expected = {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
    for token in ("", "shpat_wrong"):
        resp = admin.post("{ shop { name } }", token=token)
        assert resp.status_code == 401 and resp.json() == expected
    admin.control.expire_tokens(admin.shop)
    resp = admin.post("{ shop { name } }")
    assert resp.status_code == 401 and resp.json() == expected


def test_token_of_another_shop_is_401(admin, devstore):
    other = "t-other-shop-graphql.devstore.test"
    devstore.control.create_shop(other)
    resp = devstore.control.graphql(other, admin.token, "{ shop { name } }")
    assert resp.status_code == 401


def test_unknown_shop_is_404(admin, devstore):
    resp = devstore.control.graphql("never-created.devstore.test", admin.token, "{ shop { name } }")
    assert resp.status_code == 404


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("{ shop { name ", "Syntax Error"),
        ("{ shop { nmae } }", "Cannot query field 'nmae' on type 'Shop'"),
        ("{ customers { nodes { id } } }", "you must provide one of first or last"),
        ("{ customers(first: 300) { nodes { id } } }", "too big"),
        ("{ draftOrders(first: 1) { nodes { id } } }", "not supported by the dev store"),
        ('{ order(id: "not-a-gid") { id } }', "Invalid global id"),
    ],
)
def test_bad_documents_answer_graphql_errors(admin, query, fragment):
    resp = admin.post(query)
    assert resp.status_code == 200
    errors = resp.json()["errors"]
    assert any(fragment in e["message"] for e in errors), errors


def test_bad_body_is_400(admin):
    resp = requests.post(
        admin.control.graphql_url(admin.shop),
        data=b"{not json",
        headers={"X-Shopify-Access-Token": admin.token, "Content-Type": "application/json"},
        timeout=10,
    )
    assert resp.status_code == 400


def test_throttled_when_bucket_is_empty(admin):
    admin.control.seed(admin.shop, customers=25, orders=0)  # answers cost what they return: make them full
    admin.control.settings(bucket_size=60, restore_rate=1)
    query = "{ customers(first: 20) { nodes { id defaultEmailAddress { emailAddress } } } }"  # cost 2 + 20*2
    answers = [admin.post(query).json() for _ in range(3)]
    throttled = [a for a in answers if "errors" in a]
    assert throttled, answers
    assert throttled[0]["errors"] == [
        {
            "message": "Throttled",
            "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"},
        }
    ]
    status = throttled[0]["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 60 and status["currentlyAvailable"] < 42
    assert admin.control.stats(admin.shop)["throttled"] >= 1

    too_big = admin.post(
        "{ customers(first: 250) { nodes { id defaultEmailAddress { emailAddress } } } }"
    ).json()
    assert too_big["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"


DISCOUNT = """mutation Create($input: DiscountCodeBasicInput!, $key: String!) {
  discountCodeBasicCreate(basicCodeDiscount: $input) @idempotent(key: $key) {
    codeDiscountNode { id codeDiscount { ... on DiscountCodeBasic { title usageLimit appliesOncePerCustomer
      codes(first: 1) { nodes { code } } } } }
    userErrors { field message code } } }"""


def discount_input(code, **extra):
    return {
        "title": f"Next order {code}",
        "code": code,
        "startsAt": "2020-01-01T00:00:00Z",
        "customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}},
        **extra,
    }


def test_discount_code_applies_once_then_is_refused(admin):
    ctl, shop = admin.control, admin.shop
    buyer = ctl.create_customer(shop, email="buyer@example.com")
    other = ctl.create_customer(shop, email="other@example.com")
    result = admin.data(
        DISCOUNT,
        {
            "key": "k-1",
            "input": discount_input(
                "BACK-ABC123",
                usageLimit=1,
                appliesOncePerCustomer=True,
                context={"customers": {"add": [f"gid://shopify/Customer/{buyer['id']}"]}},
            ),
        },
    )["discountCodeBasicCreate"]
    assert result["userErrors"] == []
    assert result["codeDiscountNode"]["codeDiscount"]["codes"]["nodes"] == [{"code": "BACK-ABC123"}]

    with pytest.raises(DevStoreError) as refused:
        ctl.place_order(shop, customer_id=other["id"], discount_code="BACK-ABC123")
    assert refused.value.status == 400 and "not available to this customer" in str(refused.value.body)

    order = ctl.place_order(
        shop, customer_id=buyer["id"], items=[{"handle": "gift-box"}], discount_code="BACK-ABC123"
    )
    assert order["discount_codes"] == [{"code": "BACK-ABC123", "amount": "3.90", "type": "percentage"}]
    assert order["total_price"] == "35.10"

    with pytest.raises(DevStoreError) as again:
        ctl.place_order(shop, customer_id=buyer["id"], discount_code="BACK-ABC123")
    assert again.value.status == 400


@pytest.mark.parametrize(
    ("extra", "order_items", "reason"),
    [
        ({"endsAt": "2021-01-01T00:00:00Z"}, None, "has expired"),
        ({"startsAt": "2099-01-01T00:00:00Z"}, None, "not active yet"),
        (
            {"minimumRequirement": {"subtotal": {"greaterThanOrEqualToSubtotal": "100.00"}}},
            [{"handle": "earl-grey"}],
            "minimum subtotal",
        ),
    ],
)
def test_discount_code_conditions_are_checked(admin, extra, order_items, reason):
    admin.data(DISCOUNT, {"key": "k-cond", "input": discount_input("COND1", **extra)})
    with pytest.raises(DevStoreError) as refused:
        admin.control.place_order(admin.shop, email="x@example.com", items=order_items, discount_code="COND1")
    assert reason in str(refused.value.body)


def test_idempotent_key_creates_nothing_twice_and_duplicate_code_is_taken(admin):
    first = admin.data(DISCOUNT, {"key": "same-key", "input": discount_input("ONCE1")})[
        "discountCodeBasicCreate"
    ]
    replay = admin.data(DISCOUNT, {"key": "same-key", "input": discount_input("ONCE1")})[
        "discountCodeBasicCreate"
    ]
    assert replay == first
    assert len(admin.control.discounts(admin.shop)) == 1

    other_key = admin.data(DISCOUNT, {"key": "other-key", "input": discount_input("once1")})
    assert other_key["discountCodeBasicCreate"]["codeDiscountNode"] is None
    assert other_key["discountCodeBasicCreate"]["userErrors"][0]["code"] == "TAKEN"


def test_consent_update_and_metafields_set(admin):
    customer = admin.control.create_customer(admin.shop, email="c@example.com", marketing_state="SUBSCRIBED")
    gid = f"gid://shopify/Customer/{customer['id']}"
    updated = admin.data(
        "mutation($id: ID!) { customerEmailMarketingConsentUpdate(input: {customerId: $id, "
        "emailMarketingConsent: "
        "{marketingState: UNSUBSCRIBED}}) { customer { defaultEmailAddress { marketingState } "
        "} userErrors { message } } }",
        {"id": gid},
    )["customerEmailMarketingConsentUpdate"]
    assert updated == {
        "customer": {"defaultEmailAddress": {"marketingState": "UNSUBSCRIBED"}},
        "userErrors": [],
    }

    result = admin.data(
        "mutation($m: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $m) { metafields { "
        "key namespace value "
        "type } userErrors { field message } } }",
        {
            "m": [
                {
                    "ownerId": gid,
                    "namespace": "boomerang",
                    "key": "segment",
                    "type": "single_line_text_field",
                    "value": "vip",
                }
            ]
        },
    )["metafieldsSet"]
    assert result == {
        "metafields": [
            {"key": "segment", "namespace": "boomerang", "value": "vip", "type": "single_line_text_field"}
        ],
        "userErrors": [],
    }
    missing = admin.data(
        'mutation { metafieldsSet(metafields: [{ownerId: "gid://shopify/Customer/999999", key: "k", '
        'type: "number_integer", value: "1"}]) { metafields { id } userErrors { message } } }'
    )["metafieldsSet"]
    assert missing["metafields"] is None and missing["userErrors"]


def test_webhook_subscription_create_and_delete(admin):
    create = """mutation($uri: String!) { webhookSubscriptionCreate(topic: ORDERS_CREATE,
      webhookSubscription: {uri: $uri, format: JSON}) { webhookSubscription { id topic uri }
      userErrors { field message } } }"""
    made = admin.data(create, {"uri": "http://127.0.0.1:9/webhooks/shopify"})["webhookSubscriptionCreate"]
    assert made["userErrors"] == [] and made["webhookSubscription"]["topic"] == "ORDERS_CREATE"
    dup = admin.data(create, {"uri": "http://127.0.0.1:9/webhooks/shopify"})["webhookSubscriptionCreate"]
    assert dup["webhookSubscription"] is None and dup["userErrors"]
    bad = admin.data(create, {"uri": "javascript:alert(1)"})["webhookSubscriptionCreate"]
    assert bad["userErrors"][0]["message"] == "Address is invalid"

    listed = admin.data("{ webhookSubscriptions(first: 10) { nodes { id topic uri } } }")
    assert listed["webhookSubscriptions"]["nodes"] == [made["webhookSubscription"]]
    deleted = admin.data(
        "mutation($id: ID!) { webhookSubscriptionDelete(id: $id) { "
        "deletedWebhookSubscriptionId userErrors { message } } }",
        {"id": made["webhookSubscription"]["id"]},
    )["webhookSubscriptionDelete"]
    assert deleted == {"deletedWebhookSubscriptionId": made["webhookSubscription"]["id"], "userErrors": []}
    assert admin.control.subscriptions(admin.shop) == []


BULK = """{ orders { edges { node { id name updatedAt customer { id }
  lineItems { edges { node { id title quantity } } } } } } }"""


def test_bulk_operation_writes_jsonl_with_parent_ids(admin):
    admin.control.seed(admin.shop, customers=10, orders=30)
    started = admin.data(
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status } "
        "userErrors { field message } } }",
        {"q": BULK},
    )["bulkOperationRunQuery"]
    assert started["userErrors"] == []
    op_id = started["bulkOperation"]["id"]

    def finished():
        op = admin.data(
            "query($id: ID!) { bulkOperation(id: $id) { status objectCount rootObjectCount url } }",
            {"id": op_id},
        )["bulkOperation"]
        return op if op["status"] in ("COMPLETED", "FAILED") else None

    op = wait_until(finished, timeout=30, what="bulk operation to finish")
    assert op["status"] == "COMPLETED" and op["rootObjectCount"] == "30"
    lines = [json.loads(line) for line in requests.get(op["url"], timeout=10).text.splitlines()]
    assert len(lines) == int(op["objectCount"])
    orders = [row for row in lines if "__parentId" not in row]
    items = [row for row in lines if "__parentId" in row]
    assert len(orders) == 30 and items
    assert all(o["customer"]["id"].startswith("gid://shopify/Customer/") for o in orders)
    # every child follows its parent
    current = None
    for row in lines:
        if "__parentId" in row:
            assert row["__parentId"] == current and row["id"].startswith("gid://shopify/LineItem/")
        else:
            current = row["id"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("{ shop { name } }", "exactly one top-level connection"),
        ("{ orders { edges { node { id nme } } } }", "Invalid bulk query"),
        (
            "{ orders { edges { node { id customer { orders { edges { node { id lineItems { edges "
            "{ node { id "
            "product { variants { edges { node { id } } } } } } } } } } } } } } }",
            "nesting depth",
        ),
        (
            # Shopify refuses a connection inside a list field (an order's fulfillments are a list)
            "{ orders { edges { node { id fulfillments { id events { edges { node { id } } } } } } } }",
            "Queries that contain a connection field within a list field are not currently supported.",
        ),
    ],
)
def test_bulk_query_rules_answer_user_errors(admin, query, fragment):
    result = admin.data(
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } "
        "userErrors { message } } }",
        {"q": query},
    )["bulkOperationRunQuery"]
    assert result["bulkOperation"] is None
    assert fragment in result["userErrors"][0]["message"]


def test_faults_fail_then_recover(admin):
    admin.control.set_faults(fail_next=1, error_status=503)
    assert admin.post("{ shop { name } }").status_code == 503
    assert admin.post("{ shop { name } }").status_code == 200
    admin.control.set_faults(drop_next=1)
    with pytest.raises(requests.ConnectionError):
        admin.post("{ shop { name } }")
    assert admin.post("{ shop { name } }").status_code == 200
    assert admin.control.stats(admin.shop)["faults_injected"] == 2


def run_bulk(admin, query: str) -> list[dict]:
    started = admin.data(
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } "
        "userErrors { message } } }",
        {"q": query},
    )["bulkOperationRunQuery"]
    assert started["userErrors"] == []

    def finished():
        op = admin.data(
            "query($id: ID!) { bulkOperation(id: $id) { status url } }",
            {"id": started["bulkOperation"]["id"]},
        )["bulkOperation"]
        return op if op["status"] in ("COMPLETED", "FAILED") else None

    op = wait_until(finished, timeout=30, what="bulk operation")
    assert op["status"] == "COMPLETED"
    return [json.loads(line) for line in requests.get(op["url"], timeout=10).text.splitlines()]


def test_bulk_fast_executor_matches_graphql_core(admin):
    """Bulk exports walk the resolvers without graphql-core's executor (10x faster); same JSONL."""
    admin.control.seed(admin.shop, customers=6, orders=15)
    query = """{ orders(query: "status:any") { edges { node { __typename id name no: number createdAt
      ... on Order { displayFinancialStatus cancelReason totalPriceSet { shopMoney { amount currencyCode } } }
      ...OrderBits
      customer { id defaultEmailAddress { emailAddress marketingState } amountSpent { amount } }
      fulfillments { status displayStatus trackingInfo { company number } }
      lineItems { edges { node { id title quantity variant { id price } } } } } } } }
      fragment OrderBits on Order { discountCodes customerLocale test updatedAt }"""
    admin.control.settings(bulk_executor="graphql-core")
    reference = run_bulk(admin, query)
    admin.control.settings(bulk_executor="fast")
    fast = run_bulk(admin, query)
    assert len(reference) > 15
    assert fast == reference


def test_seed_is_realistic(admin):
    seeded = admin.control.seed(admin.shop, customers=40, orders=400, months=6, seed=3)
    assert seeded["orders"] == 400 and seeded["fulfillments"] > 0 and seeded["fulfillment_events"] > 0
    customers = admin.data(f"{{ customers(first: 40) {{ nodes {{ {CUSTOMER_FIELDS} }} }} }}")["customers"][
        "nodes"
    ]
    assert {"en", "th", "vi", "pl", "zh-TW"} <= {c["locale"] for c in customers}
    counts = sorted((int(c["numberOfOrders"]) for c in customers), reverse=True)
    assert counts[0] >= 10 and counts.count(1) + counts.count(0) >= 1  # repeat buyers and a long tail
    orders = admin.data(
        "{ orders(first: 100) { nodes { currencyCode presentmentCurrencyCode createdAt cancelledAt "
        "displayFinancialStatus "
        "lineItems(first: 5) { nodes { quantity } } } } }"
    )["orders"]["nodes"]
    assert {o["currencyCode"] for o in orders} == {"USD"}  # shop money: the shop's currency
    assert len({o["presentmentCurrencyCode"] for o in orders}) >= 3  # customers pay in several
    assert len({len(o["lineItems"]["nodes"]) for o in orders}) >= 3  # varied baskets
    assert len({c["createdAt"][:7] for c in customers}) >= 4  # customers joined over the months
    assert len({o["createdAt"][:7] for o in orders}) >= 2  # the oldest orders already span months
    assert any(o["cancelledAt"] for o in orders) or any(o["displayFinancialStatus"] != "PAID" for o in orders)


def test_refund_updates_financial_status(admin):
    order = admin.control.place_order(admin.shop, email="refund@example.com", items=[{"handle": "gift-box"}])
    partial = admin.control.refund_order(admin.shop, order["id"], amount="10.00")
    assert partial["financial_status"] == "partially_refunded" and partial["current_total_price"] == "29.00"
    full = admin.control.refund_order(admin.shop, order["id"])
    assert full["financial_status"] == "refunded"
    with pytest.raises(DevStoreError) as nothing_left:
        admin.control.refund_order(admin.shop, order["id"], amount="1.00")
    assert nothing_left.value.status == 400
    node = admin.data(f'{{ order(id: "gid://shopify/Order/{order["id"]}") {{ displayFinancialStatus }} }}')
    assert node["order"]["displayFinancialStatus"] == "REFUNDED"
