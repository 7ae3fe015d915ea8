"""The one GraphQL client for every Shopify Admin API call.

    from shop_integrations.shopify.client import ShopifyClient
    from shop_integrations.shopify.documents import load
    data = ShopifyClient.for_shop(shop).execute(load("shop"))

Contract of `execute(document, variables=None, *, estimated_cost=None) -> dict` (the `data` object):
- Paces itself so the store never answers THROTTLED: before sending it waits until the shop's cost bucket
  holds the query's estimated cost (`estimated_cost`, else the requestedQueryCost this document had last
  time, else a default) and takes it. After each answer the bucket is corrected from
  `extensions.cost` (actual cost refunded, throttleStatus learned: size, restore rate, what is available).
- The bucket of a shop is shared by every process through Redis (an atomic Lua token bucket keyed by shop
  domain, clocked by Redis' TIME); without settings.REDIS_URL an in-process bucket is used.
- Retries THROTTLED, HTTP 429/5xx, INTERNAL_SERVER_ERROR and network errors with exponential backoff and
  full jitter, at most settings.SHOPIFY_CLIENT_MAX_ATTEMPTS attempts, then raises ShopifyRetryableError.
- On 401 refreshes the token once (oauth.access_token_for) and retries; a second 401 raises
  ShopifyUnauthorizedError (a ShopifyPermanentError).
- Other 4xx and GraphQL `errors` raise ShopifyPermanentError with the messages. `userErrors` of mutations
  are data: the caller checks them.
Tokens are never logged.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings

from shop_integrations.shopify.domains import admin_api_url, require_shop_domain
from shop_integrations.shopify.http import (
    ShopifyError,
    ShopifyPermanentError,
    ShopifyRetryableError,
    ShopifyUnauthorizedError,
    post_json,
)

__all__ = [
    "ShopifyClient",
    "ShopifyError",
    "ShopifyPermanentError",
    "ShopifyRetryableError",
    "ShopifyUnauthorizedError",
]

logger = logging.getLogger(__name__)

# Used until the store told us its bucket (first answer): small, so a burst of first calls from many
# workers cannot overdraw a small bucket.
INITIAL_BUCKET_SIZE = 50.0
INITIAL_RESTORE_RATE = 50.0
# Estimated cost of a document never seen before in this process.
DEFAULT_QUERY_COST = 50.0
BACKOFF_BASE = 0.5
BACKOFF_CAP = 15.0
BUDGET_TTL_SECONDS = 3600
# Waiting for the bucket: at most this many rounds, each at most this long (a store may report a tiny
# restore rate; we would rather ask again than sleep for an hour).
MAX_ACQUIRE_ROUNDS = 50
MAX_SINGLE_WAIT = 30.0

TokenProvider = Callable[[str | None], str]


# --- Cost budget ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float


# The bucket's state in a hash {a: available, m: maximum, r: restore rate, t: last update (Redis TIME)}
# plus a sorted set of in-flight requests ("ticket|cost" scored by expiry). A request takes its estimated
# cost only when the bucket holds it (else it sleeps until it should and asks again, so a refund helps
# the next asker at once; no queue of reservations made on stale estimates). After an answer the
# reservation is settled: what the query did not cost is refunded, and the bucket is lowered (never
# raised) to the most the store's figure allows now: currentlyAvailable + restore since the request was
# sent - what is still in flight. Never raised, because answers can be settled out of order and an older
# answer's figure misses the charges of newer ones; the bucket refills at the restore rate anyway. The
# store's figure is only a bound because it dates from when the store charged the query (somewhere
# between sending and the answer), so it corrects drift without under-using the bucket. A reservation
# whose process died expires after RESERVATION_TTL seconds instead of shrinking the budget forever.
RESERVATION_TTL = 120

_INFLIGHT_SUM_LUA = """
local function inflight(fkey, now)
  redis.call('ZREMRANGEBYSCORE', fkey, '-inf', now)
  local total = 0
  for _, member in ipairs(redis.call('ZRANGE', fkey, 0, -1)) do
    total = total + tonumber(string.match(member, '|(.*)$'))
  end
  return total
