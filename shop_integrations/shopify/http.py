"""The one outbound HTTP wrapper for Shopify calls: timeouts always, typed errors that say whether a retry
can help. Error messages carry the URL and status, never request headers or bodies (tokens live there).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import requests

logger = logging.getLogger(__name__)

# (connect, read) seconds. A store that does not answer in time is a retryable failure.
DEFAULT_TIMEOUT = (5.0, 30.0)


class ShopifyError(Exception):
    """Base class of every error raised when talking to a store."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ShopifyRetryableError(ShopifyError):
    """A transient failure (network, timeout, 5xx, 429, THROTTLED): the same call may succeed later."""


class ShopifyPermanentError(ShopifyError):
    """A failure a retry cannot fix (4xx other than 401/429, GraphQL errors, bad answers)."""


class ShopifyUnauthorizedError(ShopifyPermanentError):
    """401: the access token was rejected (expired, revoked, or the app was uninstalled)."""


_local = threading.local()


def _session() -> requests.Session:
    # One keep-alive session per thread: requests.Session is not documented as thread-safe.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.trust_env = False  # never route shop traffic through an environment proxy
        _local.session = session
    return session


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def post_json(
    url: str,
    payload: Any,
    *,
    headers: dict[str, str] | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
) -> Any:
    """POST `payload` as JSON and return the decoded JSON answer of a 2xx response.

    Raises ShopifyRetryableError (network error, timeout, 429, 5xx), ShopifyUnauthorizedError (401) or
    ShopifyPermanentError (other 4xx, non-JSON 2xx answer). Redirects are not followed: a store API never
    redirects a POST, and following one could leak the token to another host.
    """
    all_headers = {"Accept": "application/json", "Content-Type": "application/json"}
    all_headers.update(headers or {})
    try:
        response = _session().post(
            url, json=payload, headers=all_headers, timeout=timeout, allow_redirects=False
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise ShopifyRetryableError(f"POST {url}: network error: {type(exc).__name__}") from None
    except requests.RequestException as exc:
        raise ShopifyPermanentError(f"POST {url}: request failed: {type(exc).__name__}") from None
    status = response.status_code
    if status == 401:
        raise ShopifyUnauthorizedError(f"POST {url}: 401 Unauthorized (token rejected)", status=status)
    if status == 429 or status >= 500:
        raise ShopifyRetryableError(
            f"POST {url}: HTTP {status}", status=status, retry_after=_retry_after(response)
        )
    if status >= 300:
        raise ShopifyPermanentError(f"POST {url}: HTTP {status}: {_short_body(response)}", status=status)
    try:
        return response.json()
    except ValueError:
        raise ShopifyPermanentError(f"POST {url}: answer is not JSON", status=status) from None


def _short_body(response: requests.Response) -> str:
    # Error bodies of the OAuth endpoint are small JSON like {"error": "invalid_request", ...}; never
    # secrets (the store does not echo the client secret or tokens back in an error).
    text = (response.text or "")[:300]
    return " ".join(text.split())
