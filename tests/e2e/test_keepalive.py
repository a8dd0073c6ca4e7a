"""End-to-end keepalive (issue 11, "Dead UDP phones"): two UDP phones of one account answer the
server's OPTIONS; one stops answering and is dropped within interval × misses (here 1 s × 2),
the server logs it, and the next call rings only the phone still there."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onenumber.sip.message import Request

from .harness import Server, add_accounts, configure, place_call
from .sockpeer import SocketPeer


class Phone:
    """A UDP phone on a plain socket: answers OPTIONS while `alive`, rings busy on INVITE."""

    def __init__(self, server: Server) -> None:
        self.peer = SocketPeer("udp", server.sip_port)
        self.alive = True
        self.options = 0
        self.invites: list[Request] = []
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Phone:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop:
            try:
                m = self.peer.inbox.get(timeout=0.1)
            except queue.Empty:
                continue
            if not isinstance(m, Request):
                continue
            if m.method == "OPTIONS" and self.alive:
                self.options += 1
                self.peer.reply(m, 200, "OK")
            elif m.method == "INVITE":
                self.invites.append(m)
                self.peer.reply(m, 180, "Ringing", tag="ph")
                self.peer.reply(m, 486, "Busy Here", tag="ph")

    def stop(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.peer.close()


@pytest.fixture
def ka_server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "server", keepalive=True)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_a_udp_phone_that_stops_answering_options_is_dropped_and_not_rung(ka_server: Server,
                                                                            tmp_path: Path) -> None:
    server = ka_server
    made = add_accounts(server, [("1000", "Alice", 2), ("1001", "Bob", 1)])
    configure(server, "settings", "set", "keepalive_interval", "1")
    configure(server, "settings", "set", "keepalive_max_misses", "2")
    a1, a2 = made["1000"]
    stays, dies = Phone(server), Phone(server)
    try:
        # registered before the threads take the inbox: register() reads the 401/200 itself
        assert stays.peer.register("1000", a1.auth_username, a1.secret, server.address).status == 200
        assert dies.peer.register("1000", a2.auth_username, a2.secret, server.address).status == 200
        stays.start()
        dies.start()
        server.wait_bindings("1000", 2)
        deadline = time.monotonic() + 10
        while (stays.options < 2 or dies.options < 2) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert stays.options >= 2 and dies.options >= 2, "both phones are pinged and answer"
        dies.alive = False
        stopped = time.monotonic()
        server.wait_bindings("1000", 1, timeout=15)
        gone_after = time.monotonic() - stopped
        assert gone_after < 10, gone_after  # 2 misses of a 1 s ping (plus the write-behind and the CLI)
        [left] = server.bindings("1000")
        assert a1.auth_username in str(left), left
        assert "dropped: 2 keepalive ping(s) unanswered" in server.log()
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert "onenumber_keepalive_dropped_total 1.0" in text, text

        caller = place_call(server, made["1001"][0], "1000", "call_busy.xml", tmp_path / "peers", from_user="1001")
        assert caller.returncode == 0, caller.describe() + server.log()[-2000:]
        assert len(stays.invites) >= 1
        assert not dies.invites, "the dropped phone was rung"
    finally:
        stays.stop()
        dies.stop()
