"""`DevStoreControl(base_url)`: a Python client of the dev store's control API (/_devstore/...), for tests,
the demo and the CLI. Every method returns the decoded JSON answer; an error answer raises
`DevStoreError` (with .status and .body). Never imported by app code.
"""

from __future__ import annotations

import requests


class DevStoreError(RuntimeError):
    def __init__(self, status: int, body) -> None:
        super().__init__(f"dev store answered {status}: {body}")
        self.status, self.body = status, body


class DevStoreControl:
    def __init__(self, base_url: str, *, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.http = requests.Session()

    # plumbing -------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None, *, timeout: float | None = None):
        url = f"{self.base_url}/_devstore/{path.lstrip('/')}"
        if method == "GET":
            resp = self.http.get(url, params=body or None, timeout=timeout or self.timeout)
        else:
            resp = self.http.post(url, json=body or {}, timeout=timeout or self.timeout)
        try:
            data = resp.json()
        except ValueError:
            data = resp.text
        if resp.status_code >= 400:
            raise DevStoreError(resp.status_code, data)
        return data

    def _shop(self, shop: str, action: str, body: dict | None = None, *, obj_id=None, method="POST"):
        path = f"shops/{shop}/{action}" + (f"/{obj_id}" if obj_id is not None else "")
        return self._call(
            method,
            path,
            {k: v for k, v in (body or {}).items() if v is not None},
        )

    def store_url(self, shop: str) -> str:
        return f"{self.base_url}/s/{shop}"

    def graphql_url(self, shop: str) -> str:
        return f"{self.store_url(shop)}/admin/api/2026-01/graphql.json"

    # server-wide ----------------------------------------------------------------------------------------
    def health(self) -> dict:
        return self._call("GET", "health")

    def settings(self, **changes) -> dict:
        """Read or change run-time settings: auto_approve, token_lifetime, refresh_token_lifetime,
        bucket_size, restore_rate, webhook_retry_delays (list of seconds), webhook_timeout,
        webhook_mode ({"duplicate": bool, "reorder": bool, "reorder_window": s})."""
        return self._call("POST" if changes else "GET", "settings", changes)

    def set_faults(self, **faults) -> dict:
        """Inject faults into the Admin API: fail_next=N / error_rate=0..1 (with error_status, default 503),
        drop_next=N / drop_rate (connection dropped), slow_ms, oauth=True (also /oauth/access_token).
        `set_faults()` with no argument turns every fault off."""
        return self._call("POST", "faults", faults)

    def flush_webhooks(self, timeout: float = 30.0) -> dict:
        """Block until every queued webhook was delivered or given up; returns the queue's counts.
        Raises DevStoreError(504) if deliveries are still pending after `timeout` seconds."""
        return self._call("POST", "webhooks/flush", {"timeout": timeout}, timeout=timeout + 10)

    # shops ----------------------------------------------------------------------------------------------
    def create_shop(
        self,
        domain: str,
        *,
        name: str | None = None,
        currency: str = "USD",
        timezone: str = "UTC",
        email: str | None = None,
        plan: str = "basic",
        locales: list[str] | None = None,
    ) -> dict:
        """Create (or return the existing) shop `domain` (must end with .devstore.test), with a catalog.
        `locales`: published locales, primary first (default ["en"])."""
        return self._call(
            "POST",
            "shops",
            {
                "domain": domain,
                "name": name,
                "currency": currency,
                "timezone": timezone,
                "email": email,
                "plan": plan,
                "locales": locales,
            },
        )

    def shop(self, shop: str) -> dict:
        return self._call("GET", f"shops/{shop}")

    def stats(self, shop: str) -> dict:
        """Counters: requests, graphql_requests, throttled, tokens_issued, refreshes, token_exchanges,
        webhook_attempts, webhooks_delivered, webhooks_failed, faults_injected, and row counts."""
        return self._shop(shop, "stats", method="GET")

    def tokens(self, shop: str) -> list[dict]:
        return self._shop(shop, "tokens", method="GET")

    def grant_token(self, shop: str, *, scope: str | None = None, expiring: bool = True) -> dict:
        """Issue a token pair without OAuth (for tests of the Admin API itself)."""
        return self._shop(shop, "tokens", {"scope": scope, "expiring": expiring})

    def expire_tokens(self, shop: str, *, refresh: bool = False) -> dict:
        return self._shop(shop, "expire_tokens", {"refresh": refresh})

    def session_token(
        self,
        shop: str,
        *,
        user_id: int = 1,
        lifetime: int = 60,
        claims: dict | None = None,
        secret: str | None = None,
        client_id: str | None = None,
    ) -> str:
        """An App Bridge session token (HS256 JWT signed with the app secret) for `shop`."""
        body = {
            "user_id": user_id,
            "lifetime": lifetime,
            "claims": claims,
            "secret": secret,
            "client_id": client_id,
        }
        return self._shop(shop, "session_token", body)["token"]

    def webhooks(self, shop: str, topic: str | None = None) -> list[dict]:
        """Every queued delivery (body decoded, status pending/delivered/failed, attempts, last_status)."""
        return self._shop(shop, "webhooks", {"topic": topic}, method="GET")

    def subscriptions(self, shop: str) -> list[dict]:
        return self._shop(shop, "subscriptions", method="GET")

    def uninstall_app(self, shop: str) -> dict:
        return self._shop(shop, "uninstall")

    # store actions --------------------------------------------------------------------------------------
    def seed(
        self,
        shop: str,
        *,
        customers: int = 50,
        orders: int = 200,
        months: int = 12,
        seed: int = 1,
        webhooks: bool = False,
    ) -> dict:
        """Seed realistic customers and orders over `months`. No webhooks unless webhooks=True."""
        return self._shop(
            shop,
            "seed",
            {"customers": customers, "orders": orders, "months": months, "seed": seed, "webhooks": webhooks},
        )

    def create_customer(
        self,
        shop: str,
        *,
        email: str,
        first_name: str = "Ada",
        last_name: str = "Buyer",
        locale: str = "en",
        marketing_state: str = "SUBSCRIBED",
        phone: str | None = None,
        tags: str = "",
    ) -> dict:
        return self._shop(
            shop,
            "customers",
            {
                "email": email,
                "first_name": first_name,
                "last_name": last_name,
                "locale": locale,
                "marketing_state": marketing_state,
                "phone": phone,
                "tags": tags,
            },
        )

    def place_order(
        self,
        shop: str,
        *,
        email: str | None = None,
        customer_id: int | None = None,
        items: list[dict] | None = None,
        discount_code: str | None = None,
        currency: str | None = None,
        locale: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        accepts_marketing: bool | None = None,
        paid: bool = True,
        test: bool = False,
        created_at: str | None = None,
    ) -> dict:
        """Place an order (items: [{"handle": ..., "quantity": n}], default one random product). A discount
        code is really checked (usage limit, customer context, dates, minimum subtotal); a refused code
        raises DevStoreError(400). Fires orders/create (+ orders/paid) and customers/create|update."""
        return self._shop(
            shop,
            "orders",
            {
                "email": email,
                "customer_id": customer_id,
                "items": items,
                "discount_code": discount_code,
                "currency": currency,
                "locale": locale,
                "first_name": first_name,
                "last_name": last_name,
                "accepts_marketing": accepts_marketing,
                "paid": paid,
                "test": test,
                "created_at": created_at,
            },
        )

    def cancel_order(self, shop: str, order_id: int, *, reason: str = "customer") -> dict:
        return self._shop(shop, "cancel", {"reason": reason}, obj_id=order_id)

    def refund_order(self, shop: str, order_id: int, *, amount: str | None = None) -> dict:
        return self._shop(shop, "refund", {"amount": amount}, obj_id=order_id)

    def fulfill_order(
        self,
        shop: str,
        order_id: int,
        *,
        tracking_company: str = "UPS",
        tracking_number: str | None = None,
        tracking_url: str | None = None,
        estimated_delivery_at: str | None = None,
    ) -> dict:
        return self._shop(
            shop,
            "fulfill",
            {
                "tracking_company": tracking_company,
                "tracking_number": tracking_number,
                "tracking_url": tracking_url,
                "estimated_delivery_at": estimated_delivery_at,
            },
            obj_id=order_id,
        )

    def add_tracking_event(
        self,
        shop: str,
        fulfillment_id: int,
        *,
        status: str,
        message: str | None = None,
        city: str | None = None,
        province: str | None = None,
        country: str | None = None,
        happened_at: str | None = None,
        estimated_delivery_at: str | None = None,
    ) -> dict:
        """status: label_printed, confirmed, in_transit, out_for_delivery, attempted_delivery, delayed,
        delivered, failure, ready_for_pickup, picked_up (REST spelling; upper case accepted)."""
        return self._shop(
            shop,
            "tracking_event",
            {
                "status": status,
                "message": message,
                "city": city,
                "province": province,
                "country": country,
                "happened_at": happened_at,
                "estimated_delivery_at": estimated_delivery_at,
            },
            obj_id=fulfillment_id,
        )

    def set_consent(self, shop: str, customer_id: int, *, state: str) -> dict:
        """state: SUBSCRIBED, UNSUBSCRIBED, NOT_SUBSCRIBED, PENDING, INVALID, REDACTED.
        Fires customers/update."""
        return self._shop(shop, "consent", {"state": state}, obj_id=customer_id)

    def order(self, shop: str, order_id: int) -> dict:
        """The order as its REST webhook body would be."""
        return self._shop(shop, "order", obj_id=order_id)

    def customer(self, shop: str, customer_id: int) -> dict:
        return self._shop(shop, "customer", obj_id=customer_id)

    def discounts(self, shop: str) -> list[dict]:
        return self._shop(shop, "discounts", method="GET")

    def bulk_operations(self, shop: str) -> list[dict]:
        return self._shop(shop, "bulk_operations", method="GET")

    # Admin API helper -----------------------------------------------------------------------------------
    def graphql(self, shop: str, token: str, query: str, variables: dict | None = None) -> requests.Response:
        """POST a GraphQL document to the shop's Admin API with `token`; returns the raw response."""
        return self.http.post(
            self.graphql_url(shop),
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": token},
            timeout=self.timeout,
        )
