"""The SIP application: what OneNumber does with each request the transaction layer hands up.

Requests addressed to the server (REGISTER, OPTIONS) are answered here; calls and other
requests for accounts go to the call service (`services.calls`). Authentication, trusted
networks and throttling are checked here, once, for every kind of request.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import TYPE_CHECKING

from ..routing.model import Device
from ..sip.auth import Credentials, DigestAuthenticator, Throttle, Verdict
from ..sip.errors import ParseError
from ..sip.message import Request, Response
from ..sip.registrar import RegisterOrigin, RegistrarPolicy, contact_header, process_register
from ..sip.stack import ClientTxn, ServerTxn, Source, Stack
from ..sip.uri import SipUri, parse_uri
from .directory import Directory
from .location import Location

if TYPE_CHECKING:
    from .calls import CallService

log = logging.getLogger("onenumber.sipapp")

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, REFER, NOTIFY, SUBSCRIBE, MESSAGE, PRACK"
SUPPORTED = frozenset({"path", "outbound", "replaces", "timer", "100rel"})
SUPPORTED_HEADER = "path, outbound"
ACCEPT = "application/sdp"
KNOWN_METHODS = frozenset([*ALLOW.replace(" ", "").split(","), "PUBLISH"])


class SipApp:
    """Transaction user for the registrar and, through `calls`, the proxy."""

    def __init__(
        self,
        directory: Directory,
        location: Location,
        *,
        secret: bytes,
        realm: str,
        local_hosts: set[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.location = location
        self.base_hosts = frozenset(h.lower() for h in local_hosts)
        self.local_hosts = set(self.base_hosts)
        self.clock = clock
        self.realm = realm
        self.secret = secret
        self.stack: Stack  # set by attach()
        self.calls: CallService | None = None
        self._configure(directory)
        directory.listeners.append(self._configure)

    def attach(self, stack: Stack) -> None:
        self.stack = stack

    def _configure(self, directory: Directory) -> None:
        s = directory.settings
        old_auth = getattr(self, "auth", None)
        # rebuilt only when the offer changes: it holds the nc replay state of live nonces,
        # which a reload for an unrelated setting must not forget
        if old_auth is None or old_auth.algorithms != tuple(s.digest_algorithms):
            self.auth = DigestAuthenticator(secret=self.secret, realm=self.realm, algorithms=s.digest_algorithms)
            # same secret and realm: its nonces verify with self.auth, which keeps the nc state
            self.auth_md5 = DigestAuthenticator(secret=self.secret, realm=self.realm, algorithms=("MD5",))
        self.md5_only_agents = s.md5_only_user_agents
        old = getattr(self, "throttle", None)
        if old is None or (old.max_failures, old.block_seconds) != (s.auth_max_failures, s.auth_block_seconds):
            self.throttle = Throttle(max_failures=s.auth_max_failures, block_seconds=s.auth_block_seconds)
        self.policy = RegistrarPolicy(
            min_expires=s.min_expires, max_expires=s.max_expires, default_expires=s.default_expires
        )
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in s.trusted_networks]
        self.local_hosts = set(self.base_hosts)
        if s.domain:
            self.local_hosts.add(s.domain.lower())

    # ------------------------------------------------------------------ helpers
    def is_local(self, host: str, source: Source | None = None) -> bool:
        h = host.strip("[]").lower()
        return h in self.local_hosts or (source is not None and h == source.local[0].lower())

    def is_trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.trusted)

    def reply(self, txn: ServerTxn, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        if txn.request is None:  # already answered
            return
        self.stack.respond(txn, self.stack.make_response(txn.request, status, reason, headers), self.clock())

    def authenticate(self, txn: ServerTxn, req: Request, now: float, *, proxy: bool) -> Device | None:
        """Digest-check the request. Answers the challenge/refusal itself and returns None,
        or returns the device whose credentials were valid."""
        address = txn.source.remote[0]
        if self.throttle.is_blocked(address, now):
            self.reply(txn, 403, "Forbidden (too many failed attempts, try later)")
            return None
        header = "proxy-authorization" if proxy else "authorization"
        found = None
        for value in req.headers.get_all(header):
            try:
                creds = Credentials.parse(value)
            except Exception:
                continue
            if creds.realm == self.realm:
                found = creds
                break
        if found is None:
            self._challenge(txn, proxy, now, stale=False)
            return None
        device = self.directory.devices_by_auth.get(found.username)
        password = device.secret if device is not None else None
        verdict = self.auth.verify(found, req.method, password, now)
        if verdict is Verdict.OK and device is not None:
            self.throttle.record_success(address, now)
            return device
        if verdict is Verdict.STALE:
            self._challenge(txn, proxy, now, stale=True)
            return None
        if self.throttle.record_failure(address, now):
            log.warning("authentication failures from %s: blocked", address)
            self.reply(txn, 403, "Forbidden (too many failed attempts, try later)")
            return None
        self._challenge(txn, proxy, now, stale=False)
        return None

    def _challenge(self, txn: ServerTxn, proxy: bool, now: float, *, stale: bool) -> None:
        name = "Proxy-Authenticate" if proxy else "WWW-Authenticate"
        agent = txn.request.headers.get("user-agent") or ""
        auth = self.auth
        if agent and "MD5" in self.auth.algorithms and any(a in agent for a in self.md5_only_agents):
            auth = self.auth_md5
        headers = [(name, c) for c in auth.challenges(now, stale=stale)]
        if proxy:
            self.reply(txn, 407, "Proxy Authentication Required", headers)
        else:
            self.reply(txn, 401, "Unauthorized", headers)

    def device_allowed(self, txn: ServerTxn, device: Device, now: float) -> bool:
        """Credential expiry and trusted networks, after authentication (no enumeration)."""
        if device.credential_expires_at is not None and device.credential_expires_at <= now:
            self.reply(txn, 403, "Credentials expired")
            return False
        if not device.enabled and txn.request.method != "REGISTER":
            self.reply(txn, 403, "Forbidden (device disabled)")
            return False
        if not device.internet and not self.is_trusted(txn.source.remote[0]):
            self.reply(txn, 403, "Forbidden (device not allowed from this network)")
            return False
        return True

    # ------------------------------------------------------------------ TU callbacks
    def on_request(self, txn: ServerTxn, req: Request, now: float) -> None:
        try:
            self._dispatch(txn, req, now)
        except ParseError as exc:
            self.reply(txn, 400, f"Bad Request ({exc.reason})"[:200])
        except Exception:
            log.exception("error handling %s", req.method)
            if not txn.final_sent:
                self.reply(txn, 500, "Server Internal Error")

    def _dispatch(self, txn: ServerTxn, req: Request, now: float) -> None:
        method = req.method
        try:
            ruri = parse_uri(req.uri)
        except ParseError as exc:
            self.reply(txn, 400, f"Bad Request ({exc.reason})"[:200])
            return
        if not isinstance(ruri, SipUri):
            self.reply(txn, 416, "Unsupported URI Scheme")
            return
        unsupported = self._unsupported(req)
        if unsupported:
            self.reply(txn, 420, "Bad Extension", [("Unsupported", ", ".join(unsupported))])
            return
        if method == "REGISTER":
            self.on_register(txn, req, ruri, now)
            return
        if method == "OPTIONS" and (ruri.user is None or self.calls is None or self._max_forwards(req) == 0):
            self.on_options(txn)
            return
        if method not in KNOWN_METHODS:
            self.reply(txn, 501, "Not Implemented")
            return
        if self.calls is not None:
            self.calls.on_request(txn, req, ruri, now)
            return
        if method == "OPTIONS":
            self.on_options(txn)
        else:
            self.reply(txn, 480, "Temporarily Unavailable")

    def _max_forwards(self, req: Request) -> int:
        mf = req.headers.get("max-forwards")
        return int(mf) if mf is not None else 70

    def _unsupported(self, req: Request) -> list[str]:
        if req.method in ("ACK", "CANCEL"):
            return []
        out = []
        for name in ("proxy-require", "require"):
            for value in req.headers.get_all(name):
                for opt in value.split(","):
                    opt = opt.strip()
                    if opt and opt.lower() not in SUPPORTED and opt not in out:
                        out.append(opt)
        return out

    def on_options(self, txn: ServerTxn) -> None:
        self.reply(
            txn, 200, "OK", [("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", SUPPORTED_HEADER)]
        )

    def on_register(self, txn: ServerTxn, req: Request, ruri: SipUri, now: float) -> None:
        to = req.to
        if not isinstance(to.uri, SipUri) or to.uri.user is None:
            self.reply(txn, 400, "Bad Request (To must be a SIP address of record)")
            return
        device = self.authenticate(txn, req, now, proxy=False)
        if device is None:
            return
        if not self.device_allowed(txn, device, now):
            return
        user = to.uri.user_unescaped or ""
        if user not in (device.account, device.auth_username):
            self.reply(txn, 403, "Forbidden (these credentials cannot register this address)")
            return
        if not self.is_local(to.uri.host, txn.source):
            self.reply(txn, 403, "Forbidden (domain not served here)")
            return
        account = device.account
        src = txn.source
        origin = RegisterOrigin(src.transport, src.remote, src.local, src.conn)
        result = process_register(
            req,
            account=account,
            auth_username=device.auth_username,
            existing=self.location.get(account),
            origin=origin,
            policy=self.policy,
            now=now,
        )
        if result.status != 200:
            self.reply(txn, result.status, result.reason, result.headers)
            return
        if result.upserts or result.removes:
            self.location.apply(result.upserts, result.removes)
        headers = [("Contact", contact_header(b, now)) for b in result.bindings]
        if any(b.outbound and b.reg_id is not None for b in result.upserts):
            headers.append(("Require", "outbound"))
        supported = {o.strip().lower() for v in req.headers.get_all("supported") for o in v.split(",")}
        if result.upserts and "path" in supported:  # RFC 3327 §5.3: echo the stored Path
            headers += [("Path", p) for p in req.headers.get_all("path")]
        headers.append(("Supported", SUPPORTED_HEADER))
        headers.append(("Date", formatdate(now, usegmt=True)))
        self.reply(txn, 200, "OK", headers)

    def on_ack(self, req: Request, source: Source, now: float) -> None:
        if self.calls is not None:
            self.calls.on_ack(req, source, now)

    def on_cancel(self, txn: ServerTxn, req: Request, now: float) -> None:
        if self.calls is not None:
            self.calls.on_cancel(txn, req, now)
        elif not txn.final_sent:
            self.reply(txn, 487, "Request Terminated")

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        if self.calls is not None:
            self.calls.on_response(txn, resp, now)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        if self.calls is not None:
            self.calls.on_timeout(txn, now)

    def on_stray_response(self, resp: Response, source: Source, now: float) -> None:
        if self.calls is not None:
            self.calls.on_stray_response(resp, source, now)

    def on_flow_closed(self, conn: str, now: float) -> None:
        dropped = self.location.drop_flow(conn)
        if dropped:
            log.info("connection %s closed: %d binding(s) removed", conn, dropped)
        self.stack.transport_failed(conn, now)
