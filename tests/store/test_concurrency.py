"""Two handles writing at once (the CLI's configuration writes while the server writes
bindings through) must wait for each other, never fail with "database is locked"."""

from __future__ import annotations

import asyncio
import time

from onenumber.routing.model import Binding
from onenumber.store import Store


async def test_config_and_binding_writers_interleave(db_url: str) -> None:
    server = await Store.open(db_url)
    cli = await Store.open(db_url)
    try:
        now = time.time()

        async def server_writes() -> None:
            for round_ in range(20):
                batch = [
                    Binding(str(3000 + i), str(3000 + i), f"sip:{i}@10.0.0.1:{5000 + round_}", now + 60, "udp",
                            ("10.0.0.1", 5000 + round_))
                    for i in range(50)
                ]  # fmt: skip
                await server.write_bindings(batch, [])
                await server.snapshot()

        async def cli_writes() -> None:
            for i in range(20):
                await cli.admin.add_account(str(1000 + i), f"User {i}")
                await cli.admin.add_device(str(1000 + i), "deskphone")

        revision = await server.revision()
        await asyncio.gather(server_writes(), cli_writes())
        assert len(await server.load_bindings(now)) == 20 * 50
        assert len((await server.snapshot()).accounts) == 20
        assert await server.revision() == revision + 40
    finally:
        await cli.close()
        await server.close()
