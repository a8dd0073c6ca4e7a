"""Dialog state for a user agent server (RFC 3261 §12): built from a request, used to answer
it and to send requests inside the dialog.

`Dialog.from_request(req, local_tag)` keeps what §12.1.1 says a UAS stores (route set
from Record-Route, remote target from Contact, both tags, the remote CSeq);
`response_for(req, status, reason, to_tag)` answers the request with our tag (§8.2.6;
the same tag on every response of the dialog, unlike `Stack.make_response`), and
`Dialog.request(method, …)` builds an in-dialog request (§12.2.1.1: Request-URI and
Route, with strict routing handled). Requests carry no Via: the stack adds one with a
fresh branch when it sends them.

Used by the subscriptions (the notifier side of SUBSCRIBE dialogs) and the voicemail
user agent. Pure: depends on sip.headers, sip.message and sip.uri only.
"""

from __future__ import annotations

from dataclasses import dataclass

from .headers import NameAddr
from .message import CANONICAL, Headers, Request, Response, canonical_key
from .uri import SipUri


@dataclass(slots=True)
class Dialog:
    """One dialog, our side being the UAS of the request that created it. Mutable: CSeqs count."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: str  # the creating request's To URI
    remote_uri: str  # its From URI
    remote_target: str  # its Contact URI (updated by target refreshes)
    route_set: tuple[str, ...] = ()  # Record-Route values, in order
    remote_cseq: int = 0
    local_cseq: int = 0
    remote_display: str | None = None  # the From display name, as written

    @classmethod
    def from_request(cls, req: Request, local_tag: str) -> Dialog:
        """The UAS dialog for `req`. Raises ValueError when it has no Contact."""
        contacts = req.contacts
        if not contacts:
            raise ValueError(f"{req.method} without Contact cannot create a dialog")
        frm = req.from_
        return cls(
            call_id=req.call_id,
            local_tag=local_tag,
            remote_tag=frm.tag or "",
            local_uri=str(req.to.uri),
            remote_uri=str(frm.uri),
            remote_target=str(contacts[0].uri),
            route_set=tuple(str(r) for r in req.record_routes),
            remote_cseq=req.cseq.number,
            remote_display=frm.display,
        )

    def matches(self, req: Request) -> bool:
        """Whether an in-dialog request belongs here (Call-ID and both tags)."""
        return req.call_id == self.call_id and req.to.tag == self.local_tag and (req.from_.tag or "") == (
            self.remote_tag
        )

    def request(self, method: str, extra: list[tuple[str, str]] | None = None, body: bytes = b"",
                content_type: str | None = None) -> Request:
        """The next request of ours in this dialog (counts `local_cseq`)."""
        self.local_cseq += 1
        uri = self.remote_target
        routes = list(self.route_set)
        if routes:
            first = NameAddr.parse(routes[0])
            if not (isinstance(first.uri, SipUri) and first.uri.has_param("lr")):  # strict router
                uri = str(first.uri)
                routes = [*routes[1:], f"<{self.remote_target}>"]
        # items written out directly (names canonical, no per-header lookups): every NOTIFY of a
        # subscription is built here, so this is on the BLF hot path
        items = [["route", "Route", r] for r in routes] if routes else []
        items += (
            ["max-forwards", "Max-Forwards", "70"],
            ["from", "From", f"<{self.local_uri}>;tag={self.local_tag}"],
            ["to", "To", f"<{self.remote_uri}>" + (f";tag={self.remote_tag}" if self.remote_tag else "")],
            ["call-id", "Call-ID", self.call_id],
            ["cseq", "CSeq", f"{self.local_cseq} {method}"],
        )
        body_headers = False
        for name, value in extra or ():
            key = canonical_key(name)
            body_headers = body_headers or key == "content-length" or key == "content-type"
            items.append([key, CANONICAL.get(key, name), value])
        req = Request(method, uri, Headers._raw(items), body)
        if body_headers:  # the caller's own Content-Length/Type: set_body keeps them in place
            req.set_body(body, content_type if body else None)
        else:  # what set_body would do, without searching the headers again
            items.append(["content-length", "Content-Length", str(len(body))])
            if body and content_type:
                items.append(["content-type", "Content-Type", content_type])
        req.headers.remember("routes", tuple([NameAddr.parse(r) for r in routes]) if routes else ())
        return req


def response_for(
    req: Request,
    status: int,
    reason: str,
    to_tag: str | None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """§8.2.6: Via, From, Call-ID, CSeq copied; To copied with `to_tag` added when it has none."""
    items: list[list[str]] = []
    to_done = False
    for key, name, value in req.headers._items:
        if key in ("via", "from", "call-id", "cseq"):
            items.append([key, name, value])
        elif key == "to" and not to_done:
            if to_tag and status > 100 and req.to.tag is None:
                value = f"{value};tag={to_tag}"
            items.append([key, name, value])
            to_done = True
        elif key == "record-route" and 100 < status < 300:
            items.append([key, name, value])  # §12.1.1: the UAS copies Record-Route into its dialog responses
    resp = Response(status, reason, Headers._raw(items))
    for name, value in headers or ():
        resp.headers.add(name, value)
    if body or content_type:
        resp.set_body(body, content_type)
    return resp
