"""Databases for tests: a SQLite file, or a fresh schema in the local PostgreSQL (skipped where unreachable), and
the `db` fixture that runs a test on both."""

from __future__ import annotations

import uuid

import pytest

PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=test"


def postgres_url() -> str:
    """A fresh schema in the local `test` database; skips when PostgreSQL is not reachable."""
    pytest.importorskip("psycopg")
    import psycopg

    schema = f"fl_test_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(PG_DSN, connect_timeout=3, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 database test not reachable ({exc})")
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"


def drop_schema(url: str) -> None:
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    """A database URL of each kind: a SQLite file, then a fresh PostgreSQL schema (dropped afterwards)."""
    if request.param == "sqlite":
        yield str(tmp_path / "catalog.db")
        return
    url = postgres_url()
    yield url
    drop_schema(url)
