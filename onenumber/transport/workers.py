"""Worker processes talking to each other over local Unix datagram sockets.

With SO_REUSEPORT the kernel hands a datagram to the worker picked by a hash of the peer's
address, so a callee's answer can reach a worker that does not hold the INVITE's client
transaction. Our branches end the 8 hex digits after the magic cookie with the worker's
index (`Stack.set_worker`): a response whose top Via names another worker is passed to it
here, and it carries on as if the datagram had reached it directly. The same link carries a
request that must leave over a TCP/TLS/WS connection another worker holds (its connection
id names the worker, `services/replication.flow_worker`).

Sockets live in the abstract namespace (no files to clean up), named after the SIP address
and port, so two servers on one machine never mix.
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections import deque

from ..services.replication import flow_worker
from ..sip.stack import Send, Source
from .driver import Driver

log = logging.getLogger("onenumber.workers")

MAX_QUEUED = 10_000  # messages waiting for a busy worker; beyond, dropped (SIP retransmits)

_TOP_VIA = re.compile(rb"\n(?:via|v)[ \t]*:([^\r\n]*)", re.IGNORECASE)
_BRANCH = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*z9hG4bK(?:on[^.;,\s]*\.)?([0-9a-f]{8})", re.IGNORECASE)


def branch_worker(data: bytes) -> int | None:
    """The worker index in the top Via's branch of a response, or None if it is not ours."""
    m = _TOP_VIA.search(data, 0, 8192)
    if m is None:
        return None
    value = m.group(1).split(b",", 1)[0]
    b = _BRANCH.search(value)
    if b is None:
        return None
    return int(b.group(1)[6:8], 16)


def link_name(bind: str, port: int, index: int) -> str:
    return f"\0onenumber-{bind}-{port}-w{index}"


class WorkerLink:
    """This worker's end: receives handed-over messages, hands over others'."""

    def __init__(self, driver: Driver, *, bind: str, port: int, index: int, count: int) -> None:
        self.driver = driver
        self.bind = bind
        self.port = port
        self.index = index
        self.count = count
        self.stats = {"handed_out": 0, "handed_in": 0, "lost": 0}
        self._in = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._in.bind(link_name(bind, port, index))
        self._in.setblocking(False)
        self._in.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        # one connected socket per other worker: its writability follows that worker's receive
        # queue (net.unix.max_dgram_qlen datagrams: 10 here), so a burst waits in `_queued` instead of being lost
        self._out: dict[int, socket.socket] = {}
        self._queued: dict[int, deque[bytes]] = {}
        driver.loop.add_reader(self._in.fileno(), self._readable)
        driver.handoff = self.handoff
        driver.forward_send = self.forward_send

    def close(self) -> None:
        log.info("worker link: %(handed_out)d message(s) handed to other workers, %(handed_in)d taken, "
                 "%(lost)d lost", self.stats)
        self.driver.loop.remove_reader(self._in.fileno())
        self._in.close()
        for index, sock in self._out.items():
            if index in self._queued:
                self.driver.loop.remove_writer(sock.fileno())
            sock.close()

    def _socket(self, index: int) -> socket.socket | None:
        sock = self._out.get(index)
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.connect(link_name(self.bind, self.port, index))
            except OSError as exc:  # that worker is (re)starting
                sock.close()
                log.debug("worker %d is not there: %s", index, exc)
                return None
            self._out[index] = sock
        return sock

    def _post(self, index: int, head: list[object], data: bytes) -> bool:
        packet = json.dumps(head).encode() + b"\n" + data
        queued = self._queued.get(index)
        if queued is not None:  # keep the order: behind what already waits
            if len(queued) >= MAX_QUEUED:
                self.stats["lost"] += 1
                return True  # dropped like a datagram on a full socket: the peer retransmits
            queued.append(packet)
            self.stats["handed_out"] += 1
            return True
        sock = self._socket(index)
        if sock is None:
            self.stats["lost"] += 1
            return False
        try:
            sock.send(packet)
        except BlockingIOError:
            self._queued[index] = deque([packet])
            self.driver.loop.add_writer(sock.fileno(), self._writable, index)
        except OSError as exc:  # that worker went away: reconnect next time
            self.stats["lost"] += 1
            log.debug("cannot hand over to worker %d: %s", index, exc)
            self._out.pop(index, None)
            sock.close()
            return False
        self.stats["handed_out"] += 1
        return True

    def _writable(self, index: int) -> None:
        sock = self._out[index]
        queued = self._queued[index]
        try:
            while queued:
                sock.send(queued[0])
                queued.popleft()
        except BlockingIOError:
            return
        except OSError as exc:
            self.stats["lost"] += len(queued)
            log.debug("worker %d went away: %s", index, exc)
            self._out.pop(index, None)
            self.driver.loop.remove_writer(sock.fileno())
            del self._queued[index]
            sock.close()
            return
        self.driver.loop.remove_writer(sock.fileno())
        del self._queued[index]

    def handoff(self, data: bytes, source: Source) -> bool:
        """A response for another worker's transaction: pass it on (True) or keep it."""
        index = branch_worker(data)
        if index is None or index == self.index or index >= self.count:
            return False
        head: list[object] = ["R", source.transport, *source.remote, *source.local, source.conn]
        return self._post(index, head, data)

    def forward_send(self, item: Send) -> bool:
        index = flow_worker(item.conn)
        if index is None or index == self.index or index >= self.count:
            return False
        return self._post(index, ["S", item.transport, *item.remote, item.conn], item.data)

    def _readable(self) -> None:
        for _ in range(256):  # bounded: the loop gets back control
            try:
                packet = self._in.recv(1 << 17)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("worker link: %s", exc)
                return
            head_bytes, _, data = packet.partition(b"\n")
            try:
                head = json.loads(head_bytes)
                self.stats["handed_in"] += 1
                if head[0] == "R":
                    _, transport, rhost, rport, lhost, lport, conn = head
                    self.driver.receive_local(data, Source(transport, (rhost, int(rport)), (lhost, int(lport)), conn))
                elif head[0] == "S":
                    _, transport, rhost, rport, conn = head
                    self.driver._send(Send(data, transport, (rhost, int(rport)), conn))
            except Exception:
                log.exception("bad message on the worker link")