end
local function load(key, now, dm, dr)
  local s = redis.call('HMGET', key, 'a', 'm', 'r', 't')
  local m = tonumber(s[2]) or dm
  local r = tonumber(s[3]) or dr
  local last = tonumber(s[4]) or now
  local a = tonumber(s[1]) or m
  return math.min(m, a + math.max(0, now - last) * r), m, r
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_RESERVE_LUA = (
    _INFLIGHT_SUM_LUA
    + """
local a, m, r = load(KEYS[1], now, tonumber(ARGV[3]), tonumber(ARGV[4]))
local cost = math.min(tonumber(ARGV[2]), m)
local member = ''
if a >= cost or ARGV[7] == '1' then
  a = a - cost
  member = ARGV[1] .. '|' .. tostring(cost)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[6]), member)
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
end
redis.call('HSET', KEYS[1], 'a', tostring(a), 'm', tostring(m), 'r', tostring(r), 't', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
if member ~= '' then return {'0', member} end
return {tostring((cost - a) / r), ''}
"""
)

_SETTLE_LUA = (
    _INFLIGHT_SUM_LUA
    + """
local a, m, r = load(KEYS[1], now, tonumber(ARGV[6]), tonumber(ARGV[7]))
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
if removed == 1 then
  a = a + tonumber(ARGV[2])
end
if ARGV[3] ~= '' then
  m = tonumber(ARGV[4])
  r = tonumber(ARGV[5])
  a = math.min(a, tonumber(ARGV[3]) + tonumber(ARGV[9]) * r - inflight(KEYS[2], now))
end
a = math.min(a, m)
redis.call('HSET', KEYS[1], 'a', tostring(a), 'm', tostring(m), 'r', tostring(r), 't', tostring(now))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[8]))
return tostring(a)
"""
)


class LocalBudget:
    """The token bucket in process memory (no Redis configured): shared by the threads of one process.
    Same model as RedisBudget."""

    _buckets: dict[str, dict] = {}
    _lock = threading.Lock()

    def __init__(self, key: str, clock: Callable[[], float] = time.monotonic):
        self.key = key
        self.clock = clock

    def _state(self, now: float) -> dict:
        state = self._buckets.get(self.key)
        if state is None:
            state = {"a": INITIAL_BUCKET_SIZE, "m": INITIAL_BUCKET_SIZE, "r": INITIAL_RESTORE_RATE, "t": now}
            state["inflight"] = {}
            self._buckets[self.key] = state
        state["a"] = min(state["m"], state["a"] + max(0.0, now - state["t"]) * state["r"])
        state["t"] = now
        state["inflight"] = {k: v for k, v in state["inflight"].items() if v[1] > now}
        return state

    def reserve(self, cost: float, *, force: bool = False) -> tuple[float, str | None]:
        """Take `cost` points if the bucket holds them (or `force`): (0, ticket for settle()). Otherwise
        take nothing and return (seconds until it should hold them, None): the caller sleeps, asks again."""
        with self._lock:
            now = self.clock()
            state = self._state(now)
            cost = min(cost, state["m"])
            if state["a"] < cost and not force:
                return (cost - state["a"]) / state["r"], None
            ticket = uuid.uuid4().hex
            state["a"] -= cost
            state["inflight"][ticket] = (cost, now + RESERVATION_TTL)
            return 0.0, ticket

    def settle(self, ticket: str, refund: float, status: ThrottleStatus | None, elapsed: float = 0.0) -> None:
        """The request of `ticket` was answered `elapsed` seconds after it was sent: refund what it did not
        cost, then lower the bucket to what the store's throttleStatus allows now (see RESERVATION_TTL)."""
        with self._lock:
            state = self._state(self.clock())
            if state["inflight"].pop(ticket, None) is not None:
                state["a"] += refund
            if status is not None:
                state["m"], state["r"] = status.maximum_available, max(status.restore_rate, 0.001)
                in_flight = sum(cost for cost, _ in state["inflight"].values())
                state["a"] = min(state["a"], status.currently_available + elapsed * state["r"] - in_flight)
            state["a"] = min(state["a"], state["m"])


