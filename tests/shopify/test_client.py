"""The GraphQL client: pacing from throttleStatus, retries with a bound, 401 refresh, permanent errors.
Mocks only at the Shopify HTTP boundary (`responses`)."""

import json

import pytest
import requests
import responses

from shop_integrations.shopify.client import (
    LocalBudget,
    RedisBudget,
    ShopifyClient,
    ShopifyPermanentError,
    ShopifyRetryableError,
    ShopifyUnauthorizedError,
)
from tests.conftest import requires_redis

GRAPHQL_URL = "https://acme.myshopify.com/admin/api/2026-01/graphql.json"
TOKEN_URL = "https://acme.myshopify.com/admin/oauth/access_token"
QUERY = "query { shop { name } }"


@pytest.fixture(autouse=True)
def _production_like_urls(settings):
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    settings.REDIS_URL = ""  # in-process bucket unless a test asks for Redis


def answer(data=None, *, requested=10, actual=10, available=990, maximum=1000, rate=100, errors=None):
    body = {
        "extensions": {
            "cost": {
                "requestedQueryCost": requested,
                "actualQueryCost": actual,
                "throttleStatus": {
                    "maximumAvailable": maximum,
                    "currentlyAvailable": available,
                    "restoreRate": rate,
                },
            }
        }
    }
    if errors is not None:
        body["errors"] = errors
        body["extensions"]["cost"]["actualQueryCost"] = None
    else:
        body["data"] = data if data is not None else {"shop": {"name": "Acme"}}
    return {"json": body, "status": 200}


class Sleeps(list):
    def __call__(self, seconds):
        self.append(seconds)


def make_client(token="tok-1", **kwargs):  # noqa: S107
    sleeps = Sleeps()
    client = ShopifyClient.with_token("acme.myshopify.com", token, sleep=sleeps, **kwargs)
    return client, sleeps


@responses.activate
def test_execute_returns_data_and_sends_token_and_variables():
    responses.post(GRAPHQL_URL, **answer({"shop": {"name": "Acme"}}))
    client, _ = make_client()
    assert client.execute(QUERY, {"x": 1}) == {"shop": {"name": "Acme"}}
    sent = responses.calls[0].request
    assert sent.headers["X-Shopify-Access-Token"] == "tok-1"
    assert json.loads(sent.body) == {"query": QUERY, "variables": {"x": 1}}


@responses.activate
def test_paces_from_throttle_status_before_sending():
    # Given the store said: 10 of 100 points left, 10 points/s back, this query costs 50
    responses.post(GRAPHQL_URL, **answer(requested=50, actual=50, available=10, maximum=100, rate=10))
    client, sleeps = make_client()
    client.execute(QUERY)
    assert sleeps == []  # the first call fits the initial bucket
    # When the same query runs again, it waits for (50 - 10) / 10 = 4 s of restore first
    client.execute(QUERY)
    assert len(sleeps) == 1 and 3.5 < sleeps[0] <= 4.0
    assert client.throttled_count == 0


@responses.activate
def test_estimated_cost_is_reserved_and_refunded_to_actual():
    responses.post(GRAPHQL_URL, **answer(requested=100, actual=5, available=995, maximum=1000, rate=100))
    client, sleeps = make_client()
    client.execute(QUERY, estimated_cost=40)
    # 1000-point bucket, 995 available: cheap queries now go without waiting
    for _ in range(5):
        client.execute(QUERY, estimated_cost=100)
    assert sleeps == []


