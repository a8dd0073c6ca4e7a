"""Configuration changes reach a running server without polling on PostgreSQL (LISTEN/NOTIFY),
and by polling the revision on SQLite."""

from __future__ import annotations

import asyncio
import time

import pytest

from onenumber.services.directory import Directory
from onenumber.store import Store
from onenumber.store.csvio import COLUMNS, import_csv

HEADER = ",".join(COLUMNS)


async def _reloaded(directory: Directory, number: str, timeout: float) -> float:
    start = time.monotonic()
    while directory.account_for(number) is None:
        if time.monotonic() - start > timeout:
            raise AssertionError(f"account {number} not loaded after {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_a_write_from_another_process_is_loaded_at_once(store: Store, db_url: str) -> None:
    directory = Directory(await store.snapshot())
    # PostgreSQL: a poll interval far longer than the test, so only the notification can wake it
    poll = 0.05 if not store.notifies else 60.0
    watcher = asyncio.get_running_loop().create_task(directory.watch(store, poll, safety_interval=60.0))
    cli = await Store.open(db_url)  # another handle, as the CLI would open
    try:
        await asyncio.sleep(0.3)  # the listener is up
        await cli.admin.add_account("4000", "Dora")
        assert await _reloaded(directory, "4000", 3.0) < 3.0
        # a CSV import bumps the revision itself, and notifies too
        await import_csv(cli, f"{HEADER}\n4001,Eve" + "," * (len(COLUMNS) - 2) + "\n")
        await _reloaded(directory, "4001", 3.0)
    finally:
        watcher.cancel()
        await cli.close()


@pytest.mark.postgres
async def test_a_rolled_back_write_notifies_no_one(postgres_database: str) -> None:
    import asyncpg

    from onenumber.store.repository import CONFIG_CHANNEL

    store = await Store.open(postgres_database)
    conn = await asyncpg.connect(postgres_database)
    got: list[str] = []
    await conn.add_listener(CONFIG_CHANNEL, lambda *args: got.append(args[2]))
    try:
        with pytest.raises(RuntimeError):
            async with store.write():
                raise RuntimeError("validation failed")
        await asyncio.sleep(0.3)
        assert got == []
        async with store.write():
            pass
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [CONFIG_CHANNEL]
    finally:
        await conn.close()
        await store.close()
