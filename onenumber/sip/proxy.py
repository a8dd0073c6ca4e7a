"""Stateful proxy building blocks (RFC 3261 §16): pure functions and the per-call fork state.

- `prepare_forward` copies a request for one branch (§16.6): Request-URI, Max-Forwards,
  Record-Route, Via with a loop-detecting branch, Path/Route for the target.
- `Fork` keeps one forked INVITE's branches and chooses the response to send upstream
  (§16.7): first 2xx wins, provisional responses pass once per branch, busy/decline/
  failure are collected until every branch is done.
- `make_cancel`, `strip_own_routes`, `loop_detected`: the rest of what a proxy needs.

No sockets, no clock: the forking proxy service (services/proxy.py) drives these.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from .headers import NameAddr, Via, is_token
from .message import Headers, Request, Response
from .uri import SipUri, parse_uri

REASON_COMPLETED_ELSEWHERE = 'SIP;cause=200;text="Call completed elsewhere"'
REASON_BUSY_EVERYWHERE = 'SIP;cause=600;text="Busy Everywhere"'


def loop_hash(req: Request) -> str:
    """A digest of what identifies this request's route (§16.6 step 8, §16.3 step 4)."""
    h = hashlib.blake2s(digest_size=5)
    h.update(req.uri.encode())
    h.update(b"\0" + (req.from_.tag or "").encode())
    h.update(b"\0" + (req.to.tag or "").encode())
    h.update(b"\0" + req.call_id.encode())
    h.update(b"\0" + str(req.cseq.number).encode())
    for r in req.headers.get_all("route"):
        h.update(b"\0" + r.encode())
    return h.hexdigest()


def loop_detected(req: Request, own: Iterable[tuple[str, int]], branch_tag: str = "on") -> bool:
    """True when one of our own Vias carries the same loop hash: the request came back unchanged."""
    own_set = {(h.lower(), p) for h, p in own}
    mine = [v for v in req.vias if v.sent_by in own_set and (v.branch or "").startswith("z9hG4bK" + branch_tag)]
    if not mine:
        return False
    digest = loop_hash(req)
    return any((v.branch or "").split(".")[0].endswith(digest) for v in mine)


def pop_own_routes(req: Request, is_own: Callable[[SipUri], bool]) -> list[SipUri]:
    """Remove the Route entries that name this proxy from the top (§16.4); return them."""
    removed: list[SipUri] = []
    while True:
        top = req.headers.get("route")
        if top is None:
            return removed
        try:
            uri = NameAddr.parse(top).uri
        except Exception:
            return removed
        if isinstance(uri, SipUri) and is_own(uri):
            req.headers.pop_first("route")
            removed.append(uri)
        else:
            return removed


def strip_own_routes(req: Request, is_own: Callable[[SipUri], bool]) -> int:
    """Remove the Route entries that name this proxy from the top (§16.4); return how many."""
    return len(pop_own_routes(req, is_own))


# --- signed Record-Route ------------------------------------------------------------------
# A Route naming us proves nothing by itself: anyone can write one. The Record-Route we insert
# carries an HMAC (with the server's secret, shared by every worker and node) over the dialog's
# Call-ID, the caller's tag and the caller's original From; an in-dialog request is relayed
# only when a Route of ours carries a signature that checks out (or the dialog is one we hold).
SIG_PARAM = "ons"
FROM_PARAM = "onf"  # the caller's From as it sent it (base64url), when we rewrote it


def route_signature(secret: bytes, call_id: str, tag: str, original_from: str = "") -> str:
    """A 96-bit keyed BLAKE2s MAC (one C call: cheaper than HMAC on the call path)."""
    mac = hashlib.blake2s(f"{call_id}\0{tag}\0{original_from}".encode(), key=secret[:32], digest_size=12).digest()
    return base64.urlsafe_b64encode(mac).decode()


