"""A fake Shopify Admin GraphQL endpoint at the HTTP boundary (`responses`), for unit tests of the
discount and consent adapters. Answers by mutation/query name; records every call."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable

import pytest
import responses
from django.utils import timezone

from retention_app.shops.services import AccessGrant, shop_credential_store
from shop_integrations.shopify import client as client_module

COST = {
    "requestedQueryCost": 10,
    "actualQueryCost": 10,
    "throttleStatus": {"maximumAvailable": 2000, "currentlyAvailable": 1990, "restoreRate": 100},
}

OPERATIONS = (
    "discountCodeBasicCreate",
    "codeDiscountNodeByCode",
    "customerEmailMarketingConsentUpdate",
    "metafieldsSet",
)


def connect(shop, token="tok-test") -> None:  # noqa: S107
    shop_credential_store(
        shop=shop,
        grant=AccessGrant(
            access_token=token,
            scopes="write_discounts,write_customers",
            access_token_expires_at=timezone.now() + dt.timedelta(hours=1),
        ),
    )


class FakeShopify:
    """handlers[operation] = callable(variables) -> data dict, or (status, body) for an HTTP error."""

    def __init__(self, mock: responses.RequestsMock, shop_domain: str):
        self.url = f"https://{shop_domain}/admin/api/2026-01/graphql.json"
        self.calls: list[tuple[str, dict]] = []
        self.handlers: dict[str, Callable[[dict], object]] = {}
        self.discounts: dict[str, str] = {}  # code -> gid (what the store holds)
        self._lock = threading.Lock()
        self.handlers["discountCodeBasicCreate"] = self._create
        self.handlers["codeDiscountNodeByCode"] = self._by_code
        self.handlers["customerEmailMarketingConsentUpdate"] = lambda v: {
            "customerEmailMarketingConsentUpdate": {
                "customer": {
                    "id": v["input"]["customerId"],
                    "defaultEmailAddress": {
                        "marketingState": v["input"]["emailMarketingConsent"]["marketingState"]
                    },
                },
                "userErrors": [],
            }
        }
        self.handlers["metafieldsSet"] = lambda v: {
            "metafieldsSet": {
                "metafields": [
                    {"id": "gid://shopify/Metafield/1", "namespace": "boomerang", "key": "next_order_code"}
                ],
                "userErrors": [],
            }
        }
        mock.add_callback(responses.POST, self.url, callback=self._callback, content_type="application/json")

    def _create(self, variables):
        code = variables["basicCodeDiscount"]["code"]
        with self._lock:
            if code.upper() in self.discounts:
                return {
                    "discountCodeBasicCreate": {
                        "codeDiscountNode": None,
                        "userErrors": [
                            {
                                "field": ["basicCodeDiscount", "code"],
                                "code": "TAKEN",
                                "message": "Code must be unique.",
                            }
                        ],
                    }
                }
            gid = f"gid://shopify/DiscountCodeNode/{len(self.discounts) + 1000}"
            self.discounts[code.upper()] = gid
        return {"discountCodeBasicCreate": {"codeDiscountNode": {"id": gid}, "userErrors": []}}

    def _by_code(self, variables):
        gid = self.discounts.get(variables["code"].upper())
        return {"codeDiscountNodeByCode": {"id": gid} if gid else None}

    def _callback(self, request):
        body = json.loads(request.body)
        operation = next(op for op in OPERATIONS if op in body["query"])
        variables = body.get("variables") or {}
        with self._lock:
            self.calls.append((operation, variables))
        result = self.handlers[operation](variables)
        if isinstance(result, tuple):
            status, payload = result
            return status, {}, json.dumps(payload)
        return 200, {}, json.dumps({"data": result, "extensions": {"cost": COST}})

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def variables(self, operation: str) -> list[dict]:
        return [v for op, v in self.calls if op == operation]


@pytest.fixture
def _shopify_at_https(settings, monkeypatch):
    """Unit tests talk to a fake https Shopify whose retries need no real wait."""
    monkeypatch.setattr(client_module, "BACKOFF_BASE", 0.001)
    settings.SHOPIFY_STORE_URL_TEMPLATE = "https://{shop}"
    settings.SHOPIFY_CLIENT_MAX_ATTEMPTS = 2
    client_module.LocalBudget._buckets.clear()
    client_module._known_costs.clear()


@pytest.fixture
def fake_shopify(shop):
    """The shop is connected (a stored token) and its Admin API answers from FakeShopify."""
    connect(shop)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeShopify(mock, shop.domain)