@lru_cache(maxsize=4)
def _redis(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


class RedisBudget:
    """The token bucket in Redis: one per shop for every process (atomic Lua scripts, Redis clock)."""

    def __init__(self, key: str, url: str):
        self.key = f"boomerang:shopify:cost-bucket:{key}"
        self.inflight_key = f"{self.key}:inflight"
        self._redis = _redis(url)
        self._fallback = LocalBudget(key)

    def reserve(self, cost: float, *, force: bool = False) -> tuple[float, str | None]:
        """See LocalBudget.reserve()."""
        import redis

        try:
            wait, ticket = self._redis.eval(
                _RESERVE_LUA,
                2,
                self.key,
                self.inflight_key,
                uuid.uuid4().hex,
                cost,
                INITIAL_BUCKET_SIZE,
                INITIAL_RESTORE_RATE,
                BUDGET_TTL_SECONDS,
                RESERVATION_TTL,
                "1" if force else "0",
            )
        except redis.RedisError:
            logger.warning("Redis unavailable for the GraphQL cost budget; pacing in-process")
            return self._fallback.reserve(cost, force=force)
        return float(wait), (ticket.decode() or None)

    def settle(self, ticket: str, refund: float, status: ThrottleStatus | None, elapsed: float = 0.0) -> None:
        import redis

        status_args = ["", "", ""]
        if status is not None:
            status_args = [
                status.currently_available,
                status.maximum_available,
                max(status.restore_rate, 0.001),
            ]
        try:
            self._redis.eval(
                _SETTLE_LUA,
                2,
                self.key,
                self.inflight_key,
                ticket,
                refund,
                *status_args,
                INITIAL_BUCKET_SIZE,
                INITIAL_RESTORE_RATE,
                BUDGET_TTL_SECONDS,
                max(0.0, elapsed),
            )
        except redis.RedisError:
            self._fallback.settle(ticket, refund, status, elapsed)


def budget_for(shop_domain: str):
    url = getattr(settings, "REDIS_URL", "")
    return RedisBudget(shop_domain, url) if url else LocalBudget(shop_domain)


# --- Client ---------------------------------------------------------------------------------------------

# Last requestedQueryCost per document (hash), so the next call of the same document reserves enough.
_known_costs: dict[str, float] = {}


def _doc_key(document: str) -> str:
    return hashlib.sha1(document.encode(), usedforsecurity=False).hexdigest()


def _parse_cost(body: dict) -> tuple[float | None, float | None, ThrottleStatus | None]:
    cost = (body.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    throttle = None
    try:
        if status:
            throttle = ThrottleStatus(
                maximum_available=float(status["maximumAvailable"]),
                currently_available=float(status["currentlyAvailable"]),
                restore_rate=float(status["restoreRate"]),
            )
    except (KeyError, TypeError, ValueError):
        throttle = None

    def num(name: str) -> float | None:
        value = cost.get(name)
        return float(value) if isinstance(value, int | float) else None

    return num("requestedQueryCost"), num("actualQueryCost"), throttle


class ShopifyClient:
    """GraphQL Admin API client of one shop. Cheap to create; create one per unit of work."""

    def __init__(
        self,
        shop_domain: str,
        token_provider: TokenProvider,
        *,
        can_refresh: bool = True,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int | None = None,
    ):
        self.shop_domain = require_shop_domain(shop_domain)
        self._token_provider = token_provider
        self._can_refresh = can_refresh
        self._sleep = sleep
        self.max_attempts = max_attempts or int(getattr(settings, "SHOPIFY_CLIENT_MAX_ATTEMPTS", 6))
        self.budget = budget_for(self.shop_domain)
        # extensions.cost of the last answer (benchmarks and tests read it).
        self.last_cost: dict | None = None
        self.throttled_count = 0

    @classmethod
    def for_shop(cls, shop, **kwargs) -> ShopifyClient:
        """A client using the shop's stored credential, refreshed when it expires or is rejected."""
        from shop_integrations.shopify.oauth import access_token_for

        return cls(shop.domain, lambda rejected: access_token_for(shop, rejected_token=rejected), **kwargs)

    @classmethod
    def with_token(cls, shop_domain: str, access_token: str, **kwargs) -> ShopifyClient:
        """A client with a fixed token (install time, before the token is stored): no refresh on 401."""
        return cls(shop_domain, lambda rejected: access_token, can_refresh=False, **kwargs)

    def with_attempts(self, max_attempts: int) -> ShopifyClient:
        """The same client with another retry bound (1: for optional reads that must not hold things up)."""
        clone = copy.copy(self)
        clone.max_attempts = max_attempts
        return clone

    def _backoff(self, attempt: int, hint: float | None = None) -> float:
        delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))
        return max(delay, hint or 0.0)

    def _acquire(self, cost: float) -> str:
        """Wait until the shop's bucket holds `cost` points and take them; returns the ticket.

        Bounded: after MAX_ACQUIRE_ROUNDS waits the points are taken anyway (the bucket goes below zero
        and every other caller waits longer), so a caller can never wait forever, and a test with a
        no-op sleep cannot spin."""
        for _ in range(MAX_ACQUIRE_ROUNDS):
            wait, ticket = self.budget.reserve(cost)
            if ticket is not None:
                return ticket
            # A little jitter so waiting workers do not all ask again at the same instant.
            self._sleep(min(wait, MAX_SINGLE_WAIT) * random.uniform(1.0, 1.1))
        return self.budget.reserve(cost, force=True)[1]

    def execute(
        self, document: str, variables: dict | None = None, *, estimated_cost: float | None = None
    ) -> dict:
        """Run `document` with `variables`; return its `data`. See the module docstring for the contract."""
        doc_key = _doc_key(document)
        url = admin_api_url(self.shop_domain)
        token = self._token_provider(None)
        refreshed = False
        last_error: ShopifyError | None = None
        attempt = 0
        while attempt < self.max_attempts:
            cost = estimated_cost or _known_costs.get(doc_key) or DEFAULT_QUERY_COST
            ticket = self._acquire(cost)
            sent_at = time.monotonic()
            try:
                # Reference: https://shopify.dev/docs/api/admin-graphql#endpoints
                body = post_json(
                    url,
                    {"query": document, "variables": variables or {}},
                    headers={"X-Shopify-Access-Token": token},
                )
            except ShopifyUnauthorizedError:
                self.budget.settle(ticket, cost, None)
                if refreshed or not self._can_refresh:
                    raise
                refreshed = True
                token = self._token_provider(token)
                continue  # a refresh is not a failed attempt
            except ShopifyRetryableError as exc:
                # An HTTP error answer was not executed (refund); after a network error it may have been.
                self.budget.settle(ticket, cost if exc.status else 0.0, None)
                last_error = exc
                attempt += 1
                if attempt < self.max_attempts:
                    self._sleep(self._backoff(attempt, exc.retry_after))
                continue
            except ShopifyPermanentError:
                self.budget.settle(ticket, cost, None)
                raise
            if not isinstance(body, dict):
                self.budget.settle(ticket, cost, None)
                raise ShopifyPermanentError(f"{self.shop_domain}: GraphQL answer is not an object")
            requested, actual, throttle = _parse_cost(body)
            self.last_cost = (body.get("extensions") or {}).get("cost")
            if requested is not None:
                _known_costs[doc_key] = requested
            errors = body.get("errors")
            codes = _error_codes(errors)
            if "THROTTLED" in codes:
                # Nothing was charged; the bucket learns the store's state, the next reserve() waits.
                self.throttled_count += 1
                self.budget.settle(ticket, cost, throttle, time.monotonic() - sent_at)
                last_error = ShopifyRetryableError(f"{self.shop_domain}: THROTTLED")
                attempt += 1
                logger.warning("Shopify THROTTLED %s (cost %s, status %s)", self.shop_domain, cost, throttle)
                continue
            charged = actual if actual is not None else (requested if requested is not None else cost)
            self.budget.settle(ticket, cost - charged, throttle, time.monotonic() - sent_at)
            if "INTERNAL_SERVER_ERROR" in codes:
                last_error = ShopifyRetryableError(f"{self.shop_domain}: INTERNAL_SERVER_ERROR")
                attempt += 1
                if attempt < self.max_attempts:
                    self._sleep(self._backoff(attempt))
                continue
            if errors:
                raise ShopifyPermanentError(f"{self.shop_domain}: GraphQL errors: {_error_messages(errors)}")
            data = body.get("data")
            if not isinstance(data, dict):
                raise ShopifyPermanentError(f"{self.shop_domain}: GraphQL answer without data")
            return data
        raise ShopifyRetryableError(
            f"{self.shop_domain}: gave up after {self.max_attempts} attempts: {last_error}",
            status=getattr(last_error, "status", None),
        )


def _error_codes(errors: object) -> set[str]:
    codes: set[str] = set()
    if isinstance(errors, list):
        for error in errors:
            if isinstance(error, dict):
                code = (error.get("extensions") or {}).get("code")
                if isinstance(code, str):
                    codes.add(code)
    return codes


def _error_messages(errors: object) -> str:
    if isinstance(errors, list):
        return "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)[:1000]
    return str(errors)[:1000]
