"""Resolvers attached to the real Admin schema.

Objects are plain dicts keyed by GraphQL field name; graphql-core's default resolver reads a key, and calls
it when it is a function (`lambda info, **args`), which is how costly fields stay lazy. `__typename` in a
dict resolves interfaces and unions. Query and Mutation fields without a resolver here answer a GraphQL
error ("not supported by the dev store"), never a silent null.

Database access goes through `info.context["db"]` (the shared connection under the store lock for
requests, a private reader connection for bulk exports).
"""

from __future__ import annotations

import base64
import json
import re

from graphql import GraphQLError

from .commerce import FX
from .store import money, now_iso, parse_time, presentment

PAGE_MAX = 250


def gid(kind: str, value) -> str:
    return f"gid://shopify/{kind}/{value}"


def parse_gid(value: str, kind: str) -> int | None:
    m = re.fullmatch(rf"gid://shopify/{kind}/(\d+)", str(value or ""))
    return int(m.group(1)) if m else None


def user_error(field, message, code=None, kind="UserError") -> dict:
    err = {"__typename": kind, "field": field, "message": message}
    if code is not None:
        err["code"] = code
    return err


def require_scope(info, *scopes: str) -> None:
    """Shopify answers ACCESS_DENIED when the token lacks the scope (write_x implies read_x)."""
    granted = set(filter(None, info.context["scope"].split(",")))
    expanded = granted | {s.replace("write_", "read_") for s in granted}
    if not any(s in expanded for s in scopes):
        raise GraphQLError(
            f"Access denied for {info.field_name} field. Required access: `{scopes[0]}` access scope.",
            extensions={"code": "ACCESS_DENIED", "requiredAccess": f"`{scopes[0]}` access scope."},
        )


def money_v2(value_cents: int, currency: str) -> dict:
    return {"__typename": "MoneyV2", "amount": money(value_cents), "currencyCode": currency}


def money_bag(
    value_cents: int, currency: str, presentment_cents: int | None = None, presentment_currency=None
) -> dict:
    """shopMoney in the shop's currency, presentmentMoney in the customer's (the same when not given)."""
    shop_money = money_v2(value_cents, currency)
    if presentment_cents is None:
        return {"__typename": "MoneyBag", "shopMoney": shop_money, "presentmentMoney": shop_money}
    shown = money_v2(presentment_cents, presentment_currency or currency)
    return {"__typename": "MoneyBag", "shopMoney": shop_money, "presentmentMoney": shown}


# search syntax ------------------------------------------------------------------------------------------
QUERY_TERM = re.compile(r"""(?P<field>[a-z_]+):(?P<op><=|>=|<|>|=)?(?P<value>'[^']*'|"[^"]*"|\S+)""")
SQL_OPS = {"<": "<", ">": ">", "<=": "<=", ">=": ">=", "=": "=", None: "="}
SEARCHABLE = {
    "customers": {"updated_at": "time", "created_at": "time", "email": "text", "id": "int", "state": "skip"},
    "orders": {
        "updated_at": "time",
        "created_at": "time",
        "email": "text",
        "id": "int",
        "name": "name",
        "customer_id": "int",
        "financial_status": "text",
        "fulfillment_status": "text",
        "status": "status",
        "test": "bool",
        "processed_at": "time:created_at",
    },
    "products": {"updated_at": "time", "created_at": "time", "handle": "text", "title": "text", "id": "int"},
}


def search_sql(table: str, query: str | None) -> tuple[str, list]:
    """Translate Shopify search syntax (`updated_at:>'2026-01-01T00:00:00Z' email:a@b.c`) into SQL.
    Terms are ANDed; unknown fields are ignored (Shopify answers them with a search warning)."""
    if not query:
        return "", []
    clauses, params = [], []
    for m in QUERY_TERM.finditer(query):
        field, op, value = m.group("field"), m.group("op"), m.group("value").strip("'\"")
        kind = SEARCHABLE.get(table, {}).get(field)
        if kind is None or kind == "skip":
            continue
        column = field
        if kind.startswith("time"):
            column = kind.split(":")[1] if ":" in kind else field
            try:
                value = parse_time(value).strftime("%Y-%m-%dT%H:%M:%SZ")
            except ValueError as exc:
                raise GraphQLError(f"Invalid date in search query: {value}") from exc
        elif kind == "int":
            value = (
                int(parse_gid(value, "\\w+") or value)
                if str(value).strip("-").isdigit() or "gid" in value
                else 0
            )
        elif kind == "name":
            column, value = "number", int(value.lstrip("#") or 0)
        elif kind == "bool":
            value = 1 if value == "true" else 0
        elif kind == "status":
            if value == "cancelled":
                clauses.append("cancelled_at IS NOT NULL")
            elif value == "open":
                clauses.append("cancelled_at IS NULL")
            continue  # any / closed: no filter
        if field == "email":
            value = value.lower()
        clauses.append(f"{column} {SQL_OPS[op]} ?")
        params.append(value)
    return "".join(f" AND {c}" for c in clauses), params


