"""Cheap enqueue of `process_webhook_delivery` from inside the webhook request.

Publishing through kombu costs about 0.7 ms of CPU per message on this machine (a Redis client object per
publish, an exchange-binding lookup round trip, layers of wrappers), the largest single cost of a webhook
request (bench/webhook_ingress.py). With a Redis broker we therefore build the Celery protocol-2
task message (the fields `app.amqp.as_task_v2` produces) and LPUSH it onto the queue's list exactly as
kombu's Redis transport would (same envelope, base64 body, delivery info of the queue's direct exchange),
on a Redis connection owned by each thread: about 0.1 ms. Any other broker, eager mode, or Redis options this
shortcut does not handle (key prefix, priorities) go through the normal `apply_async`.

The worker consumes these messages like any other (tested with a real worker: tests/ingress/test_worker.py).
# Reference: https://docs.celeryq.dev/en/stable/internals/protocol.html#version-2
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import uuid

_HOSTNAME = socket.gethostname()
_ORIGIN_HOST = f"@{_HOSTNAME}"
_clients: dict[str, object] = {}
_lock = threading.Lock()
_local = threading.local()
# id(app) -> (fingerprint of the broker settings, fast-path URL or None). Reading Celery's
# configuration costs ~50 us per request (layered ChainMap lookups); the fingerprint costs ~2 us and still
# sees a test or fixture switching broker / eager mode at run time.
_route_cache: dict[int, tuple[tuple, str | None]] = {}


def _redis_client(url: str):
    import redis

    client = _clients.get(url)
    if client is None:
        with _lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = redis.Redis.from_url(url)
    return client


def _fast_path_url(app) -> str | None:
    return None if app.conf.task_always_eager else redis_broker_url(app)


def redis_broker_url(app) -> str | None:
    """The broker URL when the broker is a Redis this module can write to directly, else None."""
    conf = app.conf
    url = conf.broker_url or ""
    if not url.startswith(("redis://", "rediss://")):
        return None
    options = conf.broker_transport_options or {}
    if options.get("global_keyprefix") or options.get("priority_steps") or options.get("sep"):
        return None
    return url


def _fingerprint(app) -> tuple:
    """What `_fast_path_url` depends on, read cheaply: run-time changes to the Celery configuration land in
    `conf.changes`; the rest comes from Django settings (CELERY_* namespace), which tests may override."""
    from django.conf import settings

    changes = app.conf.changes
    return (
        changes.get("broker_url"),
        changes.get("task_always_eager"),
        id(changes.get("broker_transport_options")),
        getattr(settings, "CELERY_BROKER_URL", None),
        getattr(settings, "CELERY_TASK_ALWAYS_EAGER", None),
        id(getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None)),
    )


def _cached_fast_path_url(app) -> str | None:
    key = id(app)
    fingerprint = _fingerprint(app)
    cached = _route_cache.get(key)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    url = _fast_path_url(app)
    _route_cache[key] = (fingerprint, url)
    return url


def roundtrip(url: str, *commands: tuple) -> list:
    """Send `commands` in one write on a connection owned by the calling thread (gthread workers: one per
    thread) and return their replies: one round trip for all of them. This spares redis-py's pool checkout,
    retry wrapper and command dispatch (~0.3 ms). A broken connection is dropped and the commands sent once
    more on a fresh one (so a command may run twice: callers send only commands for which that is harmless);
    a second failure is raised to the caller. An error reply raises redis' ResponseError (after every
    reply was read: the connection stays usable)."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    conns = getattr(_local, "conns", None)
    if conns is None:
        conns = _local.conns = {}
    for attempt in (1, 2):
        conn = conns.get(url)
        if conn is None:
            conn = conns[url] = _redis_client(url).connection_pool.make_connection()
        try:
            if conn._sock is None:
                conn.connect()  # redis-py connects: TLS, AUTH, SELECT of the URL's database
            sock = conn._sock
            sock.sendall(_pack(commands))
            replies = _read_replies(sock, len(commands))
        except (RedisConnectionError, RedisTimeoutError, OSError):
            conns.pop(url, None)
            conn.disconnect()
            if attempt == 2:
                raise
            continue
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise reply
        return replies
    raise AssertionError("unreachable")


_INCOMPLETE = object()


