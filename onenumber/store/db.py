"""Database URLs and the async engine factory.

Users give `sqlite:///file`, `sqlite:////abs/file`, `postgresql://user@host:port/db` (or a
URL that already names `+aiosqlite` / `+asyncpg`, or a bare file path); this module turns
them into async-driver URLs and builds engines with the SQLite pragmas we rely on (WAL,
busy timeout, foreign keys) and an explicit `BEGIN IMMEDIATE` for write transactions so
concurrent writers (CLI and server) wait instead of failing. Depends on SQLAlchemy only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

DEFAULT_DATA_DIR = "./data"
SQLITE_FILE = "onenumber.sqlite3"
BUSY_TIMEOUT_MS = 10_000
# execution option that asks for BEGIN IMMEDIATE on SQLite (see _on_begin)
WRITE_OPTION = "onenumber_write"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: `--data-dir`, else $ONENUMBER_DATA_DIR, else ./data."""
    return Path(explicit or os.environ.get("ONENUMBER_DATA_DIR") or DEFAULT_DATA_DIR)


def default_url(explicit_data_dir: str | os.PathLike[str] | None = None) -> str:
    """$ONENUMBER_DB, else the SQLite file in the data directory (as a user-facing URL)."""
    env = os.environ.get("ONENUMBER_DB")
    if env:
        return env
    return f"sqlite:///{(data_dir(explicit_data_dir) / SQLITE_FILE).resolve()}"


def resolve_url(db: str | None, explicit_data_dir: str | os.PathLike[str] | None = None) -> str:
    """`--db` if given, else the default; always normalised to an async driver."""
    return normalise_url(db or default_url(explicit_data_dir))


def normalise_url(url: str) -> str:
    """Return the async-driver form of a database URL; ValueError says what is accepted."""
    url = url.strip()
    if "://" not in url:
        if not url:
            raise ValueError("empty database URL; use sqlite:///FILE or postgresql://user@host:port/db")
        # a bare path is a SQLite file
        return f"sqlite+aiosqlite:///{url}"
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(
            f"cannot parse database URL {url!r}; use sqlite:///FILE or postgresql://user@host:port/db"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    else:
        raise ValueError(f"unsupported database {backend!r}; use sqlite:///FILE or postgresql://user@host:port/db")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def create_engine(url: str) -> AsyncEngine:
    """An async engine for a (normalised or not) URL; creates a SQLite file's directory."""
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            # one shared connection, or every connection would see its own empty database
            kwargs["poolclass"] = StaticPool
        else:
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_MS / 1000}
        engine = create_async_engine(url, **kwargs)
        _sqlite_events(engine)
        return engine
    kwargs.update(pool_size=5, max_overflow=10, pool_pre_ping=True)
    return create_async_engine(url, **kwargs)


def _sqlite_events(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # take over transaction control from the driver: it would emit a deferred BEGIN
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        _set_wal(cursor)
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
        # when another process wrote in between; IMMEDIATE takes the write lock up front
        # and honours busy_timeout instead.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _set_wal(cursor: Any) -> None:
    """Switch to WAL (persistent in the file). Switching needs a moment with no other
    connection active, and SQLite does not always wait for it: retry briefly."""
    for attempt in range(50):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # the driver's OperationalError: "database is locked"
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.02)