# connections --------------------------------------------------------------------------------------------
def encode_cursor(sort_value, row_id) -> str:
    return base64.urlsafe_b64encode(json.dumps([sort_value, row_id]).encode()).decode()


def decode_cursor(cursor: str):
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return value, int(row_id)
    except (ValueError, TypeError) as exc:
        raise GraphQLError(f"Invalid cursor for current pagination sort: {cursor}") from exc


SORT_COLUMNS = {
    "ID": "id",
    "UPDATED_AT": "updated_at",
    "CREATED_AT": "created_at",
    "PROCESSED_AT": "created_at",
    "ORDER_NUMBER": "number",
    "TITLE": "title",
    "RELEVANCE": "id",
}


def _paging(args: dict) -> dict:
    """The Relay paging arguments of a connection field, as `connection` takes them."""
    return {key: args.get(key) for key in ("first", "last", "after", "before", "reverse")}


def connection(
    info,
    *,
    table: str,
    where: str,
    params: list,
    build,
    first=None,
    last=None,
    after=None,
    before=None,
    reverse=False,
    sort_key=None,
    query=None,
    bulk_root=False,
) -> dict:
    """A Relay connection over `table` with keyset pagination on (sort column, id)."""
    ctx = info.context
    bulk = ctx.get("bulk")
    if bulk is not None and bulk_root:
        first, after = bulk["page_size"], bulk["after"]
    elif bulk is not None:
        first = first or 1_000_000  # nested connections in a bulk query are unpaginated
    if first is None and last is None:
        raise GraphQLError("you must provide one of first or last")
    if (first is not None and first > PAGE_MAX and bulk is None) or (last is not None and last > PAGE_MAX):
        raise GraphQLError(f"The page size ({first or last}) is too big: max is {PAGE_MAX}.")
    column = SORT_COLUMNS.get(sort_key or "ID", "id")
    extra, extra_params = search_sql(table, query)
    descending = bool(reverse) != (last is not None)
    size = first if first is not None else last
    sql = f"SELECT * FROM {table} WHERE {where}{extra}"  # noqa: S608 (identifiers are ours)
    args = [*params, *extra_params]
    cursor = after if first is not None else before
    if cursor:
        value, row_id = decode_cursor(cursor)
        cmp = "<" if descending else ">"
        if column == "id":
            sql += f" AND id {cmp} ?"
            args.append(row_id)
        else:  # a row value comparison: SQLite can use the (shop, column, id) index for it
            sql += f" AND ({column}, id) {cmp} (?, ?)"
            args += [value, row_id]
    direction = "DESC" if descending else "ASC"
    sql += f" ORDER BY {column} {direction}, id {direction} LIMIT ?"
    args.append(size + 1)
    rows = ctx["db"](sql, args)
    has_more = len(rows) > size
    rows = rows[:size]
    if last is not None:
        rows.reverse()
    edges = [
        {"__typename": "Edge", "cursor": encode_cursor(r[column], r["id"]), "node": build(r)} for r in rows
    ]
    page_info = {
        "__typename": "PageInfo",
        "hasNextPage": has_more if first is not None else bool(before),
        "hasPreviousPage": has_more if last is not None else bool(after),
        "startCursor": edges[0]["cursor"] if edges else None,
        "endCursor": edges[-1]["cursor"] if edges else None,
    }
    if bulk is not None and bulk_root:
        bulk["next"] = page_info["endCursor"] if has_more else None
    return {"edges": edges, "nodes": [e["node"] for e in edges], "pageInfo": page_info}


def list_connection(items: list) -> dict:
    edges = [{"cursor": encode_cursor(i, i), "node": n} for i, n in enumerate(items)]
    return {
        "edges": edges,
        "nodes": items,
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": edges[0]["cursor"] if edges else None,
            "endCursor": edges[-1]["cursor"] if edges else None,
        },
    }


