"""Worker processes sharing state through a real Redis (127.0.0.1:6379, database 7, flushed
first): bindings, failed logins and configuration pushes between two `Cluster`s in one process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from onenumber.model import Binding
from onenumber.services.location import Location
from onenumber.services.replication import encode_binding, field
from onenumber.sip.auth import LoginThrottle

redis = pytest.importorskip("redis")

URL = "redis://127.0.0.1:6379/7"


class _Gate:
    def __init__(self) -> None:
        self.throttle = LoginThrottle(max_failures=3, max_usernames=10)
        self.on_login: Callable[[bool, str, str, float], None] | None = None


class _Directory:
    def __init__(self) -> None:
        self.listeners: list[Callable[[Any], None]] = []
        self.reloads = 0

    async def reload(self, store: object) -> None:
        self.reloads += 1
        for listener in self.listeners:
            listener(self)


def binding(contact: str, flow: str | None = None, expires: float | None = None) -> Binding:
    return Binding(account="1000", auth_username="1000", contact=contact,
                   expires_at=expires if expires is not None else time.time() + 300, transport="tcp" if flow else "udp",
                   source=("127.0.0.1", 5070), flow=flow)


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not shared in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair() -> AsyncIterator[list[Any]]:
    from onenumber.transport.cluster import Cluster

    client = redis.Redis(host="127.0.0.1", port=6379, db=7)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    # what a previous life of worker 1 left: a live UDP binding, and one on its (now dead) connection
    old = [binding("sip:old@127.0.0.1:5999"), binding("sip:oldtcp@127.0.0.1:5998", flow="w1.tcp-1"),
           binding("sip:expired@127.0.0.1:5997", expires=time.time() - 1)]
    client.hset("onenumber:7:bindings", mapping={field(b.account, b.key): encode_binding(b) for b in old})
    client.close()
    made = []
    for i in (0, 1):
        loc, gate, directory = Location(None), _Gate(), _Directory()
        cluster = Cluster(URL, index=i, location=loc, gate=gate, directory=directory, store=None,  # type: ignore[arg-type]
                          pump=lambda: None)
        await cluster.start(watch_config=i == 0, now=time.time())
        made.append((cluster, loc, gate, directory))
    try:
        yield made
    finally:
        for cluster, *_ in made:
            await cluster.stop()


async def test_bindings_made_on_one_worker_reach_the_other_and_redis(pair: list[Any]) -> None:
    (_, loc0, _, _), (_, loc1, _, _) = pair
    # start-up: the live binding was loaded; worker 1 dropped the one of its dead connection
    await until(lambda: [b.contact for b in loc0.get("1000")] == ["sip:old@127.0.0.1:5999"])
    assert [b.contact for b in loc1.get("1000")] == ["sip:old@127.0.0.1:5999"]
    b = binding("sip:new@127.0.0.1:5071")
    loc0.apply([b], [])
    await until(lambda: loc1.lookup("1000", b.key) == b)
    stored = redis.Redis(host="127.0.0.1", port=6379, db=7).hgetall("onenumber:7:bindings")
    assert sorted(stored) == [b"1000\x1fsip:new@127.0.0.1:5071", b"1000\x1fsip:old@127.0.0.1:5999"]
    loc1.apply([], [b])  # unregistered through the other worker
    await until(lambda: loc0.lookup("1000", b.key) is None)


async def test_failed_logins_count_across_workers(pair: list[Any]) -> None:
    (_, _, g0, _), (_, _, g1, _) = pair
    now = time.time()
    for gate in (g0, g1):  # what Gate.authenticate does on a wrong answer
        assert gate.on_login is not None
        gate.on_login(True, "127.0.0.9", "1000", now)
        gate.throttle.record_failure("127.0.0.9", "1000", now)
    await until(lambda: g0.throttle.pairs.failures(("127.0.0.9", "1000"), now) == 2
                and g1.throttle.pairs.failures(("127.0.0.9", "1000"), now) == 2)
    # the third, on either worker, blocks
    assert g0.throttle.record_failure("127.0.0.9", "1000", now)


async def test_configuration_changes_are_pushed_from_worker_0(pair: list[Any]) -> None:
    (_, _, _, d0), (_, _, _, d1) = pair
    for listener in d0.listeners:  # worker 0 reloaded after its poll saw a new revision
        listener(d0)
    await until(lambda: d1.reloads == 1)
    assert d0.reloads == 0
