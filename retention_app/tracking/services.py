"""Writes of the tracking domain: public links, branding, analytics (views, clicks) and attribution.

Contract used by messaging (H5): `tracking_page_url(fulfillment) -> str`, an absolute URL
`{settings.APP_URL}/t/<token>/` where the token is a random per-fulfillment public id signed with
SECRET_KEY (django.core.signing, salt "tracking.page"): unguessable, tamper-evident, never a row id.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import secrets
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from retention_app.commerce.models import Customer, Fulfillment, Order, Product
from retention_app.shops.models import Shop
from retention_app.tracking import pagecache
from retention_app.tracking.models import (
    TrackingAttribution,
    TrackingBranding,
    TrackingClick,
    TrackingLink,
    TrackingPageView,
)
from retention_app.tracking.presentation import normalize_hex

TOKEN_SALT = "tracking.page"  # noqa: S105 (a signing namespace, not a secret)
# Orders placed by the clicking customer within this window after a click are attributed to the click.
ATTRIBUTION_WINDOW = dt.timedelta(days=7)


def branding_cache_key(shop_id: int) -> str:
    return f"tracking:branding:v1:{shop_id}"


# --- public links ------------------------------------------------------------------------------------------


def tracking_link_get_or_create(*, fulfillment: Fulfillment) -> TrackingLink:
    """The fulfillment's public link, created once (unique on fulfillment; a concurrent creator wins)."""
    try:
        return TrackingLink.objects.get(fulfillment=fulfillment)
    except TrackingLink.DoesNotExist:
        pass
    try:
        with transaction.atomic():
            return TrackingLink.objects.create(
                shop_id=fulfillment.shop_id, fulfillment=fulfillment, public_id=secrets.token_urlsafe(16)
            )
    except IntegrityError:
        return TrackingLink.objects.get(fulfillment=fulfillment)


def tracking_token(*, link: TrackingLink) -> str:
    return _signer(settings.SECRET_KEY).sign(link.public_id)


def tracking_page_path(fulfillment: Fulfillment) -> str:
    return f"/t/{tracking_token(link=tracking_link_get_or_create(fulfillment=fulfillment))}/"


def tracking_page_url(fulfillment: Fulfillment) -> str:
    """Absolute URL of the fulfillment's branded tracking page (settings.APP_URL + /t/<signed token>/)."""
    return settings.APP_URL + tracking_page_path(fulfillment)


def public_id_from_token(token: str) -> str | None:
    """The public id inside a valid token, or None for a forged/garbled one (no query made)."""
    if not token or len(token) > 128:
        return None
    try:
        return _signer(settings.SECRET_KEY).unsign(token)
    except signing.BadSignature:
        return None


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str) -> signing.Signer:
    # Built once per key (the hot path checks a token per request); keyed so a changed key is honoured.
    return signing.Signer(key=secret_key, salt=TOKEN_SALT)


# --- branding ----------------------------------------------------------------------------------------------


class TrackingBrandingForm(forms.ModelForm):
    """Validation of the branding the merchant sets in the panel (H8 may render this form as is)."""

    logo_url = forms.URLField(required=False, max_length=1024, assume_scheme="https")

    class Meta:
        model = TrackingBranding
        fields = [
            "logo_url",
            "brand_color",
            "accent_color",
            "background_color",
            "show_recommendations",
            "show_discount_code",
        ]

    def clean_logo_url(self) -> str:
        url = (self.cleaned_data.get("logo_url") or "").strip()
        if url and not url.lower().startswith("https://"):
            raise ValidationError("The logo address must start with https:// (browsers block http images).")
        return url

    def _clean_color(self, name: str) -> str:
        value = normalize_hex(self.cleaned_data.get(name) or "")
        if value is None:
            raise ValidationError("Enter a colour as #RRGGBB, for example #1f2937.")
        return value

    def clean_brand_color(self) -> str:
        return self._clean_color("brand_color")

    def clean_accent_color(self) -> str:
        return self._clean_color("accent_color")

    def clean_background_color(self) -> str:
        return self._clean_color("background_color")


def tracking_branding_update(*, shop: Shop, data: dict[str, Any]) -> TrackingBranding:
    """Validate and save the shop's tracking-page branding; raises django ValidationError (message_dict)
    on bad input, saving nothing. Missing keys keep their current values (partial update)."""
    branding = TrackingBranding.objects.filter(shop=shop).first() or TrackingBranding(shop=shop)
    current = {f: getattr(branding, f) for f in TrackingBrandingForm.Meta.fields}
    merged = {**current, **{k: v for k, v in data.items() if k in current}}
    form = TrackingBrandingForm(data=merged, instance=branding)
    if not form.is_valid():
        raise ValidationError(form.errors.as_data())
    with transaction.atomic():
        branding = form.save()
        transaction.on_commit(lambda: tracking_shop_cache_invalidate(shop_id=shop.pk))
    return branding


# --- analytics ---------------------------------------------------------------------------------------------


def visitor_hash(*, ip: str, user_agent: str, day: dt.date) -> str:
    """A keyed hash that identifies a browser for one day only; the IP itself is never stored."""
    key = _visitor_key(settings.SECRET_KEY, day.isoformat())
    return hmac.new(key, f"{ip}|{user_agent}".encode(), hashlib.sha256).hexdigest()[:32]


@functools.lru_cache(maxsize=4)
def _visitor_key(secret_key: str, day: str) -> bytes:
    return hashlib.sha256(f"{secret_key}|tracking-visitor|{day}".encode()).digest()


def view_suffix(*, day: dt.date, digest: str, now: dt.datetime) -> str:
    """The part of a buffered view record after "shop_id|fulfillment_id|"."""
    return f"{day.isoformat()}|{digest}|{now.timestamp()}"


