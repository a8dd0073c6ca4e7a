"""The transaction layer glue (RFC 3261 §17–18): bytes in, transactions matched, bytes out.

`Stack.receive(data, source, now)` parses a message, stamps `received`/`rport` on the top
Via of requests (§18.2.1, RFC 3581), matches it to a transaction (§17.1.3, §17.2.3) and
hands what is new to the transaction user (the registrar/proxy application). What must
be sent is queued in `Stack.outbox` as `Send` items for the transport driver; timers are
deadlines in a heap the driver polls with `next_timer()` / `handle_timer(now)`.

Sans-IO: no sockets, no clock, no asyncio. Malformed input becomes a 400/505 (or a drop)
here and never reaches the application.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import re
from collections import deque
from collections.abc import Callable
from typing import NamedTuple, Protocol

from .errors import ParseError
from .headers import Via, format_params
from .message import Headers, LazyResponse, Request, Response, parse
from .overload import STARTS_WORK, Overload
from .transaction import (
    ClientTransaction,
    LightClientTransaction,
    PassUp,
    ServerTransaction,
    Terminated,
    Timeout,
    TimerSettings,
    Transmit,
)

log = logging.getLogger("onenumber.sip")

MAGIC = "z9hG4bK"
RELIABLE = frozenset({"tcp", "tls", "ws", "wss"})
COMPACT_MIN = 1024  # cancelled timers tolerated in the heap before it may be compacted


class Source(NamedTuple):
    """Where a message came from: transport, peer address, our socket, and the connection id.

    Named tuples rather than frozen dataclasses: one is built for every message and every send."""

    transport: str  # udp | tcp | tls | ws | wss
    remote: tuple[str, int]
    local: tuple[str, int]
    conn: str | None = None  # connection id for stream transports

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE


class Target(NamedTuple):
    """Where to send a request: a transport and address, or an existing connection."""

    transport: str
    host: str
    port: int
    conn: str | None = None


class Send(NamedTuple):
    data: bytes
    transport: str
    remote: tuple[str, int]
    conn: str | None = None


class TransactionUser(Protocol):
    """The application above the transaction layer (registrar, proxy)."""

    def on_request(self, txn: ServerTxn, req: Request, now: float) -> None: ...

    def on_ack(self, req: Request, source: Source, now: float) -> None: ...

    def on_cancel(self, txn: ServerTxn, req: Request, now: float) -> None: ...

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None: ...

    def on_timeout(self, txn: ClientTxn, now: float) -> None: ...

    def on_stray_response(self, resp: Response, source: Source, now: float) -> None: ...


class ServerTxn:
    """A server transaction: the request, where it came from, and its state machine.

    Once the final response is sent the request and the TU's context are dropped: only the
    machine (with the response bytes), the Via and the source stay for retransmissions, so
    the thousands of transactions waiting out Timer J hold few objects for the collector.
    """

    __slots__ = ("cancelled", "context", "key", "machine", "request", "source", "via")

    def __init__(self, key: tuple, request: Request, source: Source, machine: ServerTransaction) -> None:
        self.key = key
        self.request: Request | None = request  # None once the final response went out
        self.via = request.headers.get("via") or ""  # stamped: responses are routed by it
        self.source = source
        self.machine = machine
        self.context: object = None  # owned by the transaction user
        self.cancelled = False

    @property
    def final_sent(self) -> bool:
        status = self.machine.last_status
        return status is not None and status >= 200


class ClientTxn:
    """A client transaction. After a final response its request is dropped, and its context too
    unless the response is a 2xx to an INVITE (the machine re-sends the stored ACK by itself)."""

    __slots__ = ("branch", "context", "key", "light", "machine", "method", "request", "target")

    def __init__(self, key: tuple, request: Request | None, target: Target,
                 machine: ClientTransaction | LightClientTransaction, method: str = "") -> None:
        self.key = key
        self.request: Request | None = request  # None: sent prepared (`light`), or released once final
        self.method = request.method if request is not None else method
        self.target = target
        self.machine = machine
        self.context: object = None
        self.branch = key[0]
        self.light = request is None  # its responses are matched from their bytes, parsed lazily


class Stack:
    def __init__(
        self,
        tu: TransactionUser,
        *,
        timers: TimerSettings | None = None,
        server_header: str = "OneNumber",
        known_methods: frozenset[str] = frozenset(),
    ) -> None:
        self.known_methods = known_methods
        self.tu = tu
        self.timers = timers or TimerSettings()
        self.server_header = server_header
        self.outbox: list[Send] = []
        self.server_txns: dict[tuple, ServerTxn] = {}
        self.client_txns: dict[tuple, ClientTxn] = {}
        self._light = 0  # client transactions sent prepared (responses matched from their bytes)
        self.light_answers = 0  # their final responses, matched and done with (see `gc_paced`)
        self._heap: list[tuple[float, int, object]] = []  # transaction deadlines
        # the first deadline (Timer E) of each request sent prepared over UDP, in sending order:
        # all are `now + T1`, so a queue keeps them sorted (no heap push and pop per NOTIFY), and
        # the answered ones at its head are dropped before the driver arms a timer for them
        self._light_due: deque[tuple[float, ClientTxn]] = deque()
        # application Timers in a heap of their own: compacting it touches only them, never the
        # (much larger) population of transaction deadlines
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled = 0  # cancelled Timers still in their heap (compacted when they dominate)
        self._tag_prefix = os.urandom(4).hex()
        self._tag_counter = itertools.count(1)
        self._branch_prefix = MAGIC + os.urandom(4).hex()
        self._branch_counter = itertools.count(1)
        self.local: dict[str, tuple[str, int]] = {}  # transport → our advertised address
        self.stats = {"received": 0, "parse_errors": 0, "dropped": 0}
        self.overload: Overload | None = None  # set: new INVITEs/REGISTERs may be refused with 503
        self.pending = 0  # server transactions waiting for their final response
        # counted for /metrics: plain dicts on the hot path, read at scrape time
        self.requests_in: dict[str, int] = {}  # by method (retransmissions and ACKs included)
        self.responses_out: dict[tuple[str, int], int] = {}  # by (method, status), ours and relayed

    # ------------------------------------------------------------------ identifiers
    def new_tag(self) -> str:
        return f"{self._tag_prefix}{next(self._tag_counter):x}"

    def new_branch(self) -> str:
        return f"{self._branch_prefix}{next(self._branch_counter):x}"

    def add_via(self, req: Request, transport: str, host: str, port: int) -> str:
        """Put our Via (a fresh branch, rport) on top of a request we originate; returns the branch.

        The parsed Via is remembered as built, so sending the request does not parse it back."""
        branch = self.new_branch()
        via = Via(transport.upper(), host, port, (("branch", branch), ("rport", None)))
        value = f"SIP/2.0/{via.transport} {host}:{port};branch={branch};rport"
        req.headers.prepend("Via", value)
        req.headers.remember("top_via", via)
        Via.remember(value, via)  # the answer echoes this Via: matched without parsing it
        return branch

    def gc_paced(self) -> int:
        """The messages that pace the young collections (`transport.gcpace`): every message
        received but the final answers to requests sent prepared (a NOTIFY's 200), which end
        their transaction on the spot and leave nothing alive for the collector to scan; counted,
        they made a watched account's calls collect half as often again for nothing."""
        return self.stats["received"] - self.light_answers

    def set_worker(self, index: int) -> None:
        """Worker processes: the 8 hex digits after the magic cookie end in the worker's index,
        so the worker a response reaches can hand it to the one holding its transaction."""
        self._branch_prefix = MAGIC + os.urandom(3).hex() + f"{index & 0xFF:02x}"

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes, source: Source, now: float) -> None:
        """Feed one datagram or one framed stream message."""
        self.stats["received"] += 1
        ov = self.overload
        if ov is not None and ov.overloaded(now, self.pending) and self._shed_early(ov, data, source, now):
            return
        if data[:8] == b"SIP/2.0 " and self._light and self._receive_light(data, source, now):
            return
        try:
            msg = parse(data, stream=source.reliable)
        except ParseError as exc:
            self.stats["parse_errors"] += 1
            self._answer_parse_error(exc, source)
            return
        if isinstance(msg, Request):
            self._receive_request(msg, source, now)
        else:
            self._receive_response(msg, source, now)

    def _answer_parse_error(self, exc: ParseError, source: Source) -> None:
        partial = exc.partial
        if exc.status is None or not isinstance(partial, Request) or partial.method == "ACK":
            self.stats["dropped"] += 1
            return
        if "via" not in partial.headers:
            self.stats["dropped"] += 1
            return
        try:
            self._stamp_via(partial, source)
        except ParseError:
            self.stats["dropped"] += 1
            return
        if (exc.status == 400 and self.known_methods and partial.method not in self.known_methods
                and exc.reason.startswith("CSeq method")):
            # an unknown method with another defect: say what matters most (RFC 4475 §3.1.2.18)
            self.send_response_stateless(self.make_response(partial, 501, "Not Implemented"), source)
            return
        reason = "Bad Request" if exc.status == 400 else "Version Not Supported" if exc.status == 505 else "Error"
        resp = self.make_response(partial, exc.status, f"{reason} ({exc.reason})"[:200])
        if exc.status == 400:
            resp.headers.add("Warning", f'399 onenumber "{_quote(exc.reason)}"')
        self.send_response_stateless(resp, source)

    def _stamp_via(self, req: Request, source: Source) -> Via:
        """§18.2.1: add received= when the sent-by differs; RFC 3581: fill in rport."""
        raw = req.headers.get("via")
        assert raw is not None
        via = Via.parse(raw)
        params = _stamped_params(via, source.remote[0], source.remote[1])
        if params is not None:
            via = Via(via.transport, via.host, via.port, params)
            value = str(via)
            req.headers.replace_first("via", value)
            # every response goes out along this value (`_queue_response`): parsing it back
            # would give `via` (a Via's text round-trips), so it is remembered instead
            Via.remember(value, via)
        return via

    def _receive_request(self, req: Request, source: Source, now: float) -> None:
        try:
            via = self._stamp_via(req, source)
        except ParseError:
            self.stats["dropped"] += 1
            return
        method = req.method
        counts = self.requests_in
        counts[method] = counts.get(method, 0) + 1
        branch = via.branch or ""
        base: tuple[object, ...]
        if branch.startswith(MAGIC) and len(branch) > len(MAGIC):
            base = (branch, via.sent_by)
        else:
            # RFC 2543 peers: match on what identifies their transaction (§17.2.3, last paragraph)
            base = ("2543", req.call_id, req.cseq.number, req.from_.tag, via.sent_by, req.uri)
        if method == "ACK":
            txn = self.server_txns.get((*base, "INVITE"))
            if txn is not None and not txn.final_sent:
                return  # an ACK before any final response makes no sense: ignore
            if txn is not None and txn.machine.last_status is not None and txn.machine.last_status >= 300:
                self._run_server(txn, txn.machine.receive_ack(now))
                return
            self.tu.on_ack(req, source, now)
            return
        key = (*base, method)
        txn = self.server_txns.get(key)
        if txn is not None:
            self._run_server(txn, txn.machine.receive_request(now))
            return
        ov = self.overload
        if ov is not None and method in STARTS_WORK and ov.overloaded(now, self.pending) and not ov.admit(
            method, method == "INVITE" and bool(req.to.tag), self.pending, now,
            "proxy-authorization" in req.headers or "authorization" in req.headers,
        ):
            self._shed(ov, req, source)
            return
        machine = ServerTransaction(
            invite=method == "INVITE", reliable=source.reliable, now=now, timers=self.timers
        )
        txn = ServerTxn(key, req, source, machine)
        self.server_txns[key] = txn
        self.pending += 1
        if method == "CANCEL":
            self._receive_cancel(txn, req, base, now)
            return
        self.tu.on_request(txn, req, now)

    def _shed_early(self, ov: Overload, data: bytes, source: Source, now: float) -> bool:
        """While shedding, refuse a new INVITE or REGISTER from its raw bytes, without parsing
        the message: a server with a share of a core spent most of it parsing what it refused.
        Anything unusual (folded lines, quotes in a Via, an RFC 2543 branch, a To tag, a
        retransmission of a transaction we hold) returns False and takes the normal path."""
        if data.startswith(b"INVITE "):
            method = "INVITE"
        elif data.startswith(b"REGISTER "):
            method = "REGISTER"
        else:
            return False
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return False
        vias: list[bytes] = []
        keep: dict[bytes, bytes] = {}
        credentials = False
        for line in data[:end].split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if not sep or line[:1] in (b" ", b"\t"):
                return False
            key = _EARLY_NAMES.get(name.strip().lower())
            if key is None:
                continue
            if key == b"via":
                vias.append(value.strip())
            elif key == b"auth":
                credentials = True
            elif key in keep:
                return False
            else:
                keep[key] = value.strip()
        if not vias or len(keep) != 4 or b";tag=" in keep[b"to"].replace(b" ", b"").lower():
            return False
        top = vias[0]
        if b'"' in top:
            return False
        try:
            via = Via.parse(top.split(b",", 1)[0].decode())
        except (ParseError, UnicodeDecodeError):
            return False
        branch = via.branch or ""
        if not branch.startswith(MAGIC) or len(branch) <= len(MAGIC):
            return False
        if (branch, via.sent_by, method) in self.server_txns:
            return False  # a retransmission: its transaction answers it
        if ov.admit(method, False, self.pending, now, credentials):
            return False
        counts = self.requests_in
        counts[method] = counts.get(method, 0) + 1
        out = self.responses_out
        out[(method, 503)] = out.get((method, 503), 0) + 1
        resp = b"".join((
            b"SIP/2.0 503 Service Unavailable (overloaded)\r\n",
            *(b"Via: " + v + b"\r\n" for v in vias),
            b"From: ", keep[b"from"], b"\r\nTo: ", keep[b"to"], b";tag=", self.new_tag().encode(),
            b"\r\nCall-ID: ", keep[b"call-id"], b"\r\nCSeq: ", keep[b"cseq"],
            b"\r\nRetry-After: ", str(ov.retry_after()).encode(), b"\r\nServer: ", self.server_header.encode(),
            b"\r\nContent-Length: 0\r\n\r\n",
        ))
        # to where it came from: what rport asks for, and the only address a NAT lets through
        self.outbox.append(Send(resp, source.transport, source.remote, source.conn))
        return True

    def _shed(self, ov: Overload, req: Request, source: Source) -> None:
        """Refuse new work statelessly: no transaction, no timer, nothing kept (a retransmission
        gets another 503; the ACK of the 503 matches nothing and is dropped by the TU)."""
        resp = self.make_response(req, 503, "Service Unavailable (overloaded)",
                                  [("Retry-After", str(ov.retry_after()))])
        self.send_response_stateless(resp, source)

    def _receive_cancel(self, txn: ServerTxn, req: Request, base: tuple, now: float) -> None:
        # `req`, not txn.request: answering the CANCEL released that (on_cancel was handed None)
        invite = self.server_txns.get((*base, "INVITE"))
        if invite is None:
            self.respond(txn, self.make_response(req, 481, "Call/Transaction Does Not Exist"), now)
            return
        self.respond(txn, self.make_response(req, 200, "OK"), now)
        if invite.final_sent or invite.cancelled:
            return
        invite.cancelled = True
        self.tu.on_cancel(invite, req, now)

    def _receive_light(self, data: bytes, source: Source, now: float) -> bool:
        """A response to a request sent prepared (`send_prepared`), matched from its bytes: the
        status line, the top Via's branch and the CSeq method, and nothing else read (answering
        a NOTIFY with 200 was half the NOTIFY's cost when parsed in full). Anything unusual
        (a body, folded lines, quotes or a comma in the top Via, a response matching another
        kind of transaction) returns False and takes the normal path."""
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 != len(data):  # a body: parsed in full (a LazyResponse has none)
            return False
        if data[11:12] != b" " or not data[8:11].isdigit() or data[8:9] == b"0":
            return False
        if data.find(b"\r\n ", 0, end) >= 0 or data.find(b"\r\n\t", 0, end) >= 0:
            return False
        found = light_key(data, end)
        if found is None:
            return False
        txn = self.client_txns.get((found[0].decode("latin-1"), found[1].decode("latin-1")))
        if txn is None or not txn.light:
            return False
        status = int(data[8:11])
        line = data.find(b"\r\n")
        resp = LazyResponse(status, data[12:line].decode("utf-8", "replace"), data, source.reliable)
        if status < 200:
            self._run_client(txn, txn.machine.receive_response(status, now), resp, now)
            return True
        # A final response ends it at once: no Completed state, no Timer K. K only absorbs the
        # final's retransmissions, and without the transaction they are stray responses, which
        # the transaction user drops (only 2xx to INVITE are relayed); its Timer E/F entry is
        # skipped when it comes up (the transaction is gone).
        del self.client_txns[txn.key]
        self._light -= 1
        self.light_answers += 1
        self.tu.on_response(txn, resp, now)
        txn.context = None
        return True

    def _receive_response(self, resp: Response, source: Source, now: float) -> None:
        try:
            via = resp.top_via
            method = resp.cseq.method
        except ParseError:
            self.stats["dropped"] += 1
            return
        key = (via.branch or "", method)
        txn = self.client_txns.get(key)
        if txn is None:
            self.tu.on_stray_response(resp, source, now)
            return
        ack = None
        if txn.machine.invite and resp.status >= 300 and txn.request is not None:
            ack = bytes(self.make_ack(txn.request, resp))
        self._run_client(txn, txn.machine.receive_response(resp.status, now, ack), resp, now)

    # ------------------------------------------------------------------ output
    def respond(self, txn: ServerTxn, resp: Response, now: float) -> None:
        """Send a response within a server transaction (retransmitted by it as needed)."""
        if txn.machine.state == "Terminated":
            return
        if "server" not in resp.headers:
            resp.headers.add("Server", self.server_header)
        data = bytes(resp)
        key = (txn.key[-1], resp.status)
        self.responses_out[key] = self.responses_out.get(key, 0) + 1
        try:
            actions = txn.machine.send_response(resp.status, data, now)
        except Exception:
            log.exception("response %s refused by transaction %s", resp.status, txn.key)
            return
        if resp.status >= 200:
            if txn.request is not None:
                self.pending -= 1
            txn.request = None  # released once final: see ServerTxn/ClientTxn
            txn.context = None
        self._run_server(txn, actions)

    def send_response_stateless(self, resp: Response, source: Source) -> None:
        if "server" not in resp.headers:
            resp.headers.add("Server", self.server_header)
        self._count_response(resp)
        self._queue_response(bytes(resp), resp.headers.get("via") or "", source)

    def forward_response(self, resp: Response, source: Source | None) -> None:
        """Send a response upstream along its (already popped) top Via, statelessly."""
        self._count_response(resp)
        self._queue_response(bytes(resp), resp.headers.get("via") or "", source)

    def _count_response(self, resp: Response) -> None:
        try:
            key = (resp.cseq.method, resp.status)
        except ParseError:
            key = ("?", resp.status)
        self.responses_out[key] = self.responses_out.get(key, 0) + 1

    def _queue_response(self, data: bytes, top_via: str, source: Source | None) -> None:
        """§18.2.2: reliable → the connection it came on; UDP → received/rport or sent-by."""
        try:
            via = Via.parse(top_via)
        except ParseError:
            return
        transport = via.transport.lower()
        if source is not None and source.reliable and source.conn is not None and transport in RELIABLE:
            self.outbox.append(Send(data, source.transport, source.remote, source.conn))
            return
        host = via.param("received") or via.host
        rport = via.param("rport")
        port = int(rport) if rport and rport.isdigit() else via.sent_by[1]
        host = host.strip("[]")
        self.outbox.append(Send(data, transport if transport in RELIABLE else "udp", (host, port), None))

    def send_request(self, req: Request, target: Target, now: float, *, context: object = None) -> ClientTxn:
        """Start a client transaction. The request's top Via (with a fresh branch) must be set."""
        via = req.top_via
        key = (via.branch or "", req.method if req.method != "ACK" else "INVITE")
        reliable = target.transport in RELIABLE
        data = bytes(req)
        machine = ClientTransaction(
            invite=req.method == "INVITE", request=data, reliable=reliable, now=now, timers=self.timers
        )
        txn = ClientTxn(key, req, target, machine)
        txn.context = context
        self.client_txns[key] = txn
        self._run_client(txn, machine.start(now), None, now)
        return txn

    def send_prepared(self, data: bytes, branch: str, method: str, target: Target, now: float, *,
                      context: object = None) -> ClientTxn:
        """Start a non-INVITE client transaction for a request already serialized, whose top Via
        carries `branch` (from `new_branch`) and whose CSeq method is `method`. No `Request`
        object is kept, and its responses are matched from their bytes and handed to the
        transaction user as `LazyResponse`s (parsed only if more than the status is read): the
        NOTIFYs of subscriptions, sent by the thousand, go this way. Its final response ends it
        at once (see `_receive_light`)."""
        machine = LightClientTransaction(data, target.transport in RELIABLE, now, self.timers)
        key = (branch, method)
        txn = ClientTxn(key, None, target, machine, method)
        txn.context = context
        self.client_txns[key] = txn
        self._light += 1
        # machine.start(now) is the one Transmit of `data`: queued here without the action loop
        self.outbox.append(Send(data, target.transport, (target.host, target.port), target.conn))
        deadline = machine.deadline  # its one timer entry (E, or F on a reliable transport)
        due = self._light_due
        if not machine.reliable and deadline is not None and (not due or due[-1][0] <= deadline):
            due.append((deadline, txn))
        else:  # reliable (F only), or the clock went back: the queue would be out of order
            self._arm(deadline, txn)
        return txn

    def send_stateless(self, req: Request, target: Target) -> None:
        """Send a request outside any transaction (ACK for a 2xx, forwarded statelessly)."""
        self.outbox.append(Send(bytes(req), target.transport, (target.host, target.port), target.conn))

    def transport_failed(self, conn: str, now: float) -> None:
        """A connection closed or could not be opened: fail the client transactions using it."""
        for txn in [t for t in self.client_txns.values() if t.target.conn == conn]:
            self._run_client(txn, txn.machine.transport_error(now), None, now)

    def target_failed(self, target: tuple[str, str, int], now: float) -> None:
        """Sending to transport/host/port failed (e.g. connection refused)."""
        for txn in list(self.client_txns.values()):
            t = txn.target
            if (t.transport, t.host, t.port) == target and t.conn is None:
                self._run_client(txn, txn.machine.transport_error(now), None, now)

    # ------------------------------------------------------------------ machines
    def _run_server(self, txn: ServerTxn, actions: list) -> None:
        for action in actions:
            if isinstance(action, Transmit):
                # a response carries the request's (stamped) top Via: route it by that (§18.2.2)
                self._queue_response(action.data, txn.via, txn.source)
            elif isinstance(action, Terminated):
                self.server_txns.pop(txn.key, None)
                return
        self._arm(txn.machine.deadline, txn)

    def _run_client(self, txn: ClientTxn, actions: list, resp: Response | None, now: float) -> None:
        for action in actions:
            if isinstance(action, Transmit):
                t = txn.target
                self.outbox.append(Send(action.data, t.transport, (t.host, t.port), t.conn))
            elif isinstance(action, PassUp) and resp is not None:
                self.tu.on_response(txn, resp, now)
                if resp.status >= 200:
                    txn.request = None  # released once final: see ServerTxn/ClientTxn
                    if resp.status >= 300 or not txn.machine.invite:
                        txn.context = None  # a 2xx to INVITE keeps it: retransmissions are relayed
            elif isinstance(action, Timeout):
                self.tu.on_timeout(txn, now)
            elif isinstance(action, Terminated):
                if self.client_txns.get(txn.key) is txn:
                    del self.client_txns[txn.key]
                    if txn.light:
                        self._light -= 1
                return
        self._arm(txn.machine.deadline, txn)

    # ------------------------------------------------------------------ timers
    def _arm(self, deadline: float | None, obj: ServerTxn | ClientTxn) -> None:
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._seq), obj))

    def call_at(self, deadline: float, callback: Callable[[float], None]) -> Timer:
        """Schedule an application timer (stage start, timer C, no-answer…)."""
        timer = Timer(deadline, callback, self)
        heapq.heappush(self._timers, (deadline, next(self._seq), timer))
        return timer

    def _timer_cancelled(self) -> None:
        """A Timer was cancelled: its callback is already gone (so whatever its closure held, a
        call's context for Timer C, is freed now); its heap entry is a few bytes until it comes
        up, unless cancelled entries are most of the timer heap, which is then rebuilt without
        them (amortised O(1) per cancel, and proportional to the live timers only)."""
        self._cancelled += 1
        if self._cancelled > COMPACT_MIN and self._cancelled * 2 > len(self._timers):
            self.compact_timers()

    def compact_timers(self) -> None:
        """Drop the cancelled Timers from their heap."""
        self._timers = [e for e in self._timers if e[2].callback is not None]
        heapq.heapify(self._timers)
        self._cancelled = 0

    def compact_transactions(self) -> None:
        """Drop transaction deadlines that can no longer fire: the transaction moved on or ended
        (the same test `handle_timer` applies). For tests and tools, not the hot path."""
        self._heap = [e for e in self._heap if self._live_entry(e)]
        heapq.heapify(self._heap)
        self._light_due = deque(e for e in self._light_due if self._light_waiting(*e))

    def _live_entry(self, entry: tuple[float, int, object]) -> bool:
        deadline, _, obj = entry
        if isinstance(obj, ServerTxn):
            return obj.machine.deadline == deadline and self.server_txns.get(obj.key) is obj
        if isinstance(obj, ClientTxn):
            return obj.machine.deadline == deadline and self.client_txns.get(obj.key) is obj
        return True

    @property
    def timer_entries(self) -> int:
        """Entries in the timer heaps and queue, live or not (for tests and metrics)."""
        return len(self._heap) + len(self._timers) + len(self._light_due)

    def _light_head(self) -> float | None:
        """The first deadline in the queue of prepared requests, once the answered (or
        retransmitted: their next deadline is in the heap) are dropped from its head."""
        due = self._light_due
        while due:
            at, txn = due[0]
            if self._light_waiting(at, txn):
                return at
            due.popleft()
        return None

    def _light_waiting(self, at: float, txn: ClientTxn) -> bool:
        """Whether the queue's entry `(at, txn)` is still due: its transaction unanswered and
        this still its next deadline (a retransmission's next one is in the heap)."""
        return self.client_txns.get(txn.key) is txn and txn.machine.deadline == at

    def next_timer(self) -> float | None:
        a = self._heap[0][0] if self._heap else None
        b = self._timers[0][0] if self._timers else None
        if self._light_due:
            c = self._light_head()
            if c is not None and (a is None or c < a):
                a = c
        if a is None:
            return b
        return a if b is None or a <= b else b

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        due = self._light_due
        while True:
            timers = self._timers  # a callback may have compacted it (a new list)
            if due:  # the queue's head when it comes before both heaps (deadline order kept)
                at = due[0][0]
                if at <= now and (not timers or at < timers[0][0]) and (not heap or at < heap[0][0]):
                    txn = due.popleft()[1]
                    if self._light_waiting(at, txn):
                        self._run_client(txn, txn.machine.on_timer(now), None, now)  # E: retransmitted
                    continue
            if timers and timers[0][0] <= now and (not heap or timers[0][0] <= heap[0][0]):
                _, _, timer = heapq.heappop(timers)
                callback = timer.callback
                if callback is None:
                    self._cancelled -= 1
                else:
                    timer.callback = None  # fired: a later cancel() is a no-op
                    callback(now)
                continue
            if not heap or heap[0][0] > now:
                return
            deadline, _, obj = heapq.heappop(heap)
            # the transaction first: most entries coming up are of ones already gone (a NOTIFY's
            # Timer E entry, its 200 long in), and `deadline` is a property
            if isinstance(obj, ServerTxn):
                if self.server_txns.get(obj.key) is obj and obj.machine.deadline == deadline:
                    self._run_server(obj, obj.machine.on_timer(now))
            elif isinstance(obj, ClientTxn) and (
                self.client_txns.get(obj.key) is obj and obj.machine.deadline == deadline
            ):
                self._run_client(obj, obj.machine.on_timer(now), None, now)

    # ------------------------------------------------------------------ builders
    def make_response(
        self, req: Request, status: int, reason: str, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        """§8.2.6: copy Via, From, To (adding our tag), Call-ID, CSeq; Record-Route for 18x/2xx dialogs."""
        items: list[list[str]] = []
        to_added = False
        for item in req.headers._items:
            key = item[0]
            if key in ("via", "from", "call-id", "cseq"):
                items.append(list(item))
            elif key == "to" and not to_added:
                value = item[2]
                if status > 100 and ";tag=" not in value.replace(" ", "").lower():
                    value = f"{value};tag={self.new_tag()}"
                items.append([key, item[1], value])
                to_added = True
        resp = Response(status, reason, Headers._raw(items))
        if headers:
            for name, value in headers:
                resp.headers.add(name, value)
        return resp

    def make_ack(self, invite: Request, resp: Response) -> Request:
        """§17.1.1.3: the ACK for a non-2xx final response, built by the client transaction."""
        h = Headers()
        h.add("Via", invite.headers.get("via") or "")
        for route in invite.headers.get_all("route"):
            h.add("Route", route)
        h.add("Max-Forwards", "70")
        h.add("From", invite.headers.get("from") or "")
        h.add("To", resp.headers.get("to") or "")
        h.add("Call-ID", invite.call_id)
        h.add("CSeq", f"{invite.cseq.number} ACK")
        h.add("Content-Length", "0")
        return Request("ACK", invite.uri, h)


def _stamped_params(via: Via, host: str, port: int) -> tuple[tuple[str, str | None], ...] | None:
    """The top Via's parameters once stamped for a request from `host`:`port` (§18.2.1
    received=, RFC 3581 rport); None when they stay as they are. The parameter names are
    lowered once: this runs for every request received."""
    params = list(via.params)
    names = [k.lower() for k, _ in params]
    lhost = host.lower()
    changed = False
    has_received = "received" in names
    if has_received and any(
        n == "received" and (v or "").strip("[]").lower() != lhost for n, (_, v) in zip(names, params, strict=True)
    ):  # a received= we did not write must not steer our response elsewhere
        params = [p for n, p in zip(names, params, strict=True) if n != "received"]
        names = [n for n in names if n != "received"]
        has_received = False
        changed = True
    if not has_received and via.host.strip("[]").lower() != lhost:
        params.append(("received", host))
        names.append("received")
        has_received = True
        changed = True
    if "rport" in names:
        for i, n in enumerate(names):
            if n == "rport" and not params[i][1]:
                params[i] = ("rport", str(port))
                if not has_received:
                    params.append(("received", host))
                changed = True
                break
    return tuple(params) if changed else None


# the few fields `_receive_light` reads from a response's bytes: the first Via line, the CSeq method
_LIGHT_VIA = re.compile(rb"\r\n(?:via|v)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_LIGHT_BRANCH = re.compile(rb";[ \t]*branch[ \t]*=[ \t]*([^; \t]+)", re.IGNORECASE)
_LIGHT_CSEQ = re.compile(rb"\r\n(?:cseq)[ \t]*:[ \t]*[0-9]+[ \t]+([!-~]+)", re.IGNORECASE)
# The top Via written the usual way: the first header field, "Via: ", its first parameter the
# branch, no quote, comma or blank where the general regexes would skip or stop
_USUAL_VIA = re.compile(rb"\r\nVia: [^ \t\r\n;\",][^\r\n;\",]*;branch=([^; \t\r\n\",]+)(?:;[^\r\n\",]*)?\r\n")


def light_key(data: bytes, end: int) -> tuple[bytes, bytes] | None:
    """The top Via's branch and the CSeq method of a response whose header ends at `end` (its
    blank line), as `_LIGHT_VIA`, `_LIGHT_BRANCH` and `_LIGHT_CSEQ` find them (the first match
    of each); None without them, or when that Via holds a quote or a comma. A regex costs ~50
    instructions a character it scans: where the Via is the usual one (`_USUAL_VIA`, matched
    right after the status line, so the first line the general regex could match) one match
    gives its branch, instead of a search for the Via and another for the branch."""
    usual = _USUAL_VIA.match(data, data.find(b"\r\n"), end + 2)
    if usual is not None:
        branch = usual.group(1)
    else:
        via = _LIGHT_VIA.search(data, 0, end)
        if via is None:
            return None
        value = via.group(1)
        if b'"' in value or b"," in value:
            return None
        m = _LIGHT_BRANCH.search(value)
        if m is None:
            return None
        branch = m.group(1)
    cseq = _LIGHT_CSEQ.search(data, 0, end)
    return None if cseq is None else (branch, cseq.group(1))

_EARLY_NAMES = {
    b"via": b"via", b"v": b"via", b"from": b"from", b"f": b"from", b"to": b"to", b"t": b"to",
    b"call-id": b"call-id", b"i": b"call-id", b"cseq": b"cseq",
    b"authorization": b"auth", b"proxy-authorization": b"auth",
}


class Timer:
    """An application timer. Cancelling (or firing) drops the callback at once, so nothing its
    closure holds outlives the cancel; the heap entry left behind is skipped when it comes up."""

    __slots__ = ("_stack", "callback", "deadline")

    def __init__(self, deadline: float, callback: Callable[[float], None], stack: Stack | None = None) -> None:
        self.deadline = deadline
        self.callback: Callable[[float], None] | None = callback
        self._stack = stack

    @property
    def cancelled(self) -> bool:
        """True once cancelled or fired."""
        return self.callback is None

    def cancel(self) -> None:
        if self.callback is None:
            return
        self.callback = None
        stack, self._stack = self._stack, None
        if stack is not None:
            stack._timer_cancelled()


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


__all__ = [
    "ClientTxn",
    "Send",
    "ServerTxn",
    "Source",
    "Stack",
    "Target",
    "Timer",
    "TransactionUser",
    "format_params",
]
