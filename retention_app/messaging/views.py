"""Public unsubscribe page and RFC 8058 one-click endpoint: /m/u/<signed token>/.

GET shows a confirmation page in the customer's language (it never unsubscribes: mail scanners follow
links). POST unsubscribes at once — from the page's button or from a mail client's one-click request
(body "List-Unsubscribe=One-Click"). POST is CSRF-exempt on purpose: mail clients send it without cookies
or a CSRF token; the signed token in the URL is the protection. A bad token answers 400 and changes nothing.
"""

from __future__ import annotations

from django.shortcuts import render
from django.utils import translation
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from retention_app.commerce.models import Customer

from .locales import locale_resolve
from .models import ConsentChange
from .services import customer_unsubscribe
from .unsubscribe import unsubscribe_token_read

PAGE = "emails/unsubscribe_page.html"


def _private(response):
    # The URL holds a token: no caching, no indexing, no Referer to third parties.
    response["Cache-Control"] = "no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token: str):
    ids = unsubscribe_token_read(token)
    customer = None
    if ids is not None:
        shop_id, customer_id = ids
        # Both ids must match one row: a customer id of another shop in a token for this shop is nothing.
        customer = Customer.objects.select_related("shop").filter(pk=customer_id, shop_id=shop_id).first()
    if customer is None:
        return _private(render(request, PAGE, {"state": "invalid"}, status=400))

    with translation.override(locale_resolve(customer_locale=customer.locale, shop=customer.shop)):
        if request.method == "POST":
            one_click = request.POST.get("List-Unsubscribe") == "One-Click"
            customer_unsubscribe(
                customer=customer,
                source=ConsentChange.Source.ONE_CLICK if one_click else ConsentChange.Source.UNSUBSCRIBE_LINK,
            )
            state = "done"
        else:
            unsubscribed = customer.marketing_state == Customer.MarketingState.UNSUBSCRIBED
            state = "done" if unsubscribed else "confirm"
        context = {
            "state": state,
            "shop_name": customer.shop.name or customer.shop.domain,
            "lang": translation.get_language(),
        }
        return _private(render(request, PAGE, context))
