"""Reads of the tracking domain: the page's data, recommendations, store links and panel analytics.

Panel (H8) selectors: `tracking_branding_get`, `tracking_stats_for_shop`, `tracking_stats_per_fulfillment`,
`tracking_views_per_order`, `tracking_top_shipments`. Every selector takes the shop and never returns
another shop's rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, Sum
from django.utils import timezone

from retention_app.commerce.models import Customer, Fulfillment, LineItem, Order, Product
from retention_app.discounts.selectors import unused_code_for_customer
from retention_app.shops.models import Shop
from retention_app.tracking import pagecache
from retention_app.tracking.models import (
    TrackingAttribution,
    TrackingBranding,
    TrackingClick,
    TrackingLink,
    TrackingPageView,
)
from retention_app.tracking.services import ATTRIBUTION_WINDOW, branding_cache_key, public_id_from_token

RECOMMENDATION_COUNT = 4
BEST_SELLER_DAYS = 90
BOUGHT_TOGETHER_DAYS = 365
RECS_TTL = 30 * 60
BEST_SELLERS_TTL = 60 * 60


# --- the page -------------------------------------------------------------------------------------


def tracking_link_resolve(*, token: str) -> TrackingLink | None:
    """The link for a valid token, with shop, fulfillment, order and customer loaded in one query."""
    public_id = public_id_from_token(token)
    if public_id is None:
        return None
    link = (
        TrackingLink.objects.select_related("shop", "fulfillment__order__customer")
        .filter(public_id=public_id)
        .first()
    )
    # Defence in depth: a link only ever shows its own shop's fulfillment.
    if (
        link is None
        or link.fulfillment.shop_id != link.shop_id
        or link.fulfillment.order.shop_id != link.shop_id
    ):
        return None
    return link


def tracking_branding_get(*, shop: Shop) -> dict[str, Any]:
    """The shop's branding as a plain dict (defaults when never set), cached per shop; the cache is
    deleted on commit by `tracking_branding_update`."""
    key = branding_cache_key(shop.pk)
    data = cache.get(key)
    if data is None:
        row = TrackingBranding.objects.filter(shop=shop).first()
        data = {
            "logo_url": row.logo_url if row else "",
            "brand_color": row.brand_color if row else TrackingBranding.DEFAULT_BRAND_COLOR,
            "accent_color": row.accent_color if row else TrackingBranding.DEFAULT_ACCENT_COLOR,
            "background_color": row.background_color if row else TrackingBranding.DEFAULT_BACKGROUND_COLOR,
            "show_recommendations": row.show_recommendations if row else True,
            "show_discount_code": row.show_discount_code if row else True,
        }
        cache.set(key, data, timeout=24 * 3600)
    return data


def unused_discount_code(*, customer: Customer | None):
    """The customer's unused Boomerang code (discounts' `unused_code_for_customer`: .code/.url/.expires_at)
    or None."""
    if customer is None:
        return None
    return unused_code_for_customer(customer)


# --- store links (no open redirect) -------------------------------------------------------------------------


def storefront_base(shop: Shop) -> str:
    """The shop's storefront root without trailing slash: its storefront_url when it is http(s), else the
    platform address built from the shop's (validated at install) domain."""
    url = (shop.storefront_url or "").strip()
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return url.rstrip("/")
    return settings.SHOPIFY_STORE_URL_TEMPLATE.format(shop=shop.domain).rstrip("/")


def same_store_url(shop: Shop, url: str) -> str | None:
    """`url` when it points into the shop's own storefront (same scheme family, host, port and path
    prefix), else None. Used before every redirect: the redirect target never comes from the request."""
    if not url:
        return None
    base = urlsplit(storefront_base(shop))
    target = urlsplit(url.strip())
    if target.scheme not in ("http", "https") or not target.hostname:
        return None
    if (target.hostname or "").lower() != (base.hostname or "").lower() or target.port != base.port:
        return None
    if target.username or target.password:
        return None
    prefix = base.path.rstrip("/")
    if prefix and not (target.path == prefix or target.path.startswith(prefix + "/")):
        return None
    return url.strip()


def product_store_url(shop: Shop, product: Product) -> str:
    return same_store_url(shop, product.url) or (
        f"{storefront_base(shop)}/products/{quote(product.handle, safe='')}"
        if product.handle
        else storefront_base(shop) + "/"
    )


def discount_store_url(shop: Shop, code) -> str:
    return same_store_url(shop, getattr(code, "url", "") or "") or (
        f"{storefront_base(shop)}/discount/{quote(code.code, safe='')}"
    )


# --- recommendations ------------------------------------------------------------------------------


