"""The rendered-page cache and generation counters of the tracking page.

A cached page is valid while the generations it was rendered with still hold: the shop's (bumped when the
branding changes) and the customer's (bumped on each of their orders: recommendations, codes). Tracking
events delete the fulfillment's entries outright (fulfillment_upserted). Entries expire after
PAGE_CACHE_TTL anyway, which bounds time-based staleness (an ETA becoming past due, a code expiring).

In front of that, each process keeps rendered pages for TRACKING_PAGE_LOCAL_CACHE_SECONDS (default 2 s)
and batches page views in memory for up to a second (or 100 views) before one RPUSH: a hot page then
costs no network round trip at all. New tracking events therefore show within those 2 seconds.

Behind the local layer, with Redis (REDIS_URL), a cache hit is ONE round trip: a Lua script checks the
generations, appends the page view to the view buffer and returns the HTML. Django's RedisCache is not
used on this path: it builds a new client object per call, which costs more than the page itself.
Without Redis (local runs) the same contract is kept with Django's cache and a direct INSERT of the view.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

PAGE_CACHE_TTL = 60
VIEW_BUFFER_KEY = "tracking:page-views:buffer"
LANG_VARIANTS = ("", "en", "th", "vi", "pl", "zh-hant")

_HIT_SCRIPT = """
local e = redis.call('HMGET', KEYS[1], 'html', 'lang', 'ids', 'gk1', 'gv1', 'gk2', 'gv2')
if not e[1] then return false end
for i = 4, 6, 2 do
  if e[i] and e[i] ~= '' then
    local current = redis.call('GET', e[i]) or '0'
    if current ~= e[i + 1] then return false end
  end
end
if ARGV[1] ~= '' then redis.call('RPUSH', KEYS[2], e[3] .. '|' .. ARGV[1]) end
return {e[1], e[2], e[3]}
"""


def shop_generation_key(shop_id: int) -> str:
    return f"tracking:gen:shop:{shop_id}"


def customer_generation_key(customer_id: int) -> str:
    return f"tracking:gen:customer:{customer_id}"


def page_key(public_id: str, requested_lang: str) -> str:
    return f"tracking:page:v2:{public_id}:{requested_lang or 'auto'}"


_client = None
_script = None


def redis_client():
    """A process-wide redis-py client (its own connection pool), or None without REDIS_URL."""
    global _client, _script
    if not settings.REDIS_URL:
        return None
    if _client is None:
        import redis

        _client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
        _script = _client.register_script(_HIT_SCRIPT)
    return _client


def generations(keys: list[str]) -> list[str]:
    """Current values of generation counters ("0" when never bumped)."""
    if not keys:
        return []
    client = redis_client()
    if client is not None:
        return [v.decode() if v is not None else "0" for v in client.mget(keys)]
    found = cache.get_many(keys)
    return [str(found.get(k, 0)) for k in keys]


def bump(key: str) -> None:
    client = redis_client()
    if client is not None:
        client.incr(key)
        return
    if not cache.add(key, 1, timeout=None):
        try:
            cache.incr(key)
        except ValueError:
            cache.set(key, 1, timeout=None)


_local_pages: dict[str, tuple[float, bytes, str, str]] = {}
_local_views: list[str] = []
_local_views_lock = threading.Lock()
_local_views_since = 0.0
LOCAL_MAX_PAGES = 2000
LOCAL_VIEW_BATCH = 100
LOCAL_VIEW_SECONDS = 1.0


def _local_ttl() -> float:
    return float(getattr(settings, "TRACKING_PAGE_LOCAL_CACHE_SECONDS", 2.0))


def local_clear() -> None:
    """Forget this process's rendered pages (tests; a fulfillment change elsewhere shows within the TTL)."""
    _local_pages.clear()


