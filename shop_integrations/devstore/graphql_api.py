"""The Admin GraphQL endpoint: executes documents against the real 2026-01 schema with graphql-core.

- The schema is built once from shop_integrations/schema/shopify_admin_2026-01.graphql (a few seconds, in
  a background thread at start); resolvers for what the app uses are attached in `resolvers.install`.
  A field without a resolver answers null, or a GraphQL error where the schema says non-null.
- Cost: requested cost computed from the document like Shopify's calculator (objects 1, connections
  2 + first x children, scalars/enums 0, mutations 10); actual cost from the answer. A leaky bucket per
  app+shop (bucket_size, restore_rate); over budget -> THROTTLED. Every answer has extensions.cost.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    execute,
    parse,
    validate,
)
from graphql.language import ast as gast
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Request, Response

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schema" / "shopify_admin_2026-01.graphql"
MUTATION_COST = 10


def _json(data, status=200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


class Bucket:
    """A leaky bucket of query cost points (per app and shop)."""

    def __init__(self, size: float, rate: float) -> None:
        self.size, self.rate = float(size), float(rate)
        self.available = float(size)
        self.stamp = time.monotonic()

    def refill(self, size: float, rate: float) -> None:
        now = time.monotonic()
        self.size, self.rate = float(size), float(rate)
        self.available = min(self.size, self.available + (now - self.stamp) * self.rate)
        self.stamp = now

    def status(self) -> dict:
        return {
            "maximumAvailable": self.size,
            "currentlyAvailable": int(self.available),
            "restoreRate": self.rate,
        }


class GraphQLAPI:
    def __init__(self, devstore) -> None:
        self.ds = devstore
        self.schema = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.buckets: dict[tuple[str, str], Bucket] = {}
        self.bucket_lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._build, name="devstore-schema", daemon=True).start()

    def _build(self) -> None:
        try:
            from graphql import build_schema

            from .resolvers import install

            # assume_valid: Shopify's SDL breaks two of graphql-core's schema rules (an implementation field
            # deprecated while the interface field is not); documents are still fully validated.
            schema = build_schema(SCHEMA_PATH.read_text(), assume_valid=True)
            install(schema, self.ds)
            self.schema = schema
        except BaseException as exc:  # reported on every GraphQL request
            self.error = exc
        finally:
            self.ready.set()

    def wait_ready(self, timeout: float = 120) -> None:
        self.ready.wait(timeout)
        if self.schema is None:
            raise RuntimeError(f"GraphQL schema not available: {self.error!r}")

    # request --------------------------------------------------------------------------------------------
    def handle(self, request: Request, shop: str, version: str) -> Response:
        # Reference: https://shopify.dev/docs/api/admin-graphql
        if self.ds.store.shop(shop) is None:
            raise NotFound("Not Found")
        if version != "2026-01":
            return _json(
                {"errors": f"API version {version} is not supported by the dev store (2026-01 only)"}, 404
            )
        token = self.ds.authenticate(request, shop)
        if token is None:
            return _json(
                {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"},
                401,
            )
        self.ds.bump(shop, "graphql_requests")
        try:
            body = json.loads(request.get_data() or b"null")
        except ValueError:
            return _json({"errors": [{"message": "Invalid JSON in request body"}]}, 400)
        if request.mimetype == "application/graphql":
            body = {"query": request.get_data(as_text=True)}
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return _json({"errors": [{"message": "Parameter Missing or Invalid: query"}]}, 400)
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return _json({"errors": [{"message": "Variables must be an object"}]}, 400)
        self.wait_ready()
        try:
            document = parse(body["query"])
        except GraphQLError as exc:
            return _json({"errors": [exc.formatted]})
        errors = validate(self.schema, document)
        if errors:
            return _json({"errors": [e.formatted for e in errors]})
        operation = _pick_operation(document, body.get("operationName"))
        if operation is None:
            return _json({"errors": [{"message": "Operation not found in document"}]})
        requested = requested_cost(document, operation, variables)
        key = (token["client_id"], shop)
        size, rate = float(self.ds.setting("bucket_size")), float(self.ds.setting("restore_rate"))
        with self.bucket_lock:
            bucket = self.buckets.setdefault(key, Bucket(size, rate))
            bucket.refill(size, rate)
            if requested > bucket.size:
                limit = int(bucket.size)
                too_costly = (
                    f"Query cost is {requested}, which exceeds the single query max cost limit ({limit})."
                )
                cost = {
                    "requestedQueryCost": requested,
                    "actualQueryCost": None,
                    "throttleStatus": bucket.status(),
                }
                return _json(
                    {
                        "errors": [
                            {
                                "message": too_costly,
                                "extensions": {
                                    "code": "MAX_COST_EXCEEDED",
                                    "cost": requested,
                                    "maxCost": int(bucket.size),
                                },
                            }
                        ],
                        "extensions": {"cost": cost},
                    }
                )
            if requested > bucket.available:
                self.ds.bump(shop, "throttled")
                cost = {
                    "requestedQueryCost": requested,
                    "actualQueryCost": None,
                    "throttleStatus": bucket.status(),
                }
                return _json(
                    {
                        "errors": [
                            {
                                "message": "Throttled",
                                "extensions": {
                                    "code": "THROTTLED",
                                    "documentation": "https://shopify.dev/api/usage/rate-limits",
                                },
                            }
                        ],
                        "extensions": {"cost": cost},
                    }
                )
            bucket.available -= requested
        context = {
            "shop": shop,
            "client_id": token["client_id"],
            "scope": token["scope"],
            "ds": self.ds,
            "shop_row": self.ds.store.shop(shop),
            "db": self.ds.store.all,
        }
        result = execute(
            self.schema,
            document,
            variable_values=variables,
            operation_name=body.get("operationName"),
            context_value=context,
        )
        actual = min(requested, actual_cost(result.data, operation))
        with self.bucket_lock:
            bucket.refill(size, rate)
            bucket.available = min(bucket.size, bucket.available + (requested - actual))
            status = bucket.status()
        answer: dict = {}
        if result.errors:
            answer["errors"] = [_format_error(e) for e in result.errors]
        answer["data"] = result.data
        answer["extensions"] = {
            "cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}
        }
        return _json(answer)

    def bulk_file(self, op_id: int, name: str) -> Response:
        from .bulk import serve_file

        return serve_file(self.ds, op_id, name)


def _format_error(error: GraphQLError) -> dict:
    formatted = error.formatted
    original = error.original_error
    if original is not None and not isinstance(original, GraphQLError):
        # Resolver bugs must not leak tracebacks; the message is enough.
        formatted["message"] = str(original) or "Internal error"
        formatted.setdefault("extensions", {})["code"] = getattr(original, "code", "INTERNAL_SERVER_ERROR")
    return formatted


def _pick_operation(document, name) -> OperationDefinitionNode | None:
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name:
        return next((o for o in ops if o.name and o.name.value == name), None)
    return ops[0] if len(ops) == 1 else None


def _arg_value(node, variables):
    if isinstance(node, gast.VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, gast.IntValueNode):
        return int(node.value)
    return None


def requested_cost(document, operation, variables) -> int:
    """Shopify's static cost: each object/connection field 1 (+1 for connections), times `first`/`last`
    of the enclosing connections; scalars 0; each top-level mutation field 10."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, gast.FragmentDefinitionNode)}

    def selection_cost(selection_set, depth) -> int:
        total = 0
        if selection_set is None:
            return 0
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                total += field_cost(sel, depth)
            elif isinstance(sel, InlineFragmentNode):
                total += selection_cost(sel.selection_set, depth)
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments and depth < 20:
                total += selection_cost(fragments[sel.name.value].selection_set, depth + 1)
        return total

    def field_cost(field: FieldNode, depth) -> int:
        if field.selection_set is None or field.name.value.startswith("__"):
            return 0
        size = None
        for arg in field.arguments or ():
            if arg.name.value in ("first", "last"):
                size = _arg_value(arg.value, variables)
        child = selection_cost(field.selection_set, depth + 1)
        if size is not None:
            return 2 + int(size) * child
        return 1 + child

    if operation.operation == gast.OperationType.MUTATION:
        return sum(
            MUTATION_COST + selection_cost(f.selection_set, 0)
            for f in operation.selection_set.selections
            if isinstance(f, FieldNode)
        )
    return max(1, selection_cost(operation.selection_set, 0))


def actual_cost(data, operation) -> int:
    """Cost of what was actually returned: 1 per object in the answer (mutations 10 each)."""

    def count(value) -> int:
        if isinstance(value, dict):
            return 1 + sum(count(v) for v in value.values())
        if isinstance(value, list):
            return sum(count(v) for v in value)
        return 0

    if data is None:
        return 1
    if operation.operation == gast.OperationType.MUTATION:
        return MUTATION_COST * len(data) + sum(count(v) for v in data.values())
    return max(1, sum(count(v) for v in data.values()))
