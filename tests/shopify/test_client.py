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
    """A fake time.sleep that records the waits and moves the cost bucket's clock forward."""

    def __init__(self):
        super().__init__()
        self.now = 1000.0

    def __call__(self, seconds):
        self.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def make_client(token="tok-1", **kwargs):  # noqa: S107
    sleeps = Sleeps()
    client = ShopifyClient.with_token("acme.myshopify.com", token, sleep=sleeps, **kwargs)
    client.budget = LocalBudget("acme.myshopify.com", clock=sleeps.clock)
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
    # When the same query runs again, it first waits at least the (50 - 10) / 10 = 4 s the store's
    # figures demand (5 s here: the client's own count, 0 left, is lower than the store's and wins)
    client.execute(QUERY)
    assert 4.0 <= sum(sleeps) <= 5.5
    assert client.throttled_count == 0


def test_unused_reservation_is_refunded():
    budget = LocalBudget("refund.myshopify.com", clock=lambda: 0.0)
    wait, ticket = budget.reserve(50)  # the whole initial bucket
    assert wait == 0 and ticket
    assert budget.reserve(1)[1] is None
    budget.settle(ticket, 45, None)  # the query cost 5 of the 50 taken
    assert budget.reserve(40)[1] is not None


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


def test_local_budget_counts_in_flight_requests():
    budget = LocalBudget("inflight.myshopify.com", clock=lambda: 0.0)
    from shop_integrations.shopify.client import ThrottleStatus

    _, t1 = budget.reserve(10)
    _, t2 = budget.reserve(10)  # 30 of the initial 50 left
    # t1 answered: the store has 20 left, t2 has not arrived there yet -> 20 - 10 in flight = 10
    budget.settle(t1, 0, ThrottleStatus(maximum_available=100, currently_available=20, restore_rate=1))
    assert budget.reserve(10)[1] is not None
    assert budget.reserve(1)[1] is None


def test_an_older_answer_never_raises_the_bucket():
    budget = LocalBudget("ordering.myshopify.com", clock=lambda: 0.0)
    from shop_integrations.shopify.client import ThrottleStatus

    _, t1 = budget.reserve(20)
    _, t2 = budget.reserve(20)  # 10 left
    # The store ran t1 (30 left) then t2 (10 left); t2's answer is settled first, then t1's older one
    budget.settle(t2, 0, ThrottleStatus(maximum_available=100, currently_available=10, restore_rate=1))
    budget.settle(t1, 0, ThrottleStatus(maximum_available=100, currently_available=30, restore_rate=1))
    # The stale "30 left" must not raise the bucket: 15 points are not there (10 at most are)
    assert budget.reserve(15)[1] is None


def test_a_request_that_does_not_fit_takes_nothing_and_learns_how_long_to_wait():
    now = [0.0]
    budget = LocalBudget("wait.myshopify.com", clock=lambda: now[0])
    assert budget.reserve(50)[1] is not None  # initial bucket: 50 points at 50/s
    wait, ticket = budget.reserve(50)
    assert ticket is None and wait == 1.0
    assert budget.reserve(25)[0] == 0.5  # the failed ask took nothing
    now[0] += 1.0
    assert budget.reserve(50)[1] is not None


@requires_redis
def test_redis_budget_is_shared_between_clients(settings):
    import os

    settings.REDIS_URL = os.environ["REDIS_URL"]
    domain = "shared-budget.myshopify.com"
    first, second = RedisBudget(domain, settings.REDIS_URL), RedisBudget(domain, settings.REDIS_URL)
    first._redis.delete(first.key)
    from shop_integrations.shopify.client import ThrottleStatus

    first._redis.delete(first.inflight_key)
    # One client empties the bucket; the store reports 100 points max at 10/s
    wait, ticket = first.reserve(50)
    assert wait == 0 and ticket
    first.settle(ticket, 0, ThrottleStatus(maximum_available=100, currently_available=0, restore_rate=10))
    # The other process's client sees the same empty bucket: 100 points at 10/s are ~10 s away
    wait, ticket = second.reserve(100)
    assert ticket is None and 9.5 < wait <= 10.0
    first._redis.delete(first.key, first.inflight_key)
    # In flight reservations are subtracted from the store's figure
    _, t1 = first.reserve(20)
    _, t2 = second.reserve(20)  # 10 of the initial 50 left
    first.settle(t1, 0, ThrottleStatus(maximum_available=100, currently_available=15, restore_rate=10))
    # 15 - 20 (t2 in flight) = -5 -> 5 more points need 1 s
    wait, ticket = second.reserve(5)
    assert ticket is None and 0.9 < wait <= 1.0
    first._redis.delete(first.key, first.inflight_key)


@responses.activate
def test_waiting_is_bounded_even_when_sleep_does_not_pass_time():
    # A store reporting a tiny restore rate, and a sleep that returns at once (as in other tests):
    # the client must not spin forever; after a bounded number of waits it sends anyway.
    responses.post(GRAPHQL_URL, **answer(requested=50, actual=50, available=0, maximum=100, rate=0.001))
    client = ShopifyClient.with_token("acme.myshopify.com", "t", sleep=lambda s: None)
    client.budget = LocalBudget("acme.myshopify.com", clock=lambda: 0.0)
    client.execute(QUERY)
    client.execute(QUERY)
    assert len(responses.calls) == 2


@requires_redis
def test_redis_budget_force_takes_points_below_zero(settings):
    import os

    domain = "force-budget.myshopify.com"
    budget = RedisBudget(domain, os.environ["REDIS_URL"])
    budget._redis.delete(budget.key, budget.inflight_key)
    assert budget.reserve(50)[1] is not None
    assert budget.reserve(50)[1] is None
    wait, ticket = budget.reserve(50, force=True)
    assert ticket is not None
    assert budget.reserve(10)[0] > 1.0  # ~60 points short at 50/s
    budget._redis.delete(budget.key, budget.inflight_key)
