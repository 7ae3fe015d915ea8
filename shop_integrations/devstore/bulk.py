"""Bulk operations: run a bulk query in a background thread, page by page (constant memory), writing a
JSONL file where nested connection nodes become their own lines with `__parentId`, right after their
parent, as Shopify does. The file is served from /_devstore/bulk/{id}/{name}; bulk_operations/finish fires.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading

from graphql import FieldNode, OperationDefinitionNode, execute, parse
from werkzeug.exceptions import NotFound
from werkzeug.wrappers import Response

from .payloads import bulk_finish_payload
from .store import now_iso

log = logging.getLogger("devstore.bulk")
BULK_ROOTS = {"customers", "orders", "products"}
PAGE_SIZE = 250


def _connection_fields(selection_set, depth=0, found=None):
    """(field name, depth) of every connection (a field selecting edges or nodes) below `selection_set`."""
    found = [] if found is None else found
    for sel in selection_set.selections if selection_set else ():
        if isinstance(sel, FieldNode) and sel.selection_set:
            names = {s.name.value for s in sel.selection_set.selections if isinstance(s, FieldNode)}
            is_connection = bool(names & {"edges", "nodes"})
            if is_connection:
                found.append((sel.name.value, depth))
            _connection_fields(sel.selection_set, depth + (1 if is_connection else 0), found)
    return found


def check_bulk_query(document) -> str | None:
    """The reason a bulk query is refused (Shopify's rules: one top-level connection, at most 5 connections,
    nesting depth at most 2), or None."""
    ops = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(ops) != 1 or ops[0].operation.value != "query":
        return "Bulk queries must contain exactly one query operation"
    fields = [s for s in ops[0].selection_set.selections if isinstance(s, FieldNode)]
    if len(fields) != 1 or fields[0].name.value not in BULK_ROOTS:
        return f"Bulk queries must select exactly one top-level connection among {sorted(BULK_ROOTS)}"
    connections = _connection_fields(ops[0].selection_set)
    if not connections or connections[0][0] != fields[0].name.value:
        return "Bulk queries must select the top-level connection's edges or nodes"
    if len(connections) > 5:
        return "Bulk queries cannot contain more than 5 connections"
    if max(depth for _, depth in connections) > 2:
        return "Bulk queries cannot contain connections with a nesting depth greater than 2"
    return None


def start_bulk(ds, op_id: int, scope: str) -> None:
    threading.Thread(
        target=run_bulk, args=(ds, op_id, scope), name=f"devstore-bulk-{op_id}", daemon=True
    ).start()


def _nodes(connection: dict) -> list:
    if "edges" in connection:
        return [e.get("node") for e in connection["edges"] if e.get("node") is not None]
    return list(connection.get("nodes") or [])


def _is_connection(value) -> bool:
    return (
        isinstance(value, dict)
        and ("edges" in value or "nodes" in value)
        and set(value) <= {"edges", "nodes", "pageInfo"}
    )


def flatten(node: dict, parent_id: str | None, out: list) -> None:
    """Append `node` (without its nested connections) then each nested connection's nodes, recursively."""
    line, children = {}, []
    for key, value in node.items():
        if _is_connection(value):
            children.append(value)
        else:
            line[key] = value
    if parent_id is not None:
        line["__parentId"] = parent_id
    out.append(line)
    for connection in children:
        for child in _nodes(connection):
            flatten(child, node.get("id"), out)


def run_bulk(ds, op_id: int, scope: str) -> None:
    import json

    store = ds.store
    row = store.one("SELECT * FROM bulk_operations WHERE id=?", (op_id,))
    name = f"{op_id}-{secrets.token_hex(8)}.jsonl"
    path = store.data_dir / "bulk" / name
    with store.tx() as c:
        c.execute("UPDATE bulk_operations SET status='RUNNING' WHERE id=? AND status='CREATED'", (op_id,))
    status, error_code, objects, roots = "COMPLETED", None, 0, 0
    try:
        ds.graphql.wait_ready()
        document = parse(row["query"])
        op = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        root_field = next(s for s in op.selection_set.selections if isinstance(s, FieldNode))
        root_key = root_field.alias.value if root_field.alias else root_field.name.value
        with store.reader() as conn, open(path, "w", encoding="utf-8") as fh:
            shop_row = conn.execute("SELECT * FROM shops WHERE domain=?", (row["shop"],)).fetchone()
            bulk = {"page_size": PAGE_SIZE, "after": None, "next": None}
            context = {
                "shop": row["shop"],
                "client_id": row["client_id"],
                "scope": scope,
                "ds": ds,
                "shop_row": shop_row,
                "bulk": bulk,
                "db": lambda sql, params: conn.execute(sql, params).fetchall(),
            }
            while True:
                state = conn.execute("SELECT status FROM bulk_operations WHERE id=?", (op_id,)).fetchone()[0]
                if state == "CANCELING":
                    status = "CANCELED"
                    break
                result = execute(ds.graphql.schema, document, context_value=context)
                if result.errors:
                    codes = {(e.extensions or {}).get("code") for e in result.errors}
                    status, error_code = (
                        "FAILED",
                        "ACCESS_DENIED" if "ACCESS_DENIED" in codes else "INTERNAL_SERVER_ERROR",
                    )
                    log.warning("bulk operation %s failed: %s", op_id, result.errors[0].message)
                    break
                lines: list = []
                for node in _nodes(result.data[root_key]):
                    roots += 1
                    flatten(node, None, lines)
                for line in lines:
                    fh.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
                    fh.write("\n")
                objects += len(lines)
                if bulk["next"] is None:
                    break
                bulk["after"], bulk["next"] = bulk["next"], None
    except Exception:  # the operation fails, the server stays up
        log.exception("bulk operation %s crashed", op_id)
        status, error_code = "FAILED", "INTERNAL_SERVER_ERROR"
    size = path.stat().st_size if path.exists() else None
    with store.tx() as c:
        c.execute(
            "UPDATE bulk_operations SET status=?, error_code=?, object_count=?, "
            "root_object_count=?, file_size=?, "
            "file_name=?, completed_at=? WHERE id=?",
            (status, error_code, objects, roots, size, name, now_iso(), op_id),
        )
        finished = c.execute("SELECT * FROM bulk_operations WHERE id=?", (op_id,)).fetchone()
        ds.webhooks.enqueue(row["shop"], "bulk_operations/finish", bulk_finish_payload(finished), conn=c)


def serve_file(ds, op_id: int, name: str) -> Response:
    row = ds.store.one("SELECT * FROM bulk_operations WHERE id=?", (op_id,))
    if row is None or row["file_name"] != name or row["status"] != "COMPLETED":
        raise NotFound("Not Found")
    path = ds.store.data_dir / "bulk" / name

    def chunks():
        with open(path, "rb") as fh:
            while chunk := fh.read(64 * 1024):
                yield chunk

    return Response(
        chunks(),
        mimetype="application/jsonl",
        headers={"Content-Length": str(os.path.getsize(path))},
        direct_passthrough=True,
    )
