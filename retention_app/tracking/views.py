"""Public tracking pages under /t/ (no login: the signed token is the credential).

Routes (retention_app/tracking/urls.py):
- /t/<token>/                 the branded page of one fulfillment (?lang=en|th|vi|pl|zh-hant)
- /t/<token>/status.json      tiny version string the page polls once a minute to offer a reload
- /t/<token>/p/<product_id>/  click-tracking redirect to a recommended product of the same shop
- /t/<token>/code/            click-tracking redirect to the customer's discount link on the same shop
- /t/lookup/<shop_domain>/    order number + email form of one shop (CSRF, rate limited, same answer for
                              every wrong pair); a right pair redirects to the page.
"""

from __future__ import annotations

import hmac
from decimal import Decimal

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from retention_app.commerce.models import FulfillmentEvent, LineItem, Order, Product
from retention_app.shops.models import Shop
from retention_app.tracking import pagecache
from retention_app.tracking import presentation as P
from retention_app.tracking.models import TrackingBranding, TrackingClick
from retention_app.tracking.ratelimit import rate_limit_hit
from retention_app.tracking.selectors import (
    discount_store_url,
    product_store_url,
    recommendations_for_order,
    storefront_base,
    tracking_branding_get,
    tracking_link_resolve,
    unused_discount_code,
)
from retention_app.tracking.services import (
    public_id_from_token,
    tracking_click_record,
    tracking_page_path,
    tracking_page_view_record,
    view_suffix,
    visitor_hash,
)

LOOKUP_LIMIT_PER_IP = getattr(settings, "TRACKING_LOOKUP_LIMIT_PER_IP", (10, 600))
LOOKUP_LIMIT_PER_SHOP = getattr(settings, "TRACKING_LOOKUP_LIMIT_PER_SHOP", (300, 600))


def _private(response: HttpResponse, *, referrer_policy: str = "no-referrer") -> HttpResponse:
    # The token must not leak to the store or carrier through Referer; the page is personal.
    response["Referrer-Policy"] = referrer_policy
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _colors(branding: dict) -> P.Palette:
    return P.palette(
        brand_color=P.normalize_hex(branding["brand_color"]) or TrackingBranding.DEFAULT_BRAND_COLOR,
        accent_color=P.normalize_hex(branding["accent_color"]) or TrackingBranding.DEFAULT_ACCENT_COLOR,
        background_color=P.normalize_hex(branding["background_color"])
        or TrackingBranding.DEFAULT_BACKGROUND_COLOR,
    )


def _language_links(request: HttpRequest, current: str) -> list[dict]:
    return [
        {"code": code, "name": P.LANGUAGE_NAMES[code], "current": code == current}
        for code in P.SUPPORTED_LANGUAGES
    ]


def _client_ip(request: HttpRequest) -> str:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites REMOTE_ADDR.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _gen_keys(shop_id: int, customer_id: int | None) -> list[str]:
    keys = [pagecache.shop_generation_key(shop_id)]
    if customer_id:
        keys.append(pagecache.customer_generation_key(customer_id))
    return keys


@require_GET
def tracking_page(request: HttpRequest, token: str) -> HttpResponse:
    """The page, served from the cache while nothing it shows changed (see pagecache): with Redis a hit
    is one round trip that also records the view, and no SQL."""
    public_id = public_id_from_token(token)
    if public_id is None:
        raise Http404("No such tracking page.")
    requested = P.normalize_language(request.GET.get("lang")) or ""
    key = pagecache.page_key(public_id, requested)
    meta = request.META
    count_view = meta.get("HTTP_PURPOSE") != "prefetch" and meta.get("HTTP_SEC_PURPOSE") != "prefetch"
    ip, user_agent = _client_ip(request), request.META.get("HTTP_USER_AGENT", "")[:512]
    now = timezone.now()
    suffix = ""
    if count_view:
        digest = visitor_hash(ip=ip, user_agent=user_agent, day=now.date())
        suffix = view_suffix(day=now.date(), digest=digest, now=now)
    cached = pagecache.hit(key, view_suffix=suffix)
    if cached is not None:
        html, lang, ids, recorded = cached
        if count_view and not recorded:  # no Redis: one INSERT
            shop_id, fulfillment_id = (int(x) for x in ids.split("|"))
            tracking_page_view_record(
                shop_id=shop_id, fulfillment_id=fulfillment_id, ip=ip, user_agent=user_agent
            )
    else:
        link = tracking_link_resolve(token=token)
        if link is None:
            raise Http404("No such tracking page.")
        gen_keys = _gen_keys(link.shop_id, link.fulfillment.order.customer_id)
        gens = list(zip(gen_keys, pagecache.generations(gen_keys), strict=True))
        html, lang = _render_page(request, link, requested, token)
        pagecache.store(key, html=html, lang=lang, ids=f"{link.shop_id}|{link.fulfillment_id}", gens=gens)
        if count_view:
            tracking_page_view_record(
                shop_id=link.shop_id, fulfillment_id=link.fulfillment_id, ip=ip, user_agent=user_agent
            )
    response = HttpResponse(html)
    response["Content-Language"] = lang
    return _private(response)


