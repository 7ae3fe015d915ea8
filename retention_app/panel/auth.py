"""Which shop the panel is looking at: the single place that decides it.

A panel session belongs to one shop, recorded as ``request.session["shop_id"]``. It is set by:
- the standalone login (/app/login/): a Django user with a `ShopMembership` (first shop, or the one
  chosen in the shop switcher, which re-checks the membership);
- the Shopify OAuth callback / token exchange (H2), after a verified install (session key cycled);
- the embedded admin: an App Bridge session token (``id_token`` query parameter or
  ``Authorization: Bearer <jwt>``) verified by the platform integration through `embedded.shop_for_token`.

`current_shop(request)` returns that Shop, or raises `PanelLoginRequired` (the `shop_required` decorator
turns it into a redirect to /app/login/?next=…). A shop id in the session that no longer exists (shop
deleted by shop/redact) is dropped.
"""

from __future__ import annotations

from functools import wraps

from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

from retention_app.panel.models import ShopMembership
from retention_app.shops.models import Shop

SESSION_KEY = "shop_id"


class PanelLoginRequired(Exception):
    """No shop in the panel session: the merchant has to log in (or open the app from their admin)."""


def login_shop(request: HttpRequest, shop: Shop) -> None:
    """Bind the panel session to `shop` (cycling the session key so a fixed session id is useless)."""
    request.session.cycle_key()
    request.session[SESSION_KEY] = shop.pk


def member_shops(user):
    if not getattr(user, "is_authenticated", False):
        return Shop.objects.none()
    return Shop.objects.filter(memberships__user=user).order_by("domain")


def session_shop(request: HttpRequest) -> Shop | None:
    """The shop of this request's panel session, or None. Verifies an embedded session token if sent."""
    from retention_app.panel.embedded import shop_from_request_token

    token_shop = shop_from_request_token(request)
    if token_shop is not None:
        if request.session.get(SESSION_KEY) != token_shop.pk:
            login_shop(request, token_shop)
        return token_shop
    shop_id = request.session.get(SESSION_KEY)
    if shop_id is not None:
        shop = Shop.objects.filter(pk=shop_id).first()
        if shop is not None:
            user = getattr(request, "user", None)
            # A logged-in user only ever sees shops they are a member of (the OAuth/embedded session has
            # no user, and is trusted because the platform vouched for it).
            if user is None or not user.is_authenticated or member_shops(user).filter(pk=shop.pk).exists():
                return shop
        request.session.pop(SESSION_KEY, None)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        shop = member_shops(user).first()
        if shop is not None:
            request.session[SESSION_KEY] = shop.pk
            return shop
    return None


def current_shop(request: HttpRequest) -> Shop:
    """The Shop whose panel this request may see. Raises PanelLoginRequired when there is none."""
    cached = getattr(request, "_panel_shop", None)
    if cached is not None:
        return cached
    shop = session_shop(request)
    if shop is None:
        raise PanelLoginRequired
    request._panel_shop = shop
    return shop


def login_redirect(request: HttpRequest) -> HttpResponseRedirect:
    nxt = request.get_full_path()
    if not url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()}):
        nxt = reverse("panel:dashboard")
    return HttpResponseRedirect(f"{reverse('panel:login')}?{urlencode({'next': nxt})}")


def shop_required(view):
    """View decorator: sets `request.shop`, or redirects to the login page."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            request.shop = current_shop(request)
        except PanelLoginRequired:
            return login_redirect(request)
        response = view(request, *args, **kwargs)
        # The Shopify admin shows the panel in an iframe: allow exactly the shop's admin to frame it.
        response.xframe_options_exempt = True
        response.setdefault(
            "Content-Security-Policy",
            # 'self': the rule editor's preview is an iframe of this page (it inherits this policy).
            f"frame-ancestors 'self' https://{request.shop.domain} https://admin.shopify.com",
        )
        return response

    return wrapper


def membership_exists(*, user, shop: Shop) -> bool:
    return ShopMembership.objects.filter(user=user, shop=shop).exists()
