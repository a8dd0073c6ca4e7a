"""Glue between asyncio sockets and the sans-IO stack: bytes + address + now in, sends out.

After every input the driver drains `stack.outbox` to the right socket or connection
(opening an outbound TCP connection when needed) and re-arms a single `call_at` on the
stack's earliest deadline. Nothing else here decides anything.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import logging
import math
import socket
import ssl
import time
from collections.abc import Callable
from typing import Protocol, cast

from ..services.events import EventBus
from ..sip.errors import ParseError
from ..sip.framing import StreamFramer
from ..sip.stack import Send, Source, Stack

log = logging.getLogger("onenumber.transport")

# The stack's deadlines are served on a 10 ms grid: one wake-up serves every deadline due in
# that slot (a transaction timer a few ms late is nothing next to T1 = 500 ms). Armed for each
# deadline, the loop woke ~60 times per forked call at 100 calls/s: a deadline every few ms,
# and the loop's timers fire up to a millisecond early (its clock is read once per iteration),
# so each was followed by re-arms of under a millisecond, which fire at once, until it was due.
TIMER_GRID = 0.01
EARLY = 0.002  # a timer firing at most this early serves its slot as if on time


class Connection(Protocol):
    """A reliable connection the stack can send on: TCP/TLS here, WebSocket in `websocket.py`."""

    conn_id: str
    transport: str
    remote: tuple[str, int]
    local: tuple[str, int]

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...


class Driver:
    def __init__(
        self, stack: Stack, *, clock: Callable[[], float] = time.time, max_message: int = 65535
    ) -> None:
        self.stack = stack
        self.clock = clock
        self.max_message = max_message
        self.loop = asyncio.get_running_loop()
        self.udp_default: asyncio.DatagramTransport | None = None
        self.connections: dict[str, Connection] = {}
        self.by_peer: dict[tuple[str, str, int], str] = {}  # (transport, host, port) → conn id
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self.on_flow_closed: Callable[[str, float], None] | None = None
        self.events: EventBus | None = None  # call events, handed to subscribers after the bytes left
        # worker processes (transport/workers.py): connection ids name the worker; a response
        # for another worker's transaction and a send on another worker's connection are handed over
        self.id_prefix = ""
        self.handoff: Callable[[bytes, Source], bool] | None = None
        self.forward_send: Callable[[Send], bool] | None = None

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes, source: Source) -> None:
        if self.handoff is not None and data[:4] == b"SIP/" and self.handoff(data, source):
            return
        self.receive_local(data, source)

    def receive_local(self, data: bytes, source: Source) -> None:
        now = self.clock()
        try:
            self.stack.receive(data, source, now)
        except Exception:
            log.exception("unhandled error on a message from %s", source.remote)
        self.pump()

    def pump(self) -> None:
        """Send what the stack queued, hand out the call events, and arm the next timer."""
        events = self.events
        while True:
            outbox = self.stack.outbox
            if outbox:
                self.stack.outbox = []
                for item in outbox:
                    self._send(item)
            if events is None or not events.queue:
                break
            events.dispatch()  # a subscriber may make the core send more: loop once more
            if not self.stack.outbox and not events.queue:
                break
        deadline = self.stack.next_timer()
        if deadline is None:
            return
        at = math.ceil(deadline / TIMER_GRID) * TIMER_GRID  # the end of its slot on the grid
        if self._timer_at is None or at < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = at
            self._timer = self.loop.call_later(max(0.0, at - self.clock()), self._on_timer)

    def _on_timer(self) -> None:
        at = self._timer_at
        self._timer = None
        self._timer_at = None
        now = self.clock()
        if at is not None and now < at <= now + EARLY:
            now = at  # fired a little early (see TIMER_GRID): serve the slot, do not re-arm for it
        try:
            self.stack.handle_timer(now)
        except Exception:
            log.exception("timer handling failed")
        self.pump()

    # ------------------------------------------------------------------ output
    def _send(self, item: Send) -> None:
        if item.transport == "udp":
            sock = self.udp_default
            if sock is None:
                return
            if not _is_ip(item.remote[0]):
                self.loop.create_task(self._resolve_and_send(item))
                return
            try:
                sock.sendto(item.data, item.remote)
            except (OSError, ValueError) as exc:
                log.debug("udp send to %s failed: %s", item.remote, exc)
            return
        conn = self.connections.get(item.conn) if item.conn else None
        if conn is None:
            conn_id = self.by_peer.get((item.transport, item.remote[0], item.remote[1]))
            conn = self.connections.get(conn_id) if conn_id else None
        if conn is not None:
            conn.write(item.data)
            return
        if item.conn is not None:
            if self.forward_send is not None and self.forward_send(item):
                return  # another worker holds that connection
            # the connection a binding or transaction relies on is gone
            self.loop.call_soon(self._fail_conn, item.conn)
            return
        if item.transport == "tcp":
            self.loop.create_task(self._connect_and_send(item))
        else:
            log.warning("cannot open an outbound %s connection to %s", item.transport, item.remote)
            self.loop.call_soon(self._fail_target, item)

    def _fail_conn(self, conn: str) -> None:
        self.stack.transport_failed(conn, self.clock())
        self.pump()

    def _fail_target(self, item: Send) -> None:
        self.stack.target_failed((item.transport, item.remote[0], item.remote[1]), self.clock())
        self.pump()

    async def _resolve_and_send(self, item: Send) -> None:
        """A UDP destination given by name (a trunk, a Via sent-by): resolve it off the hot path."""
        try:
            infos = await self.loop.getaddrinfo(item.remote[0], item.remote[1], family=socket.AF_INET,
                                                type=socket.SOCK_DGRAM)
            if self.udp_default is not None and infos:
                self.udp_default.sendto(item.data, infos[0][4][:2])
                return
        except (OSError, ValueError) as exc:
            log.info("cannot send to %s:%d: %s", item.remote[0], item.remote[1], exc)
        self._fail_target(item)

    async def _connect_and_send(self, item: Send) -> None:
        key = (item.transport, item.remote[0], item.remote[1])
        try:
            _, proto = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: StreamConnection(self, "tcp"), item.remote[0], item.remote[1]
                ),
                timeout=5.0,
            )
        except (OSError, TimeoutError) as exc:
            log.info("connection to %s:%d failed: %s", item.remote[0], item.remote[1], exc)
            self._fail_target(item)
            return
        self.by_peer[key] = proto.conn_id
        proto.write(item.data)

    # ------------------------------------------------------------------ connections
    def new_conn_id(self, transport: str) -> str:
        return f"{self.id_prefix}{transport}-{next(self._ids)}"

    def connection_made(self, conn: Connection) -> None:
        self.connections[conn.conn_id] = conn
        self.by_peer[(conn.transport, conn.remote[0], conn.remote[1])] = conn.conn_id

    def connection_lost(self, conn: Connection) -> None:
        self.connections.pop(conn.conn_id, None)
        key = (conn.transport, conn.remote[0], conn.remote[1])
        if self.by_peer.get(key) == conn.conn_id:
            del self.by_peer[key]
        now = self.clock()
        if self.on_flow_closed is not None:
            try:
                self.on_flow_closed(conn.conn_id, now)
            except Exception:
                log.exception("flow close handling failed")
        self.pump()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for conn in list(self.connections.values()):
            conn.close()


@functools.lru_cache(maxsize=4096)
def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, driver: Driver, buffer: int) -> None:
        self.driver = driver
        self.buffer = buffer
        self.local: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            try:
                sock.setsockopt(socket.SOL_SOCKET, opt, self.buffer)
            except OSError:
                pass
        self.local = transport.get_extra_info("sockname")[:2]
        if self.driver.udp_default is None:
            self.driver.udp_default = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) <= 4 and not data.strip():
            return  # CRLF keepalive (RFC 5626 §4.4.1 for UDP uses STUN; plain CRLF is common too)
        self.driver.receive(data, Source("udp", addr[:2], self.local))

    def error_received(self, exc: Exception) -> None:
        log.debug("udp error: %s", exc)


class StreamConnection(asyncio.Protocol):
    """One TCP or TLS connection: framed by Content-Length, identified by a connection id."""

    def __init__(self, driver: Driver, transport_name: str) -> None:
        self.driver = driver
        self.transport_name = transport_name
        self.transport = transport_name  # name used in Source/Send
        self.conn_id = driver.new_conn_id(transport_name)
        self.framer = StreamFramer(max_body=driver.max_message)
        self._t: asyncio.Transport | None = None
        self.remote: tuple[str, int] = ("", 0)
        self.local: tuple[str, int] = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._t = cast(asyncio.Transport, transport)
        self.remote = transport.get_extra_info("peername")[:2]
        self.local = transport.get_extra_info("sockname")[:2]
        self.driver.connection_made(self)

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except ParseError as exc:
            log.info("closing %s from %s: %s", self.conn_id, self.remote, exc.reason)
            self.close()
            return
        if self.framer.pongs_needed:
            self.framer.pongs_needed = 0
            self.write(b"\r\n")
        source = Source(self.transport_name, self.remote, self.local, self.conn_id)
        for msg in messages:
            self.driver.receive(msg, source)

    def write(self, data: bytes) -> None:
        if self._t is not None and not self._t.is_closing():
            self._t.write(data)

    def close(self) -> None:
        if self._t is not None:
            self._t.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.connection_lost(self)


async def listen_udp(
    driver: Driver, host: str, port: int, buffer: int, *, reuse_port: bool = False
) -> asyncio.DatagramTransport:
    """`reuse_port`: worker processes share the port (SO_REUSEPORT; the kernel spreads peers by
    address hash). Off for one process, so a second server on the port fails to start."""
    transport, _ = await driver.loop.create_datagram_endpoint(
        lambda: UdpProtocol(driver, buffer), local_addr=(host, port), reuse_port=reuse_port or None
    )
    return transport


async def listen_stream(
    driver: Driver, host: str, port: int, ssl_context: ssl.SSLContext | None = None, *, reuse_port: bool = False
) -> asyncio.AbstractServer:
    name = "tls" if ssl_context else "tcp"
    return await driver.loop.create_server(
        lambda: StreamConnection(driver, name), host, port, ssl=ssl_context, reuse_address=True,
        reuse_port=reuse_port or None,
    )
