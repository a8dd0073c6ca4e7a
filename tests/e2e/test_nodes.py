"""End-to-end: two OneNumber nodes sharing Redis and PostgreSQL (docs/scaling.md, "Several nodes").

Node A listens on 127.0.0.2, node B on 127.0.0.3 (Linux loopback answers the whole 127/8),
each a single process (`serve --redis URL`, no workers) with its own data directory and the
same `--secret-file`. A TCP baresip registered at node B is rung by a SIPp call entering node
A: A sends the INVITE to B with B's Path entry as Route, and B relays it over the phone's TCP
connection. Then node B is killed with -9: its TCP binding leaves Redis within 5 s, and the
phone registering again at node A is rung again.

A UDP phone (SIPp) at node B is rung the same way over a TCP link between the nodes, and a
WebSocket phone on node B's HTTP port is rung with node A's media relay bridging the call.

Redis database 13 on 127.0.0.1:6379 is this file's (flushed at each test's start); the
PostgreSQL database is the session's test database (tests/conftest.py), emptied first.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .baresip import Baresip
from .harness import (
    ONENUMBER,
    Device,
    Server,
    admin_token,
    free_port,
    options_ping,
    place_call,
    run_store_work,
    start_device,
)

redis = pytest.importorskip("redis")
pytestmark = pytest.mark.postgres

REDIS_DB = 13
HOST_A = "127.0.0.2"
HOST_B = "127.0.0.3"
BINDINGS = f"onenumber:{REDIS_DB}:bindings"


async def _empty_schema(url: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute("DROP SCHEMA public CASCADE")
        await conn.execute("CREATE SCHEMA public")
    finally:
        await conn.close()


def _bindable(host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((host, 0))
        except OSError:
            return False
    return True


@dataclass
class Node(Server):
    """A Server bound to its own loopback address (the harness's Server binds 127.0.0.1)."""

    host: str = HOST_A

    @property
    def address(self) -> str:
        return f"{self.host}:{self.sip_port}"

    def start(self) -> Node:
        self.log_path = self.workdir / "server.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        env = dict(os.environ)
        env.pop("ONENUMBER_DB", None)
        self.proc = subprocess.Popen(
            [ONENUMBER, "serve", "--bind", self.host, "--sip-port", str(self.sip_port),
             "--http-port", str(self.http_port), "--data-dir", str(self.workdir), "--db", self.db,
             "--no-keepalive", *self.extra],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"node exited early:\n{self.log()}")
            if options_ping(self.sip_port, 0.2, self.host):
                return self
            time.sleep(0.1)
        raise AssertionError(f"node did not answer OPTIONS:\n{self.log()}")


class NodePhone(Baresip):
    """baresip registering at a node's own address (the helper's AOR names 127.0.0.1)."""

    def __init__(self, *args: object, node_host: str, **kw: object) -> None:
        self.node_host = node_host
        super().__init__(*args, **kw)  # type: ignore[arg-type]

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.node_host}:{self.server_port}"


@dataclass
class Cluster:
    a: Node
    b: Node
    devices: dict[str, Device]
    redis: object


def _accounts(db: str) -> dict[str, Device]:
    from onenumber.store import Store

    async def run() -> dict[str, Device]:
        store = await Store.open(db, migrate=True)
        try:
            out = {}
            for number, name in (("1000", "Alice"), ("1001", "Bob")):
                await store.admin.add_account(number, name, [])
                d = await store.admin.add_device(number, "deskphone")
                out[number] = Device(number, d.position, d.auth_username, d.secret)
            return out
        finally:
            await store.close()

    return run_store_work(run())  # type: ignore[no-any-return]


@pytest.fixture
def nodes(tmp_path: Path, postgres_database: str) -> Iterator[Cluster]:
    yield from _start_nodes(tmp_path, postgres_database)


@pytest.fixture
def nodes_tcp(tmp_path: Path, postgres_database: str) -> Iterator[Cluster]:
    """As `nodes`, but node B asks the others to reach it over TCP (`--node-uri …;transport=tcp`)."""
    yield from _start_nodes(tmp_path, postgres_database, b_transport="tcp")


@pytest.fixture
def nodes_relay(tmp_path: Path, postgres_database: str) -> Iterator[Cluster]:
    """As `nodes`, with the media relay (rtpengine) of each node on: for WebSocket phones."""
    if shutil.which("rtpengine") is None:
        pytest.skip("rtpengine is not installed")
    yield from _start_nodes(tmp_path, postgres_database, relay=True)


