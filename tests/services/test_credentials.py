"""The server's scheduled rotation task: it rotates what is due and survives a failing round."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from onenumber.services.credentials import rotate_due_once, rotation_loop
from onenumber.store import Store


async def test_rotation_loop_rotates_due_secrets(tmp_path: Path) -> None:
    store = await Store.open(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    try:
        await store.admin.add_account("1000", "Alice")
        old = await store.admin.add_device("1000", "deskphone", now=time.time() - 3 * 86400)
        assert await rotate_due_once(store) == 0  # credential_max_age_days is 0: never
        await store.admin.set_setting("credential_max_age_days", "2")
        task = asyncio.create_task(rotation_loop(store, interval=0.05, first=0.01))
        try:
            for _ in range(100):  # bounded: up to ~5 s
                await asyncio.sleep(0.05)
                if (await store.admin.get_device("1000", 0)).secret != old.secret:
                    break
        finally:
            task.cancel()
        device = await store.admin.get_device("1000", 0)
        assert device.secret != old.secret and device.previous_secret == old.secret
    finally:
        await store.close()
