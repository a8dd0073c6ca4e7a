"""Node liveness in Redis (several nodes, docs/scaling.md).

Every worker of a node refreshes the node's heartbeat key (`onenumber:<db>:node:<host:port>`,
expiring after `TTL` seconds) and keeps the node in the set `onenumber:<db>:nodes`. Worker 0
of every node watches that set: a node whose heartbeat expired is dead (kill -9, a machine
gone), and the bindings that lived on its connections (TCP/TLS/WS: the device must connect
again, to a live node) are removed everywhere, as a change of the watching node's own: from
its Location, the Redis hash (with the change published to every worker and node) and the
database. One watcher does it (a short `reap:` lock); the others only mark the node dead.

A dead node's UDP bindings stay: they are tried at the device's address directly (services/
proxy.py `node_alive`) until they expire or the device registers again at a live node.

With `BEAT` 0.5 s, `TTL` 2.5 s and a check every `CHECK` 0.5 s, a node killed with -9 has its
connection bindings removed within about 3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from ..services.replication import decode_binding
from ..sip.nodes import path_node

if TYPE_CHECKING:
    from ..model import Binding
    from ..services.location import Location

log = logging.getLogger("onenumber.nodes")

BEAT = 0.5
TTL = 2.5
CHECK = 0.5
CONNECTION_TRANSPORTS = frozenset({"tcp", "tls", "ws", "wss"})


class NodeWatch:
    def __init__(self, redis: Any, prefix: str, node: str, location: Location, *, watcher: bool,
                 bindings_key: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.node = node
        self.location = location
        self.watcher = watcher  # worker 0: watches the other nodes (every worker keeps the heartbeat)
        self.bindings_key = bindings_key
        self.nodes_key = prefix + "nodes"
        self.dead: set[str] = set()  # nodes seen dead (their UDP bindings are tried directly)
        self.stats = {"reaped_nodes": 0, "reaped_bindings": 0}
        self._tasks: list[asyncio.Task[None]] = []
        # no judging before every node had the chance to beat: at start, and after Redis was away
        # (a Redis back from a restart may hold the node set but no heartbeats yet)
        self._judge_after = time.monotonic() + TTL
        self._failing = False

    def heartbeat_key(self, node: str) -> str:
        return f"{self.prefix}node:{node}"

    def alive(self, node: str) -> bool:
        return node not in self.dead

    async def start(self) -> None:
        await self._beat_once()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._beat())]
        if self.watcher:
            self._tasks.append(loop.create_task(self._watch()))

    async def stop(self, *, last: bool) -> None:
        """`last`: the whole node stops (its connections close, their bindings go with them):
        its heartbeat goes at once, so nobody waits for it to expire."""
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if last:
            with contextlib.suppress(Exception):
                pipe = self.redis.pipeline(transaction=False)
                pipe.srem(self.nodes_key, self.node)
                pipe.delete(self.heartbeat_key(self.node))
                await pipe.execute()

    async def _beat_once(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.heartbeat_key(self.node), f"{os.getpid()} {time.time():.3f}", px=int(TTL * 1000))
        pipe.sadd(self.nodes_key, self.node)
        await pipe.execute()

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(BEAT)
            try:
                await self._beat_once()
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("node heartbeat", exc)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(CHECK)
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed("node watch", exc)

    def _failed(self, what: str, exc: Exception) -> None:
        if not self._failing:  # once per outage, not twice a second
            log.warning("redis: %s failed: %s; retrying", what, exc)
        self._failing = True
        self._judge_after = time.monotonic() + TTL + BEAT

    async def check(self, *, now: float | None = None) -> list[str]:
        """One look at the other nodes; returns those found dead now."""
        if (time.monotonic() if now is None else now) < self._judge_after:
            return []
        members = {m.decode() if isinstance(m, bytes) else str(m) for m in await self.redis.smembers(self.nodes_key)}
        others = sorted((members | self.dead) - {self.node})
        if not others:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for node in others:
            pipe.exists(self.heartbeat_key(node))
        beating = await pipe.execute()
        found = []
        for node, alive in zip(others, beating, strict=True):
            if alive:
                if node in self.dead:
                    log.info("node %s is back", node)
                    self.dead.discard(node)
                continue
            if node in members:
                found.append(node)
                await self._reap(node)
        return found

    async def _reap(self, node: str) -> None:
        self.dead.add(node)
        got = await self.redis.set(f"{self.prefix}reap:{node}", self.node, nx=True, px=2000)  # for this one reap
        if not got:  # another node does it
            return
        removed = self.reap_local(node, await self._shared_bindings(node))
        await self.redis.srem(self.nodes_key, node)
        self.stats["reaped_nodes"] += 1
        self.stats["reaped_bindings"] += removed
        log.warning("node %s is dead (no heartbeat for %.1f s): %d connection binding(s) removed",
                    node, TTL, removed)

    async def _shared_bindings(self, node: str) -> list[Binding]:
        out = []
        for value in (await self.redis.hgetall(self.bindings_key)).values():
            with contextlib.suppress(Exception):
                b = decode_binding(value)
                if b.transport in CONNECTION_TRANSPORTS and path_node(b.path) == node:
                    out.append(b)
        return out

    def reap_local(self, node: str, shared: list[Binding]) -> int:
        """Remove the dead node's connection bindings as this worker's own change (Location →
        Redis hash, published, and the database); `shared` are those the hash holds, in case this
        copy missed some."""
        loc = self.location
        known = {(b.account, b.key) for b in loc.all()}
        missing = [b for b in shared if (b.account, b.key) not in known]
        if missing:
            loc.apply_remote(missing, [])
        doomed = [b for b in loc.all() if b.transport in CONNECTION_TRANSPORTS and path_node(b.path) == node]
        return sum(1 for b in doomed if loc.remove(b.account, b.key, "node-down"))
