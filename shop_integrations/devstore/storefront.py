"""A minimal storefront so customer journeys can be followed end to end:

  GET  /s/{shop}/                  product list
  GET  /s/{shop}/products/{handle} product page (add to cart)
  POST /s/{shop}/cart/add          handle, quantity
  GET  /s/{shop}/cart              the cart, with the discount code applied (or why it does not apply)
  GET  /s/{shop}/discount/{CODE}   puts the code in the cart and redirects to the cart (?redirect=/path
                                   inside the shop is honoured; anything else is ignored: no open redirect)
  GET/POST /s/{shop}/checkout      email form; places the order (same webhooks as any other order)

The cart lives in a signed cookie; checkout forms carry a CSRF token (double submit, signed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from .commerce import FX, DiscountRefused, check_discount, place_order
from .store import money, now_iso

e = html.escape


class Storefront:
    def __init__(self, ds) -> None:
        self.ds = ds

    # cart cookie -------------------------------------------------------------------------------------------
    def _sign(self, data: bytes) -> str:
        return hmac.new(self.ds.form_secret, data, hashlib.sha256).hexdigest()[:32]

    def _cart(self, request: Request, shop: str) -> dict:
        raw = request.cookies.get("cart", "")
        try:
            payload, sig = raw.rsplit(".", 1)
            data = base64.urlsafe_b64decode(payload.encode())
            if hmac.compare_digest(sig, self._sign(shop.encode() + data)):
                cart = json.loads(data)
                if isinstance(cart, dict):
                    return {"items": dict(cart.get("items") or {}), "discount": cart.get("discount")}
        except (ValueError, TypeError):
            pass
        return {"items": {}, "discount": None}

    def _save_cart(self, response: Response, shop: str, cart: dict) -> Response:
        data = json.dumps(cart, separators=(",", ":")).encode()
        value = base64.urlsafe_b64encode(data).decode() + "." + self._sign(shop.encode() + data)
        response.set_cookie("cart", value, path=f"/s/{shop}/", httponly=True, samesite="Lax")
        return response

    def _shop(self, shop: str):
        row = self.ds.store.shop(shop)
        if row is None:
            raise NotFound("Not Found")
        return row

    def _products(self, shop: str) -> dict:
        return {
            p["handle"]: p
            for p in self.ds.store.all("SELECT * FROM products WHERE shop=? ORDER BY id", (shop,))
        }

    def _page(self, shop_row, title: str, body: str, status: int = 200) -> Response:
        base = f"/s/{e(shop_row['domain'])}"
        page = (
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{e(title)} - {e(shop_row['name'])}</title></head><body>"
            f"<header><a href='{base}/'>{e(shop_row['name'])}</a> · <a href='{base}/cart'>Cart</a></header>"
            f"<main><h1>{e(title)}</h1>{body}</main></body></html>"
        )
        return Response(page, status=status, mimetype="text/html")

    # pages -------------------------------------------------------------------------------------------------
    def home(self, request: Request, shop: str) -> Response:
        row = self._shop(shop)
        items = "".join(
            f"<li><a href='/s/{e(shop)}/products/{e(p['handle'])}'>{e(p['title'])}</a> "
            f"{money(p['price_cents'])} {e(row['currency'])}</li>"
            for p in self._products(shop).values()
        )
        return self._page(row, "Products", f"<ul class='products'>{items}</ul>")

    def product(self, request: Request, shop: str, handle: str) -> Response:
        row = self._shop(shop)
        p = self._products(shop).get(handle)
        if p is None:
            raise NotFound("Not Found")
        body = (
            f"<p class='price'>{money(p['price_cents'])} {e(row['currency'])}</p>"
            f"<form method='post' action='/s/{e(shop)}/cart/add'>"
            f"<input type='hidden' name='handle' value='{e(handle)}'>"
            "<input type='number' name='quantity' value='1' min='1' max='99'>"
            "<button type='submit' id='add-to-cart'>Add to cart</button></form>"
        )
        return self._page(row, p["title"], body)

    def cart_add(self, request: Request, shop: str) -> Response:
        self._shop(shop)
        handle = request.form.get("handle", "")
        if handle not in self._products(shop):
            return Response("Unknown product", status=400, mimetype="text/plain")
        try:
            qty = max(1, min(99, int(request.form.get("quantity", "1"))))
        except ValueError:
            return Response("quantity must be a number", status=400, mimetype="text/plain")
        cart = self._cart(request, shop)
        cart["items"][handle] = cart["items"].get(handle, 0) + qty
        return self._save_cart(Response(status=303, headers={"Location": f"/s/{shop}/cart"}), shop, cart)

    def discount(self, request: Request, shop: str, code: str) -> Response:
        self._shop(shop)
        cart = self._cart(request, shop)
        cart["discount"] = code.strip()[:255] or None
        target = request.args.get("redirect", "")
        # Only a path inside this shop: no open redirect.
        if not (target.startswith("/") and not target.startswith("//") and "\\" not in target):
            target = "/cart"
        return self._save_cart(Response(status=302, headers={"Location": f"/s/{shop}{target}"}), shop, cart)

    def _lines(self, shop: str, cart: dict):
        products = self._products(shop)
        lines = [(products[h], q) for h, q in cart["items"].items() if h in products and q > 0]
        return lines, sum(p["price_cents"] * q for p, q in lines)

    def cart(self, request: Request, shop: str) -> Response:
        row = self._shop(shop)
        cart = self._cart(request, shop)
        lines, subtotal = self._lines(shop, cart)
        rows = "".join(
            f"<tr><td>{e(p['title'])}</td><td>{q}</td><td>{money(p['price_cents'] * q)}</td></tr>"
            for p, q in lines
        )
        body = f"<table class='cart'><tr><th>Item</th><th>Qty</th><th>Total</th></tr>{rows}</table>"
        body += f"<p>Subtotal: <span id='subtotal'>{money(subtotal)}</span> {e(row['currency'])}</p>"
        discount_cents = 0
        if cart["discount"]:
            with self.ds.store.lock:
                try:
                    _, discount_cents = check_discount(
                        self.ds.store.conn,
                        shop,
                        cart["discount"],
                        customer_id=None,
                        email=None,
                        subtotal_cents=subtotal,
                        at=now_iso(),
                        check_customer=False,
                    )
                    body += (
                        "<p class='discount applied'>Discount "
                        f"<strong id='discount-code'>{e(cart['discount'])}"
                        f"</strong> applied: -<span id='discount-amount'>{money(discount_cents)}</span></p>"
                    )
                except DiscountRefused as exc:
                    body += f"<p class='discount refused'>{e(str(exc))}</p>"
        body += (
            f"<p>Total: <span id='total'>{money(subtotal - discount_cents)}</span> {e(row['currency'])}</p>"
        )
        if lines:
            body += f"<p><a href='/s/{e(shop)}/checkout' id='checkout'>Check out</a></p>"
        return self._page(row, "Your cart", body)

    def _checkout_form(self, shop_row, token: str, error: str = "", status: int = 200) -> Response:
        shop = shop_row["domain"]
        body = (f"<p class='error'>{e(error)}</p>" if error else "") + (
            f"<form method='post' action='/s/{e(shop)}/checkout'>"
            f"<input type='hidden' name='csrf' value='{e(token)}'>"
            "<label>Email <input type='email' name='email' required></label>"
            "<label>First name <input name='first_name'></label>"
            "<label>Last name <input name='last_name'></label>"
            "<label>Language <select name='locale'>"
            + "".join(f"<option>{loc}</option>" for loc in ("en", "th", "vi", "pl", "zh-TW"))
            + "</select></label>"
            "<label><input type='checkbox' name='accepts_marketing' value='1'> "
            "Email me with news and offers</label>"
            "<button type='submit' id='pay'>Pay now</button></form>"
        )
        return self._page(shop_row, "Checkout", body, status)

    def checkout(self, request: Request, shop: str) -> Response:
        row = self._shop(shop)
        cart = self._cart(request, shop)
        lines, _ = self._lines(shop, cart)
        if request.method == "GET":
            if not lines:
                return Response(status=302, headers={"Location": f"/s/{shop}/cart"})
            token = request.cookies.get("csrf") or secrets.token_urlsafe(16)
            response = self._checkout_form(row, token)
            response.set_cookie("csrf", token, path=f"/s/{shop}/", httponly=True, samesite="Lax")
            return response
        cookie_token = request.cookies.get("csrf", "")
        if not cookie_token or not hmac.compare_digest(cookie_token, request.form.get("csrf", "")):
            return Response("CSRF check failed", status=403, mimetype="text/plain")
        if not lines:
            return self._checkout_form(row, cookie_token, "Your cart is empty", 400)
        email = request.form.get("email", "").strip()
        if "@" not in email:
            return self._checkout_form(row, cookie_token, "Enter a valid email", 400)
        locale = request.form.get("locale") or "en"
        if locale not in ("en", "th", "vi", "pl", "zh-TW"):
            locale = "en"
        try:
            order = place_order(
                self.ds,
                shop,
                email=email,
                first_name=request.form.get("first_name") or None,
                last_name=request.form.get("last_name") or None,
                locale=locale,
                items=[{"handle": p["handle"], "quantity": q} for p, q in lines],
                discount_code=cart["discount"] or None,
                currency=row["currency"] if row["currency"] in FX else None,
                accepts_marketing=request.form.get("accepts_marketing") == "1",
                source="web",
            )
        except (DiscountRefused, ValueError) as exc:
            return self._checkout_form(row, cookie_token, str(exc), 400)
        body = (
            f"<p>Thank you! Your order <strong id='order-name'>{e(order['name'])}</strong> is confirmed.</p>"
            f"<p>Total paid: <span id='total'>{e(order['total_price'])}</span> {e(order['currency'])}</p>"
        )
        response = self._page(row, "Thank you", body)
        return self._save_cart(response, shop, {"items": {}, "discount": None})
