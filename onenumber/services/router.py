"""The one entry point for every request, read like kamailio's `request_route`:

    sanity → in-dialog → loop and hop checks → gate → by method

Each stage is a small object that does not know the others: `Gate` (authentication,
throttling, trusted networks, credential expiry), `Registrar`, `CallProxy`,
`InDialogRelay`, `EventPackages`. Responses and timeouts of client transactions go back to
the context object that started them (a call, a relay, a probe), CANCEL to the context of
the transaction it cancels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from ..settings import Trunk
from ..sip.errors import ParseError
from ..sip.message import Request, Response
from ..sip.proxy import loop_detected, pop_own_routes
from ..sip.stack import ClientTxn, ServerTxn, Source, Stack
from ..sip.uri import SipUri, parse_uri
from .directory import Directory
from .event_packages import EventPackages
from .gate import Gate
from .indialog import InDialogRelay
from .location import Location
from .proxy import CallProxy
from .registrar import SUPPORTED_HEADER, Registrar
from .replies import Replier

log = logging.getLogger("onenumber.router")

# What we answer, as Allow says it. In-dialog requests of any method are relayed between the
# two ends of a call (a proxy does not judge them); SUBSCRIBE and PUBLISH get 489 until an
# event package is served, MESSAGE and REFER outside a dialog 405.
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, PRACK"
KNOWN_METHODS = frozenset([*ALLOW.replace(" ", "").split(","), "SUBSCRIBE", "NOTIFY", "PUBLISH", "MESSAGE", "REFER"])
SUPPORTED = frozenset({"path", "outbound", "replaces", "timer", "100rel"})
ACCEPT = "application/sdp"
EVENT_METHODS = frozenset({"SUBSCRIBE", "NOTIFY", "PUBLISH"})
DIALOG_ONLY = frozenset({"BYE", "ACK", "PRACK", "UPDATE", "INFO"})


class ClientContext(Protocol):
    """What a client transaction's context does with what comes back."""

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None: ...

    def on_timeout(self, txn: ClientTxn, now: float) -> None: ...


class LocalAddresses:
    """Which hosts and ports are this server: for Route popping, domains and loop checks."""

    def __init__(self, stack: Stack, directory: Directory, hosts: set[str]) -> None:
        self.stack = stack
        self.directory = directory
        self.base_hosts = frozenset(h.lower() for h in hosts)
        self.hosts = set(self.base_hosts)
        self.configure(directory)
        directory.listeners.append(self.configure)

    def configure(self, directory: Directory) -> None:
        self.hosts = set(self.base_hosts)
        if directory.settings.domain:
            self.hosts.add(directory.settings.domain.lower())

    def is_local(self, host: str, source: object = None) -> bool:
        h = host.strip("[]").lower()
        return h in self.hosts or (isinstance(source, Source) and h == source.local[0].lower())

    def is_own_uri(self, uri: SipUri) -> bool:
        port = uri.port or (5061 if uri.scheme == "sips" else 5060)
        return port in {p for _, p in self.stack.local.values()} and self.is_local(uri.host)

    def domain(self) -> str:
        return self.directory.settings.domain or self.stack.local.get("udp", ("127.0.0.1", 0))[0]