# objects -------------------------------------------------------------------------------------------------
def shop_object(row, storefront: str) -> dict:
    """`storefront` (DevStore.storefront_url): shop.url and primaryDomain.url, where links the app builds
    ({url}/discount/CODE, {url}/products/HANDLE) really work; primaryDomain.host stays the domain."""
    return {
        "__typename": "Shop",
        "id": gid("Shop", row["id"]),
        "name": row["name"],
        "myshopifyDomain": row["domain"],
        "email": row["email"],
        "contactEmail": row["email"],
        # The dev store has no staff accounts: the owner is named after the shop.
        "shopOwnerName": f"{row['name']} Owner",
        "currencyCode": row["currency"],
        "enabledPresentmentCurrencies": sorted(FX),
        "ianaTimezone": row["timezone"],
        "timezoneAbbreviation": row["timezone"],
        "url": storefront,
        "primaryDomain": {
            "__typename": "Domain",
            "id": gid("Domain", row["id"]),
            "host": row["domain"],
            "url": storefront,
            "sslEnabled": storefront.startswith("https:"),
        },
        "plan": {
            "__typename": "ShopPlan",
            "displayName": row["plan"].title(),
            "partnerDevelopment": True,
            "shopifyPlus": False,
            "publicDisplayName": row["plan"].title(),
        },
        "createdAt": row["created_at"],
        "updatedAt": row["created_at"],
    }


def customer_object(row) -> dict:
    cid = row["id"]

    def orders_stats(info):
        return info.context["db"](
            "SELECT count(*) AS n, coalesce(sum(total_cents - refunded_cents), 0) AS spent "
            "FROM orders WHERE customer_id=? AND cancelled_at IS NULL",
            [cid],
        )[0]

    def amount_spent(info):
        # Shop money: every order's amounts are in the shop's currency.
        return money_v2(orders_stats(info)["spent"], info.context["shop_row"]["currency"])

    def last_order(info):
        rows = info.context["db"](
            "SELECT * FROM orders WHERE customer_id=? ORDER BY created_at DESC LIMIT 1", [cid]
        )
        return order_object(rows[0]) if rows else None

    def orders(info, **args):
        return connection(
            info,
            table="orders",
            where="customer_id=?",
            params=[cid],
            build=order_object,
            **_paging(args),
            sort_key=args.get("sortKey"),
            query=args.get("query"),
        )

    state = row["marketing_state"]
    email = row["email"]
    display = " ".join(p for p in (row["first_name"], row["last_name"]) if p) or email or ""
    return {
        "__typename": "Customer",
        "id": gid("Customer", cid),
        "legacyResourceId": str(cid),
        "email": email,
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "displayName": display,
        "phone": row["phone"],
        "defaultPhoneNumber": None
        if not row["phone"]
        else {"phoneNumber": row["phone"], "marketingState": "NOT_SUBSCRIBED", "marketingUpdatedAt": None},
        "locale": row["locale"],
        "tags": [t.strip() for t in (row["tags"] or "").split(",") if t.strip()],
        "state": "ENABLED",
        "verifiedEmail": True,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "numberOfOrders": lambda info: str(orders_stats(info)["n"]),
        "amountSpent": amount_spent,
        "lastOrder": last_order,
        "orders": orders,
        "defaultEmailAddress": None
        if not email
        else {
            "__typename": "CustomerEmailAddress",
            "emailAddress": email,
            "marketingState": state,
            "marketingOptInLevel": "SINGLE_OPT_IN" if state == "SUBSCRIBED" else None,
            "marketingUpdatedAt": row["marketing_updated_at"],
            "validFormat": True,
            "marketingUnsubscribeUrl": f"https://example.devstore.test/unsubscribe/{cid}",
            "openTrackingLevel": "UNKNOWN",
            "openTrackingUrl": f"https://example.devstore.test/open/{cid}",
        },
        "emailMarketingConsent": None
        if not email
        else {
            "__typename": "CustomerEmailMarketingConsentState",
            "marketingState": state,
            "marketingOptInLevel": "SINGLE_OPT_IN" if state == "SUBSCRIBED" else None,
            "consentUpdatedAt": row["marketing_updated_at"],
        },
        "metafield": lambda info, key, namespace=None: metafield_lookup(
            info, gid("Customer", cid), namespace, key
        ),
    }


