"""A Shopify store at the HTTP boundary for unit tests (`responses`): the token endpoint and the GraphQL
queries the install sends. End-to-end tests use the real dev store instead."""

from __future__ import annotations

import json

import responses

ANSWER_COST = {
    "requestedQueryCost": 1,
    "actualQueryCost": 1,
    "throttleStatus": {"maximumAvailable": 1000, "currentlyAvailable": 999, "restoreRate": 100},
}


class FakeStore:
    def __init__(self, domain: str = "acme.myshopify.com"):
        self.domain = domain
        self.base = f"https://{domain}"
        self.token_requests: list[dict] = []
        self.graphql_requests: list[dict] = []
        self.subscriptions: list[tuple[str, str]] = []
        self.issued = 0
        self.token_status = 200
        self.optional_fields_fail = False  # like the dev store: no shopOwnerName / shopLocales

    def install(self, rsps: responses.RequestsMock) -> FakeStore:
        rsps.add_callback(responses.POST, f"{self.base}/admin/oauth/access_token", callback=self._token)
        rsps.add_callback(
            responses.POST, f"{self.base}/admin/api/2026-01/graphql.json", callback=self._graphql
        )
        return self

    def _token(self, request):
        body = json.loads(request.body)
        self.token_requests.append(body)
        if self.token_status != 200:
            return self.token_status, {}, json.dumps({"error": "invalid_request"})
        self.issued += 1
        return (
            200,
            {},
            json.dumps(
                {
                    "access_token": f"shpat_{self.issued}",
                    "scope": "read_orders,read_all_orders",
                    "expires_in": 3600,
                    "refresh_token": f"shprt_{self.issued}",
                    "refresh_token_expires_in": 7776000,
                }
            ),
        )

    def _graphql(self, request):
        body = json.loads(request.body)
        self.graphql_requests.append({**body, "token": request.headers.get("X-Shopify-Access-Token")})
        query, variables = body["query"], body.get("variables") or {}
        if "query Shop " in query or "query Shop{" in query:
            data = {
                "shop": {
                    "id": "gid://shopify/Shop/42",
                    "name": "Acme Tea",
                    "email": "owner@acme.test",
                    "currencyCode": "THB",
                    "ianaTimezone": "Asia/Bangkok",
                    "myshopifyDomain": self.domain,
                    "primaryDomain": {"url": "https://acme-tea.test"},
                }
            }
        elif self.optional_fields_fail and ("ShopOwner" in query or "ShopLocales" in query):
            error = {"message": "Internal error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}
            return 200, {}, json.dumps({"errors": [error], "extensions": {"cost": ANSWER_COST}})
        elif "ShopOwner" in query:
            data = {"shop": {"shopOwnerName": "Mai Chan"}}
        elif "ShopLocales" in query:
            data = {"shopLocales": [{"locale": "en", "primary": False}, {"locale": "th", "primary": True}]}
        elif "webhookSubscriptionCreate" in query:
            key = (variables["topic"], variables["uri"])
            if key in self.subscriptions:
                errors = [
                    {
                        "field": ["webhookSubscription", "callbackUrl"],
                        "message": "Address for this topic has already been taken",
                    }
                ]
                data = {"webhookSubscriptionCreate": {"webhookSubscription": None, "userErrors": errors}}
            else:
                self.subscriptions.append(key)
                sub = {
                    "id": f"gid://shopify/WebhookSubscription/{len(self.subscriptions)}",
                    "topic": key[0],
                    "uri": key[1],
                }
                data = {"webhookSubscriptionCreate": {"webhookSubscription": sub, "userErrors": []}}
        else:
            return 200, {}, json.dumps({"errors": [{"message": "unexpected query"}]})
        return 200, {}, json.dumps({"data": data, "extensions": {"cost": ANSWER_COST}})
