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
from collections.abc import Callable
from typing import NamedTuple, Protocol

from .errors import ParseError
from .headers import Via, format_params
from .message import Headers, Request, Response, parse
from .transaction import (
    ClientTransaction,
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
        self.request: Request = request  # None once the final response went out
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

    __slots__ = ("branch", "context", "key", "machine", "method", "request", "target")

    def __init__(self, key: tuple, request: Request, target: Target, machine: ClientTransaction) -> None:
        self.key = key
        self.request: Request = request
        self.method = request.method
        self.target = target
        self.machine = machine
        self.context: object = None
        self.branch = key[0]


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
        self._heap: list[tuple[float, int, object]] = []
        self._seq = itertools.count()
        self._tag_prefix = os.urandom(4).hex()
        self._tag_counter = itertools.count(1)
        self._branch_prefix = MAGIC + os.urandom(4).hex()
        self._branch_counter = itertools.count(1)
        self.local: dict[str, tuple[str, int]] = {}  # transport → our advertised address
        self.stats = {"received": 0, "parse_errors": 0, "dropped": 0}

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

    # ------------------------------------------------------------------ input
    def receive(self, data: bytes, source: Source, now: float) -> None:
        """Feed one datagram or one framed stream message."""
        self.stats["received"] += 1
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
        params = list(via.params)
        changed = False
        host = source.remote[0]
        stale = [p for p in params if p[0].lower() == "received" and (p[1] or "").strip("[]").lower() != host.lower()]
        if stale:  # a received= we did not write must not steer our response elsewhere
            params = [p for p in params if p[0].lower() != "received"]
            changed = True
        if via.host.strip("[]").lower() != host.lower() and not any(p[0].lower() == "received" for p in params):
            params.append(("received", host))
            changed = True
        for i, (k, v) in enumerate(params):
            if k.lower() == "rport" and not v:
                params[i] = ("rport", str(source.remote[1]))
                if not any(p[0].lower() == "received" for p in params):
                    params.append(("received", host))
                changed = True
                break
        if changed:
            via = Via(via.transport, via.host, via.port, tuple(params))
            req.headers.replace_first("via", str(via))
        return via

    def _receive_request(self, req: Request, source: Source, now: float) -> None:
        try:
            via = self._stamp_via(req, source)
        except ParseError:
            self.stats["dropped"] += 1
            return
        method = req.method
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
        machine = ServerTransaction(
            invite=method == "INVITE", reliable=source.reliable, now=now, timers=self.timers
        )
        txn = ServerTxn(key, req, source, machine)
        self.server_txns[key] = txn
        if method == "CANCEL":
            self._receive_cancel(txn, base, now)
            return
        self.tu.on_request(txn, req, now)

    def _receive_cancel(self, txn: ServerTxn, base: tuple, now: float) -> None:
        invite = self.server_txns.get((*base, "INVITE"))
        if invite is None:
            self.respond(txn, self.make_response(txn.request, 481, "Call/Transaction Does Not Exist"), now)
            return
        self.respond(txn, self.make_response(txn.request, 200, "OK"), now)
        if invite.final_sent or invite.cancelled:
            return
        invite.cancelled = True
        self.tu.on_cancel(invite, txn.request, now)

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
        try:
            actions = txn.machine.send_response(resp.status, data, now)
        except Exception:
            log.exception("response %s refused by transaction %s", resp.status, txn.key)
            return
        if resp.status >= 200:
            txn.request = None  # type: ignore[assignment]  # released once final: see ServerTxn/ClientTxn
            txn.context = None
        self._run_server(txn, actions)

    def send_response_stateless(self, resp: Response, source: Source) -> None:
        if "server" not in resp.headers:
            resp.headers.add("Server", self.server_header)
        self._queue_response(bytes(resp), resp.headers.get("via") or "", source)

    def forward_response(self, resp: Response, source: Source | None) -> None:
        """Send a response upstream along its (already popped) top Via, statelessly."""
        self._queue_response(bytes(resp), resp.headers.get("via") or "", source)

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
                    txn.request = None  # type: ignore[assignment]  # released once final: see ServerTxn/ClientTxn
                    if resp.status >= 300 or not txn.machine.invite:
                        txn.context = None  # a 2xx to INVITE keeps it: retransmissions are relayed
            elif isinstance(action, Timeout):
                self.tu.on_timeout(txn, now)
            elif isinstance(action, Terminated):
                if self.client_txns.get(txn.key) is txn:
                    del self.client_txns[txn.key]
                return
        self._arm(txn.machine.deadline, txn)

    # ------------------------------------------------------------------ timers
    def _arm(self, deadline: float | None, obj: object) -> None:
        if deadline is not None:
            heapq.heappush(self._heap, (deadline, next(self._seq), obj))

    def call_at(self, deadline: float, callback: Callable[[float], None]) -> Timer:
        """Schedule an application timer (stage start, timer C, no-answer…)."""
        timer = Timer(deadline, callback)
        heapq.heappush(self._heap, (deadline, next(self._seq), timer))
        return timer

    def next_timer(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def handle_timer(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, obj = heapq.heappop(heap)
            if isinstance(obj, Timer):
                if not obj.cancelled:
                    obj.cancelled = True
                    obj.callback(now)
            elif isinstance(obj, ServerTxn):
                if obj.machine.deadline == deadline and self.server_txns.get(obj.key) is obj:
                    self._run_server(obj, obj.machine.on_timer(now))
            elif isinstance(obj, ClientTxn) and (
                obj.machine.deadline == deadline and self.client_txns.get(obj.key) is obj
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


class Timer:
    __slots__ = ("callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[[float], None]) -> None:
        self.deadline = deadline
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


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
