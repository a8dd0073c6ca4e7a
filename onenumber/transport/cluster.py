"""Worker processes sharing state through Redis (`--redis URL`, redis-py asyncio).

- **Bindings**: every worker keeps its `Location` in memory (the call path never waits on
  Redis). Its own changes are written in batches to one hash and published on a channel;
  the others apply them to their copy (`Location.apply_remote`). A worker starting reads the
  hash, and drops the bindings of connections its previous life held (dead with it).
- **Failed logins**: published and counted by every worker's `LoginThrottle`, so a brute
  force spread over the workers is stopped after the same number of tries.
- **Configuration**: worker 0 watches the database revision; when it reloads it publishes,
  and the others reload at once instead of polling.

Pub/sub channels are not per database in Redis, so names carry the database number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..services.replication import (
    decode_auth,
    decode_binding,
    decode_changes,
    encode_auth,
    encode_binding,
    encode_changes,
    field,
    flow_prefix,
    sender_id,
)
from ..sip.nodes import path_node

if TYPE_CHECKING:
    from ..model import Binding
    from ..services.directory import Directory
    from ..services.gate import Gate
    from ..services.location import Location
    from ..store import Store

log = logging.getLogger("onenumber.cluster")


class Cluster:
    def __init__(
        self, url: str, *, index: int, location: Location, gate: Gate, directory: Directory, store: Store,
        pump: Callable[[], None], node: str | None = None,
    ) -> None:
        import redis.asyncio as aioredis

        self.redis: Any = aioredis.from_url(url)
        db = int(self.redis.connection_pool.connection_kwargs.get("db", 0) or 0)
        self.prefix = f"onenumber:{db}:"
        self.bindings_key = self.prefix + "bindings"
        self.ch_location = self.prefix + "location"
        self.ch_auth = self.prefix + "auth"
        self.ch_config = self.prefix + "config"
        self.index = index
        self.location = location
        self.gate = gate
        self.directory = directory
        self.store = store
        self.pump = pump
        self.node = node  # several nodes: this node's id; bindings other nodes hold are never "mine"
        self.sender = sender_id(index, node)  # what this worker publishes as (and ignores when it comes back)
        self._wake = asyncio.Event()
        self._auth_out: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = {"published": 0, "applied": 0, "errors": 0}

    async def start(self, *, watch_config: bool, now: float) -> int:
        """Subscribe, load the shared bindings, hook the location and the gate; start the tasks.
        Returns how many bindings came from Redis."""
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.ch_location, self.ch_auth, self.ch_config)  # before reading: miss nothing
        loaded, dead, own_dead = [], [], []
        mine = flow_prefix(self.index)
        here = (None, self.node)

        def held_here(b: Binding) -> bool:  # a connection of this worker (of this node)
            return bool(b.flow and b.flow.startswith(mine)) and path_node(b.path) in here

        for name, value in (await self.redis.hgetall(self.bindings_key)).items():
            try:
                b = decode_binding(value)
            except Exception:
                dead.append(name)
                continue
            if b.expires_at <= now:
                dead.append(name)
            elif held_here(b):
                own_dead.append(b)  # a connection of this worker's previous life: gone with it
            else:
                loaded.append(b)
        if dead:
            await self.redis.hdel(self.bindings_key, *dead)
        loc = self.location
        loc.apply_remote(loaded, [])
        loc.replicate = True
        loc.janitor = self.index == 0  # the others expire only their own bindings (one delete, not N)
        loc.on_outgoing = self._wake.set
        loc.apply_remote(own_dead, [])
        # removed as this worker's own change, so the other workers forget them too; also those
        # the database gave back (written before the crash, never removed)
        own_dead = [b for b in loc.all() if held_here(b)]
        for b in own_dead:
            loc.remove(b.account, b.key, "connection-closed")
        if own_dead:
            log.info("%d binding(s) on connections of this worker's previous life removed", len(own_dead))
        self.gate.on_login = self._login
        if watch_config:
            self.directory.listeners.append(self._config_changed)
        self._tasks = [asyncio.get_running_loop().create_task(self._writer()),
                       asyncio.get_running_loop().create_task(self._reader(pubsub))]
        if own_dead:
            self._wake.set()
        return len(loaded)

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._flush()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.redis.aclose()

    # ------------------------------------------------------------------ out
    def _login(self, failed: bool, address: str, username: str, now: float) -> None:
        self._auth_out.append(encode_auth(self.sender, failed, address, username, now))
        self._wake.set()

    def _config_changed(self, directory: Directory) -> None:
        self._auth_out.append("cfg")  # sent by the writer, in order with the rest
        self._wake.set()

    async def _flush(self) -> None:
        loc = self.location
        ups = list(loc.outgoing_up.values())
        dels = list(loc.outgoing_del)
        auth = self._auth_out
        if not ups and not dels and not auth:
            return
        loc.outgoing_up = {}
        loc.outgoing_del = set()
        self._auth_out = []
        pipe = self.redis.pipeline(transaction=False)
        if ups:
            pipe.hset(self.bindings_key, mapping={field(b.account, b.key): encode_binding(b) for b in ups})
        if dels:
            pipe.hdel(self.bindings_key, *(field(a, k) for a, k in dels))
        if ups or dels:
            pipe.publish(self.ch_location, encode_changes(self.sender, ups, dels))
        for message in auth:
            if message == "cfg":
                pipe.publish(self.ch_config, str(self.sender))
            else:
                pipe.publish(self.ch_auth, message)
        try:
            await pipe.execute()
            self.stats["published"] += 1
        except Exception as exc:
            self.stats["errors"] += 1
            log.warning("redis: could not share %d binding change(s): %s; retrying", len(ups) + len(dels), exc)
            for b in ups:
                loc.outgoing_up.setdefault((b.account, b.key), b)
            loc.outgoing_del.update(d for d in dels if d not in loc.outgoing_up)
            await asyncio.sleep(1.0)
            self._wake.set()

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(0.002)  # batch what the same burst brings
            await self._flush()

    # ------------------------------------------------------------------ in
    async def _reader(self, pubsub: Any) -> None:
        while True:
            try:
                async for message in pubsub.listen():
                    self._handle(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: keep serving from the local copy, retry
                self.stats["errors"] += 1
                log.warning("redis subscription lost: %s; retrying", exc)
                await asyncio.sleep(1.0)
                with contextlib.suppress(Exception):
                    await pubsub.subscribe(self.ch_location, self.ch_auth, self.ch_config)

    def _handle(self, channel: bytes, data: bytes) -> None:
        name = channel.decode()
        try:
            if name == self.ch_location:
                worker, ups, dels = decode_changes(data)
                if worker == self.sender:
                    return
                self.location.apply_remote(ups, dels)
            elif name == self.ch_auth:
                worker, failed, address, username, now = decode_auth(data)
                if worker == self.sender:
                    return
                throttle = self.gate.throttle
                if failed:
                    throttle.record_failure(address, username, now)
                else:
                    throttle.record_success(address, username, now)
            elif name == self.ch_config:
                if data.decode() == str(self.sender):
                    return
                asyncio.get_running_loop().create_task(self._reload())
                return
            self.stats["applied"] += 1
            self.pump()  # a listener (presence) may have something to send
        except Exception:
            log.exception("bad message on %s", name)

    async def _reload(self) -> None:
        try:
            await self.directory.reload(self.store)
        except Exception:
            log.exception("could not reload the configuration")
        self.pump()