def _start_nodes(tmp_path: Path, postgres_database: str, *, b_transport: str = "",
                 relay: bool = False) -> Iterator[Cluster]:
    if not (_bindable(HOST_A) and _bindable(HOST_B)):
        pytest.skip("127.0.0.2 and 127.0.0.3 are not bindable here")
    asyncio.run(_empty_schema(postgres_database))
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    client.flushdb()
    devices = _accounts(postgres_database)
    token = admin_token(postgres_database)
    if not relay:  # the web phone's media relay is not needed: a kill -9 must leave no rtpengine behind
        subprocess.run([ONENUMBER, "settings", "set", "rtpengine", "off", "--db", postgres_database],
                       check=True, capture_output=True, timeout=60)
    secret = tmp_path / "cluster.secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o600)
    common = ["--redis", f"redis://127.0.0.1:6379/{REDIS_DB}", "--secret-file", str(secret)]
    a = Node(tmp_path / "node-a", db=postgres_database, sip_port=free_port(), extra=common, host=HOST_A,
             api_token=token)
    b = Node(tmp_path / "node-b", db=postgres_database, sip_port=free_port(), extra=common, host=HOST_B,
             api_token=token)
    if b_transport:
        b.extra = [*common, "--node-uri", f"sip:{HOST_B}:{b.sip_port};transport={b_transport}"]
    a.start()
    b.start()
    _settle(a, b)
    try:
        yield Cluster(a, b, devices, client)
    finally:
        b.stop()
        a.stop()
        client.close()


def _record_routes(message: str) -> list[str]:
    """The hosts of a traced message's Record-Route headers, top first."""
    import re

    return re.findall(r"^Record-Route: <sip:([0-9.]+):", message, re.MULTILINE)


def _settle(*nodes: Node, quiet: float = 1.0, timeout: float = 15.0) -> None:
    """Until no node is in overload: a start-up on a busy machine can lag the loop for a moment,
    and a REGISTER refused with 503 then is not retried by baresip for a while."""
    deadline = time.monotonic() + timeout
    calm_since = time.monotonic()
    while time.monotonic() < deadline:
        logs = [n.log() for n in nodes]
        if any(log.count("overload (") > log.count("overload over") for log in logs):
            calm_since = time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            return
        time.sleep(0.1)


def _flows(client: object) -> list[dict]:
    return [json.loads(v) for v in client.hgetall(BINDINGS).values()]  # type: ignore[attr-defined]