def order_object(row) -> dict:
    """currencyCode and every shopMoney: the shop's currency; presentmentCurrencyCode and presentmentMoney:
    the customer's."""
    oid, currency = row["id"], row["currency"]
    shown = presentment(row)
    p_currency = shown["currency"]

    def customer(info):
        if not row["customer_id"]:
            return None
        rows = info.context["db"]("SELECT * FROM customers WHERE id=?", [row["customer_id"]])
        return customer_object(rows[0]) if rows else None

    def line_items(info, **args):
        return connection(
            info,
            table="line_items",
            where="order_id=?",
            params=[oid],
            build=lambda r: line_item_object(r, currency, p_currency),
            **_paging(args),
        )

    def fulfillments(info, first=None, query=None):
        rows = info.context["db"]("SELECT * FROM fulfillments WHERE order_id=? ORDER BY id", [oid])
        return [fulfillment_object(r) for r in rows[: first or len(rows)]]

    if row["cancelled_at"]:
        display_fulfillment = "UNFULFILLED" if not row["fulfillment_status"] else "FULFILLED"
    else:
        display_fulfillment = "FULFILLED" if row["fulfillment_status"] == "fulfilled" else "UNFULFILLED"
    codes = [row["discount_code"]] if row["discount_code"] else []
    net = row["total_cents"] - row["refunded_cents"]
    return {
        "__typename": "Order",
        "id": gid("Order", oid),
        "legacyResourceId": str(oid),
        "name": f"#{row['number']}",
        "number": row["number"] - 1000,
        "email": row["email"],
        "phone": None,
        "note": None,
        "tags": [],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "processedAt": row["created_at"],
        "cancelledAt": row["cancelled_at"],
        "cancelReason": row["cancel_reason"].upper() if row["cancel_reason"] else None,
        "closed": False,
        "confirmed": True,
        "test": bool(row["test"]),
        "currencyCode": currency,
        "presentmentCurrencyCode": p_currency,
        "totalPriceSet": money_bag(row["total_cents"], currency, shown["total"], p_currency),
        "currentTotalPriceSet": money_bag(net, currency, shown["total"] - shown["refunded"], p_currency),
        "subtotalPriceSet": money_bag(
            row["subtotal_cents"] - row["discount_cents"],
            currency,
            shown["subtotal"] - shown["discount"],
            p_currency,
        ),
        "totalDiscountsSet": money_bag(row["discount_cents"], currency, shown["discount"], p_currency),
        "totalRefundedSet": money_bag(row["refunded_cents"], currency, shown["refunded"], p_currency),
        "displayFinancialStatus": row["financial_status"].upper(),
        "displayFulfillmentStatus": display_fulfillment,
        "fullyPaid": row["financial_status"] in ("paid", "refunded", "partially_refunded"),
        "returnStatus": "NO_RETURN",
        "discountCode": codes[0] if codes else None,
        "discountCodes": codes,
        "customerAcceptsMarketing": bool(row["buyer_accepts_marketing"]),
        "customerLocale": row["customer_locale"],
        "sourceName": row["source"],
        "customer": customer,
        "lineItems": line_items,
        "fulfillments": fulfillments,
        "metafield": lambda info, key, namespace=None: metafield_lookup(
            info, gid("Order", oid), namespace, key
        ),
    }


def line_item_object(row, currency: str, presentment_currency: str | None = None) -> dict:
    shown = row["presentment_price_cents"]
    if shown is None:
        shown, presentment_currency = row["price_cents"], currency
    unit = money_bag(row["price_cents"], currency, shown, presentment_currency)
    total = money_bag(
        row["price_cents"] * row["quantity"], currency, shown * row["quantity"], presentment_currency
    )
    return {
        "__typename": "LineItem",
        "id": gid("LineItem", row["id"]),
        "title": row["title"],
        "name": row["title"],
        "sku": row["sku"],
        "quantity": row["quantity"],
        "currentQuantity": row["quantity"],
        "variantTitle": None,
        "originalUnitPriceSet": unit,
        "originalTotalSet": total,
        "discountedTotalSet": lambda info, withCodeDiscounts=None: total,  # noqa: N803 (GraphQL arg name)
        "product": lambda info: product_by_id(info, row["product_id"]),
        "variant": lambda info: variant_by_id(info, row["product_id"]),
    }


def product_by_id(info, product_id):
    rows = info.context["db"]("SELECT * FROM products WHERE id=?", [product_id]) if product_id else []
    return product_object(rows[0], info.context["shop_row"]["currency"]) if rows else None