def tracking_page_view_record(*, shop_id: int, fulfillment_id: int, ip: str, user_agent: str) -> None:
    """Record one view cheaply: batched in memory and RPUSHed to a Redis buffer (moved into the database
    by `tracking_page_views_flush`), or one autocommit INSERT without Redis: never waits on a lock."""
    now = timezone.now()
    day = now.date()
    digest = visitor_hash(ip=ip, user_agent=user_agent[:512], day=day)
    if pagecache.buffer_view(f"{shop_id}|{fulfillment_id}|{view_suffix(day=day, digest=digest, now=now)}"):
        return
    TrackingPageView.objects.create(
        shop_id=shop_id, fulfillment_id=fulfillment_id, day=day, visitor_hash=digest, created_at=now
    )


def tracking_page_views_flush(*, batch_size: int = 5000) -> int:
    """Move buffered page views from Redis to TrackingPageView rows (bulk INSERTs); returns the count.

    At most once: a batch is taken off the list (LRANGE+LTRIM in one MULTI) before it is inserted, so a
    crash mid-flush loses that batch rather than counting it twice. Views of deleted fulfillments or shops
    are dropped."""
    buffer = pagecache.redis_client()
    if buffer is None:
        return 0
    pagecache.flush_local_views()
    total = 0
    while True:
        pipe = buffer.pipeline(transaction=True)
        pipe.lrange(pagecache.VIEW_BUFFER_KEY, 0, batch_size - 1)
        pipe.ltrim(pagecache.VIEW_BUFFER_KEY, batch_size, -1)
        items, _ = pipe.execute()
        if not items:
            return total
        parsed = []
        for raw in items:
            try:
                shop_id, fulfillment_id, day, digest, ts = raw.decode().split("|")
                parsed.append(
                    (int(shop_id), int(fulfillment_id), dt.date.fromisoformat(day), digest[:32], float(ts))
                )
            except (ValueError, UnicodeDecodeError):
                continue
        existing = set(Fulfillment.objects.filter(pk__in={p[1] for p in parsed}).values_list("pk", "shop_id"))
        rows = [
            TrackingPageView(
                shop_id=shop_id,
                fulfillment_id=fulfillment_id,
                day=day,
                visitor_hash=digest,
                created_at=dt.datetime.fromtimestamp(ts, tz=dt.UTC),
            )
            for shop_id, fulfillment_id, day, digest, ts in parsed
            if (fulfillment_id, shop_id) in existing
        ]
        TrackingPageView.objects.bulk_create(rows, batch_size=1000)
        total += len(rows)
        if len(items) < batch_size:
            return total


def tracking_click_record(
    *,
    fulfillment: Fulfillment,
    kind: str,
    product: Product | None = None,
    discount_code: str = "",
) -> TrackingClick:
    return TrackingClick.objects.create(
        shop_id=fulfillment.shop_id,
        fulfillment=fulfillment,
        customer_id=fulfillment.order.customer_id,
        kind=kind,
        product=product,
        discount_code=discount_code[:255],
    )


def tracking_attribute_order(*, order: Order) -> TrackingAttribution | None:
    """Attribute `order` to the customer's last tracking-page click within ATTRIBUTION_WINDOW before it.

    Idempotent (unique per order); test orders, orders without customer and clicks made from the same
    order's own tracking page are not attributed. Cancelled orders keep their row; metrics exclude them."""
    if order.customer_id is None or order.is_test:
        return None
    existing = TrackingAttribution.objects.filter(order=order).first()
    if existing is not None:
        return existing
    click = (
        TrackingClick.objects.filter(
            shop_id=order.shop_id,
            customer_id=order.customer_id,
            created_at__gte=order.placed_at - ATTRIBUTION_WINDOW,
            created_at__lte=order.placed_at,
        )
        .exclude(fulfillment__order_id=order.pk)
        .order_by("-created_at", "-id")
        .first()
    )
    if click is None:
        return None
    try:
        with transaction.atomic():
            return TrackingAttribution.objects.create(
                shop_id=order.shop_id,
                order=order,
                click=click,
                revenue=order.total_price or Decimal("0"),
                currency=order.currency,
            )
    except IntegrityError:
        return TrackingAttribution.objects.filter(order=order).first()


# --- caches and privacy ------------------------------------------------------------------------------------


def tracking_customer_recs_invalidate(*, customer_id: int) -> None:
    """An order changes what the customer already bought (and their codes): bump their generation, which
    keys their recommendations and is checked by every cached page of theirs."""
    pagecache.bump(pagecache.customer_generation_key(customer_id))


def tracking_shop_cache_invalidate(*, shop_id: int) -> None:
    """Branding changed: drop the cached branding and bump the shop generation (cached pages re-render)."""
    cache.delete(branding_cache_key(shop_id))
    pagecache.bump(pagecache.shop_generation_key(shop_id))


def tracking_page_cache_invalidate(*, fulfillment_id: int) -> None:
    """A fulfillment or its events changed: drop its cached pages in every language variant."""
    public_id = (
        TrackingLink.objects.filter(fulfillment_id=fulfillment_id).values_list("public_id", flat=True).first()
    )
    if public_id:
        pagecache.delete([pagecache.page_key(public_id, lang) for lang in pagecache.LANG_VARIANTS])


def tracking_customer_redact(*, shop: Shop, customer: Customer | None) -> int:
    """customers/redact: unlink the customer's clicks (the only per-customer rows here) and re-render their
    cached pages (bumped generation) so nothing erased elsewhere is served from the cache. Idempotent."""
    if customer is None:
        return 0
    tracking_customer_recs_invalidate(customer_id=customer.pk)
    return TrackingClick.objects.filter(shop=shop, customer=customer).update(customer=None)