def _render_page(request: HttpRequest, link, requested: str, token: str) -> tuple[str, str]:
    shop, fulfillment = link.shop, link.fulfillment
    order, customer = fulfillment.order, fulfillment.order.customer
    lang = P.choose_language(
        requested=requested,
        candidates=[customer.locale if customer else "", order.customer_locale, shop.primary_locale],
    )
    tz = P.page_timezone(customer_timezone=customer.timezone if customer else "", shop_timezone=shop.timezone)
    now = timezone.now()
    events = list(FulfillmentEvent.objects.filter(fulfillment=fulfillment).order_by("-happened_at", "-id"))
    items = list(LineItem.objects.filter(order=order).order_by("id").values_list("title", "quantity")[:50])
    branding = tracking_branding_get(shop=shop)
    code = unused_discount_code(customer=customer) if branding["show_discount_code"] else None
    recs = recommendations_for_order(order=order) if branding["show_recommendations"] else []
    status = P.display_status(fulfillment)
    eta = P.estimated_delivery(fulfillment, list(reversed(events)), now=now)

    with translation.override(lang):

        def when(value):
            return formats.date_format(timezone.localtime(value, tz), "DATETIME_FORMAT")

        def day(value):
            return formats.date_format(timezone.localtime(value, tz), "DATE_FORMAT")

        context = {
            "lang": lang,
            "languages": _language_links(request, lang),
            "shop": shop,
            "shop_name": shop.name or shop.domain,
            "store_url": storefront_base(shop) + "/",
            "branding": branding,
            "colors": _colors(branding),
            "order_name": order.name or order.platform_id,
            "items": items,
            "carrier": fulfillment.tracking_company,
            "tracking_number": fulfillment.tracking_number,
            "carrier_url": P.safe_http_url(fulfillment.tracking_url),
            "status": status,
            "status_words": P.status_words(status),
            "status_sentence": P.status_sentence(status),
            "is_problem": status in P.PROBLEM_STATUSES,
            "problem_advice": P.PROBLEM_ADVICE.get(status),
            "is_done": status in P.DONE_STATUSES,
            "eta": day(eta) if eta else None,
            "timeline": [
                {
                    "words": P.status_words(e.status),
                    "when": when(e.happened_at),
                    "iso": e.happened_at.isoformat(),
                    "message": e.message,
                    "place": ", ".join(x for x in (e.city, e.province, e.country) if x),
                    "problem": e.status in P.PROBLEM_STATUSES,
                }
                for e in events
            ],
            "timezone_name": str(tz),
            "code": code,
            "code_expires": day(code.expires_at)
            if code is not None and getattr(code, "expires_at", None)
            else None,
            "recs": [
                {
                    **r,
                    "price": formats.number_format(Decimal(r["price"]), 2, use_l10n=True)
                    if r["price"]
                    else "",
                }
                for r in recs
            ],
            "token": token,
            "version": _version(fulfillment, len(events), events[0].id if events else 0),
        }
        html = render_to_string("tracking/page.html", context, request=request)
    return html, lang


def _version(fulfillment, event_count: int, last_event_id: int) -> str:
    updated = int(fulfillment.updated_at.timestamp())
    return f"{fulfillment.shipment_status}.{event_count}.{last_event_id}.{updated}"


@require_GET
def tracking_status(request: HttpRequest, token: str) -> HttpResponse:
    """A version string that changes when the shipment or its events change (the page offers a reload)."""
    link = tracking_link_resolve(token=token)
    if link is None:
        raise Http404("No such tracking page.")
    events = FulfillmentEvent.objects.filter(fulfillment=link.fulfillment).order_by("-happened_at", "-id")
    last = events.values_list("id", flat=True).first() or 0
    return _private(JsonResponse({"v": _version(link.fulfillment, events.count(), last)}))


@require_GET
def tracking_product_redirect(request: HttpRequest, token: str, product_id: str) -> HttpResponse:
    """Record a recommendation click and redirect to that product on the token's shop (only there)."""
    link = tracking_link_resolve(token=token)
    if link is None:
        raise Http404("No such tracking page.")
    product = Product.objects.filter(shop_id=link.shop_id, platform_id=product_id).first()
    if product is None:
        raise Http404("No such product in this store.")
    tracking_click_record(
        fulfillment=link.fulfillment, kind=TrackingClick.Kind.RECOMMENDATION, product=product
    )
    return _private(HttpResponseRedirect(product_store_url(link.shop, product)))


