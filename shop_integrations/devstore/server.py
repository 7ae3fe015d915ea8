"""The dev store WSGI application: OAuth, Admin GraphQL, storefront and the /_devstore control API.

Routes (every shop lives under /s/{shop_domain}, shop domains end with .devstore.test):
  GET/POST /s/{shop}/admin/oauth/authorize       install page (scopes + Install button) or auto-approve
  POST     /s/{shop}/admin/oauth/access_token    code exchange, refresh_token grant, token exchange
  POST     /s/{shop}/admin/api/2026-01/graphql.json
  GET      /s/{shop}/, /products/{handle}, /cart, /discount/{code}; GET/POST /checkout   (storefront)
  /_devstore/...                                 control API (JSON) and a small HTML page
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import html
import json
import logging
import random
import re
import secrets
import socket
import threading
import time
from collections import defaultdict
from urllib.parse import urlencode, urlsplit

from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from . import signing
from .store import Store, now_iso

log = logging.getLogger("devstore")

API_VERSION = "2026-01"
SHOP_SUFFIX = ".devstore.test"
SHOP_DOMAIN_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,60}\.devstore\.test$")
DEFAULT_SCOPES = (
    "read_customers,write_customers,read_orders,read_all_orders,read_products,"
    "read_discounts,write_discounts,read_fulfillments,read_merchant_managed_fulfillment_orders"
)
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (a grant type name, not a secret)
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105 (a grant type name, not a secret)
ONLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:online-access-token"  # noqa: S105 (a grant type name, not a secret)


@dataclasses.dataclass
class Config:
    data: str
    api_key: str
    api_secret: str
    host: str = "127.0.0.1"
    port: int = 8100
    app_url: str = ""
    # The base URL the store is reachable at from outside (reverse proxy, container); default
    # http://{host}:{port} as served. Each shop's storefront is {public_url}/s/{domain}.
    public_url: str = ""
    auto_approve: bool = False
    token_lifetime: int = 3600
    refresh_token_lifetime: int = 2592000
    bucket_size: int = 1000
    restore_rate: int = 100
    scopes: str = DEFAULT_SCOPES
    # Seconds to wait before retry n (1-based); after the last one the delivery gives up.
    webhook_retry_delays: tuple[float, ...] = (1, 5, 30, 120, 600, 1800, 3600, 7200)
    webhook_timeout: float = 5.0


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json", headers=headers)


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response({"error": error, "error_description": description}, status)


class DevStore:
    """The whole dev store: configuration, storage, live counters and background workers."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store = Store(config.data)
        self.base_url = f"http://{config.host}:{config.port}"
        host = "127.0.0.1" if config.host in ("", "0.0.0.0", "::") else config.host  # noqa: S104
        self.public_url = (config.public_url or f"http://{host}:{config.port}").rstrip("/")
        self.stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.stats_lock = threading.Lock()
        self.form_secret = secrets.token_bytes(32)
        self.fault_lock = threading.Lock()
        from .graphql_api import GraphQLAPI
        from .webhooks import WebhookDispatcher

        self.graphql = GraphQLAPI(self)
        self.webhooks = WebhookDispatcher(self)
        self.url_map = Map(
            [
                Rule("/s/<shop>/admin/oauth/authorize", endpoint="authorize", methods=["GET", "POST"]),
                Rule("/s/<shop>/admin/oauth/access_token", endpoint="access_token", methods=["POST"]),
                Rule("/s/<shop>/admin/api/<version>/graphql.json", endpoint="graphql", methods=["POST"]),
                Rule("/s/<shop>/", endpoint="sf_home", methods=["GET"]),
                Rule("/s/<shop>/products/<handle>", endpoint="sf_product", methods=["GET"]),
                Rule("/s/<shop>/cart", endpoint="sf_cart", methods=["GET"]),
                Rule("/s/<shop>/cart/add", endpoint="sf_cart_add", methods=["POST"]),
                Rule("/s/<shop>/discount/<code>", endpoint="sf_discount", methods=["GET"]),
                Rule("/s/<shop>/checkout", endpoint="sf_checkout", methods=["GET", "POST"]),
                Rule("/_devstore/", endpoint="ctl_page", methods=["GET"]),
                Rule("/_devstore/ui/<shop>", endpoint="ctl_ui", methods=["GET", "POST"]),
                Rule("/_devstore/health", endpoint="ctl_health", methods=["GET"]),
                Rule("/_devstore/settings", endpoint="ctl_settings", methods=["GET", "POST"]),
                Rule("/_devstore/faults", endpoint="ctl_faults", methods=["GET", "POST"]),
                Rule("/_devstore/webhooks/flush", endpoint="ctl_flush", methods=["POST"]),
                Rule("/_devstore/bulk/<int:op_id>/<name>", endpoint="bulk_file", methods=["GET"]),
                Rule("/_devstore/shops", endpoint="ctl_shops", methods=["GET", "POST"]),
                Rule("/_devstore/shops/<shop>", endpoint="ctl_shop", methods=["GET"]),
                Rule("/_devstore/shops/<shop>/<action>", endpoint="ctl_action", methods=["GET", "POST"]),
                Rule(
                    "/_devstore/shops/<shop>/<action>/<int:obj_id>", endpoint="ctl_action", methods=["POST"]
                ),
            ]
        )

    def storefront_url(self, domain: str) -> str:
        """The shop's storefront (what Shopify calls shop.url / primaryDomain.url): a dev store domain is
        not resolvable, so the storefront is served under this server at /s/{domain}."""
        return f"{self.public_url}/s/{domain}"

    # settings that the control API may change at run time ---------------------------------------------
    def setting(self, name: str):
        return self.store.get_setting(name, getattr(self.config, name, None))

    def bump(self, shop: str, counter: str, by: int = 1) -> None:
        with self.stats_lock:
            self.stats[shop][counter] += by

    def start_background(self) -> None:
        self.graphql.start()
        self.webhooks.start()

    # WSGI ------------------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            adapter = self.url_map.bind_to_environ(environ)
            endpoint, args = adapter.match()
            shop = args.get("shop")
            if shop is not None:
                self.bump(shop, "requests")
                fault = self._fault(request, shop)
                if fault is not None:
                    return fault(environ, start_response)
            response = getattr(self, f"on_{endpoint}")(request, **args)
        except HTTPException as exc:
            if request.path.startswith("/_devstore/") or "/admin/" in request.path:
                response = json_response({"errors": exc.description or exc.name}, exc.code)
            else:
                response = exc.get_response(environ)
        except Exception:  # the dev store must answer, never crash: log and 500 like any server
            log.exception("unhandled error on %s", request.path)
            response = json_response({"errors": "Internal error"}, 500)
        return response(environ, start_response)

    def _fault(self, request: Request, shop: str) -> Response | None:
        """Injected faults (control API /_devstore/faults), for the app's retry paths. Off by default.
        Applies to the Admin API, and to /admin/oauth/access_token when faults.oauth is true."""
        path = request.path
        if "/admin/api/" not in path and not ("/oauth/access_token" in path and self._faults().get("oauth")):
            return None
        with self.fault_lock:
            faults = self._faults()
            if not faults:
                return None
            action = None
            if faults.get("fail_next", 0) > 0:
                faults["fail_next"] -= 1
                action = "fail"
            elif faults.get("drop_next", 0) > 0:
                faults["drop_next"] -= 1
                action = "drop"
            elif faults.get("error_rate") and random.random() < faults["error_rate"]:
                action = "fail"
            elif faults.get("drop_rate") and random.random() < faults["drop_rate"]:
                action = "drop"
            if action:
                self.store.set_setting("faults", faults)
        if faults.get("slow_ms"):
            time.sleep(faults["slow_ms"] / 1000)  # a deliberately slow answer (fault injection)
        if action == "fail":
            self.bump(shop, "faults_injected")
            status = int(faults.get("error_status", 503))
            return json_response(
                {"errors": "Service Unavailable" if status == 503 else "Internal error"}, status
            )
        if action == "drop":
            self.bump(shop, "faults_injected")
            sock = request.environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return Response(b"", status=502)
        return None

    def _faults(self) -> dict:
        return self.store.get_setting("faults", {}) or {}

    def require_shop(self, shop: str):
        row = self.store.shop(shop)
        if row is None:
            raise NotFound("Not Found")
        return row

    # OAuth -----------------------------------------------------------------------------------------------
    def _form_token(self, shop: str, state: str) -> str:
        return hmac.new(self.form_secret, f"{shop}|{state}".encode(), hashlib.sha256).hexdigest()

    def on_authorize(self, request: Request, shop: str) -> Response:
        # Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/authorization-code-grant
        self.require_shop(shop)
        src = request.form if request.method == "POST" else request.args
        client_id = src.get("client_id", "")
        scope = src.get("scope", "")
        redirect_uri = src.get("redirect_uri", "")
        state = src.get("state", "")
        if not hmac.compare_digest(client_id, self.config.api_key):
            return Response(
                "Oauth error invalid_request: The client_id is unknown.", 400, mimetype="text/plain"
            )
        parts = urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return Response(
                "Oauth error invalid_request: The redirect_uri is invalid.", 400, mimetype="text/plain"
            )
        if self.config.app_url:
            app = urlsplit(self.config.app_url)
            if (parts.scheme, parts.netloc) != (app.scheme, app.netloc):
                return Response(
                    "Oauth error invalid_request: The redirect_uri is not whitelisted.",
                    400,
                    mimetype="text/plain",
                )
        approve = bool(self.setting("auto_approve"))
        if request.method == "POST":
            if not hmac.compare_digest(request.form.get("form_token", ""), self._form_token(shop, state)):
                return Response("Invalid form token", 400, mimetype="text/plain")
            approve = True
        if not approve:
            return self._install_page(shop, client_id, scope, redirect_uri, state)
        code = secrets.token_hex(16)
        with self.store.tx() as c:
            c.execute(
                "INSERT INTO oauth_codes(code, shop, client_id, scope, expires_at) VALUES(?,?,?,?,?)",
                (code, shop, client_id, scope, time.time() + 600),
            )
        params = {
            "code": code,
            "host": base64.b64encode(f"{shop}/admin".encode()).decode(),
            "shop": shop,
            "state": state,
            "timestamp": str(int(time.time())),
        }
        params["hmac"] = signing.oauth_hmac(params, self.config.api_secret)
        sep = "&" if parts.query else "?"
        return Response(status=302, headers={"Location": f"{redirect_uri}{sep}{urlencode(params)}"})

    def _install_page(self, shop, client_id, scope, redirect_uri, state) -> Response:
        e = html.escape
        scopes = "".join(f"<li><code>{e(s)}</code></li>" for s in scope.split(",") if s)
        hidden = "".join(
            f'<input type="hidden" name="{k}" value="{e(v)}">'
            for k, v in {
                "client_id": client_id,
                "scope": scope,
                "redirect_uri": redirect_uri,
                "state": state,
                "form_token": self._form_token(shop, state),
            }.items()
        )
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>Install app - {e(shop)}</title></head>"
            f"<body><h1>Install app on {e(shop)}</h1><p>The app asks for these permissions:</p>"
            f"<ul id='scopes'>{scopes}</ul><form method='post'>{hidden}"
            f"<button type='submit' id='install'>Install</button></form></body></html>"
        )
        return Response(body, mimetype="text/html")

    def _issue_tokens(self, c, shop: str, scope: str, *, expiring: bool, grant_type: str) -> dict:
        now = time.time()
        access = "shpat_" + secrets.token_hex(16)
        lifetime = int(self.setting("token_lifetime"))
        c.execute(
            "INSERT INTO tokens(token, kind, shop, client_id, scope, created_at, expires_at, grant_type) "
            "VALUES(?,?,?,?,?,?,?,?)",
            (
                access,
                "access",
                shop,
                self.config.api_key,
                scope,
                now,
                now + lifetime if expiring else None,
                grant_type,
            ),
        )
        result = {"access_token": access, "scope": scope}
        if expiring:
            refresh = "shprt_" + secrets.token_hex(16)
            refresh_lifetime = int(self.setting("refresh_token_lifetime"))
            c.execute(
                "INSERT INTO tokens(token, kind, shop, client_id, scope, created_at, expires_at, grant_type) "
                "VALUES(?,?,?,?,?,?,?,?)",
                (
                    refresh,
                    "refresh",
                    shop,
                    self.config.api_key,
                    scope,
                    now,
                    now + refresh_lifetime,
                    grant_type,
                ),
            )
            result.update(
                expires_in=lifetime, refresh_token=refresh, refresh_token_expires_in=refresh_lifetime
            )
        c.execute("UPDATE shops SET installed=1, granted_scope=? WHERE domain=?", (scope, shop))
        self.bump(shop, "tokens_issued")
        return result

    def on_access_token(self, request: Request, shop: str) -> Response:
        # Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/offline-access-tokens
        self.require_shop(shop)
        if request.mimetype == "application/json":
            try:
                body = json.loads(request.get_data() or b"{}")
            except ValueError:
                return oauth_error("invalid_request", "The request body is not valid JSON")
            if not isinstance(body, dict):
                return oauth_error("invalid_request", "The request body must be an object")
        else:
            body = request.form.to_dict()
        body = {k: str(v) for k, v in body.items() if v is not None}
        client_id, client_secret = body.get("client_id", ""), body.get("client_secret", "")
        if not (
            hmac.compare_digest(client_id, self.config.api_key)
            and hmac.compare_digest(client_secret, self.config.api_secret)
        ):
            return oauth_error(
                "invalid_client", "Client authentication failed: client_id or client_secret is wrong"
            )
        expiring = body.get("expiring") == "1"
        grant_type = body.get("grant_type", "authorization_code")
        if grant_type == "authorization_code" and "code" in body:
            with self.store.tx() as c:
                row = c.execute(
                    "SELECT * FROM oauth_codes WHERE code=? AND shop=? AND client_id=?",
                    (body["code"], shop, client_id),
                ).fetchone()
                if row is None or row["used"] or row["expires_at"] < time.time():
                    return oauth_error(
                        "invalid_request", "The authorization code was not found or was already used"
                    )
                c.execute("UPDATE oauth_codes SET used=1 WHERE code=?", (row["code"],))
                return json_response(
                    self._issue_tokens(c, shop, row["scope"], expiring=expiring, grant_type="code")
                )
        if grant_type == "refresh_token":
            with self.store.tx() as c:
                row = c.execute(
                    "SELECT * FROM tokens WHERE token=? AND kind='refresh' AND shop=?",
                    (body.get("refresh_token", ""), shop),
                ).fetchone()
                if row is None or row["revoked"] or (row["expires_at"] or 0) < time.time():
                    return oauth_error(
                        "invalid_grant", "The refresh token is invalid, expired or was already used"
                    )
                # Rotation: the used refresh token stops working at once.
                c.execute("UPDATE tokens SET revoked=1 WHERE token=?", (row["token"],))
                self.bump(shop, "refreshes")
                return json_response(
                    self._issue_tokens(c, shop, row["scope"], expiring=True, grant_type="refresh")
                )
        if grant_type == TOKEN_EXCHANGE:
            return self._token_exchange(shop, body, expiring)
        return oauth_error("unsupported_grant_type", f"Unsupported grant_type {grant_type!r} or missing code")

    def _token_exchange(self, shop: str, body: dict, expiring: bool) -> Response:
        # Reference: https://shopify.dev/docs/apps/build/authentication-authorization/access-tokens/token-exchange
        requested = body.get("requested_token_type", "")
        if requested not in (OFFLINE_TOKEN_TYPE, ONLINE_TOKEN_TYPE):
            return oauth_error("invalid_request", "requested_token_type is missing or unsupported")
        try:
            claims = signing.jwt_decode(
                body.get("subject_token", ""), self.config.api_secret, audience=self.config.api_key
            )
        except signing.InvalidJWT as exc:
            return oauth_error("invalid_subject_token", f"Session token is invalid: {exc}")
        if claims.get("dest") != f"https://{shop}" or urlsplit(str(claims.get("iss", ""))).netloc != shop:
            return oauth_error("invalid_subject_token", "Session token was not issued for this shop")
        scope = self.store.shop(shop)["granted_scope"] or self.config.scopes
        with self.store.tx() as c:
            self.bump(shop, "token_exchanges")
            result = self._issue_tokens(c, shop, scope, expiring=expiring, grant_type="token_exchange")
        if requested == ONLINE_TOKEN_TYPE:
            result["associated_user"] = {"id": int(claims.get("sub") or 1), "email": f"owner@{shop}"}
        return json_response(result)

    def authenticate(self, request: Request, shop: str):
        """The access token row for the request's X-Shopify-Access-Token, or None."""
        token = request.headers.get("X-Shopify-Access-Token", "")
        if not token:
            return None
        row = self.store.one("SELECT * FROM tokens WHERE token=? AND kind='access'", (token,))
        if row is None or row["shop"] != shop or row["revoked"]:
            return None
        if row["expires_at"] is not None and row["expires_at"] < time.time():
            return None
        return row

    # GraphQL --------------------------------------------------------------------------------------------
    def on_graphql(self, request: Request, shop: str, version: str) -> Response:
        return self.graphql.handle(request, shop, version)

    def on_bulk_file(self, request: Request, op_id: int, name: str) -> Response:
        return self.graphql.bulk_file(op_id, name)

    # storefront ------------------------------------------------------------------------------------------
    def _storefront(self):
        from .storefront import Storefront

        if not hasattr(self, "_sf"):
            self._sf = Storefront(self)
        return self._sf

    def on_sf_home(self, request, shop):
        return self._storefront().home(request, shop)

    def on_sf_product(self, request, shop, handle):
        return self._storefront().product(request, shop, handle)

    def on_sf_cart(self, request, shop):
        return self._storefront().cart(request, shop)

    def on_sf_cart_add(self, request, shop):
        return self._storefront().cart_add(request, shop)

    def on_sf_discount(self, request, shop, code):
        return self._storefront().discount(request, shop, code)

    def on_sf_checkout(self, request, shop):
        return self._storefront().checkout(request, shop)

    # control API -----------------------------------------------------------------------------------------
    def on_ctl_health(self, request):
        return json_response({"ok": True, "schema_ready": self.graphql.ready.is_set()})

    def on_ctl_settings(self, request):
        names = (
            "auto_approve",
            "token_lifetime",
            "refresh_token_lifetime",
            "bucket_size",
            "restore_rate",
            "webhook_retry_delays",
            "webhook_mode",
            "webhook_timeout",
            "bulk_executor",
        )
        if request.method == "POST":
            body = request.get_json(silent=True) or {}
            unknown = set(body) - set(names)
            if unknown:
                return json_response({"errors": f"unknown settings: {sorted(unknown)}"}, 400)
            for key, value in body.items():
                self.store.set_setting(key, value)
            self.webhooks.wake()
        return json_response({n: self.setting(n) for n in names})

    def on_ctl_faults(self, request):
        if request.method == "POST":
            body = request.get_json(silent=True) or {}
            allowed = {
                "error_rate",
                "error_status",
                "drop_rate",
                "slow_ms",
                "fail_next",
                "drop_next",
                "oauth",
            }
            if set(body) - allowed:
                return json_response({"errors": f"unknown faults: {sorted(set(body) - allowed)}"}, 400)
            with self.fault_lock:
                self.store.set_setting("faults", body)
        return json_response(self._faults())

    def on_ctl_flush(self, request):
        body = request.get_json(silent=True) or {}
        result = self.webhooks.flush(timeout=float(body.get("timeout", 30)))
        return json_response(result, 200 if result["pending"] == 0 else 504)

    def on_ctl_shops(self, request):
        if request.method == "GET":
            return json_response([dict(r) for r in self.store.all("SELECT * FROM shops ORDER BY id")])
        body = request.get_json(silent=True) or {}
        domain = str(body.get("domain", "")).lower()
        if not SHOP_DOMAIN_RE.match(domain):
            return json_response({"errors": f"shop domain must match {SHOP_DOMAIN_RE.pattern}"}, 400)
        existing = self.store.shop(domain)
        if existing is not None:
            return json_response(dict(existing), 200)
        name = body.get("name") or domain.split(".")[0].replace("-", " ").title()
        locales = body.get("locales") or ["en"]
        if not isinstance(locales, list) or not all(isinstance(x, str) and x for x in locales):
            return json_response({"errors": "locales must be a list of locale codes, primary first"}, 400)
        from zoneinfo import ZoneInfo

        from .commerce import FX

        if body.get("currency", "USD") not in FX:
            return json_response({"errors": f"currency must be one of {sorted(FX)}"}, 400)
        try:
            ZoneInfo(body.get("timezone", "UTC"))
        except (ValueError, KeyError):
            return json_response({"errors": "timezone must be an IANA time zone name"}, 400)
        with self.store.tx() as c:
            c.execute(
                "INSERT INTO shops(domain, name, email, currency, timezone, plan, locales, created_at) "
                "VALUES(?,?,?,?,?,?,?,?)",
                (
                    domain,
                    name,
                    body.get("email") or f"owner@{domain}",
                    body.get("currency", "USD"),
                    body.get("timezone", "UTC"),
                    body.get("plan", "basic"),
                    ",".join(locales),
                    now_iso(),
                ),
            )
        from .actions import ensure_catalog

        ensure_catalog(self, domain)
        return json_response(dict(self.store.shop(domain)), 201)

    def on_ctl_shop(self, request, shop):
        return json_response(dict(self.require_shop(shop)))

    def on_ctl_action(self, request, shop, action, obj_id=None):
        from .actions import ACTIONS

        self.require_shop(shop)
        handler = ACTIONS.get((action, request.method))
        if handler is None:
            raise NotFound(f"unknown control action {action!r}")
        body = request.get_json(silent=True) if request.method == "POST" else request.args.to_dict()
        if body is not None and not isinstance(body, dict):
            return json_response({"errors": "JSON object expected"}, 400)
        try:
            result = handler(self, shop, obj_id, body or {})
        except ValueError as exc:
            return json_response({"errors": str(exc)}, 400)
        except LookupError as exc:
            return json_response({"errors": str(exc)}, 404)
        return json_response(result)

    def on_ctl_page(self, request):
        from .ui import index

        return index(self, request)

    def on_ctl_ui(self, request, shop):
        from .ui import shop_action, shop_page

        return shop_page(self, request, shop) if request.method == "GET" else shop_action(self, request, shop)