def variant_by_id(info, product_id):
    product = product_by_id(info, product_id)
    return product["_variant"] if product else None


def product_object(row, currency: str | None = None) -> dict:
    """A product priced in the shop's currency (`currency`, or the shop's from the context when None);
    onlineStoreUrl is its page in the dev store's storefront."""
    price = money(row["price_cents"])

    def price_range(info):
        code = currency or info.context["shop_row"]["currency"]
        return {
            "minVariantPrice": money_v2(row["price_cents"], code),
            "maxVariantPrice": money_v2(row["price_cents"], code),
        }

    def online_store_url(info):
        ds = info.context["ds"]
        return f"{ds.storefront_url(info.context['shop'])}/products/{row['handle']}"

    product = {
        "__typename": "Product",
        "id": gid("Product", row["id"]),
        "legacyResourceId": str(row["id"]),
        "title": row["title"],
        "handle": row["handle"],
        "vendor": row["vendor"],
        "productType": row["product_type"],
        "status": "ACTIVE",
        "tags": [],
        "description": lambda info, truncateAt=None: f"{row['title']} from the dev store.",  # noqa: N803
        "totalInventory": 100,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "onlineStoreUrl": online_store_url,
        "priceRangeV2": price_range,
    }
    variant = {
        "__typename": "ProductVariant",
        "id": gid("ProductVariant", row["id"]),
        "title": "Default Title",
        "displayName": f"{row['title']} - Default Title",
        "sku": row["sku"],
        "price": price,
        "product": product,
    }
    product["_variant"] = variant
    product["variants"] = lambda info, **args: list_connection([variant])
    return product


def fulfillment_object(row) -> dict:
    fid = row["id"]
    shipment = row["shipment_status"]
    display = shipment.upper() if shipment else ("FULFILLED" if row["status"] == "success" else None)
    if display == "PICKED_UP":
        display = "PICKED_UP"

    def events(info, **args):
        return connection(
            info,
            table="fulfillment_events",
            where="fulfillment_id=?",
            params=[fid],
            build=fulfillment_event_object,
            **_paging(args),
            sort_key="HAPPENED_AT" if args.get("sortKey") == "HAPPENED_AT" else None,
        )

    def order(info):
        rows = info.context["db"]("SELECT * FROM orders WHERE id=?", [row["order_id"]])
        return order_object(rows[0])

    info_rows = []
    if row["tracking_number"] or row["tracking_company"]:
        info_rows.append(
            {
                "__typename": "FulfillmentTrackingInfo",
                "company": row["tracking_company"],
                "number": row["tracking_number"],
                "url": row["tracking_url"],
            }
        )
    return {
        "__typename": "Fulfillment",
        "id": gid("Fulfillment", fid),
        "legacyResourceId": str(fid),
        "name": f"#{fid}",
        "status": {"success": "SUCCESS", "cancelled": "CANCELLED", "pending": "PENDING"}.get(
            row["status"], "OPEN"
        ),
        "displayStatus": display,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "estimatedDeliveryAt": row["estimated_delivery_at"],
        "deliveredAt": row["delivered_at"],
        "inTransitAt": row["in_transit_at"],
        "trackingInfo": lambda info, first=None: info_rows[: first or len(info_rows)],
        "events": events,
        "order": order,
    }


SORT_COLUMNS["HAPPENED_AT"] = "happened_at"


def fulfillment_event_object(row) -> dict:
    status = row["status"].upper()
    if status == "PICKED_UP":
        status = "CARRIER_PICKED_UP"  # FulfillmentEventStatus has no PICKED_UP
    return {
        "__typename": "FulfillmentEvent",
        "id": gid("FulfillmentEvent", row["id"]),
        "status": status,
        "happenedAt": row["happened_at"],
        "createdAt": row["created_at"],
        "estimatedDeliveryAt": row["estimated_delivery_at"],
        "message": row["message"],
        "city": row["city"],
        "province": row["province"],
        "country": row["country"],
        "zip": None,
        "address1": None,
        "latitude": None,
        "longitude": None,
    }


def metafield_object(row) -> dict:
    owner_type = row["owner_id"].split("/")[-2].upper() if row["owner_id"].count("/") >= 4 else "SHOP"

    def json_value(info):
        try:
            return json.loads(row["value"])
        except ValueError:
            return row["value"]

    return {
        "__typename": "Metafield",
        "id": gid("Metafield", row["id"]),
        "legacyResourceId": str(row["id"]),
        "namespace": row["namespace"],
        "key": row["key"],
        "type": row["type"],
        "value": row["value"],
        "jsonValue": json_value,
        "ownerType": owner_type,
        "compareDigest": base64.b64encode(row["updated_at"].encode()).decode(),
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "description": None,
    }


