"""Shop-domain validation and the base URL of a shop's store.

Every outbound call to a store goes through `store_base_url()`, which only ever substitutes a validated
shop domain into settings.SHOPIFY_STORE_URL_TEMPLATE. A domain that is not a real shop domain never
reaches an HTTP client, so a request parameter cannot make the app call an arbitrary host (no SSRF).
"""

from __future__ import annotations

import re

from django.conf import settings

# Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
# `\Z` and fullmatch: `$` would also accept a trailing newline.
SHOPIFY_DOMAIN_RE = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9-]*\.myshopify\.com\Z")
_DEV_SUFFIX_RE = re.compile(r"(\.[a-z0-9][a-z0-9-]*)+\Z")


class InvalidShopDomain(ValueError):
    """The value is not a shop domain this app may talk to."""


def dev_suffix() -> str:
    """The configured dev-store suffix (".devstore.test"), lowercased, or "" when none/invalid."""
    suffix = (getattr(settings, "SHOPIFY_DEV_SHOP_SUFFIX", "") or "").strip().lower()
    return suffix if _DEV_SUFFIX_RE.fullmatch(suffix) else ""


def normalize_shop_domain(value: object) -> str | None:
    """Return the lowercased shop domain when `value` is one (`x.myshopify.com`, or `x<dev suffix>` when a
    dev suffix is configured), else None. Rejects anything with a scheme, port, path, userinfo, spaces,
    extra labels (`x.myshopify.com.evil.com`) or another host (`evil.com`)."""
    if not isinstance(value, str) or not value or len(value) > 255:
        return None
    if SHOPIFY_DOMAIN_RE.fullmatch(value):
        return value.lower()
    suffix = dev_suffix()
    if suffix:
        lowered = value.lower()
        if lowered.endswith(suffix):
            label = value[: -len(suffix)]
            if re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9-]*\Z", label):
                return lowered
    return None


def require_shop_domain(value: object) -> str:
    """Like normalize_shop_domain() but raises InvalidShopDomain with a message for a bad value."""
    domain = normalize_shop_domain(value)
    if domain is None:
        raise InvalidShopDomain(f"{str(value)[:100]!r} is not a valid shop domain (expected x.myshopify.com)")
    return domain


def store_base_url(shop_domain: str) -> str:
    """The base URL of the shop's store ("https://x.myshopify.com"), from SHOPIFY_STORE_URL_TEMPLATE."""
    domain = require_shop_domain(shop_domain)
    return settings.SHOPIFY_STORE_URL_TEMPLATE.replace("{shop}", domain).rstrip("/")


def admin_api_url(shop_domain: str) -> str:
    # Reference: https://shopify.dev/docs/api/admin-graphql#endpoints
    return f"{store_base_url(shop_domain)}/admin/api/{settings.SHOPIFY_API_VERSION}/graphql.json"


def shop_domain_from_store_url(url: str) -> str | None:
    """Reverse of store_base_url(): the shop domain addressed by a store URL (e.g. a session token's `dest`
    "https://x.myshopify.com"), or None when the URL is not a store URL under the configured template."""
    if not isinstance(url, str):
        return None
    template = settings.SHOPIFY_STORE_URL_TEMPLATE.rstrip("/")
    if "{shop}" not in template:
        return None
    prefix, _, suffix = template.partition("{shop}")
    candidate = url.rstrip("/")
    if not (candidate.startswith(prefix) and candidate.endswith(suffix)):
        return None
    middle = candidate[len(prefix) : len(candidate) - len(suffix)] if suffix else candidate[len(prefix) :]
    # The fixed prefix/suffix come from settings and the middle must be a bare shop domain (no "/", ":",
    # "@"), so userinfo, port or path tricks cannot pass.
    return normalize_shop_domain(middle)
