"""Two nodes (each a worker 0) sharing a real Redis (127.0.0.1:6379, database 14, flushed
first): bindings cross between them, and a node whose heartbeat expired loses its connection
bindings everywhere (transport/nodes.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from onenumber.model import Binding
from onenumber.services.location import Location
from onenumber.sip.nodes import Flow, NodeAddress, node_path

from .test_cluster import _Directory, _Gate

redis = pytest.importorskip("redis")

DB = 14
URL = f"redis://127.0.0.1:6379/{DB}"
SECRET = b"n" * 32
A, B = NodeAddress("127.0.0.2", 5060), NodeAddress("127.0.0.3", 5060)


def held_by(node: NodeAddress, contact: str, transport: str, flow: str | None) -> Binding:
    port = 40000 + len(contact)
    return Binding(account="1000", auth_username="1000", contact=contact, expires_at=time.time() + 300,
                   transport=transport, source=("127.0.0.1", port), flow=flow,
                   path=(node_path(node, SECRET, Flow(transport, "127.0.0.1", port, flow)),))


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def two_nodes() -> AsyncIterator[list[Any]]:
    from onenumber.transport.cluster import Cluster
    from onenumber.transport.nodes import NodeWatch

    client = redis.Redis(host="127.0.0.1", port=6379, db=DB)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    client.close()
    made = []
    for node in (A, B):
        loc = Location(None)
        cluster = Cluster(URL, index=0, location=loc, gate=_Gate(), directory=_Directory(), store=None,  # type: ignore[arg-type]
                          pump=lambda: None, node=node.node_id)
        await cluster.start(watch_config=True, now=time.time())
        watch = NodeWatch(cluster.redis, cluster.prefix, node.node_id, loc, watcher=True,
                          bindings_key=cluster.bindings_key)
        await watch.start()
        made.append((cluster, loc, watch))
    try:
        yield made
    finally:
        for cluster, _, watch in made:
            await watch.stop(last=True)
            await cluster.stop()


async def test_a_dead_nodes_connection_bindings_are_removed_everywhere(two_nodes: list[Any]) -> None:
    (cluster_a, loc_a, watch_a), (_, loc_b, watch_b) = two_nodes
    tcp = held_by(B, "sip:tcp@127.0.0.1:1;transport=tcp", "tcp", "w0.1n1.tcp-1")
    udp = held_by(B, "sip:udp@127.0.0.1:2", "udp", None)
    mine = held_by(A, "sip:mine@127.0.0.1:3;transport=tcp", "tcp", "w0.2n2.tcp-1")
    loc_b.apply([tcp, udp], [])
    loc_a.apply([mine], [])
    # both are worker 0 of their node: each applies the other's changes all the same
    await until(lambda: len(loc_a.get("1000")) == 3 and len(loc_b.get("1000")) == 3)
    assert await watch_a.check(now=float("inf")) == [] and watch_a.alive(B.node_id)
    # node B dies: its tasks stop, its heartbeat is left to expire (here: taken away)
    await watch_b.stop(last=False)
    client = redis.Redis(host="127.0.0.1", port=6379, db=DB)
    try:
        client.delete(watch_b.heartbeat_key(B.node_id))
        assert await watch_a.check() == []  # just started: every node gets a TTL to beat first
        assert await watch_a.check(now=float("inf")) == [B.node_id]
        assert not watch_a.alive(B.node_id)
        assert {b.contact for b in loc_a.get("1000")} == {udp.contact, mine.contact}  # UDP stays
        await until(lambda: len(client.hgetall(cluster_a.bindings_key)) == 2)
        assert client.sismember(cluster_a.prefix + "nodes", B.node_id) == 0
        # B comes back: alive again
        await watch_b._beat_once()
        assert await watch_a.check(now=float("inf")) == [] and watch_a.alive(B.node_id)
    finally:
        client.close()


async def test_a_restarted_node_drops_only_its_own_previous_connections(two_nodes: list[Any]) -> None:
    from onenumber.transport.cluster import Cluster

    (_, loc_a, _), (_, loc_b, _) = two_nodes
    theirs = held_by(B, "sip:b@127.0.0.1:1;transport=tcp", "tcp", "w0.1n1.tcp-1")
    old_mine = held_by(A, "sip:a@127.0.0.1:2;transport=tcp", "tcp", "w0.2n2.tcp-1")
    loc_b.apply([theirs], [])
    loc_a.apply([old_mine], [])
    await until(lambda: len(loc_a.get("1000")) == 2 and len(loc_b.get("1000")) == 2)
    # a new life of node A's worker 0: the connection of its previous life is gone, B's is not
    loc = Location(None)
    again = Cluster(URL, index=0, location=loc, gate=_Gate(), directory=_Directory(), store=None,  # type: ignore[arg-type]
                    pump=lambda: None, node=A.node_id)
    await again.start(watch_config=False, now=time.time())
    try:
        assert [b.contact for b in loc.get("1000")] == [theirs.contact]
        await until(lambda: [b.contact for b in loc_b.get("1000")] == [theirs.contact])
    finally:
        await again.stop()