def metafield_lookup(info, owner_id: str, namespace, key):
    rows = info.context["db"](
        "SELECT * FROM metafields WHERE shop=? AND owner_id=? AND namespace=? AND key=?",
        [info.context["shop"], owner_id, namespace or "$app", key],
    )
    return metafield_object(rows[0]) if rows else None


def webhook_object(row) -> dict:
    return {
        "__typename": "WebhookSubscription",
        "id": gid("WebhookSubscription", row["id"]),
        "legacyResourceId": str(row["id"]),
        "topic": row["topic"],
        "uri": row["uri"],
        "callbackUrl": row["uri"],
        "endpoint": {"__typename": "WebhookHttpEndpoint", "callbackUrl": row["uri"]},
        "format": row["format"],
        "filter": None,
        "includeFields": [],
        "metafieldNamespaces": [],
        "metafields": [],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "apiVersion": {
            "__typename": "ApiVersion",
            "handle": "2026-01",
            "displayName": "2026-01",
            "supported": True,
        },
    }


def discount_object(row, info_db=None) -> dict:
    did = row["id"]
    customer_ids = json.loads(row["customer_ids"])

    def usage(info):
        return info.context["db"]("SELECT count(*) AS n FROM discount_usages WHERE discount_id=?", [did])[0][
            "n"
        ]

    def context(info):
        if not customer_ids:
            return {"__typename": "DiscountBuyerSelectionAll", "all": "ALL"}
        marks = ",".join("?" * len(customer_ids))
        rows = info.context["db"](f"SELECT * FROM customers WHERE id IN ({marks})", customer_ids)  # noqa: S608
        return {"__typename": "DiscountCustomers", "customers": [customer_object(r) for r in rows]}

    now = now_iso()
    status = (
        "SCHEDULED"
        if row["starts_at"] > now
        else ("EXPIRED" if row["ends_at"] and row["ends_at"] <= now else "ACTIVE")
    )
    currency_value = (
        {"__typename": "DiscountPercentage", "percentage": float(row["value"])}
        if row["value_type"] == "percentage"
        else {
            "__typename": "DiscountAmount",
            # A fixed amount is in the shop's currency.
            "amount": lambda info: {
                "amount": row["value"],
                "currencyCode": info.context["shop_row"]["currency"],
            },
            "appliesOnEachItem": False,
        }
    )
    code = {
        "__typename": "DiscountRedeemCode",
        "id": gid("DiscountRedeemCode", did),
        "code": row["code"],
        "asyncUsageCount": usage,
    }
    basic = {
        "__typename": "DiscountCodeBasic",
        "title": row["title"],
        "status": status,
        "summary": f"{row['title']} ({row['code']})",
        "shortSummary": row["code"],
        "startsAt": row["starts_at"],
        "endsAt": row["ends_at"],
        "usageLimit": row["usage_limit"],
        "appliesOncePerCustomer": bool(row["once_per_customer"]),
        "asyncUsageCount": usage,
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
        "discountClass": "ORDER",
        "discountClasses": ["ORDER"],
        "hasTimelineComment": False,
        "recurringCycleLimit": None,
        "shareableUrls": [],
        "combinesWith": {"orderDiscounts": False, "productDiscounts": False, "shippingDiscounts": False},
        "codes": lambda info, **args: list_connection([code]),
        "codesCount": {"count": 1, "precision": "EXACT"},
        "context": context,
        "customerGets": {
            "value": currency_value,
            "items": {"__typename": "AllDiscountItems", "allItems": True},
            "appliesOnOneTimePurchase": True,
            "appliesOnSubscription": False,
        },
        "minimumRequirement": None
        if row["min_subtotal_cents"] is None
        else {
            "__typename": "DiscountMinimumSubtotal",
            "greaterThanOrEqualToSubtotal": lambda info: money_v2(
                row["min_subtotal_cents"], info.context["shop_row"]["currency"]
            ),
        },
    }
    return {"__typename": "DiscountCodeNode", "id": gid("DiscountCodeNode", did), "codeDiscount": basic}


