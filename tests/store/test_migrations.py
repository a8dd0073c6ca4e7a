"""Alembic migrations: a fresh database reaches head, reopening is a no-op, racing openers are safe."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect

from onenumber.store import Store
from onenumber.store.migrate import HEAD, current_revision, head_revision, upgrade
from onenumber.store.tables import metadata

TABLES = {
    "accounts", "dids", "devices", "bindings", "settings", "trunks", "meta", "call_history",
    "admins", "web_sessions", "api_tokens", "provisioning_links", "voicemail_messages",
}


def test_head_constant_matches_alembic() -> None:
    assert head_revision() == HEAD


async def test_fresh_database_is_migrated(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        assert await current_revision(store.engine) == HEAD
        async with store.engine.connect() as conn:
            names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert names >= TABLES | {"alembic_version"}
        assert await store.revision() == 1
        assert await upgrade(store.engine) is False  # already at head: nothing to do
    finally:
        await store.close()


async def test_migration_matches_tables_module(db_url: str) -> None:
    """The migration creates the columns tables.py declares (they must be kept in step)."""
    store = await Store.open(db_url)
    try:
        async with store.engine.connect() as conn:

            def columns(sync_conn):  # type: ignore[no-untyped-def]
                inspector = inspect(sync_conn)
                return {name: {c["name"] for c in inspector.get_columns(name)} for name in TABLES}

            found = await conn.run_sync(columns)
        for name in TABLES:
            assert found[name] == {c.name for c in metadata.tables[name].columns}, name
    finally:
        await store.close()


async def test_open_without_migrate_leaves_database_empty(db_url: str) -> None:
    store = await Store.open(db_url, migrate=False)
    try:
        assert await current_revision(store.engine) is None
    finally:
        await store.close()


async def test_concurrent_first_opens(db_url: str) -> None:
    stores = await asyncio.gather(*(Store.open(db_url) for _ in range(3)))
    try:
        for store in stores:
            assert await current_revision(store.engine) == HEAD
            assert await store.revision() == 1
    finally:
        for store in stores:
            await store.close()


async def test_voicemail_pin_column_upgrades_from_0005_keeping_the_accounts(db_url: str) -> None:
    """0006 adds accounts.voicemail_pin (NULL for every existing account) and drops it again."""
    from alembic import command
    from alembic.config import Config

    from onenumber.store.migrate import MIGRATIONS_DIR

    store = await Store.open(db_url)
    try:
        await store.admin.add_account("1000", "Alice")
        await store.admin.add_device("1000", "deskphone")
        await store.admin.update_account("1000", voicemail_pin="2468")

        def run(sync_conn, target: str) -> None:  # type: ignore[no-untyped-def]
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = sync_conn
            (command.downgrade if target == "0005" else command.upgrade)(cfg, target)

        async with store.engine.connect() as conn:
            await conn.run_sync(run, "0005")
            await conn.commit()
            cols = await conn.run_sync(lambda c: {x["name"] for x in inspect(c).get_columns("accounts")})
        assert "voicemail_pin" not in cols and await current_revision(store.engine) == "0005"
        async with store.engine.connect() as conn:
            await conn.run_sync(run, "head")
            await conn.commit()
        account = await store.admin.get_account("1000")
        assert account.display_name == "Alice" and account.voicemail_pin is None
        # the accounts table was altered, not rebuilt: its devices (ON DELETE CASCADE) are still there
        assert [d.auth_username for d in await store.admin.list_devices("1000")] == ["1000"]
    finally:
        await store.close()
