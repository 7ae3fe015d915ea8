"""Fixed-window counters in Django's cache (Redis in production: INCR is atomic and shared by every web
process; the file cache of a local run is per machine and only approximately atomic)."""

from __future__ import annotations

import time

from django.core.cache import cache


def rate_limit_hit(*, key: str, limit: int, window_seconds: int) -> bool:
    """Count one hit for `key`; True while the count in the current window is within `limit`."""
    bucket = int(time.time() // window_seconds)
    cache_key = f"tracking:rl:{key}:{bucket}"
    if cache.add(cache_key, 1, timeout=window_seconds + 5):
        return 1 <= limit
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.set(cache_key, 1, timeout=window_seconds + 5)
        count = 1
    return count <= limit
