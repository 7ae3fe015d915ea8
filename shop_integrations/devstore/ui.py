"""The small HTML page of the control API: /_devstore/ (shops, create a shop) and /_devstore/ui/{shop}
(seed, place an order, cancel/refund/fulfil, tracking events, consent, uninstall, flush webhooks).
Forms POST to /_devstore/ui/{shop} with a CSRF token and redirect back with a message (no JavaScript)."""

from __future__ import annotations

import hashlib
import hmac
import html
from urllib.parse import quote, urlencode

from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

from .actions import ACTIONS, CATALOG

e = html.escape
STYLE = (
    "<style>body{font-family:sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:.2em .5em}form{display:inline;margin:.2em}"
    "fieldset{margin:1em 0}.msg{background:#eef;padding:.5em}</style>"
)
EVENT_STATUSES = [
    "confirmed",
    "in_transit",
    "out_for_delivery",
    "attempted_delivery",
    "delayed",
    "delivered",
    "failure",
    "ready_for_pickup",
    "picked_up",
]
CONSENT = ["SUBSCRIBED", "UNSUBSCRIBED", "NOT_SUBSCRIBED", "PENDING", "INVALID"]


def _csrf(ds, shop: str) -> str:
    return hmac.new(ds.form_secret, f"ui|{shop}".encode(), hashlib.sha256).hexdigest()


def _page(title: str, body: str, msg: str = "") -> Response:
    note = f"<p class='msg'>{e(msg)}</p>" if msg else ""
    return Response(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>{STYLE}</head><body>"
        f"<p><a href='/_devstore/'>Dev store</a></p><h1>{e(title)}</h1>{note}{body}</body></html>",
        mimetype="text/html",
    )


def index(ds, request: Request) -> Response:
    shops = ds.store.all("SELECT * FROM shops ORDER BY id")
    rows = "".join(
        f"<tr><td><a href='/_devstore/ui/{e(s['domain'])}'>{e(s['domain'])}</a></td><td>{e(s['name'])}</td>"
        f"<td>{e(s['currency'])}</td><td>{'yes' if s['installed'] else 'no'}</td>"
        f"<td><a href='/s/{e(s['domain'])}/'>storefront</a></td></tr>"
        for s in shops
    )
    body = (
        "<table><tr><th>Shop</th><th>Name</th><th>Currency</th><th>App installed</th><th></th></tr>"
        f"{rows}</table><p>Create a shop with the control API: <code>POST /_devstore/shops "
        '{"domain": "my-shop.devstore.test"}</code> or '
        "<code>python -m shop_integrations.devstore create-shop "
        "--shop my-shop.devstore.test</code>.</p>"
    )
    return _page("Boomerang dev store", body, request.args.get("msg", ""))


def _form(shop: str, token: str, action: str, label: str, fields: str = "", obj_id=None) -> str:
    hidden = (
        f"<input type='hidden' name='csrf' value='{token}'>"
        f"<input type='hidden' name='action' value='{action}'>"
    )
    if obj_id is not None:
        hidden += f"<input type='hidden' name='obj_id' value='{obj_id}'>"
    return (
        f"<form method='post' action='/_devstore/ui/{e(shop)}'>{hidden}{fields}"
        f"<button>{e(label)}</button></form>"
    )


def _select(name: str, options: list[str]) -> str:
    return f"<select name='{name}'>" + "".join(f"<option>{e(o)}</option>" for o in options) + "</select>"


