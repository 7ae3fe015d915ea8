"""Unsubscribe links and headers (RFC 2369 List-Unsubscribe, RFC 8058 one-click).

    unsubscribe_url(customer)      -> "https://app.example/m/u/<signed token>/"
    unsubscribe_headers(customer)  -> {"List-Unsubscribe": "<https://…>",
                                       "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}

The token is signed with SECRET_KEY (django.core.signing, own salt) and names both the shop and the
customer; it does not expire (a link in an old email must still work). A forged or altered token, or one
whose customer is not in the named shop, is rejected and changes nothing. The signature is the protection
of the one-click POST, which mail clients send without cookies or CSRF token (RFC 8058 section 3.1).
"""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.urls import reverse

SALT = "boomerang.messaging.unsubscribe.v1"


def _signer() -> signing.Signer:
    # No timestamp: the same customer always gets the same link, and it never expires.
    return signing.Signer(salt=SALT)


def unsubscribe_token(customer) -> str:
    return _signer().sign_object({"s": customer.shop_id, "c": customer.pk})


def unsubscribe_token_read(token: str) -> tuple[int, int] | None:
    """(shop_id, customer_id) of a valid token; None for anything forged, altered or malformed."""
    try:
        data = _signer().unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    shop_id, customer_id = data.get("s"), data.get("c")
    if not isinstance(shop_id, int) or not isinstance(customer_id, int):
        return None
    return shop_id, customer_id


def unsubscribe_url(customer) -> str:
    """The absolute unsubscribe link of a customer (settings.APP_URL)."""
    path = reverse("messaging:unsubscribe", kwargs={"token": unsubscribe_token(customer)})
    return f"{settings.APP_URL}{path}"


def unsubscribe_headers(customer, url: str | None = None) -> dict[str, str]:
    """Headers every marketing email carries (RFC 8058): List-Unsubscribe with the signed HTTPS link (and a
    mailto: when settings.UNSUBSCRIBE_MAILTO is set) and List-Unsubscribe-Post for one-click. `url`: the
    customer's link when the caller already signed it (the template context has it)."""
    links = [f"<{url or unsubscribe_url(customer)}>"]
    mailto = getattr(settings, "UNSUBSCRIBE_MAILTO", "")
    if mailto:
        links.append(f"<mailto:{mailto}?subject=unsubscribe>")
    return {"List-Unsubscribe": ", ".join(links), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
