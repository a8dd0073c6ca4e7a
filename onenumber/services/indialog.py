"""Requests within a dialog (a To-tag, or an ACK for a 2xx): checked, then loose-routed.

A Route naming us proves nothing: anyone can write one. A request is relayed only when the
dialog is one the proxy holds (its tags match a `CallRecord`) or a Route of ours carries a
Record-Route signature that checks out (`sip.proxy.verify_routes`: a dialog we set up before
a restart, or on another worker or node). Anything else gets 403 (a Route of ours that we did
not sign) or 481, and is never relayed.

On the way through, our realm's credentials are consumed, and the identity rewrite of the
call is kept consistent: the callee sees the account's identity as the caller's From, the
caller sees its own From (as it sent it) in requests from the callee and in every response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..sip.errors import ParseError
from ..sip.headers import NameAddr
from ..sip.message import Request, Response
from ..sip.nodes import FLOW_PARAM, Flow, copy_route_params, make_flow_token, route_flow
from ..sip.proxy import (
    FROM_PARAM,
    SIG_PARAM,
    make_cancel,
    pop_own_routes,
    pop_own_via,
    record_route,
    target_uri,
    verify_routes,
    via_value,
)
from ..sip.stack import ClientTxn, ServerTxn, Source, Stack, Target
from ..sip.uri import SipUri
from .dialogs import CallRecord, Dialogs
from .events import CallEnded, EndCause, EventBus
from .gate import strip_own_credentials
from .location import Location
from .media import MediaSeam
from .replies import Replier

log = logging.getLogger("onenumber.indialog")

CALLER = "caller"
CALLEE = "callee"
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER"})  # Record-Routed when relayed to a flow


@dataclass(slots=True)
class Relay:
    """A request relayed within a dialog: the response goes back on `txn`, with the From and To
    the requester sent when we changed them on the way."""

    owner: InDialogRelay
    txn: ServerTxn
    method: str
    from_header: str | None = None  # the requester's From, when we rewrote it
    to_header: str | None = None  # the requester's To, when we rewrote it
    answer_to_webrtc: bool | None = None  # a bridged call: the SDP answer goes back through the relay
    tags: tuple[str, str] = ("", "")  # the request's From and To tags, for the relay

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        self.owner.on_response(self, txn, resp, now)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        if not self.txn.final_sent:
            self.owner.replier.reply(self.txn, 408, "Request Timeout")

    def on_cancel(self, txn: ServerTxn, req: Request, now: float) -> None:
        self.owner.on_cancel(self, now)


@dataclass(slots=True)
class Checked:
    """A request that passed the check: who sent it, and what the call looks like."""

    side: str  # CALLER or CALLEE
    record: CallRecord | None
    original_from: str | None  # the caller's From as it sent it, when the call's From was rewritten
    flow: Flow | None = None  # several nodes: the device's flow, named by a Route of ours (sip/nodes.py)


class InDialogRelay:
    def __init__(
        self,
        stack: Stack,
        replier: Replier,
        dialogs: Dialogs,
        location: Location,
        events: EventBus,
        *,
        secret: bytes,
        realm: str,
        is_own_uri: Callable[[SipUri], bool],
        media: MediaSeam,
    ) -> None:
        self.media = media
        self.stack = stack
        self.replier = replier
        self.dialogs = dialogs
        self.location = location
        self.events = events
        self.secret = secret
        self.realm = realm
        self.is_own_uri = is_own_uri

    def _local(self, transport: str) -> tuple[str, int]:
        return self.stack.local.get(transport) or self.stack.local["udp"]

    # ------------------------------------------------------------------ the check
    def check(self, req: Request) -> tuple[Checked | None, int, str]:
        """Pop our Routes and decide whether this request belongs to a dialog we routed.

        Returns the check's result, or None with the status and reason to refuse with."""
        routes = pop_own_routes(req, self.is_own_uri)
        from_tag = req.from_.tag or ""
        to_tag = req.to.tag or ""
        flow = route_flow(self.secret, routes) if routes else None
        rec = self.dialogs.get(req.call_id)
        if rec is not None and rec.callee_tag is not None:
            tags = {rec.caller_tag, rec.callee_tag}
            if from_tag in tags and to_tag in tags:
                side = CALLER if from_tag == rec.caller_tag else CALLEE
                original = rec.caller_from if rec.identity_from is not None else None
                return Checked(side, rec, original, flow), 0, ""
        signed = verify_routes(self.secret, routes, req.call_id, (from_tag, to_tag))
        if signed is not None:
            tag, original = signed
            side = CALLER if tag == from_tag else CALLEE
            return Checked(side, None, original or None, flow), 0, ""
        if routes:
            return None, 403, "Forbidden (not a dialog routed by this server)"
        return None, 481, "Call/Transaction Does Not Exist"

    # ------------------------------------------------------------------ requests
    def on_request(self, txn: ServerTxn, req: Request, now: float, *, fall_through: bool = False) -> bool:
        """Relay (or refuse) an in-dialog request; False when it is not ours to judge: no dialog
        explains it and `fall_through` says it is for one of our accounts (routed as usual)."""
        mf = req.headers.get("max-forwards")
        if mf is not None and int(mf) == 0:
            self.replier.reply(txn, 483, "Too Many Hops")
            return True
        checked, status, reason = self.check(req)
        if checked is None:
            if fall_through:
                return False
            self.replier.reply(txn, status, reason)
            return True
        relay = Relay(self, txn, req.method)
        fwd = self._prepare(req, checked, relay)
        target = self._target(fwd, checked, txn.source)
        if target is None:
            self.replier.reply(txn, 481, "Call/Transaction Does Not Exist")
            return True
        host, port = self._local(target.transport)
        fwd.headers.prepend("Via", via_value(target.transport, host, port, self.stack.new_branch()))
        if req.method == "BYE":
            self._ended(req.call_id, checked.side, now)
        txn.context = relay
        rec = checked.record
        if rec is not None and rec.media is not None and fwd.body and _carries_sdp(req):
            self._bridge_offer(relay, rec.media, checked.side, req, fwd, target)
            return True
        self.stack.send_request(fwd, target, now, context=relay)
        return True

    def _bridge_offer(self, relay: Relay, media: tuple[bool, bool], side: str, req: Request, fwd: Request,
                      target: Target) -> None:
        """A re-INVITE or UPDATE with SDP in a bridged call (hold, resume, a new codec): its offer,
        and then its answer, go through the media relay like the first ones did."""
        caller_webrtc, callee_webrtc = media
        relay.answer_to_webrtc = caller_webrtc if side == CALLER else callee_webrtc
        relay.tags = (req.from_.tag or "", req.to.tag or "")

        def send(sdp: bytes | None, at: float) -> None:
            if sdp is None:
                self.replier.reply(relay.txn, 488, "Not Acceptable Here (the media relay did not answer)")
                return
            fwd.set_body(sdp)
            self.stack.send_request(fwd, target, at, context=relay)

        self.media.request(req.call_id, relay.tags[0], None, fwd.body,
                           callee_webrtc if side == CALLER else caller_webrtc, send)

    def on_ack(self, req: Request, source: Source, now: float) -> None:
        """ACK for a 2xx: relayed statelessly along the route set (§16.11 behaviour)."""
        checked, _, _ = self.check(req)
        if checked is None:
            return  # an ACK is never answered: a forged one is dropped
        fwd = self._prepare(req, checked, None)
        target = self._target(fwd, checked, source)
        if target is None:
            return
        host, port = self._local(target.transport)
        fwd.headers.prepend("Via", via_value(target.transport, host, port, self.stack.new_branch()))
        self.stack.send_stateless(fwd, target)

    def _prepare(self, req: Request, checked: Checked, relay: Relay | None) -> Request:
        """The copy to forward: Max-Forwards - 1, our credentials consumed, From/To as the
        other side knows them."""
        h = req.headers.copy()
        mf = h.get("max-forwards")
        h.set("Max-Forwards", str(int(mf) - 1) if mf is not None else "70")
        fwd = Request(req.method, req.uri, h, req.body)
        strip_own_credentials(fwd, self.realm)
        rec = checked.record
        if checked.side == CALLER:
            if rec is not None and rec.identity_from is not None:
                if relay is not None:
                    relay.from_header = req.headers.get("from")
                h.set("From", rec.identity_from)  # the callee knows the caller by the account's identity
        elif checked.original_from:
            # from the callee: its To names the caller as the callee saw it; the caller gets its own From back
            to_tag = req.to.tag
            if relay is not None:
                relay.to_header = req.headers.get("to")
            h.set("To", _with_tag(checked.original_from, to_tag))
        return fwd

    def _target(self, fwd: Request, checked: Checked, source: Source) -> Target | None:
        """Loose routing (§16.4, §16.12): the next Route, else the other side of the call as we
        reached it (its connection, or its address behind NAT), else the Request-URI."""
        top = fwd.headers.get("route")
        if top is not None:
            try:
                uri = NameAddr.parse(top).uri
            except ParseError:
                return None
            return self._target_for_uri(uri) if isinstance(uri, SipUri) else None
        if checked.flow is not None:  # the device whose flow this node holds (several nodes)
            return Target(*checked.flow)
        rec = checked.record
        if rec is not None and rec.callee_target is not None:
            return rec.callee_target if checked.side == CALLER else rec.caller_target
        ruri = target_uri(fwd.uri)
        return self._target_for_uri(ruri) if ruri is not None else None

    def _target_for_uri(self, uri: SipUri) -> Target:
        binding = self.location.find_contact(str(uri))
        if binding is not None:
            if binding.flow:
                return Target(binding.transport, binding.source[0], binding.source[1], binding.flow)
            if binding.transport == "udp":
                return Target("udp", binding.source[0], binding.source[1])
        transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
        return Target(transport, uri.host.strip("[]"), uri.default_port())

    # ------------------------------------------------------------------ several nodes
    def on_node_request(self, txn: ServerTxn, req: Request, routes: list[SipUri], now: float) -> bool:
        """An initial request another node sends to a device whose flow this node holds: its
        Route (popped into `routes`) is the Path entry this node added at registration, with a
        signed flow token (sip/nodes.py). Relayed statefully over that flow, Record-Routed with
        the token and with the dialog's signature (copied from the Record-Route of the node that
        set the call up, which signed it with the secret all nodes share), so in-dialog requests
        come through here too. False when no Route of ours carries a token."""
        if not any(u.param(FLOW_PARAM) for u in routes):
            return False
        flow = route_flow(self.secret, routes)
        if flow is None:
            self.replier.reply(txn, 403, "Forbidden (a flow token that does not verify)")
            return True
        mf = req.headers.get("max-forwards")
        if mf is not None and int(mf) <= 0:
            self.replier.reply(txn, 483, "Too Many Hops")
            return True
        h = req.headers.copy()
        h.set("Max-Forwards", str(int(mf) - 1) if mf is not None else "70")
        target = Target(*flow)
        host, port = self._local(target.transport)
        if req.method in DIALOG_CREATING:
            params = copy_route_params(req.headers.get("record-route"), (FROM_PARAM, SIG_PARAM))
            params += f";{FLOW_PARAM}={make_flow_token(self.secret, flow)}"
            in_tp = txn.source.transport
            if in_tp != target.transport:  # RFC 5658 double Record-Route
                ih, ip = self._local(in_tp)
                h.prepend("Record-Route", record_route(ih, ip, in_tp, params))
            h.prepend("Record-Route", record_route(host, port, target.transport, params))
        h.prepend("Via", via_value(target.transport, host, port, self.stack.new_branch()))
        fwd = Request(req.method, req.uri, h, req.body)
        relay = Relay(self, txn, req.method)
        txn.context = relay
        self.stack.send_request(fwd, target, now, context=relay)
        return True

    # ------------------------------------------------------------------ responses
    def on_response(self, relay: Relay, txn: ClientTxn, resp: Response, now: float) -> None:
        if resp.status == 100:
            return
        if relay.answer_to_webrtc is not None and resp.body and resp.status < 300 and _carries_sdp(resp):
            to_webrtc, relay.answer_to_webrtc = relay.answer_to_webrtc, None  # once: retransmissions pass

            def go_on(sdp: bytes | None, at: float) -> None:
                if sdp is not None:
                    resp.set_body(sdp)
                self.on_response(relay, txn, resp, at)

            self.media.request(resp.call_id, relay.tags[0], relay.tags[1], resp.body, to_webrtc, go_on)
            return
        pop_own_via(resp)
        if relay.from_header is not None:
            resp.headers.set("From", relay.from_header)
        if relay.to_header is not None:
            resp.headers.set("To", relay.to_header)
        self.stack.respond(relay.txn, resp, now)

    def on_cancel(self, relay: Relay, now: float) -> None:
        """A CANCEL for a relayed re-INVITE: cancel what we sent downstream."""
        for ctxn in list(self.stack.client_txns.values()):
            if ctxn.context is relay and ctxn.method == "INVITE" and ctxn.request is not None:
                self.stack.send_request(make_cancel(ctxn.request, None), ctxn.target, now)

    def _ended(self, call_id: str, side: str, now: float) -> None:
        rec = self.dialogs.end(call_id, now)
        if CallEnded in self.events.wanted and (rec is None or rec.answered is not None):
            self.events.emit(CallEnded(call_id, now, EndCause.BYE, side))


def _with_tag(name_addr: str, tag: str | None) -> str:
    """`name_addr` (a From as the caller sent it, tag included) with `tag` as its tag."""
    try:
        na = NameAddr.parse(name_addr)
    except ParseError:
        return name_addr
    params = [(k, v) for k, v in na.params if k.lower() != "tag"]
    if tag:
        params.append(("tag", tag))
    base = str(na.uri)
    head = f"{na.display} <{base}>" if na.display else f"<{base}>"
    return head + "".join(f";{k}={v}" if v is not None else f";{k}" for k, v in params)


def _carries_sdp(msg: Request | Response) -> bool:
    """An SDP body (an offer or answer for the media relay); an INFO's DTMF or a MESSAGE's text
    in a bridged call is relayed as it is."""
    content_type = (msg.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    return content_type == "application/sdp"
