"""Memory per binding of a server that starts holding N persisted bindings.

The registration-load measurement (`bench_register.run_memory`) reads RSS while thousands of
transactions churn between long-lived bindings, so it includes allocator fragmentation and the
nonce replay table. This one writes N bindings straight into the store, starts the server
(which restores them into `Location`), waits until it settles and reads its RSS: the memory
the server needs to *hold* N bindings. Depends on benchlib; no test code.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchlib import Dev, OneNumberServer, provision, rss_bytes

from onenumber.routing.model import Binding
from onenumber.store import Store


async def _fill(db: str, devs: list[Dev], count: int) -> None:
    store = await Store.open(db)
    try:
        now = time.time()
        batch: list[Binding] = []
        for i in range(count):
            d = devs[i % len(devs)]
            host = f"10.{i // len(devs)}.{(i // 250) % 250}.{i % 250}"
            batch.append(Binding(
                account=d.account, auth_username=d.auth_username, contact=f"sip:{d.auth_username}@{host}:5060",
                expires_at=now + 3000, transport="udp", source=(host, 5060), local=("127.0.0.1", 5090),
                user_agent="Yealink SIP-T46U 108.86.0.20", call_id=f"{i:08x}-reg@{host}", cseq=7,
            ))
            if len(batch) == 5000:
                await store.write_bindings(batch, [])
                batch = []
        if batch:
            await store.write_bindings(batch, [])
    finally:
        await store.close()


def run_memory_restart(workdir: Path, *, points: list[int], settle: float = 8.0) -> dict:
    """RSS of a freshly started server holding 0 and each of `points` bindings (10 per device)."""
    devices = max(1, -(-max(points) // 10))
    accounts = -(-devices // 8)
    out: dict = {"points": []}
    baseline = None
    for count in [0, *points]:
        server = OneNumberServer(workdir / f"restart-{count}")
        devs = provision(server.db, accounts, 8)[:devices]
        if count:
            asyncio.run(_fill(server.db, devs, count))
        server.start()
        try:
            time.sleep(settle)
            rss = rss_bytes(server.pid)
        finally:
            server.stop()
        if baseline is None:
            baseline = rss
            out["rss_empty_mib"] = round(rss / 2**20, 1)
            continue
        out["points"].append({"held": count, "rss_mib": round(rss / 2**20, 1),
                              "bytes_per_binding": round((rss - baseline) / count)})
    return out
