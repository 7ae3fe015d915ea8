"""Django system checks for the Shopify settings (`manage.py check`, and every manage.py command).

boomerang.E001  SHOPIFY_STORE_URL_TEMPLATE must be an http(s) URL containing {shop} (once, in the host or
                path, nothing else in braces)
boomerang.E002  SHOPIFY_API_VERSION must look like 2026-01 (YYYY-01/04/07/10)
boomerang.E003  APP_URL must be an https URL without path/query in production (DEBUG off)
boomerang.W004  SHOPIFY_DEV_SHOP_SUFFIX is set while DEBUG is off (dev-store domains accepted in production)
boomerang.E005  SHOPIFY_DEV_SHOP_SUFFIX must look like ".devstore.test"
boomerang.E006  FIELD_ENCRYPTION_KEYS must hold at least one valid Fernet key
boomerang.E007  SHOPIFY_SCOPES must include read_all_orders (history older than 60 days)
boomerang.E008  SHOPIFY_OAUTH_MAX_AGE must be between 1 and 3600 seconds
boomerang.W009  SHOPIFY_STORE_URL_TEMPLATE is not https://{shop} while DEBUG is off
"""

from __future__ import annotations

import re
import string
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

API_VERSION_RE = re.compile(r"20\d\d-(01|04|07|10)\Z")
DEV_SUFFIX_RE = re.compile(r"(\.[a-z0-9][a-z0-9-]*)+\Z")


@register(Tags.security, deploy=False)
def check_shopify_settings(app_configs=None, **kwargs):
    errors = []
    template = getattr(settings, "SHOPIFY_STORE_URL_TEMPLATE", "")
    fields = (
        [name for _, name, _, _ in string.Formatter().parse(template) if name is not None] if template else []
    )
    parts = urlsplit(template.replace("{shop}", "shop.example")) if template else None
    if (
        not isinstance(template, str)
        or fields != ["shop"]
        or parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
    ):
        errors.append(
            Error(
                f"SHOPIFY_STORE_URL_TEMPLATE={template!r} is not an http(s) URL with exactly one {{shop}}.",
                hint='Production: "https://{shop}"; the local dev store: "http://127.0.0.1:8100/s/{shop}".',
                id="boomerang.E001",
            )
        )
    elif not settings.DEBUG and template.rstrip("/") != "https://{shop}":
        errors.append(
            Warning(
                f"SHOPIFY_STORE_URL_TEMPLATE={template!r} while DEBUG is off: Shopify stores live at https://{{shop}}.",
                id="boomerang.W009",
            )
        )
    version = getattr(settings, "SHOPIFY_API_VERSION", "")
    if not isinstance(version, str) or not API_VERSION_RE.fullmatch(version):
        errors.append(
            Error(
                f"SHOPIFY_API_VERSION={version!r} is not a Shopify API version.",
                hint="Shopify versions are YYYY-01, -04, -07 or -10; this app is built for 2026-01.",
                id="boomerang.E002",
            )
        )
    app_url = getattr(settings, "APP_URL", "")
    app_parts = urlsplit(app_url) if isinstance(app_url, str) else None
    if not settings.DEBUG and (
        app_parts is None
        or app_parts.scheme != "https"
        or not app_parts.hostname
        or app_parts.path not in ("", "/")
        or app_parts.query
    ):
        errors.append(
            Error(
                f"APP_URL={app_url!r} must be the app's public https origin in production.",
                hint="Shopify only redirects to and delivers webhooks to https addresses.",
                id="boomerang.E003",
            )
        )
    suffix = getattr(settings, "SHOPIFY_DEV_SHOP_SUFFIX", "")
    if suffix:
        if not DEV_SUFFIX_RE.fullmatch(suffix):
            errors.append(
                Error(
                    f"SHOPIFY_DEV_SHOP_SUFFIX={suffix!r} is not a domain suffix like '.devstore.test'.",
                    id="boomerang.E005",
                )
            )
        if not settings.DEBUG:
            errors.append(
                Warning(
                    f"SHOPIFY_DEV_SHOP_SUFFIX={suffix!r} is set while DEBUG is off: "
                    "shops under it are accepted.",
                    hint="Leave it empty in production.",
                    id="boomerang.W004",
                )
            )
    keys = getattr(settings, "FIELD_ENCRYPTION_KEYS", [])
    try:
        valid_keys = bool(keys) and all(Fernet(k) for k in keys)
    except (ValueError, TypeError):
        valid_keys = False
    if not valid_keys:
        errors.append(
            Error(
                "FIELD_ENCRYPTION_KEYS must hold one or more Fernet keys (the first encrypts).",
                hint="Generate one: python -c "
                '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
                id="boomerang.E006",
            )
        )
    scopes = getattr(settings, "SHOPIFY_SCOPES", [])
    if "read_all_orders" not in scopes:
        errors.append(
            Error(
                "SHOPIFY_SCOPES lacks read_all_orders: orders older than 60 days would be invisible.",
                id="boomerang.E007",
            )
        )
    max_age = getattr(settings, "SHOPIFY_OAUTH_MAX_AGE", 0)
    if not isinstance(max_age, int) or not 1 <= max_age <= 3600:
        errors.append(
            Error(f"SHOPIFY_OAUTH_MAX_AGE={max_age!r} must be 1..3600 seconds.", id="boomerang.E008")
        )
    return errors