def buffer_view(row: str) -> bool:
    """Queue "<shop_id>|<fulfillment_id>|<suffix>" for the Redis view buffer; False without Redis."""
    global _local_views_since
    client = redis_client()
    if client is None:
        return False
    now = time.monotonic()
    if not _local_views:
        _local_views_since = now
    _local_views.append(row)
    if len(_local_views) >= LOCAL_VIEW_BATCH or now - _local_views_since >= LOCAL_VIEW_SECONDS:
        flush_local_views()
    return True


def flush_local_views() -> None:
    """Push this process's batched views to Redis (one RPUSH). Also run at exit and before a DB flush."""
    client = redis_client()
    if client is None or not _local_views:
        return
    import redis

    with _local_views_lock:  # gthread workers: no view lost or sent twice between copy and clear
        batch = list(_local_views)
        _local_views.clear()
    if not batch:
        return
    try:
        client.rpush(VIEW_BUFFER_KEY, *batch)
    except redis.RedisError:
        logger.warning("dropped %d tracking page views: Redis unavailable", len(batch))


atexit.register(flush_local_views)


def hit(key: str, *, view_suffix: str) -> tuple[str | bytes, str, str, bool] | None:
    """(html, lang, ids, view_recorded) of a valid cached page, or None (ids = "shop_id|fulfillment_id";
    html is UTF-8 bytes or str).

    The process-local layer answers first (the view is batched in memory); else, with Redis, one script
    call checks the generations, appends the view to the buffer and returns the page."""
    ttl = _local_ttl()
    local = _local_pages.get(key) if ttl > 0 else None
    if local is not None and local[0] > time.monotonic():
        _, html, lang, ids = local
        recorded = bool(view_suffix) and buffer_view(f"{ids}|{view_suffix}")
        return html, lang, ids, recorded or not view_suffix
    client = redis_client()
    if client is not None:
        import redis

        try:
            result = _script(keys=[key, VIEW_BUFFER_KEY], args=[view_suffix], client=client)
        except redis.RedisError:
            return None
        if not result:
            return None
        html, lang, ids = result[0], result[1].decode(), result[2].decode()  # html stays bytes
        _remember(key, html, lang, ids, ttl)
        return html, lang, ids, True
    entry = cache.get(key)
    if entry is None:
        return None
    gen_keys = [k for k in (entry["gk1"], entry["gk2"]) if k]
    if generations(gen_keys) != [
        v for k, v in ((entry["gk1"], entry["gv1"]), (entry["gk2"], entry["gv2"])) if k
    ]:
        return None
    _remember(key, entry["html"], entry["lang"], entry["ids"], ttl)
    return entry["html"], entry["lang"], entry["ids"], False


def _remember(key: str, html: str | bytes, lang: str, ids: str, ttl: float) -> None:
    if ttl <= 0:
        return
    if len(_local_pages) >= LOCAL_MAX_PAGES:
        _local_pages.clear()
    # Kept encoded: the response then skips encoding 8 KB per request.
    body = html.encode() if isinstance(html, str) else html
    _local_pages[key] = (time.monotonic() + ttl, body, lang, ids)


def store(key: str, *, html: str, lang: str, ids: str, gens: list[tuple[str, str]]) -> None:
    """Cache a rendered page with the generations it was rendered with (at most two)."""
    (gk1, gv1), (gk2, gv2) = (gens + [("", ""), ("", "")])[:2]
    entry = {"html": html, "lang": lang, "ids": ids, "gk1": gk1, "gv1": gv1, "gk2": gk2, "gv2": gv2}
    _remember(key, html, lang, ids, _local_ttl())
    client = redis_client()
    if client is not None:
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, mapping=entry)
        pipe.expire(key, PAGE_CACHE_TTL)
        pipe.execute()
        return
    cache.set(key, entry, timeout=PAGE_CACHE_TTL)


def delete(keys: list[str]) -> None:
    for key in keys:
        _local_pages.pop(key, None)
    client = redis_client()
    if client is not None:
        client.delete(*keys)
    else:
        cache.delete_many(keys)
