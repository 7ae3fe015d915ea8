"""REST-shaped webhook bodies (Shopify's REST resources), built from the dev store's rows.

Independent of the app's parsers on purpose: shapes follow Shopify's REST reference.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from .store import parse_time


def rest_time(value: str | None, tz: str = "UTC") -> str | None:
    """REST bodies carry times in the shop's time zone with an offset: 2026-01-05T10:00:00-05:00."""
    if not value:
        return None
    try:
        zone = ZoneInfo(tz)
    except Exception:  # unknown zone name: UTC
        zone = dt.UTC
    return parse_time(value).astimezone(zone).isoformat()


def shop_payload(row) -> dict:
    # Reference: https://shopify.dev/docs/api/admin-rest/latest/resources/shop
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "domain": row["domain"],
        "myshopify_domain": row["domain"],
        "currency": row["currency"],
        "iana_timezone": row["timezone"],
        "plan_name": row["plan"],
        "created_at": rest_time(row["created_at"], row["timezone"]),
    }