def _read_replies(sock, count: int) -> list:
    """Read `count` replies of the simple kinds our commands get (status, error, integer, bulk string, null)
    straight off the socket: redis-py's reader costs more than the round trip itself. An error reply is
    returned as a ResponseError (every reply is read, so the connection stays usable); a reply of another
    kind, or a closed connection, raises ConnectionError (the caller drops the connection)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    buf, pos, replies = b"", 0, []
    while len(replies) < count:
        reply, next_pos = _parse_reply(buf, pos)
        if reply is _INCOMPLETE:
            chunk = sock.recv(65536)
            if not chunk:
                raise RedisConnectionError("connection closed by the server")
            buf = buf[pos:] + chunk
            pos = 0
            continue
        replies.append(reply)
        pos = next_pos
    if pos != len(buf):
        raise RedisConnectionError("unexpected data after the replies")
    return replies


def _parse_reply(buf: bytes, pos: int) -> tuple:
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import ResponseError

    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE, pos
    kind, line = buf[pos : pos + 1], buf[pos + 1 : end]
    if kind == b"$":
        length = int(line)
        if length < 0:
            return None, end + 2
        stop = end + 2 + length
        if len(buf) < stop + 2:
            return _INCOMPLETE, pos
        return buf[end + 2 : stop], stop + 2
    if kind == b"+":
        return line.decode(), end + 2
    if kind == b":":
        return int(line), end + 2
    if kind == b"_":  # RESP3 null
        return None, end + 2
    if kind == b"-":
        return ResponseError(line.decode(errors="replace")), end + 2
    raise RedisConnectionError(f"unexpected reply type {kind!r}")


def _pack(commands: tuple[tuple, ...]) -> bytes:
    """The commands in the Redis protocol (RESP arrays of bulk strings). redis-py's packer spends ~15 us per
    argument on type dispatch, ten times this."""
    parts = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for arg in command:
            data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
            parts += (b"$%d\r\n" % len(data), data, b"\r\n")
    return b"".join(parts)


def _lpush(url: str, queue: str, *messages: str) -> None:
    roundtrip(url, ("LPUSH", queue, *messages))


def enqueue_task(task, args: tuple, *, queue: str) -> str:
    """Queue `task(*args)` on `queue`; return the task id."""
    url = _cached_fast_path_url(task.app)
    if url is None:
        return task.apply_async(args, queue=queue).id
    task_id, message = _message(task.name, bool(task.ignore_result), args, queue)
    _lpush(url, queue, message)
    return task_id


def enqueue_tasks(task, args_list: list[tuple], *, queue: str) -> None:
    """Queue `task(*args)` for every `args` of `args_list`: one LPUSH (one round trip) for all of them on
    the Redis fast path."""
    if not args_list:
        return
    url = _cached_fast_path_url(task.app)
    if url is None:
        for args in args_list:
            task.apply_async(args, queue=queue)
        return
    name, ignore_result = task.name, bool(task.ignore_result)
    _lpush(url, queue, *(_message(name, ignore_result, args, queue)[1] for args in args_list))


def _message(task_name: str, ignore_result: bool, args: tuple, queue: str) -> tuple[str, str]:
    """(task id, the kombu Redis envelope of a Celery protocol-2 message running `task_name(*args)`)."""
    task_id = str(uuid.uuid4())
    # Celery task message protocol 2, with the same fields as `app.amqp.as_task_v2` (built by hand: that
    # builder alone costs more than the whole LPUSH).
    headers = {
        "lang": "py",
        "task": task_name,
        "id": task_id,
        "shadow": None,
        "eta": None,
        "expires": None,
        "group": None,
        "group_index": None,
        "retries": 0,
        "timelimit": [None, None],
        "root_id": task_id,
        "parent_id": None,
        "argsrepr": repr(args),
        "kwargsrepr": "{}",
        "origin": f"{os.getpid()}{_ORIGIN_HOST}",
        "ignore_result": ignore_result,
        "replaced_task_nesting": 0,
        "stamped_headers": None,
        "stamps": {},
    }
    body = json.dumps([list(args), {}, _EMBED])
    envelope = {
        "body": base64.b64encode(body.encode("utf-8")).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            "correlation_id": task_id,
            "reply_to": "",
            "delivery_mode": 2,
            "delivery_info": {"exchange": queue, "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return task_id, json.dumps(envelope)


_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}
