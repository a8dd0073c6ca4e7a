"""Fixtures shared by the whole suite: only generic ones belong here.

`db_url` gives each test a fresh, empty database URL (user form, not yet migrated), once
for SQLite (a temporary file) and once for PostgreSQL. PostgreSQL: a uniquely named
database is created per test session on $ONENUMBER_TEST_PG (default
postgresql://postgres@127.0.0.1:5432/postgres) and dropped afterwards; each test gets it
with an empty schema. When PostgreSQL is unreachable those tests are skipped, unless
ONENUMBER_REQUIRE_POSTGRES=1 (as on CI), which makes it a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("ONENUMBER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_url(database: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


async def _pg_execute(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (its URL), dropped at the end."""
    name = f"onenumber_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_pg_execute(PG_ADMIN_URL, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable, refused, auth: all mean "no PostgreSQL here"
        message = f"PostgreSQL is not usable at {PG_ADMIN_URL}: {exc!r}"
        if os.environ.get("ONENUMBER_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " (ONENUMBER_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_pg_execute(PG_ADMIN_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL: a SQLite file, or the session's PostgreSQL database, emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'onenumber.sqlite3'}"
    url: str = request.getfixturevalue("postgres_database")
    asyncio.run(_pg_execute(url, "DROP SCHEMA public CASCADE", "CREATE SCHEMA public"))
    return url
