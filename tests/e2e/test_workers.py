"""End-to-end: `serve --workers 2 --redis URL` (docs/scaling.md).

With SO_REUSEPORT the kernel picks the worker from a hash of the peer's address, which a
test cannot choose; so each worker also listens on a port of its own here (the hidden
`--worker-port-base`, worker N on base + N), and a peer "pinned" to a worker talks to that
port. Redis databases 7 and 8 on 127.0.0.1:6379 are this file's, flushed at each test's start.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .harness import (
    LOOPBACK,
    RawUA,
    Server,
    SippPeer,
    add_accounts,
    free_port,
    options_ping,
    place_call,
    start_device,
)

redis = pytest.importorskip("redis")


@dataclass
class Pinned:
    """The server as seen through one worker's own port (what run_sipp and RawUA use)."""

    server: Server
    sip_port: int

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def workdir(self) -> Path:
        return self.server.workdir


@dataclass
class Workers:
    server: Server
    base: int
    db: int

    def pin(self, index: int) -> Pinned:
        return Pinned(self.server, self.base + index)

    def wait_config(self, timeout: float = 10.0) -> None:
        """Both workers loaded the latest configuration revision (worker 1 told through Redis)."""
        import sqlite3

        with sqlite3.connect(self.server.db.removeprefix("sqlite:///")) as conn:
            want = int(conn.execute("SELECT revision FROM meta WHERE id = 1").fetchone()[0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.server.log()
            if all(any(int(r) >= want for r in re.findall(
                    rf"onenumber.directory w{i}: configuration reloaded \(revision (\d+)\)", log)) for i in (0, 1)):
                return
            time.sleep(0.05)
        raise AssertionError(f"the workers did not both load revision {want}:\n{self.server.log()[-3000:]}")


def start_workers(tmp_path: Path, db: int) -> Workers:
    client = redis.Redis(host=LOOPBACK, port=6379, db=db)
    client.flushdb()
    client.close()
    base = free_port(span=2)
    server = Server(tmp_path / "server", extra=[
        "--workers", "2", "--redis", f"redis://{LOOPBACK}:6379/{db}", "--worker-port-base", str(base)])
    server.start()
    deadline = time.monotonic() + 20
    while not (options_ping(base, 0.2) and options_ping(base + 1, 0.2)):
        assert time.monotonic() < deadline, f"a worker did not come up:\n{server.log()}"
        time.sleep(0.1)
    return Workers(server, base, db)


@pytest.fixture
def workers_calls(tmp_path: Path) -> Iterator[Workers]:
    w = start_workers(tmp_path, 7)
    try:
        yield w
    finally:
        w.server.stop()


@pytest.fixture
def workers_auth(tmp_path: Path) -> Iterator[Workers]:
    w = start_workers(tmp_path, 8)
    try:
        yield w
    finally:
        w.server.stop()


def _branch_worker(via: str) -> int:
    m = re.search(r"branch=z9hG4bK(?:on[^.;,\s]*\.)?([0-9a-f]{8})", via)
    assert m, via
    return int(m.group(1)[6:8], 16)


def test_registered_at_one_worker_rung_by_a_call_entering_the_other(workers_calls: Workers, tmp_path: Path) -> None:
    w = workers_calls
    made = add_accounts(w.server, [("1000", "Alice", 1), ("1001", "Bob", 1)])
    w.wait_config()
    alice, bob = made["1000"][0], made["1001"][0]
    peers: list[SippPeer] = []
    try:
        for callee_worker, caller_worker in ((0, 1), (1, 0)):
            work = tmp_path / f"peers-{callee_worker}{caller_worker}"
            # the phone registers through one worker...
            phone = start_device(w.pin(callee_worker), alice, "dev_answer.xml", work,  # type: ignore[arg-type]
                                 name=f"alice-{callee_worker}")
            peers.append(phone)
            # ...the call enters through the other, which learnt the binding through Redis
            time.sleep(0.3)
            caller = place_call(w.pin(caller_worker), bob, "1000", "call_answered.xml", work,  # type: ignore[arg-type]
                                from_user="1001", name=f"bob-{caller_worker}")
            log = w.server.log()[-4000:]
            assert caller.returncode == 0, f"{caller.describe()}\n{phone.describe()}\n{log}"
            assert phone.wait(15) == 0, f"{phone.describe()}\n{log}"
            [invite] = phone.received("INVITE")
            # the INVITE left the worker the call entered (its branch names it), not the registrar's
            assert _branch_worker(invite.header("Via") or "") == caller_worker, invite.text
            assert phone.received("ACK") and phone.received("BYE")
        # both phones' bindings are in Redis (the first one's SIPp has ended, its binding lives on)
        stored = redis.Redis(host=LOOPBACK, port=6379, db=w.db).hgetall("onenumber:7:bindings")
        assert len(stored) == 2 and all(k.startswith(b"1000\x1f") for k in stored), stored
    finally:
        for p in peers:
            p.stop()


def test_brute_force_spread_over_workers_is_blocked_after_the_configured_tries(workers_auth: Workers) -> None:
    w = workers_auth
    made = add_accounts(w.server, [("1000", "Alice", 1)])
    w.server.cli("settings", "set", "auth_max_failures", "3")
    w.wait_config()
    alice = made["1000"][0]
    statuses = []
    with RawUA(w.pin(0)) as ua0, RawUA(w.pin(1)) as ua1:  # type: ignore[arg-type]
        uas = (ua0, ua1)
        for attempt in range(4):  # wrong answers, alternating between the workers
            reply = uas[attempt % 2].register(alice.account, auth=(alice.auth_username, "not-the-password"))
            statuses.append((reply.status, reply.reason))
            time.sleep(0.1)  # the failure reaches the other worker through Redis (~ms)
        # as with one process: the 3rd wrong answer is refused, and the address stays blocked
        assert [s for s, _ in statuses] == [401, 401, 403, 403], statuses
        assert "too many failed attempts" in statuses[2][1]
        for ua in uas:  # even the right password, on either worker
            reply = ua.register(alice.account, auth=(alice.auth_username, alice.secret))
            assert reply.status == 403 and "too many failed attempts" in reply.reason, (reply.status, reply.reason)


def test_tcp_device_held_by_one_worker_rung_through_the_other(workers_calls: Workers, tmp_path: Path) -> None:
    """The INVITE must leave over the connection worker 0 holds: worker 1 hands it over, and the
    phone's answers, which arrive on that connection at worker 0, are handed back."""
    from .baresip import Baresip

    w = workers_calls
    made = add_accounts(w.server, [("1000", "Alice", 1), ("1001", "Bob", 1)])
    w.wait_config()
    alice, bob = made["1000"][0], made["1001"][0]
    phone = Baresip(tmp_path / "baresip-tcp", w.pin(0), "1000", alice.auth_username, alice.secret, transport="tcp")
    phone.start()
    caller = None
    try:
        phone.wait_registered()
        [binding] = w.server.wait_bindings("1000", 1)
        assert binding["transport"] == "tcp", binding
        time.sleep(0.3)
        caller = place_call(w.pin(1), bob, "1000", "call_answered.xml", tmp_path / "peers",  # type: ignore[arg-type]
                            from_user="1001", name="bob", background=True)
        phone.wait_event("CALL_INCOMING", timeout=10)
        phone.accept()
        phone.wait_event("CALL_ESTABLISHED", timeout=10)
        assert caller.wait(15) == 0, f"{caller.describe()}\n{w.server.log()[-3000:]}"
        phone.wait_event("CALL_CLOSED", timeout=10)  # the caller's BYE reached it over TCP, through worker 0
    finally:
        if caller is not None:
            caller.stop()
        phone.stop()
    w.server.stop()  # the workers say at stop what they handed over
    log = w.server.log()
    sends = re.search(r"workers w1: worker link: (\d+) message\(s\) handed", log)  # INVITE, ACK, BYE
    answers = re.search(r"workers w0: worker link: (\d+) message\(s\) handed", log)  # 180, 200s
    assert sends and int(sends.group(1)) >= 3 and answers and int(answers.group(1)) >= 2, log[-3000:]


def test_a_dead_worker_is_restarted_and_all_stop_on_sigterm(workers_calls: Workers) -> None:
    import os
    import signal

    w = workers_calls
    pids = {int(i): int(p) for i, p in re.findall(r"worker (\d) started \(pid (\d+)\)", w.server.log())}
    assert set(pids) == {0, 1}, w.server.log()
    os.kill(pids[1], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while not re.search(rf"worker 1 started \(pid (?!{pids[1]}\))\d+\)", w.server.log()):
        assert time.monotonic() < deadline, w.server.log()[-3000:]
        time.sleep(0.1)
    assert f"worker 1 (pid {pids[1]}) died" in w.server.log()
    while not options_ping(w.base + 1, 0.2):  # the new worker 1 serves
        assert time.monotonic() < deadline, w.server.log()[-3000:]
        time.sleep(0.1)
    new = int(re.findall(r"worker 1 started \(pid (\d+)\)", w.server.log())[-1])
    w.server.stop()  # SIGTERM to the supervisor: it stops both workers by PID
    for pid in (pids[0], new):
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"worker pid {pid} still running")


def test_kill_9_of_the_worker_holding_a_tcp_phone_removes_its_binding_from_redis(
    workers_calls: Workers, tmp_path: Path
) -> None:
    import os
    import signal

    from .baresip import Baresip

    w = workers_calls
    made = add_accounts(w.server, [("1000", "Alice", 1)])
    w.wait_config()
    alice = made["1000"][0]
    client = redis.Redis(host=LOOPBACK, port=6379, db=w.db)
    phone = Baresip(tmp_path / "baresip-tcp", w.pin(1), "1000", alice.auth_username, alice.secret, transport="tcp")
    phone.start()
    try:
        phone.wait_registered()
        deadline = time.monotonic() + 5
        while not client.hgetall("onenumber:7:bindings"):
            assert time.monotonic() < deadline, "the TCP binding never reached Redis"
            time.sleep(0.05)
        [(_, value)] = client.hgetall("onenumber:7:bindings").items()
        old_flow = json.loads(value)["f"]
        assert old_flow.startswith("w1."), value
        pids = {int(i): int(p) for i, p in re.findall(r"worker (\d) started \(pid (\d+)\)", w.server.log())}
        killed = time.monotonic()
        # worker 1, not 0: worker 0 runs the own rtpengine, which a kill -9 would leave behind
        os.kill(pids[1], signal.SIGKILL)
        # gone within 5 s: the supervisor restarts worker 1, which removes what its previous life held
        while any(json.loads(v)["f"] == old_flow for v in client.hgetall("onenumber:7:bindings").values()):
            assert time.monotonic() - killed < 5.0, w.server.log()[-3000:]
            time.sleep(0.05)
    finally:
        phone.stop()
        client.close()


def _scrape(server: Server) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://{LOOPBACK}:{server.http_port}/metrics", timeout=5) as r:
        return r.read().decode()


def _metric(text: str, name: str) -> float | None:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def test_metrics_count_what_every_worker_saw(workers_calls: Workers) -> None:
    """/metrics is served by worker 0 but sums every worker's numbers (api/metrics_shared.py);
    a killed worker's counters stay in the totals, its live gauges leave."""
    import os
    import signal

    w = workers_calls
    made = add_accounts(w.server, [("1000", "Alice", 1)])
    w.server.cli("settings", "set", "auth_max_failures", "50")
    w.wait_config()
    alice = made["1000"][0]
    with RawUA(w.pin(0)) as ua0, RawUA(w.pin(1)) as ua1:  # type: ignore[arg-type]
        for ua, tries in ((ua0, 2), (ua1, 3)):
            for _ in range(tries):
                assert ua.register(alice.account, auth=(alice.auth_username, "wrong")).status == 401
        assert ua1.register(alice.account, auth=(alice.auth_username, alice.secret)).status == 200
    # worker 1 writes its numbers about once a second
    deadline = time.monotonic() + 5
    while (_metric(text := _scrape(w.server), "onenumber_auth_failures_total") != 5
           or _metric(text, 'onenumber_bindings{transport="udp"}') != 1):  # the binding reached worker 0
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    assert (_metric(text, 'onenumber_sip_requests_total{method="REGISTER"}') or 0) >= 2 * 6
    assert _metric(text, 'onenumber_bindings{transport="udp"}') == 1  # each worker's copy: not summed
    assert _metric(text, "onenumber_calls_active") == 0 and _metric(text, "onenumber_dialogs") == 0
    assert 'side="server"' in text and "pid=" not in text

    pids = {int(i): int(p) for i, p in re.findall(r"worker (\d) started \(pid (\d+)\)", w.server.log())}
    files = w.server.workdir / "run" / "metrics"
    assert (files / f"counter_{pids[1]}.db").exists() and (files / f"gauge_livesum_{pids[1]}.db").exists()
    os.kill(pids[1], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while (files / f"gauge_livesum_{pids[1]}.db").exists() or not options_ping(w.base + 1, 0.2):
        assert time.monotonic() < deadline, w.server.log()[-3000:]
        time.sleep(0.1)
    text = _scrape(w.server)
    assert _metric(text, "onenumber_auth_failures_total") == 5  # the dead worker's 3 still count
    assert (files / f"counter_{pids[1]}.db").exists()
