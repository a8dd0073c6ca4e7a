"""URL normalisation, the default database location, SQLite connection settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from onenumber.store.db import create_engine, default_url, display_url, normalise_url, resolve_url


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///data/x.sqlite3", "sqlite+aiosqlite:///data/x.sqlite3"),
        ("sqlite:////abs/x.sqlite3", "sqlite+aiosqlite:////abs/x.sqlite3"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        ("postgresql://u@h:5433/db", "postgresql+asyncpg://u@h:5433/db"),
        ("postgres://u:pw@h/db", "postgresql+asyncpg://u:pw@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("./some/file.sqlite3", "sqlite+aiosqlite:///./some/file.sqlite3"),
    ],
)
def test_normalise_url(given: str, expected: str) -> None:
    assert normalise_url(given) == expected


@pytest.mark.parametrize("bad", ["mysql://u@h/db", "", "oracle://x"])
def test_normalise_url_refuses_other_databases(bad: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite:///FILE or postgresql://"):
        normalise_url(bad)


def test_display_url_hides_password() -> None:
    assert "secret" not in display_url("postgresql+asyncpg://u:secret@h/db")


def test_default_url_env_and_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ONENUMBER_DB", raising=False)
    monkeypatch.delenv("ONENUMBER_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_url() == f"sqlite:///{tmp_path / 'data' / 'onenumber.sqlite3'}"
    assert default_url(tmp_path / "d") == f"sqlite:///{tmp_path / 'd' / 'onenumber.sqlite3'}"
    monkeypatch.setenv("ONENUMBER_DATA_DIR", str(tmp_path / "env"))
    assert default_url() == f"sqlite:///{tmp_path / 'env' / 'onenumber.sqlite3'}"
    monkeypatch.setenv("ONENUMBER_DB", "postgresql://x@y/z")
    assert default_url(tmp_path) == "postgresql://x@y/z"
    assert resolve_url(None) == "postgresql+asyncpg://x@y/z"
    assert resolve_url("sqlite:///a.db") == "sqlite+aiosqlite:///a.db"


async def test_sqlite_pragmas_and_directory_creation(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "x.sqlite3"
    engine = create_engine(f"sqlite:///{path}")
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar() == 1
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() >= 1000
    finally:
        await engine.dispose()
    assert path.exists()