def bulk_object(ds, row) -> dict:
    url = None
    if row["status"] == "COMPLETED" and row["object_count"]:
        url = f"{ds.base_url}/_devstore/bulk/{row['id']}/{row['file_name']}"
    return {
        "__typename": "BulkOperation",
        "id": gid("BulkOperation", row["id"]),
        "status": row["status"],
        "errorCode": row["error_code"],
        "createdAt": row["created_at"],
        "completedAt": row["completed_at"],
        "objectCount": str(row["object_count"]),
        "rootObjectCount": str(row["root_object_count"]),
        "fileSize": str(row["file_size"]) if row["file_size"] is not None else None,
        "url": url,
        "partialDataUrl": None,
        "query": row["query"],
        "type": "QUERY",
    }


# mutations with @idempotent ------------------------------------------------------------------------------
def idempotency_key(info) -> str | None:
    """The key of an `@idempotent(key: ...)` directive on the mutation field, if any."""
    from graphql.execution.values import get_directive_values

    directive = info.schema.get_directive("idempotent")
    if directive is None:
        return None
    for node in info.field_nodes:
        values = get_directive_values(directive, node, info.variable_values)
        if values is not None:
            key = values.get("key")
            if not key or not str(key).strip():
                raise GraphQLError("The idempotency key cannot be an empty string or whitespace only.")
            return str(key)
    return None


def mutation(fn):
    """Wrap a mutation implementation `fn(info, **args) -> ref` (JSON-able) with @idempotent support: the
    same key answers the stored ref again, nothing is done twice.
    `fn.render(info, ref)` builds the payload."""

    def resolve(_root, info, **args):
        ctx = info.context
        key = idempotency_key(info)
        store = ctx["ds"].store
        if key is not None:
            row = store.one(
                "SELECT result FROM idempotency WHERE shop=? AND client_id=? AND key=? AND field=?",
                (ctx["shop"], ctx["client_id"], key, info.field_name),
            )
            if row is not None:
                return fn.render(info, json.loads(row["result"]))
        with store.tx() as conn:
            ctx["conn"] = conn
            try:
                ref = fn(info, **args)
                if key is not None:
                    conn.execute(
                        "INSERT INTO idempotency(shop, client_id, key, field, result) VALUES(?,?,?,?,?)",
                        (ctx["shop"], ctx["client_id"], key, info.field_name, json.dumps(ref)),
                    )
            finally:
                ctx.pop("conn", None)
        after = ctx.pop("after_commit", [])
        for callback in after:
            callback()
        return fn.render(info, ref)

    return resolve