def shop_page(ds, request: Request, shop: str) -> Response:
    row = ds.store.shop(shop)
    if row is None:
        raise NotFound("Not Found")
    token = _csrf(ds, shop)
    orders = ds.store.all("SELECT * FROM orders WHERE shop=? ORDER BY id DESC LIMIT 20", (shop,))
    order_rows = ""
    for o in orders:
        fulfillments = ds.store.all("SELECT * FROM fulfillments WHERE order_id=? ORDER BY id", (o["id"],))
        ftext = "".join(
            f"<div>#{f['id']} {e(f['tracking_company'] or '')} {e(f['tracking_number'] or '')} "
            f"<b>{e(f['shipment_status'] or f['status'])}</b> "
            + _form(
                shop,
                token,
                "tracking_event",
                "Add event",
                _select("status", EVENT_STATUSES) + "<input name='city' placeholder='city' size='8'>",
                f["id"],
            )
            + "</div>"
            for f in fulfillments
        )
        order_rows += (
            f"<tr><td>{o['id']}</td><td>#{o['number']}</td><td>{e(o['email'] or '')}</td>"
            f"<td>{o['total_cents'] / 100:.2f} {e(o['currency'])}</td><td>{e(o['financial_status'])}"
            f"{' (cancelled)' if o['cancelled_at'] else ''}</td><td>{e(o['discount_code'] or '')}</td><td>"
            + _form(shop, token, "cancel", "Cancel", obj_id=o["id"])
            + _form(shop, token, "refund", "Refund", obj_id=o["id"])
            + _form(
                shop,
                token,
                "fulfill",
                "Fulfil",
                "<input name='tracking_company' value='UPS' size='8'>"
                "<input name='tracking_number' placeholder='tracking no.' size='10'>",
                o["id"],
            )
            + f"{ftext}</td></tr>"
        )
    customers = ds.store.all("SELECT * FROM customers WHERE shop=? ORDER BY id DESC LIMIT 20", (shop,))
    customer_rows = "".join(
        f"<tr><td>{c['id']}</td><td>{e(c['email'] or '')}</td><td>{e(c['locale'])}</td>"
        f"<td>{e(c['marketing_state'])}</td><td>"
        + _form(shop, token, "consent", "Set consent", _select("state", CONSENT), c["id"])
        + "</td></tr>"
        for c in customers
    )
    handles = [h for h, *_ in CATALOG]
    body = (
        f"<p>Storefront: <a href='/s/{e(shop)}/'>/s/{e(shop)}/</a> · currency {e(row['currency'])} · "
        f"app installed: {'yes' if row['installed'] else 'no'}</p>"
        "<fieldset><legend>Actions</legend>"
        + _form(
            shop,
            token,
            "seed",
            "Seed",
            "<input name='customers' value='50' size='5'> customers "
            "<input name='orders' value='200' size='6'> orders over "
            "<input name='months' value='12' size='3'> "
            "months",
        )
        + "<br>"
        + _form(
            shop,
            token,
            "orders",
            "Place order",
            "<input name='email' placeholder='email' required>"
            + _select("handle", handles)
            + "<input name='quantity' value='1' size='2'>"
            "<input name='discount_code' placeholder='discount code' size='12'>",
        )
        + "<br>"
        + _form(shop, token, "uninstall", "Uninstall the app")
        + _form(shop, token, "flush", "Flush webhooks")
        + "</fieldset>"
        "<h2>Latest orders</h2><table><tr><th>id</th><th>name</th><th>email</th><th>total</th>"
        "<th>status</th>"
        f"<th>code</th><th></th></tr>{order_rows}</table>"
        "<h2>Latest customers</h2><table><tr><th>id</th><th>email</th><th>locale</th><th>consent</th>"
        "<th></th>"
        f"</tr>{customer_rows}</table>"
    )
    return _page(f"Dev store: {row['name']}", body, request.args.get("msg", ""))


def shop_action(ds, request: Request, shop: str) -> Response:
    if ds.store.shop(shop) is None:
        raise NotFound("Not Found")
    form = request.form
    if not hmac.compare_digest(form.get("csrf", ""), _csrf(ds, shop)):
        return Response("CSRF check failed", status=403, mimetype="text/plain")
    action = form.get("action", "")
    body = {k: v for k, v in form.items() if k not in ("csrf", "action", "obj_id") and v != ""}
    for key in ("customers", "orders", "months", "quantity"):
        if key in body:
            try:
                body[key] = int(body[key])
            except ValueError:
                return _redirect(shop, f"{key} must be a number")
    if action == "orders":
        body["items"] = [{"handle": body.pop("handle", None), "quantity": body.pop("quantity", 1)}]
    obj_id = int(form["obj_id"]) if form.get("obj_id", "").isdigit() else None
    if action == "flush":
        result = ds.webhooks.flush(timeout=10)
        return _redirect(shop, f"webhooks: {result}")
    handler = ACTIONS.get((action, "POST"))
    if handler is None:
        return _redirect(shop, f"unknown action {action}")
    try:
        result = handler(ds, shop, obj_id, body)
    except (ValueError, LookupError) as exc:
        return _redirect(shop, f"{action} refused: {exc}")
    summary = result.get("name") or result.get("id") or result if isinstance(result, dict) else result
    return _redirect(shop, f"{action} done: {str(summary)[:200]}")


def _redirect(shop: str, msg: str) -> Response:
    return Response(
        status=303, headers={"Location": f"/_devstore/ui/{quote(shop)}?{urlencode({'msg': msg})}"}
    )