@require_GET
def tracking_code_redirect(request: HttpRequest, token: str) -> HttpResponse:
    """Record a discount-code click and redirect to the code's link on the token's shop (only there)."""
    link = tracking_link_resolve(token=token)
    if link is None:
        raise Http404("No such tracking page.")
    code = unused_discount_code(customer=link.fulfillment.order.customer)
    if code is None:
        return _private(HttpResponseRedirect(storefront_base(link.shop) + "/"))
    tracking_click_record(
        fulfillment=link.fulfillment, kind=TrackingClick.Kind.DISCOUNT_CODE, discount_code=code.code
    )
    return _private(HttpResponseRedirect(discount_store_url(link.shop, code)))


# --- lookup ---------------------------------------------------------------------------------------

# Compared against when no order matches, so both paths do one query and one constant-time compare.
_DUMMY_EMAIL = "nobody@invalid.invalid"


def _order_name_variants(raw: str) -> list[str]:
    value = raw.strip()[:64]
    bare = value.lstrip("#").strip()
    return [v for v in {value, bare, f"#{bare}"} if v and v != "#"]


@csrf_protect
@require_http_methods(["GET", "POST"])
def tracking_lookup(request: HttpRequest, shop_domain: str) -> HttpResponse:
    shop = (
        Shop.objects.filter(domain=shop_domain.lower()[:255])
        .exclude(status=Shop.Status.UNINSTALLED)
        .order_by("id")
        .first()
    )
    if shop is None:
        raise Http404("No such store.")
    lang = P.choose_language(requested=request.GET.get("lang"), candidates=[shop.primary_locale])
    branding = tracking_branding_get(shop=shop)
    status_code = 200
    error = ""
    order_number = ""
    with translation.override(lang):
        if request.method == "POST":
            order_number = (request.POST.get("order_number") or "").strip()[:64]
            email = (request.POST.get("email") or "").strip().lower()[:320]
            ip = _client_ip(request)
            ip_ok = rate_limit_hit(
                key=f"lookup-ip:{ip}", limit=LOOKUP_LIMIT_PER_IP[0], window_seconds=LOOKUP_LIMIT_PER_IP[1]
            )
            shop_ok = rate_limit_hit(
                key=f"lookup-shop:{shop.pk}",
                limit=LOOKUP_LIMIT_PER_SHOP[0],
                window_seconds=LOOKUP_LIMIT_PER_SHOP[1],
            )
            if not (ip_ok and shop_ok):
                status_code = 429
                error = _("Too many attempts. Please wait a few minutes and try again.")
            elif not order_number or not email:
                status_code = 400
                error = _("Enter your order number and the email address you used for the order.")
            else:
                order = (
                    Order.objects.filter(shop=shop, name__in=_order_name_variants(order_number))
                    .select_related("customer")
                    .order_by("-placed_at")
                    .first()
                )
                expected = _DUMMY_EMAIL
                if order is not None:
                    expected = order.email or (order.customer.email if order.customer else "") or _DUMMY_EMAIL
                matched = hmac.compare_digest(expected.lower().encode(), email.encode()) and order is not None
                if matched:
                    fulfillment = (
                        order.fulfillments.exclude(status="cancelled").order_by("-created_at", "-id").first()
                        or order.fulfillments.order_by("-created_at", "-id").first()
                    )
                    if fulfillment is not None:
                        suffix = f"?lang={lang}" if request.GET.get("lang") else ""
                        return _private(HttpResponseRedirect(tracking_page_path(fulfillment) + suffix))
                    error = _("Your order has not shipped yet. We will email you as soon as it does.")
                else:
                    status_code = 404
                    error = _(
                        "We could not find an order with that order number and email address. "
                        "Check both and try again."
                    )
        context = {
            "lang": lang,
            "languages": _language_links(request, lang),
            "shop_name": shop.name or shop.domain,
            "store_url": storefront_base(shop) + "/",
            "branding": branding,
            "colors": _colors(branding),
            "error": error,
            "order_number": order_number,
            # Not no-referrer here: the browser would then send "Origin: null" with the POST and Django's
            # CSRF origin check would refuse it. The lookup URL holds no secret.
            "referrer_policy": "same-origin",
        }
        response = render(request, "tracking/lookup.html", context, status=status_code)
    response["Content-Language"] = lang
    return _private(response, referrer_policy="same-origin")