class Router:
    """The transaction user: the stack hands it every request, response and timeout."""

    def __init__(
        self,
        *,
        stack: Stack,
        replier: Replier,
        directory: Directory,
        location: Location,
        local: LocalAddresses,
        gate: Gate,
        registrar: Registrar,
        proxy: CallProxy,
        in_dialog: InDialogRelay,
        packages: EventPackages,
    ) -> None:
        self.stack = stack
        self.replier = replier
        self.directory = directory
        self.location = location
        self.local = local
        self.gate = gate
        self.registrar = registrar
        self.proxy = proxy
        self.in_dialog = in_dialog
        self.packages = packages
        self.flow_closed: list[Callable[[str, float], None]] = []  # told when a connection closes

    # ------------------------------------------------------------------ request_route
    def on_request(self, txn: ServerTxn, req: Request, now: float) -> None:
        try:
            self.route(txn, req, now)
        except ParseError as exc:
            self.replier.reply(txn, 400, f"Bad Request ({exc.reason})"[:200])
        except Exception:
            log.exception("error handling %s", req.method)
            if not txn.final_sent:
                self.replier.reply(txn, 500, "Server Internal Error")

    def route(self, txn: ServerTxn, req: Request, now: float) -> None:
        ruri = self.sanity(txn, req)
        if ruri is None:
            return
        method = req.method
        if method == "REGISTER":
            self.register(txn, req, now)
            return
        if method == "OPTIONS" and (ruri.user is None or _max_forwards(req) == 0):
            self.options(txn)
            return
        if method not in KNOWN_METHODS:
            self.replier.reply(txn, 501, "Not Implemented")
            return
        if req.to.tag and self.in_dialog.on_request(txn, req, now, fall_through=self._own_account(ruri)):
            return
        routes = pop_own_routes(req, self.local.is_own_uri)
        if routes and self.in_dialog.on_node_request(txn, req, routes, now):
            return  # another node's request for a device whose flow this node holds
        if loop_detected(req, list(self.stack.local.values())):
            self.replier.reply(txn, 482, "Loop Detected")
            return
        if _max_forwards(req) == 0:
            self.replier.reply(txn, 483, "Too Many Hops")
            return
        if method == "OPTIONS":
            self.options(txn)
        elif method == "INVITE":
            self.invite(txn, req, ruri, now)
        elif method in EVENT_METHODS:
            device = self.gate.admit(txn, req, now, proxy=True)
            if device is not None:
                self.packages.on_request(txn, req, device, now)
        elif method in DIALOG_ONLY:
            self.replier.reply(txn, 481, "Call/Transaction Does Not Exist")
        else:
            self.replier.reply(txn, 405, "Method Not Allowed", [("Allow", ALLOW)])

    def sanity(self, txn: ServerTxn, req: Request) -> SipUri | None:
        """The Request-URI is a SIP URI and every required extension is one we support."""
        try:
            ruri = parse_uri(req.uri)
        except ParseError as exc:
            self.replier.reply(txn, 400, f"Bad Request ({exc.reason})"[:200])
            return None
        if not isinstance(ruri, SipUri):
            self.replier.reply(txn, 416, "Unsupported URI Scheme")
            return None
        unsupported = _unsupported(req)
        if unsupported:
            self.replier.reply(txn, 420, "Bad Extension", [("Unsupported", ", ".join(unsupported))])
            return None
        return ruri

    def register(self, txn: ServerTxn, req: Request, now: float) -> None:
        if self.registrar.address_of_record(req) is None:
            self.replier.reply(txn, 400, "Bad Request (To must be a SIP address of record)")
            return
        device = self.gate.admit(txn, req, now, proxy=False)
        if device is not None:
            self.registrar.register(txn, req, device, now)

    def invite(self, txn: ServerTxn, req: Request, ruri: SipUri, now: float) -> None:
        trunk = self.trunk_from(txn.source)
        device = None
        if trunk is None:
            device = self.gate.admit(txn, req, now, proxy=True)
            if device is None:
                return
        if req.headers.get("route") is not None:
            self.replier.reply(txn, 403, "Forbidden (relaying along a preloaded Route is not allowed)")
            return
        if not self.local.is_local(ruri.host, txn.source):
            self.replier.reply(txn, 403, "Forbidden (relaying to other domains is not allowed)")
            return
        self.proxy.new_call(txn, req, ruri.user_unescaped or "", device, trunk, now)

    def options(self, txn: ServerTxn) -> None:
        self.replier.reply(txn, 200, "OK", [("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", SUPPORTED_HEADER)])

    def trunk_from(self, source: Source) -> Trunk | None:
        for t in self.directory.trunks:
            if t.host == source.remote[0] and t.port == source.remote[1]:
                return t
        return None

    def _own_account(self, ruri: SipUri) -> bool:
        """An in-dialog request for one of our accounts that no dialog explains is routed as a
        request for that account (through the gate), never relayed elsewhere."""
        return self.local.is_local(ruri.host) and self.directory.account_for(ruri.user_unescaped or "") is not None

    # ------------------------------------------------------------------ the rest of the TU
    def on_ack(self, req: Request, source: Source, now: float) -> None:
        self.in_dialog.on_ack(req, source, now)

    def on_cancel(self, txn: ServerTxn, req: Request, now: float) -> None:
        ctx = txn.context
        handler = getattr(ctx, "on_cancel", None)
        if handler is not None:
            handler(txn, req, now)
        elif not txn.final_sent:
            self.replier.reply(txn, 487, "Request Terminated")

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        ctx = txn.context
        if ctx is not None:
            ctx.on_response(txn, resp, now)  # type: ignore[attr-defined]  # a ClientContext

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        ctx = txn.context
        if ctx is not None:
            ctx.on_timeout(txn, now)  # type: ignore[attr-defined]  # a ClientContext

    def on_stray_response(self, resp: Response, source: Source, now: float) -> None:
        self.proxy.on_stray_response(resp, source, now)

    def on_flow_closed(self, conn: str, now: float) -> None:
        dropped = self.location.drop_flow(conn)
        if dropped:
            log.info("connection %s closed: %d binding(s) removed", conn, dropped)
        self.stack.transport_failed(conn, now)


_REQUIRE_KEYS = frozenset({"proxy-require", "require"})


def _max_forwards(req: Request) -> int:
    mf = req.headers.get("max-forwards")
    return int(mf) if mf is not None else 70


def _unsupported(req: Request) -> list[str]:
    if req.method in ("ACK", "CANCEL"):
        return []
    if not req.headers.has_any(_REQUIRE_KEYS):  # most requests carry neither
        return []
    out: list[str] = []
    for name in ("proxy-require", "require"):
        for value in req.headers.get_all(name):
            for opt in value.split(","):
                opt = opt.strip()
                if opt and opt.lower() not in SUPPORTED and opt not in out:
                    out.append(opt)
    return out