@responses.activate
def test_throttled_answer_is_retried_after_waiting():
    responses.post(
        GRAPHQL_URL,
        **answer(
            errors=[{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            requested=50,
            available=0,
            maximum=100,
            rate=10,
        ),
    )
    responses.post(GRAPHQL_URL, **answer())
    client, sleeps = make_client()
    assert client.execute(QUERY) == {"shop": {"name": "Acme"}}
    assert client.throttled_count == 1
    assert len(responses.calls) == 2
    assert sleeps and sleeps[0] > 4.0  # waited for ~50 points at 10/s


@responses.activate
def test_server_errors_are_retried_with_backoff_then_succeed():
    responses.post(GRAPHQL_URL, status=502)
    responses.post(GRAPHQL_URL, status=503)
    responses.post(GRAPHQL_URL, **answer())
    client, sleeps = make_client()
    assert client.execute(QUERY) == {"shop": {"name": "Acme"}}
    assert len(responses.calls) == 3
    assert len(sleeps) == 2 and all(0 <= s <= 15 for s in sleeps)


@responses.activate
def test_retries_are_bounded():
    responses.post(GRAPHQL_URL, status=500)
    client, sleeps = make_client(max_attempts=4)
    with pytest.raises(ShopifyRetryableError, match="gave up after 4 attempts"):
        client.execute(QUERY)
    assert len(responses.calls) == 4


@responses.activate
def test_network_errors_are_retryable():
    responses.post(GRAPHQL_URL, body=requests.ConnectionError("refused"))
    client, _ = make_client(max_attempts=2)
    with pytest.raises(ShopifyRetryableError):
        client.execute(QUERY)
    assert len(responses.calls) == 2


@responses.activate
def test_retry_after_header_is_honoured():
    responses.post(GRAPHQL_URL, status=429, headers={"Retry-After": "7"})
    responses.post(GRAPHQL_URL, **answer())
    client, sleeps = make_client()
    client.execute(QUERY)
    assert sleeps == [7.0]


@pytest.mark.parametrize("status", [400, 403, 404, 422])
@responses.activate
def test_other_4xx_are_permanent_and_not_retried(status):
    responses.post(GRAPHQL_URL, status=status, json={"errors": "nope"})
    client, _ = make_client()
    with pytest.raises(ShopifyPermanentError, match=str(status)):
        client.execute(QUERY)
    assert len(responses.calls) == 1


@responses.activate
def test_graphql_errors_are_permanent_with_the_message():
    responses.post(
        GRAPHQL_URL,
        **answer(
            errors=[{"message": "Field 'nope' doesn't exist", "extensions": {"code": "undefinedField"}}]
        ),
    )
    client, _ = make_client()
    with pytest.raises(ShopifyPermanentError, match="Field 'nope' doesn't exist"):
        client.execute(QUERY)
    assert len(responses.calls) == 1


@responses.activate
def test_user_errors_are_returned_as_data():
    data = {"webhookSubscriptionCreate": {"webhookSubscription": None, "userErrors": [{"message": "taken"}]}}
    responses.post(GRAPHQL_URL, **answer(data))
    client, _ = make_client()
    assert client.execute(QUERY) == data


@responses.activate
def test_static_token_client_does_not_refresh_on_401():
    responses.post(GRAPHQL_URL, status=401)
    client, _ = make_client()
    with pytest.raises(ShopifyUnauthorizedError):
        client.execute(QUERY)
    assert len(responses.calls) == 1


@pytest.mark.django_db
@responses.activate
def test_401_refreshes_once_and_retries_with_the_new_token(shop, store_credential):
    store_credential(shop, access_token="old-token", refresh_token="ref-1")
    responses.post(GRAPHQL_URL, status=401)
    responses.post(GRAPHQL_URL, **answer())
    responses.post(
        TOKEN_URL,
        json={
            "access_token": "new-token",
            "expires_in": 3600,
            "refresh_token": "ref-2",
            "refresh_token_expires_in": 7776000,
            "scope": "read_orders",
        },
    )
    client = ShopifyClient.for_shop(shop, sleep=Sleeps())
    assert client.execute(QUERY) == {"shop": {"name": "Acme"}}
    graphql_calls = [c for c in responses.calls if c.request.url == GRAPHQL_URL]
    assert [c.request.headers["X-Shopify-Access-Token"] for c in graphql_calls] == ["old-token", "new-token"]
    shop.credential.refresh_from_db()
    assert shop.credential.access_token == "new-token" and shop.credential.refresh_token == "ref-2"


@pytest.mark.django_db
@responses.activate
def test_second_401_after_refresh_is_permanent(shop, store_credential):
    store_credential(shop, access_token="old-token")
    responses.post(GRAPHQL_URL, status=401)
    responses.post(TOKEN_URL, json={"access_token": "new-token", "expires_in": 3600, "refresh_token": "r2"})
    client = ShopifyClient.for_shop(shop, sleep=Sleeps())
    with pytest.raises(ShopifyUnauthorizedError):
        client.execute(QUERY)
    assert len([c for c in responses.calls if c.request.url == TOKEN_URL]) == 1


def test_local_budget_counts_in_flight_reservations():
    budget = LocalBudget("inflight.myshopify.com")
    from shop_integrations.shopify.client import ThrottleStatus

    _, t1 = budget.reserve(10)
    _, t2 = budget.reserve(10)
    # t1 answered: the store has 100 of 100 (t2 not yet arrived there) -> 100 - 10 in flight = 90
    budget.settle(t1, 0, ThrottleStatus(maximum_available=100, currently_available=100, restore_rate=1))
    assert budget.reserve(90)[0] == 0
    assert budget.reserve(1)[0] > 0


def test_local_budget_reservations_queue_fairly():
    budget = LocalBudget("fair.myshopify.com")
    # Initial bucket: 50 points at 50/s. Three reservations of 50: go, ~1 s, ~2 s.
    waits = [budget.reserve(50)[0] for _ in range(3)]
    assert waits[0] == 0
    assert 0.9 < waits[1] <= 1.0 and 1.9 < waits[2] <= 2.0


@requires_redis
def test_redis_budget_is_shared_between_clients(settings):
    import os

    settings.REDIS_URL = os.environ["REDIS_URL"]
    domain = "shared-budget.myshopify.com"
    first, second = RedisBudget(domain, settings.REDIS_URL), RedisBudget(domain, settings.REDIS_URL)
    first._redis.delete(first.key)
    from shop_integrations.shopify.client import ThrottleStatus

    first._redis.delete(first.inflight_key)
    wait, ticket = first.reserve(10)
    first.settle(ticket, 0, ThrottleStatus(maximum_available=100, currently_available=100, restore_rate=10))
    assert first.reserve(100)[0] == 0
    # The other process's client sees the same empty bucket: it waits ~10 s for 100 points at 10/s.
    assert 9.5 < second.reserve(100)[0] <= 10.0
    # An answer while one reservation is still in flight: available = store's figure minus in flight.
    wait, ticket = first.reserve(30)
    first.settle(ticket, 0, ThrottleStatus(maximum_available=100, currently_available=80, restore_rate=10))
    # in flight: the 100 + 100 reservations above -> 80 - 200 = -120 -> 150 points needed = 15 s
    assert 14.5 < second.reserve(30)[0] <= 15.0
    first._redis.delete(first.key, first.inflight_key)
