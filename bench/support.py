"""Helpers shared by the benchmarks: a database of their own, manage.py in a production-like environment."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` when it does not exist yet (benchmarks use their own)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin_url = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def production_like_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """The environment of a production run (DEBUG off, every secret set, so the system checks pass) for the
    app under gunicorn. Throwaway values: benchmarks only. SQLite in `tmp` when DATABASE_URL is unset."""
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG"}}
    env.update(
        DJANGO_SETTINGS_MODULE="retention_app.settings",
        DEBUG="0",
        SECRET_KEY="bench-" + "x" * 50,  # the seeding shell and gunicorn must sign tokens alike
        SHOPIFY_API_KEY="bench-key",
        SHOPIFY_API_SECRET="bench-secret",  # noqa: S106 (throwaway benchmark value)
        FIELD_ENCRYPTION_KEYS=base64.urlsafe_b64encode(hashlib.sha256(b"bench").digest()).decode(),
        ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        APP_URL="https://boomerang.example",  # production-like settings pass the system checks
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    env.setdefault("BOOMERANG_VAR_DIR", str(tmp / "var"))
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    """Run `manage.py <args>` in `env`; stop the benchmark with its output when it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def wrk(url: str, lua: Path, seconds: int, connections: int, args: list[str] | None = None) -> dict:
    """Run wrk with a Lua script that prints one `BENCHJSON {...}` summary line; return that summary."""
    import json

    cmd = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency", "-s", str(lua), url]
    if args:
        cmd += ["--", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCHJSON ")), None)
    if line is None:
        raise SystemExit(f"wrk gave no summary:\n{out}")
    return json.loads(line.removeprefix("BENCHJSON "))