def _counted_orders(shop_id: int):
    return Order.objects.filter(shop_id=shop_id, cancelled_at__isnull=True, is_test=False)


def best_sellers(*, shop_id: int, now: dt.datetime | None = None) -> list[str]:
    """Product platform ids by units sold in the last BEST_SELLER_DAYS (one GROUP BY), cached per shop."""
    key = f"tracking:best-sellers:v1:{shop_id}"
    ids = cache.get(key)
    if ids is None:
        since = (now or timezone.now()) - dt.timedelta(days=BEST_SELLER_DAYS)
        ids = list(
            LineItem.objects.filter(
                shop_id=shop_id,
                order__in=_counted_orders(shop_id).filter(placed_at__gte=since),
            )
            .exclude(product_platform_id="")
            .values("product_platform_id")
            .annotate(units=Sum("quantity"))
            .order_by("-units", "product_platform_id")
            .values_list("product_platform_id", flat=True)[:20]
        )
        cache.set(key, ids, timeout=BEST_SELLERS_TTL)
    return ids


def bought_together(*, shop_id: int, product_ids: list[str], now: dt.datetime | None = None) -> list[str]:
    """Products most often in the same orders as `product_ids` (one self-join GROUP BY over a year)."""
    if not product_ids:
        return []
    since = (now or timezone.now()) - dt.timedelta(days=BOUGHT_TOGETHER_DAYS)
    orders_with = LineItem.objects.filter(
        shop_id=shop_id, product_platform_id__in=product_ids, order__placed_at__gte=since
    ).values("order_id")
    return list(
        LineItem.objects.filter(shop_id=shop_id, order_id__in=orders_with)
        .filter(order__cancelled_at__isnull=True, order__is_test=False)
        .exclude(product_platform_id__in=product_ids)
        .exclude(product_platform_id="")
        .values("product_platform_id")
        .annotate(orders=Count("order_id", distinct=True))
        .order_by("-orders", "product_platform_id")
        .values_list("product_platform_id", flat=True)[:20]
    )


def recommendations_compute(*, order: Order) -> list[dict[str, Any]]:
    """Up to RECOMMENDATION_COUNT active products of the order's shop: bought together with what was
    ordered first, then best sellers; never something the customer (or this order) already bought."""
    shop_id = order.shop_id
    ordered = list(
        LineItem.objects.filter(order=order)
        .exclude(product_platform_id="")
        .values_list("product_platform_id", flat=True)
    )
    if order.customer_id:
        purchased = set(
            LineItem.objects.filter(shop_id=shop_id, order__customer_id=order.customer_id)
            .exclude(product_platform_id="")
            .values_list("product_platform_id", flat=True)
        )
    else:
        purchased = set(ordered)
    candidates: list[str] = []
    for pid in [*bought_together(shop_id=shop_id, product_ids=ordered), *best_sellers(shop_id=shop_id)]:
        if pid not in purchased and pid not in candidates:
            candidates.append(pid)
    if not candidates:
        return []
    products = {
        p.platform_id: p
        for p in Product.objects.filter(shop_id=shop_id, platform_id__in=candidates[:40]).filter(
            Q(status="ACTIVE") | Q(status="")
        )
    }
    result = []
    for pid in candidates:
        product = products.get(pid)
        if product is None:
            continue
        result.append(
            {
                "platform_id": product.platform_id,
                "title": product.title,
                "image_url": product.image_url if product.image_url.startswith("https://") else "",
                "price": str(product.price) if product.price is not None else "",
                "currency": product.currency or order.currency,
            }
        )
        if len(result) >= RECOMMENDATION_COUNT:
            break
    return result


def recommendations_for_order(*, order: Order) -> list[dict[str, Any]]:
    """Cached `recommendations_compute`: per order and the customer's purchase version (bumped when the
    customer places an order), RECS_TTL seconds (catalog edits show within that time)."""
    version = (
        pagecache.generations([pagecache.customer_generation_key(order.customer_id)])[0]
        if order.customer_id
        else 0
    )
    key = f"tracking:recs:v1:{order.pk}:{version}"
    recs = cache.get(key)
    if recs is None:
        recs = recommendations_compute(order=order)
        cache.set(key, recs, timeout=RECS_TTL)
    return recs


# --- analytics for the panel ----------------------------------------------------------------------


@dataclass(frozen=True)
class TrackingStats:
    page_views: int
    unique_visitors: int  # distinct daily visitor hashes (a visitor counted once per shipment per day)
    recommendation_clicks: int
    code_clicks: int
    attributed_orders: int
    attributed_revenue: Decimal  # in the shop's currency
    revenue_by_currency: dict[str, Decimal]
    attribution_window_days: int