def _wait_binding(client: object, transport: str, node_host: str, timeout: float = 5.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for b in _flows(client):
            if b["t"] == transport and b["p"] and node_host in b["p"][0]:
                return b
        time.sleep(0.05)
    raise AssertionError(f"no {transport} binding held by {node_host} in Redis: {_flows(client)}")


def _ring(caller_node: Node, phone: Baresip, bob: Device, workdir: Path, name: str, *,
          callee_hangs_up: bool = False) -> None:
    """Bob calls 1000 through `caller_node`; the phone answers; Bob hangs up (or the phone does)."""
    scenario = "call_answered_callee_hangs_up.xml" if callee_hangs_up else "call_answered.xml"
    caller = place_call(caller_node, bob, "1000", scenario, workdir,  # type: ignore[arg-type]
                        from_user="1001", name=name, background=True)
    try:
        phone.wait_event("CALL_INCOMING", timeout=10)
        phone.accept()
        phone.wait_event("CALL_ESTABLISHED", timeout=10)
        if callee_hangs_up:
            time.sleep(0.3)
            phone.hangup()  # its BYE goes back over its flow, through the node holding it
        assert caller.wait(15) == 0, caller.describe()
        phone.wait_event("CALL_CLOSED", timeout=10)  # the caller's BYE reached it (or its own was answered)
    finally:
        caller.stop()


def test_tcp_phone_at_node_b_rung_through_node_a_then_node_b_killed(nodes: Cluster, tmp_path: Path) -> None:
    c = nodes
    alice, bob = c.devices["1000"], c.devices["1001"]
    phone = NodePhone(tmp_path / "phone-b", c.b, "1000", alice.auth_username, alice.secret, transport="tcp",
                      node_host=HOST_B)
    phone.start()
    try:
        phone.wait_registered()
        held = _wait_binding(c.redis, "tcp", HOST_B)
        assert "onflow=" in held["p"][0], held
        time.sleep(0.3)  # node A learns the binding through Redis (~ms)
        _ring(c.a, phone, bob, tmp_path / "call-1", "bob-via-a")
        _ring(c.a, phone, bob, tmp_path / "call-2", "bob-via-a-2", callee_hangs_up=True)
        # both nodes Record-Routed: the phone's route set starts at B (its flow), then A
        invites = [m for m in (tmp_path / "phone-b" / "baresip.log").read_text(errors="replace").split("#")
                   if "\nINVITE sip:" in m]
        assert invites and all(_record_routes(m)[:1] == [HOST_B] and _record_routes(m)[-1:] == [HOST_A]
                               for m in invites), invites[:1]
    finally:
        phone.stop()

    # the phone registers again at B; then B dies without a word
    phone = NodePhone(tmp_path / "phone-b2", c.b, "1000", alice.auth_username, alice.secret, transport="tcp",
                      node_host=HOST_B)
    phone.start()
    again = None
    try:
        phone.wait_registered()
        old = _wait_binding(c.redis, "tcp", HOST_B)
        assert c.b.proc is not None
        killed = time.monotonic()
        os.kill(c.b.proc.pid, signal.SIGKILL)
        c.b.proc.wait(5)
        c.b.proc = None
        while any(b["f"] == old["f"] for b in _flows(c.redis)):
            assert time.monotonic() - killed < 5.0, c.a.log()[-3000:]
            time.sleep(0.05)
        gone_after = time.monotonic() - killed
        assert f"node {HOST_B}:{c.b.sip_port} is dead" in c.a.log(), c.a.log()[-3000:]
        phone.stop()
        # the device registers again, at node A now, and is rung there
        again = NodePhone(tmp_path / "phone-a", c.a, "1000", alice.auth_username, alice.secret, transport="tcp",
                          node_host=HOST_A)
        again.start()
        again.wait_registered()
        _wait_binding(c.redis, "tcp", HOST_A)
        _ring(c.a, again, bob, tmp_path / "call-3", "bob-again")
        print(f"node B's TCP binding left Redis {gone_after:.2f} s after kill -9")
    finally:
        phone.stop()
        if again is not None:
            again.stop()


def test_udp_phone_at_node_b_rung_through_node_a_over_a_tcp_link(nodes_tcp: Cluster, tmp_path: Path) -> None:
    """A UDP phone (SIPp) registered at node B; node B wants TCP from the other nodes. The INVITE
    reaches the phone from node B's address (its NAT pinhole), ACK and BYE too."""
    c = nodes_tcp
    alice, bob = c.devices["1000"], c.devices["1001"]
    phone = start_device(c.b, alice, "dev_answer.xml", tmp_path / "peers", name="alice-at-b")  # type: ignore[arg-type]
    try:
        held = _wait_binding(c.redis, "udp", HOST_B)
        assert ";transport=tcp" in held["p"][0], held
        time.sleep(0.3)
        caller = place_call(c.a, bob, "1000", "call_answered.xml", tmp_path / "peers",  # type: ignore[arg-type]
                            from_user="1001", name="bob-at-a")
        assert caller.returncode == 0, f"{caller.describe()}\n{phone.describe()}\n{c.a.log()[-2000:]}"
        assert phone.wait(15) == 0, phone.describe()
        [invite] = phone.received("INVITE")
        vias = invite.headers("Via")
        assert f"SIP/2.0/UDP {HOST_B}:" in vias[0] and f"SIP/2.0/TCP {HOST_A}:" in vias[1], vias
        assert phone.received("ACK") and phone.received("BYE")
        [bye] = phone.received("BYE")
        assert f"{HOST_B}:" in (bye.header("Via") or ""), bye.text
    finally:
        phone.stop()


def test_websocket_phone_at_node_b_rung_through_node_a(
    nodes_relay: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A WebSocket phone (as a browser) on node B's HTTP port, rung by a UDP caller entering node A:
    node A's media relay bridges the call (the plan follows the phone's transport, not the UDP
    hop between the nodes), node B relays over the socket."""
    from . import wsua

    c = nodes_relay
    alice, bob = c.devices["1000"], c.devices["1001"]
    monkeypatch.setattr(wsua, "LOOPBACK", HOST_B)  # the helper connects to 127.0.0.1
    ua = wsua.WsUA(c.b)
    caller = None
    try:
        assert ua.register("1000", (alice.auth_username, alice.secret)).status == 200
        _wait_binding(c.redis, "ws", HOST_B)
        time.sleep(0.3)
        caller = place_call(c.a, bob, "1000", "call_answered.xml", tmp_path / "peers",  # type: ignore[arg-type]
                            from_user="1001", name="bob-at-a", background=True)
        invite = ua.wait_for(lambda m: m.method == "INVITE", timeout=10)
        vias = invite.get_all("Via")
        assert vias[0].startswith(f"SIP/2.0/WS {HOST_B}:") and f"SIP/2.0/UDP {HOST_A}:" in vias[1], vias
        assert "a=fingerprint" in invite.body or "UDP/TLS/RTP/SAVPF" in invite.body, invite.body  # bridged at A
        to_tag = uuid.uuid4().hex[:8]
        ua.respond(invite, 180, "Ringing", to_tag=to_tag)
        time.sleep(0.2)
        ua.respond(invite, 200, "OK", to_tag=to_tag, body=wsua.SDP_ANSWER)
        ack = ua.wait_for(lambda m: m.method == "ACK", timeout=5)
        assert ack.get("Call-ID") == invite.get("Call-ID")
        bye = ua.wait_for(lambda m: m.method == "BYE", timeout=5)
        ua.respond(bye, 200, "OK")
        assert caller.wait(10) == 0, caller.describe() + c.a.log()[-3000:]
    finally:
        if caller is not None:
            caller.stop()
        ua.close()
