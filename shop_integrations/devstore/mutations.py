"""Mutation implementations. Each `fn(info, **args) -> ref` runs inside a write transaction
(`info.context["conn"]`) and returns a JSON-able reference; `fn.render(info, ref)` builds the GraphQL
payload from it (so an @idempotent replay answers the same thing without doing anything again)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from graphql import GraphQLError, parse, validate

from .resolvers import (
    bulk_object,
    customer_object,
    discount_object,
    metafield_object,
    parse_gid,
    require_scope,
    user_error,
    webhook_object,
)
from .store import cents, iso, now_iso, parse_time

MUTATIONS: dict = {}


def register(name: str, render):
    def wrap(fn):
        fn.render = render
        MUTATIONS[name] = fn
        return fn

    return wrap


def _rows(info, sql, params):
    return info.context["db"](sql, params)


# webhooks --------------------------------------------------------------------------------------------------
def _render_webhook_create(info, ref):
    sub = None
    if ref.get("id"):
        rows = _rows(info, "SELECT * FROM webhook_subscriptions WHERE id=?", [ref["id"]])
        sub = webhook_object(rows[0]) if rows else None
    return {"webhookSubscription": sub, "userErrors": ref.get("errors", [])}


@register("webhookSubscriptionCreate", _render_webhook_create)
def webhook_subscription_create(info, topic, webhookSubscription):  # noqa: N803 (GraphQL argument names)
    # Reference: https://shopify.dev/docs/api/admin-graphql/latest/mutations/webhookSubscriptionCreate
    ctx = info.context
    uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl") or ""
    parts = urlsplit(uri)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return {"errors": [user_error(["webhookSubscription", "callbackUrl"], "Address is invalid")]}
    fmt = webhookSubscription.get("format") or "JSON"
    conn = ctx["conn"]
    exists = conn.execute(
        "SELECT id FROM webhook_subscriptions WHERE shop=? AND client_id=? AND topic=? AND uri=?",
        (ctx["shop"], ctx["client_id"], topic, uri),
    ).fetchone()
    if exists:
        return {
            "errors": [
                user_error(
                    ["webhookSubscription", "callbackUrl"], "Address for this topic has already been taken"
                )
            ]
        }
    now = now_iso()
    cur = conn.execute(
        "INSERT INTO webhook_subscriptions(shop, client_id, topic, uri, format, created_at, updated_at) "
        "VALUES(?,?,?,?,?,?,?)",
        (ctx["shop"], ctx["client_id"], topic, uri, fmt, now, now),
    )
    return {"id": cur.lastrowid}


def _render_webhook_delete(info, ref):
    return {"deletedWebhookSubscriptionId": ref.get("deleted"), "userErrors": ref.get("errors", [])}


@register("webhookSubscriptionDelete", _render_webhook_delete)
def webhook_subscription_delete(info, id):  # noqa: A002
    ctx = info.context
    pk = parse_gid(id, "WebhookSubscription")
    cur = ctx["conn"].execute(
        "DELETE FROM webhook_subscriptions WHERE id=? AND shop=? AND client_id=?",
        (pk, ctx["shop"], ctx["client_id"]),
    )
    if not cur.rowcount:
        return {"errors": [user_error(["id"], "Webhook subscription does not exist")]}
    return {"deleted": id}


# discounts -------------------------------------------------------------------------------------------------
def _render_discount(info, ref):
    node = None
    if ref.get("id"):
        rows = _rows(info, "SELECT * FROM discounts WHERE id=?", [ref["id"]])
        node = discount_object(rows[0]) if rows else None
    return {"codeDiscountNode": node, "userErrors": ref.get("errors", [])}


def _derr(field, message, code):
    return user_error(["basicCodeDiscount", *field], message, code, kind="DiscountUserError")


@register("discountCodeBasicCreate", _render_discount)
def discount_code_basic_create(info, basicCodeDiscount):  # noqa: N803
    # Reference: https://shopify.dev/docs/api/admin-graphql/latest/mutations/discountCodeBasicCreate
    require_scope(info, "write_discounts")
    ctx, d = info.context, basicCodeDiscount
    conn = ctx["conn"]
    errors = []
    code = (d.get("code") or "").strip()
    title = (d.get("title") or "").strip()
    if not code:
        errors.append(_derr(["code"], "Code can't be blank", "BLANK"))
    elif len(code) > 255:
        errors.append(_derr(["code"], "Code is too long", "TOO_LONG"))
    elif conn.execute(
        "SELECT 1 FROM discounts WHERE shop=? AND code=? COLLATE NOCASE", (ctx["shop"], code)
    ).fetchone():
        errors.append(_derr(["code"], "Code must be unique. Please try a different code.", "TAKEN"))
    if not title:
        errors.append(_derr(["title"], "Title can't be blank", "BLANK"))
    starts = d.get("startsAt")
    if not starts:
        errors.append(_derr(["startsAt"], "Starts at can't be blank", "BLANK"))
    ends = d.get("endsAt")
    try:
        starts_iso = iso(parse_time(str(starts))) if starts else None
        ends_iso = iso(parse_time(str(ends))) if ends else None
    except ValueError:
        return {"errors": [_derr(["startsAt"], "Invalid date", "INVALID")]}
    if starts_iso and ends_iso and ends_iso <= starts_iso:
        errors.append(_derr(["endsAt"], "Ends at needs to be after starts_at", "END_DATE_BEFORE_START_DATE"))
    gets = d.get("customerGets") or {}
    value = gets.get("value") or {}
    value_type = amount = None
    if value.get("percentage") is not None:
        pct = float(value["percentage"])
        if not 0 < pct <= 1:
            errors.append(
                _derr(
                    ["customerGets", "value", "percentage"],
                    "Value must be between 0.0 and 1.0",
                    "VALUE_OUTSIDE_RANGE",
                )
            )
        value_type, amount = "percentage", str(pct)
    elif (value.get("discountAmount") or {}).get("amount") is not None:
        amt = str(value["discountAmount"]["amount"])
        if cents(amt) <= 0:
            errors.append(
                _derr(
                    ["customerGets", "value", "discountAmount", "amount"],
                    "Value must be greater than 0",
                    "GREATER_THAN",
                )
            )
        value_type, amount = "fixed_amount", amt
    else:
        errors.append(
            _derr(["customerGets", "value"], "Value is missing (percentage or discountAmount)", "BLANK")
        )
    items = gets.get("items") or {}
    if not items.get("all") and value_type:
        errors.append(
            _derr(["customerGets", "items"], "The dev store supports items: {all: true} only", "INVALID")
        )
    customer_ids = []
    selection = ((d.get("context") or {}).get("customers") or {}).get("add") or []
    selection = selection or ((d.get("customerSelection") or {}).get("customers") or {}).get("add") or []
    for i, customer_gid in enumerate(selection):
        pk = parse_gid(customer_gid, "Customer")
        ok = (
            pk and conn.execute("SELECT 1 FROM customers WHERE id=? AND shop=?", (pk, ctx["shop"])).fetchone()
        )
        if not ok:
            errors.append(
                _derr(
                    ["context", "customers", "add", str(i)],
                    f"Customer {customer_gid} does not exist",
                    "INVALID",
                )
            )
        else:
            customer_ids.append(pk)
    limit = d.get("usageLimit")
    if limit is not None and limit < 1:
        errors.append(_derr(["usageLimit"], "Usage limit must be greater than 0", "GREATER_THAN"))
    minimum = None
    min_req = ((d.get("minimumRequirement") or {}).get("subtotal") or {}).get("greaterThanOrEqualToSubtotal")
    if min_req is not None:
        minimum = cents(min_req)
    if errors:
        return {"errors": errors}
    now = now_iso()
    cur = conn.execute(
        "INSERT INTO discounts(shop, title, code, starts_at, ends_at, usage_limit, "
        "once_per_customer, value_type, "
        "value, min_subtotal_cents, customer_ids, created_at, updated_at) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            ctx["shop"],
            title,
            code,
            starts_iso,
            ends_iso,
            limit,
            int(bool(d.get("appliesOncePerCustomer"))),
            value_type,
            amount,
            minimum,
            json.dumps(customer_ids),
            now,
            now,
        ),
    )
    return {"id": cur.lastrowid}


# consent ---------------------------------------------------------------------------------------------------
def _render_consent(info, ref):
    customer = None
    if ref.get("id"):
        rows = _rows(info, "SELECT * FROM customers WHERE id=?", [ref["id"]])
        customer = customer_object(rows[0]) if rows else None
    return {"customer": customer, "userErrors": ref.get("errors", [])}


@register("customerEmailMarketingConsentUpdate", _render_consent)
def consent_update(info, input):  # noqa: A002
    # Reference: https://shopify.dev/docs/api/admin-graphql/latest/mutations/customerEmailMarketingConsentUpdate
    from .commerce import set_consent

    require_scope(info, "write_customers")
    ctx = info.context
    pk = parse_gid(input.get("customerId"), "Customer")
    row = ctx["conn"].execute("SELECT * FROM customers WHERE id=? AND shop=?", (pk, ctx["shop"])).fetchone()
    if row is None:
        return {
            "errors": [
                user_error(
                    ["input", "customerId"],
                    "Customer not found",
                    "INVALID",
                    kind="CustomerEmailMarketingConsentUpdateUserError",
                )
            ]
        }
    if not row["email"]:
        return {
            "errors": [
                user_error(
                    ["input", "emailMarketingConsent"],
                    "Customer has no email address",
                    "INVALID",
                    kind="CustomerEmailMarketingConsentUpdateUserError",
                )
            ]
        }
    state = input["emailMarketingConsent"]["marketingState"]
    set_consent(ctx["ds"], ctx["shop"], pk, state=state, conn=ctx["conn"])
    return {"id": pk}


# metafields ------------------------------------------------------------------------------------------------
def _render_metafields(info, ref):
    items = None
    if ref.get("ids"):
        marks = ",".join("?" * len(ref["ids"]))
        rows = {
            r["id"]: r
            for r in _rows(info, f"SELECT * FROM metafields WHERE id IN ({marks})", ref["ids"])  # noqa: S608 (table names are ours)
        }  # noqa: S608
        items = [metafield_object(rows[i]) for i in ref["ids"] if i in rows]
    return {"metafields": items if not ref.get("errors") else None, "userErrors": ref.get("errors", [])}


OWNER_TABLES = {"Customer": "customers", "Order": "orders", "Product": "products", "Shop": "shops"}


@register("metafieldsSet", _render_metafields)
def metafields_set(info, metafields):
    # Reference: https://shopify.dev/docs/api/admin-graphql/latest/mutations/metafieldsSet
    ctx = info.context
    conn = ctx["conn"]
    if len(metafields) > 25:
        return {
            "errors": [
                user_error(
                    ["metafields"],
                    "Exceeded the maximum metafields input limit of 25.",
                    "LESS_THAN_OR_EQUAL_TO",
                    kind="MetafieldsSetUserError",
                )
            ]
        }
    errors = []
    for i, m in enumerate(metafields):
        owner = m["ownerId"]
        kind = owner.split("/")[-2] if owner.startswith("gid://shopify/") else None
        table = OWNER_TABLES.get(kind or "")
        pk = parse_gid(owner, kind or "x")
        if table is None or pk is None:
            errors.append(
                user_error(
                    ["metafields", str(i), "ownerId"],
                    "Owner type is not supported",
                    "INVALID_TYPE",
                    kind="MetafieldsSetUserError",
                )
            )
            continue
        where = "domain=?" if table == "shops" else "shop=?"
        if not conn.execute(f"SELECT 1 FROM {table} WHERE id=? AND {where}", (pk, ctx["shop"])).fetchone():  # noqa: S608
            errors.append(
                user_error(
                    ["metafields", str(i), "ownerId"],
                    "Owner does not exist",
                    "INVALID",
                    kind="MetafieldsSetUserError",
                )
            )
        if not m.get("type"):
            existing = conn.execute(
                "SELECT 1 FROM metafields WHERE shop=? AND owner_id=? AND namespace=? AND key=?",
                (ctx["shop"], owner, m.get("namespace") or "$app", m["key"]),
            ).fetchone()
            if not existing:
                errors.append(
                    user_error(
                        ["metafields", str(i), "type"],
                        "Type can't be blank",
                        "BLANK",
                        kind="MetafieldsSetUserError",
                    )
                )
    if errors:
        return {"errors": errors}
    ids = []
    now = now_iso()
    for m in metafields:
        namespace = m.get("namespace") or "$app"
        conn.execute(
            "INSERT INTO metafields(shop, owner_id, namespace, key, type, value, created_at, updated_at) "
            "VALUES(?,?,?,?,?,?,?,?) ON CONFLICT(shop, owner_id, namespace, key) DO UPDATE SET "
            "value=excluded.value, type=coalesce(nullif(excluded.type, ''), metafields.type), "
            "updated_at=excluded.updated_at",
            (ctx["shop"], m["ownerId"], namespace, m["key"], m.get("type") or "", m["value"], now, now),
        )
        ids.append(
            conn.execute(
                "SELECT id FROM metafields WHERE shop=? AND owner_id=? AND namespace=? AND key=?",
                (ctx["shop"], m["ownerId"], namespace, m["key"]),
            ).fetchone()[0]
        )
    return {"ids": ids}


# bulk operations -------------------------------------------------------------------------------------------
def _render_bulk(info, ref):
    op = None
    if ref.get("id"):
        rows = _rows(info, "SELECT * FROM bulk_operations WHERE id=?", [ref["id"]])
        op = bulk_object(info.context["ds"], rows[0]) if rows else None
    return {"bulkOperation": op, "userErrors": ref.get("errors", [])}


def _berr(message, code="INVALID"):
    return user_error(["query"], message, code, kind="BulkOperationUserError")


@register("bulkOperationRunQuery", _render_bulk)
def bulk_operation_run_query(info, query, groupObjects=False):  # noqa: N803
    # Reference: https://shopify.dev/docs/api/usage/bulk-operations/queries
    from .bulk import check_bulk_query, start_bulk

    ctx = info.context
    try:
        document = parse(query)
    except GraphQLError as exc:
        return {"errors": [_berr(f"Invalid bulk query: {exc.message}")]}
    problems = validate(info.schema, document)
    if problems:
        return {"errors": [_berr(f"Invalid bulk query: {problems[0].message}")]}
    problem = check_bulk_query(document, info.schema)
    if problem:
        return {"errors": [_berr(problem)]}
    conn = ctx["conn"]
    running = conn.execute(
        "SELECT count(*) FROM bulk_operations WHERE shop=? AND client_id=? AND status IN "
        "('CREATED', 'RUNNING')",
        (ctx["shop"], ctx["client_id"]),
    ).fetchone()[0]
    if running >= 5:
        return {
            "errors": [
                _berr(
                    "A bulk query operation for this app and shop is already in progress: at most 5.",
                    "OPERATION_IN_PROGRESS",
                )
            ]
        }
    cur = conn.execute(
        "INSERT INTO bulk_operations(shop, client_id, query, status, created_at) VALUES(?,?,?,?,?)",
        (ctx["shop"], ctx["client_id"], query, "CREATED", now_iso()),
    )
    op_id = cur.lastrowid
    ctx.setdefault("after_commit", []).append(lambda: start_bulk(ctx["ds"], op_id, ctx["scope"]))
    return {"id": op_id}


def _render_bulk_cancel(info, ref):
    return _render_bulk(info, ref)


@register("bulkOperationCancel", _render_bulk_cancel)
def bulk_operation_cancel(info, id):  # noqa: A002
    ctx = info.context
    pk = parse_gid(id, "BulkOperation")
    row = (
        ctx["conn"]
        .execute("SELECT * FROM bulk_operations WHERE id=? AND shop=?", (pk, ctx["shop"]))
        .fetchone()
    )
    if row is None:
        return {
            "errors": [user_error(["id"], "Bulk operation does not exist", kind="BulkOperationUserError")]
        }
    if row["status"] not in ("CREATED", "RUNNING"):
        return {
            "id": pk,
            "errors": [
                user_error(
                    ["id"],
                    f"A bulk operation cannot be canceled when it is {row['status'].lower()}",
                    kind="BulkOperationUserError",
                )
            ],
        }
    ctx["conn"].execute("UPDATE bulk_operations SET status='CANCELING' WHERE id=?", (pk,))
    return {"id": pk}