# install ---------------------------------------------------------------------------------------------------
def install(schema, ds) -> None:
    from . import mutations

    query = schema.query_type.fields
    mutation_fields = schema.mutation_type.fields

    def unsupported(kind):
        def resolve(_root, info, **_args):
            raise GraphQLError(
                f"{kind} field '{info.field_name}' is not supported by the dev store",
                extensions={"code": "NOT_SUPPORTED"},
            )

        return resolve

    for field in query.values():
        field.resolve = unsupported("Query")
    for field in mutation_fields.values():
        field.resolve = unsupported("Mutation")

    def resolve_shop(_root, info):
        return shop_object(info.context["shop_row"], ds.storefront_url(info.context["shop"]))

    def resolve_shop_locales(_root, info, published=None):
        codes = [c for c in info.context["shop_row"]["locales"].split(",") if c]
        return [
            {"locale": code, "name": code, "primary": i == 0, "published": True, "marketWebPresences": []}
            for i, code in enumerate(codes)
        ]

    def root_connection(table, scope, build):
        """A top-level connection (customers, orders, products) over this shop's rows; `build(row, info)`."""

        def resolve(_root, info, **a):
            require_scope(info, scope)
            return connection(
                info,
                table=table,
                where="shop=?",
                params=[info.context["shop"]],
                build=lambda row: build(row, info),
                **_paging(a),
                sort_key=a.get("sortKey"),
                query=a.get("query"),
                bulk_root=True,
            )

        return resolve

    resolve_customers = root_connection("customers", "read_customers", lambda r, _info: customer_object(r))
    resolve_orders = root_connection("orders", "read_orders", lambda r, _info: order_object(r))
    resolve_products = root_connection(
        "products",
        "read_products",
        lambda r, info: product_object(r, info.context["shop_row"]["currency"]),
    )

    def by_id(kind, table, build, scope):
        def resolve(_root, info, id):  # noqa: A002 (GraphQL argument name)
            require_scope(info, scope)
            pk = parse_gid(id, kind)
            if pk is None:
                raise GraphQLError(
                    f"Invalid global id '{id}'", extensions={"code": "argumentLiteralsIncompatible"}
                )
            rows = info.context["db"](
                f"SELECT * FROM {table} WHERE id=? AND shop=?",  # noqa: S608 (table names are ours)
                [pk, info.context["shop"]],
            )
            return build(rows[0]) if rows else None

        return resolve

    def resolve_bulk(_root, info, id):  # noqa: A002
        pk = parse_gid(id, "BulkOperation")
        rows = info.context["db"](
            "SELECT * FROM bulk_operations WHERE id=? AND shop=?", [pk, info.context["shop"]]
        )
        return bulk_object(ds, rows[0]) if rows else None

    def resolve_current_bulk(_root, info, type=None):  # noqa: A002
        rows = info.context["db"](
            "SELECT * FROM bulk_operations WHERE shop=? AND client_id=? ORDER BY id DESC LIMIT 1",
            [info.context["shop"], info.context["client_id"]],
        )
        return bulk_object(ds, rows[0]) if rows else None

    def resolve_webhooks(_root, info, **a):
        where, params = "shop=? AND client_id=?", [info.context["shop"], info.context["client_id"]]
        if a.get("topics"):
            where += f" AND topic IN ({','.join('?' * len(a['topics']))})"
            params += list(a["topics"])
        if a.get("uri") or a.get("callbackUrl"):
            where += " AND uri=?"
            params.append(a.get("uri") or a.get("callbackUrl"))
        return connection(
            info,
            table="webhook_subscriptions",
            where=where,
            params=params,
            build=webhook_object,
            **_paging(a),
        )

    def resolve_code_by_code(_root, info, code):
        require_scope(info, "read_discounts")
        rows = info.context["db"](
            "SELECT * FROM discounts WHERE shop=? AND code=? COLLATE NOCASE", [info.context["shop"], code]
        )
        return discount_object(rows[0]) if rows else None

    def resolve_node(_root, info, id):  # noqa: A002
        m = re.fullmatch(r"gid://shopify/(\w+)/(\d+)", id or "")
        if not m:
            raise GraphQLError(f"Invalid global id '{id}'")
        kind = m.group(1)
        table = {
            "Customer": ("customers", customer_object),
            "Order": ("orders", order_object),
            "Fulfillment": ("fulfillments", fulfillment_object),
            "DiscountCodeNode": ("discounts", discount_object),
            "WebhookSubscription": ("webhook_subscriptions", webhook_object),
        }.get(kind)
        if kind == "BulkOperation":
            return resolve_bulk(_root, info, id)
        if kind == "Product":
            return by_id(
                "Product",
                "products",
                lambda r: product_object(r, info.context["shop_row"]["currency"]),
                "read_products",
            )(_root, info, id)
        if table is None:
            return None
        rows = info.context["db"](
            f"SELECT * FROM {table[0]} WHERE id=? AND shop=?",  # noqa: S608 (table names are ours)
            [int(m.group(2)), info.context["shop"]],
        )
        return table[1](rows[0]) if rows else None

    query["shop"].resolve = resolve_shop
    query["shopLocales"].resolve = resolve_shop_locales
    query["customers"].resolve = resolve_customers
    query["orders"].resolve = resolve_orders
    query["products"].resolve = resolve_products
    query["customer"].resolve = by_id("Customer", "customers", customer_object, "read_customers")
    query["order"].resolve = by_id("Order", "orders", order_object, "read_orders")
    query["product"].resolve = by_id("Product", "products", product_object, "read_products")
    query["fulfillment"].resolve = by_id("Fulfillment", "fulfillments", fulfillment_object, "read_orders")
    query["codeDiscountNode"].resolve = by_id(
        "DiscountCodeNode", "discounts", discount_object, "read_discounts"
    )
    query["codeDiscountNodeByCode"].resolve = resolve_code_by_code
    query["bulkOperation"].resolve = resolve_bulk
    query["currentBulkOperation"].resolve = resolve_current_bulk
    query["webhookSubscriptions"].resolve = resolve_webhooks
    query["node"].resolve = resolve_node
    query["nodes"].resolve = lambda _root, info, ids: [resolve_node(_root, info, i) for i in ids]

    for name, impl in mutations.MUTATIONS.items():
        mutation_fields[name].resolve = mutation(impl)
