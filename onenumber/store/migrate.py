"""Bring a database to the newest schema with Alembic, on an already open async engine.

Cheap when the database is already at head (one SELECT on alembic_version), so the
server and every CLI command call it on start. Concurrent callers are serialised (a
PostgreSQL advisory lock, SQLite's write lock) so two processes starting together on a
fresh database do not both create the tables.
"""

from __future__ import annotations

import asyncio
import weakref
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from onenumber.store.db import WRITE_OPTION

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK_ID = 0x0E1E_4B3D  # arbitrary, constant: the advisory lock of OneNumber migrations


@cache
def _script() -> Any:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS_DIR))


# The newest migration in versions/. Bump it with every new migration (a test checks it
# against Alembic's own view) so the at-head check needs no Alembic import.
HEAD = "0006"


def head_revision() -> str:
    """The newest revision according to Alembic's script directory (slow: imports Alembic)."""
    head = _script().get_current_head()
    assert head is not None
    return head


def _current(sync_conn: Any) -> str | None:
    # plain SQL rather than Alembic's MigrationContext: importing Alembic costs ~100 ms on
    # every CLI command, and the table's shape is stable
    if not inspect(sync_conn).has_table("alembic_version"):
        return None
    return sync_conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def _upgrade(sync_conn: Any) -> None:
    from alembic import command
    from alembic.config import Config

    if sync_conn.dialect.name == "postgresql":
        sync_conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    if _current(sync_conn) == HEAD:  # someone else upgraded while we waited
        return
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


# Alembic keeps its running migration in module globals (alembic.op, alembic.context), so two
# migrations interleaved on one event loop would corrupt each other: one at a time per loop.
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def upgrade(engine: AsyncEngine) -> bool:
    """Upgrade to head; returns True when something was migrated."""
    if await current_revision(engine) == HEAD:
        return False
    lock = _locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock, engine.connect() as conn:
        await conn.execution_options(**{WRITE_OPTION: True})
        async with conn.begin():
            await conn.run_sync(_upgrade)
    return True
