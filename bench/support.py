"""Helpers shared by the benchmarks."""

from __future__ import annotations


def ensure_postgres_database(url: str) -> None:
    """Create the PostgreSQL database named in `url` when it does not exist yet (benchmarks use their own)."""
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