def encode_from(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_from(text: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def signed_route_params(secret: bytes, call_id: str, tag: str, original_from: str | None) -> str:
    """`;onf=…;ons=…`: the parameters of a Record-Route that proves itself on the way back."""
    enc = encode_from(original_from) if original_from else ""
    sig = route_signature(secret, call_id, tag, enc)
    return (f";{FROM_PARAM}={enc}" if enc else "") + f";{SIG_PARAM}={sig}"


def verify_routes(secret: bytes, routes: Iterable[SipUri], call_id: str, tags: Iterable[str]) -> tuple[str, str] | None:
    """The tag a signed Route of ours was made for, and the original From it carries ("" when
    the From was not rewritten); None when no Route carries a valid signature."""
    tag_list = [t for t in tags if t]
    for uri in routes:
        sig = uri.param(SIG_PARAM)
        if not sig:
            continue
        enc = uri.param(FROM_PARAM) or ""
        for tag in tag_list:
            if hmac.compare_digest(route_signature(secret, call_id, tag, enc), sig):
                return tag, (decode_from(enc) or "") if enc else ""
    return None


def record_route(host: str, port: int, transport: str, params: str = "") -> str:
    tp = "" if transport == "udp" else f";transport={transport}"
    return f"<sip:{host}:{port}{tp};lr{params}>"


def via_value(transport: str, host: str, port: int, branch: str) -> str:
    """Our Via for a request we send. Its parsed form is remembered (`Via.remember`): the stack
    reads the top Via of every request it sends, and every response to it carries it back, so
    parsing it would be work done at least twice per branch for a value we wrote ourselves."""
    tp = transport.upper()
    value = f"SIP/2.0/{tp} {host}:{port};branch={branch};rport"
    Via.remember(value, Via(tp, host, port, (("branch", branch), ("rport", None))))
    return value


def set_from(req: Request, name_addr: str, tag: str) -> str:
    """Rewrite the From to `name_addr` (no parameters) with the caller's `tag`; returns the value
    written. Its parsed form is built from `name_addr`'s (the same for every call a caller places,
    so parsed once and cached) and the tag, rather than parsing the new value: loop detection
    reads the From tag of every INVITE we forward."""
    value = f"{name_addr};tag={tag}" if tag else name_addr
    req.headers.set("From", value)
    base = NameAddr.parse(name_addr)
    if not base.params and base.bracketed and (not tag or is_token(tag)):
        params = (("tag", tag),) if tag else ()
        req.headers.remember("from", NameAddr(base.uri, base.display, params, True))
    return value


def prepare_forward(
    req: Request,
    *,
    uri: str,
    via: str,
    record_routes: Iterable[str] = (),
    routes: Iterable[str] = (),
) -> Request:
    """A copy of `req` for one branch: new Request-URI, Max-Forwards - 1, our Via on top,
    Record-Route (ours first), and Route headers for the target's Path."""
    h = req.headers.copy()
    mf = h.get("max-forwards")
    h.set("Max-Forwards", str(int(mf) - 1) if mf is not None else "70")
    for rr in reversed(list(record_routes)):
        h.prepend("Record-Route", rr)
    route_list = list(routes)
    if route_list:
        for r in reversed(route_list):
            h.prepend("Route", r)
    h.prepend("Via", via)
    return Request(req.method, uri, h, req.body)


def make_cancel(branch_request: Request, reason: str | None) -> Request:
    """§9.1: CANCEL with the INVITE's Request-URI, Call-ID, From, To, CSeq number, top Via, Route."""
    h = Headers()
    h.add("Via", branch_request.headers.get("via") or "")
    for r in branch_request.headers.get_all("route"):
        h.add("Route", r)
    h.add("Max-Forwards", "70")
    h.add("From", branch_request.headers.get("from") or "")
    h.add("To", branch_request.headers.get("to") or "")
    h.add("Call-ID", branch_request.call_id)
    h.add("CSeq", f"{branch_request.cseq.number} CANCEL")
    if reason:
        h.add("Reason", reason)
    h.add("Content-Length", "0")
    return Request("CANCEL", branch_request.uri, h)


def pop_own_via(resp: Response) -> Response:
    """The response to send upstream: our top Via removed (§16.7 step 3).

    Done in place: a response from downstream is relayed once (a retransmission is a new
    message), so copying every header of every relayed response would be wasted work."""
    resp.headers.pop_first("via")
    return resp


class BranchState(StrEnum):
    TRYING = "trying"  # INVITE sent, nothing back
    RINGING = "ringing"  # a provisional came back
    ANSWERED = "answered"
    FAILED = "failed"  # a final non-2xx, a timeout or a transport error
    CANCELLED = "cancelled"  # we sent CANCEL; waiting for its 487


@dataclass(slots=True)
class Branch:
    branch: str
    request: Request | None  # None once released (the call decided, see services.proxy._release)
    position: int | None  # the device (None for a trunk or forward target)
    auth_username: str | None
    state: BranchState = BranchState.TRYING
    status: int | None = None
    response: Response | None = None
    provisionals: set[int] = field(default_factory=set)
    cancel_reason: str | None = None  # a CANCEL waits for a provisional (§9.1)
    cancel_pending: bool = False
    attempt: int = 0  # which target of the call this branch rings (each forward starts a new attempt)

    @property
    def pending(self) -> bool:
        return self.state in (BranchState.TRYING, BranchState.RINGING)


# §16.7 step 6: which final wins when every branch failed (lower rank = better)
def response_rank(status: int) -> tuple[int, int]:
    if 600 <= status < 700:
        return (0, status)
    if status in (401, 407, 415, 420, 484):
        return (1, status)
    if 300 <= status < 400:
        return (2, status)
    if status == 486:
        return (3, status)
    if 400 <= status < 500:
        return (4, status)
    return (5, status)


def best_response(branches: Iterable[Branch]) -> Branch | None:
    done = [b for b in branches if b.status is not None and b.status >= 300]
    if not done:
        return None
    return min(done, key=lambda b: response_rank(b.status or 999))


def target_uri(text: str) -> SipUri | None:
    try:
        uri = parse_uri(text)
    except Exception:
        return None
    return uri if isinstance(uri, SipUri) else None