def _range(qs, field: str, since: dt.datetime | None, until: dt.datetime | None):
    if since is not None:
        qs = qs.filter(**{f"{field}__gte": since})
    if until is not None:
        qs = qs.filter(**{f"{field}__lt": until})
    return qs


def tracking_stats_for_shop(
    *, shop: Shop, since: dt.datetime | None = None, until: dt.datetime | None = None, fulfillment=None
) -> TrackingStats:
    """Views, unique visitors, clicks and attributed revenue of the shop's tracking pages in [since, until).

    Unique visitors sum per shipment and day (distinct (fulfillment, day, hash)). Attributed revenue:
    orders (not cancelled, not test) placed within ATTRIBUTION_WINDOW after a click by the same customer,
    last click wins, counted by the order's placement time."""
    views = _range(TrackingPageView.objects.filter(shop=shop), "created_at", since, until)
    clicks = _range(TrackingClick.objects.filter(shop=shop), "created_at", since, until)
    attributions = _range(
        TrackingAttribution.objects.filter(shop=shop, order__cancelled_at__isnull=True, order__is_test=False),
        "order__placed_at",
        since,
        until,
    )
    if fulfillment is not None:
        views = views.filter(fulfillment=fulfillment)
        clicks = clicks.filter(fulfillment=fulfillment)
        attributions = attributions.filter(click__fulfillment=fulfillment)
    page_views = views.count()
    unique_visitors = views.values("fulfillment_id", "day", "visitor_hash").distinct().count()
    click_counts = dict(clicks.values_list("kind").annotate(n=Count("id")).order_by())
    by_currency = {
        row["currency"]: row["total"]
        for row in attributions.values("currency").annotate(total=Sum("revenue")).order_by()
    }
    return TrackingStats(
        page_views=page_views,
        unique_visitors=unique_visitors,
        recommendation_clicks=click_counts.get(TrackingClick.Kind.RECOMMENDATION, 0),
        code_clicks=click_counts.get(TrackingClick.Kind.DISCOUNT_CODE, 0),
        attributed_orders=attributions.count(),
        attributed_revenue=by_currency.get(shop.currency, Decimal("0")),
        revenue_by_currency=by_currency,
        attribution_window_days=ATTRIBUTION_WINDOW.days,
    )


def tracking_stats_per_fulfillment(*, shop: Shop, fulfillment: Fulfillment) -> TrackingStats:
    if fulfillment.shop_id != shop.pk:
        raise Fulfillment.DoesNotExist("not this shop's fulfillment")
    return tracking_stats_for_shop(shop=shop, fulfillment=fulfillment)


def tracking_views_per_order(*, shop: Shop, order: Order) -> dict[str, int]:
    """{"page_views", "unique_visitors"} over all of the order's shipments."""
    views = TrackingPageView.objects.filter(shop=shop, fulfillment__order=order)
    return {
        "page_views": views.count(),
        "unique_visitors": views.values("fulfillment_id", "day", "visitor_hash").distinct().count(),
    }


def tracking_top_shipments(*, shop: Shop, limit: int = 20, since: dt.datetime | None = None) -> list[dict]:
    """Most viewed shipments: [{fulfillment_id, order_id, order_name, tracking_number, page_views}]."""
    views = _range(TrackingPageView.objects.filter(shop=shop), "created_at", since, None)
    rows = (
        views.values(
            "fulfillment_id",
            "fulfillment__order_id",
            "fulfillment__order__name",
            "fulfillment__tracking_number",
        )
        .annotate(page_views=Count("id"))
        .order_by("-page_views", "fulfillment_id")[:limit]
    )
    return [
        {
            "fulfillment_id": r["fulfillment_id"],
            "order_id": r["fulfillment__order_id"],
            "order_name": r["fulfillment__order__name"],
            "tracking_number": r["fulfillment__tracking_number"],
            "page_views": r["page_views"],
        }
        for r in rows
    ]


def tracking_customer_data_export(*, shop: Shop, customer: Customer | None) -> dict[str, Any]:
    """customers/data_request: the customer's tracking-page clicks (no other per-customer rows here)."""
    if customer is None:
        return {"section": "tracking", "data": {"clicks": []}}
    clicks = TrackingClick.objects.filter(shop=shop, customer=customer).select_related("product")
    return {
        "section": "tracking",
        "data": {
            "clicks": [
                {
                    "kind": c.kind,
                    "product": c.product.title if c.product else None,
                    "discount_code": c.discount_code or None,
                    "clicked_at": c.created_at.isoformat(),
                }
                for c in clicks
            ]
        },
    }
