"""Resolvers attached to the real Admin schema. Objects are plain dicts keyed by GraphQL field name
(graphql-core's default resolver reads them); `__typename` in a dict resolves interfaces/unions."""

from __future__ import annotations


def gid(kind: str, value) -> str:
    return f"gid://shopify/{kind}/{value}"


def install(schema, ds) -> None:
    query = schema.query_type.fields

    def resolve_shop(_root, info):
        row = ds.store.shop(info.context["shop"])
        return shop_object(row)

    query["shop"].resolve = resolve_shop


def shop_object(row) -> dict:
    return {
        "__typename": "Shop",
        "id": gid("Shop", row["id"]),
        "name": row["name"],
        "myshopifyDomain": row["domain"],
        "email": row["email"],
        "contactEmail": row["email"],
        "currencyCode": row["currency"],
        "ianaTimezone": row["timezone"],
        "timezoneAbbreviation": row["timezone"],
        "url": f"https://{row['domain']}",
        "primaryDomain": {
            "__typename": "Domain",
            "id": gid("Domain", row["id"]),
            "host": row["domain"],
            "url": f"https://{row['domain']}",
            "sslEnabled": True,
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
