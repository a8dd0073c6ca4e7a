"""The call service: runs ring plans on the forking proxy and relays in-dialog requests.

An INVITE for an account is authenticated (407) unless it comes from a trunk, gets the
caller's identity (account number and name, never a device's auth username), then the
routing policy's RingPlan is executed: stage 0 now, later stages on their timers (earlier
ones keep ringing), the no-answer timer, best-response rules (`sip.proxy`), and the final
action (busy / no-answer forward, reject). Calls to numbers that are not local go to a
trunk. In-dialog requests follow the Record-Route we inserted.

Everything runs synchronously inside the stack's callbacks, with time passed in: no
I/O of its own, so the same code is driven by the tests without sockets.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..routing.model import Account, Binding, CallState, DeclineMode, FinalAction, FinalKind, RingPlan
from ..routing.plan import plan_call
from ..sip.errors import ParseError
from ..sip.headers import NameAddr
from ..sip.message import Request, Response
from ..sip.proxy import (
    REASON_BUSY_EVERYWHERE,
    REASON_COMPLETED_ELSEWHERE,
    Branch,
    BranchState,
    best_response,
    loop_detected,
    loop_hash,
    make_cancel,
    pop_own_via,
    prepare_forward,
    record_route,
    strip_own_routes,
    target_uri,
    via_value,
)
from ..sip.stack import MAGIC, ClientTxn, ServerTxn, Source, Stack, Target, Timer
from ..sip.uri import SipUri
from ..store import Trunk
from .directory import Directory
from .location import Location

if TYPE_CHECKING:
    from ..transport.driver import Driver
    from .sipapp import SipApp

log = logging.getLogger("onenumber.calls")

TIMER_C = 180.0  # §16.6 step 11: a ringing call is given up after this, whatever the plan says
MAX_RETARGETS = 5
BUSY_STATUSES = frozenset({486, 600})
DIALOG_LIMIT = 4 * 3600.0  # forget an established call with no BYE after this long
DIVERSION_REASON = {"unconditional": "unconditional", "busy": "user-busy", "no-answer": "no-answer"}


@dataclass(slots=True)
class CallContext:
    """One incoming INVITE being routed: its branches across legs (forward retargets)."""

    txn: ServerTxn
    base: Request  # identity rewritten, before per-branch changes
    caller_account: str | None
    target_number: str
    account: Account | None = None
    plan: RingPlan | None = None
    leg: int = 0
    branches: dict[str, Branch] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    next_stage: int = 0
    timers: list[Timer] = field(default_factory=list)
    done: bool = False  # a final response went upstream
    answered: str | None = None  # the winning branch
    retargets: int = 0
    diverted_from: list[str] = field(default_factory=list)
    loop_key: str | None = None  # loop_hash of `base`, reset when the call is retargeted
    caller_device: str | None = None  # auth username of the calling device: it never rings itself


@dataclass(slots=True)
class Relay:
    """A request relayed within a dialog: the response goes back on `txn`."""

    txn: ServerTxn


@dataclass(slots=True)
class ActiveCall:
    call_id: str
    accounts: tuple[str, ...]
    started: float
    positions: dict[str, int] = field(default_factory=dict)
    caller: Target | None = None  # where the caller's side of the dialog is reached
    callee: Target | None = None  # the answering device's side


class CallService:
    def __init__(self, app: SipApp, stack: Stack, directory: Directory, location: Location) -> None:
        self.app = app
        self.stack = stack
        self.directory = directory
        self.location = location
        self.driver: Driver | None = None
        self.active: dict[str, ActiveCall] = {}
        self.in_call: dict[str, set[str]] = {}  # account → call ids
        self.stats = {"calls": 0, "answered": 0, "late_answers": 0}

    def attach_driver(self, driver: Driver) -> None:
        self.driver = driver

    # ------------------------------------------------------------------ addresses
    def own_ports(self) -> set[int]:
        return {port for _, port in self.stack.local.values()}

    def is_own_uri(self, uri: SipUri) -> bool:
        port = uri.port or (5061 if uri.scheme == "sips" else 5060)
        return port in self.own_ports() and self.app.is_local(uri.host)

    def domain(self) -> str:
        return self.directory.settings.domain or self.stack.local.get("udp", ("127.0.0.1", 0))[0]

    def _local(self, transport: str) -> tuple[str, int]:
        return self.stack.local.get(transport) or self.stack.local["udp"]

    def _new_branch(self, ctx: CallContext) -> str:
        """A branch carrying the loop-detection hash of the request as it leaves (§16.6 step 8)."""
        if ctx.loop_key is None:
            ctx.loop_key = loop_hash(ctx.base)
        return f"{MAGIC}on{ctx.loop_key}.{self.stack.new_branch()[len(MAGIC):]}"

    def trunk_from(self, source: Source) -> Trunk | None:
        for t in self.directory.trunks:
            if t.host == source.remote[0] and t.port == source.remote[1]:
                return t
        return None

    def call_state(self, account: str) -> CallState:
        ids = self.in_call.get(account, set())
        positions = frozenset(
            self.active[c].positions[account] for c in ids if account in self.active[c].positions
        )
        return CallState(active_calls=len(ids), devices_in_call=positions)

    # ------------------------------------------------------------------ requests
    def on_request(self, txn: ServerTxn, req: Request, ruri: SipUri, now: float) -> None:
        if req.to.tag:
            self._relay_in_dialog(txn, req, now)
            return
        strip_own_routes(req, self.is_own_uri)
        own = list(self.stack.local.values())
        if loop_detected(req, own):
            self.app.reply(txn, 482, "Loop Detected")
            return
        mf = req.headers.get("max-forwards")
        if mf is not None and int(mf) == 0:
            self.app.reply(txn, 483, "Too Many Hops")
            return
        if req.method == "OPTIONS":
            self.app.on_options(txn)
            return
        if req.method != "INVITE":
            if req.method in ("BYE", "ACK", "PRACK", "UPDATE", "INFO", "NOTIFY"):
                self.app.reply(txn, 481, "Call/Transaction Does Not Exist")
            else:
                self.app.reply(txn, 405, "Method Not Allowed", [("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, "
                                                                  "REGISTER, UPDATE, INFO, REFER, PRACK")])
            return
        self._new_call(txn, req, ruri, now)

    def _new_call(self, txn: ServerTxn, req: Request, ruri: SipUri, now: float) -> None:
        trunk = self.trunk_from(txn.source)
        caller: Account | None = None
        caller_device: str | None = None
        if trunk is None:
            device = self.app.authenticate(txn, req, now, proxy=True)
            if device is None or not self.app.device_allowed(txn, device, now):
                return
            caller = self.directory.accounts.get(device.account)
            if caller is None:
                self.app.reply(txn, 403, "Forbidden (device has no account)")
                return
            req.headers.remove("proxy-authorization")
            caller_device = device.auth_username
        if req.headers.get("route") is not None:
            self.app.reply(txn, 403, "Forbidden (relaying along a preloaded Route is not allowed)")
            return
        if not self.app.is_local(ruri.host, txn.source):
            self.app.reply(txn, 403, "Forbidden (relaying to other domains is not allowed)")
            return
        number = ruri.user_unescaped or ""
        self.stats["calls"] += 1
        target = self.directory.account_for(number)
        ctx = CallContext(txn, req, caller.number if caller else None, number, caller_device=caller_device)
        txn.context = ctx
        if caller is not None:
            self._set_identity(req, caller, external=target is None)
        self.stack.respond(txn, self.stack.make_response(req, 100, "Trying"), now)
        ctx.timers.append(self.stack.call_at(now + TIMER_C, lambda t: self._give_up(ctx, t)))
        if target is not None:
            self._ring_account(ctx, target, now)
        elif caller is None:
            self._finish(ctx, 404, "Not Found", now)
        else:
            self._to_trunk(ctx, number, now)

    def _set_identity(self, req: Request, caller: Account, *, external: bool) -> None:
        """The callee sees the account's number and name, never a device's auth username."""
        number = caller.number
        if external:
            number = caller.custom_cli or (caller.dids[0] if caller.dids else caller.number)
        name = caller.display_name.replace("\\", "\\\\").replace('"', '\\"')
        domain = self.domain()
        tag = req.from_.tag
        identity = f'"{name}" <sip:{number}@{domain}>'
        req.headers.set("From", f"{identity};tag={tag}" if tag else identity)
        req.headers.remove("p-preferred-identity")
        req.headers.set("P-Asserted-Identity", identity)

    # ------------------------------------------------------------------ ringing an account
    def _ring_account(self, ctx: CallContext, account: Account, now: float) -> None:
        ctx.account = account
        plan = plan_call(
            account,
            self.directory.devices(account.number),
            self.location.get(account.number),
            self.call_state(account.number),
            now,
        )
        ctx.plan = plan
        ctx.leg += 1
        ctx.next_stage = 0
        if plan.immediate is not None:
            self._final_action(ctx, plan.immediate, "unconditional" if plan.immediate.target else "busy", now)
            return
        if not plan.stages:
            self._final_action(ctx, plan.on_unavailable, "no-answer", now)
            return
        leg = ctx.leg
        for index, stage in enumerate(plan.stages):
            if stage.start <= 0:
                self._start_stages(ctx, leg, index, now)
            else:
                ctx.timers.append(
                    self.stack.call_at(now + stage.start, lambda t, i=index: self._start_stages(ctx, leg, i, t))
                )
        ctx.timers.append(
            self.stack.call_at(now + plan.no_answer_seconds, lambda t: self._no_answer(ctx, leg, t))
        )

    def _start_stages(self, ctx: CallContext, leg: int, upto: int, now: float) -> None:
        """Start every stage up to index `upto` not started yet (earlier stages keep ringing)."""
        if ctx.done or ctx.answered or leg != ctx.leg or ctx.plan is None:
            return
        while ctx.next_stage <= upto and ctx.next_stage < len(ctx.plan.stages):
            stage = ctx.plan.stages[ctx.next_stage]
            ctx.next_stage += 1
            ringing = {b.request.uri for b in ctx.branches.values() if b.leg == leg}
            positions = {d.auth_username: d.position for d in self.directory.devices(ctx.plan.account)}
            for binding in stage.bindings:
                if binding.contact not in ringing and binding.auth_username != ctx.caller_device:
                    self._branch_to_binding(ctx, binding, positions.get(binding.auth_username), now)
        self._check_done(ctx, now)

    def _branch_to_binding(self, ctx: CallContext, b: Binding, position: int | None, now: float) -> None:
        if b.flow:
            target = Target(b.transport, b.source[0], b.source[1], b.flow)
        elif b.transport == "udp":
            target = Target("udp", b.source[0], b.source[1])
        else:
            uri = target_uri(b.contact)
            if uri is None:
                return
            target = Target(b.transport, uri.host.strip("[]"), uri.default_port())
        self._send_branch(ctx, b.contact, target, position, b.auth_username, list(b.path), now)

    def _send_branch(
        self,
        ctx: CallContext,
        uri: str,
        target: Target,
        position: int | None,
        auth_username: str | None,
        routes: list[str],
        now: float,
    ) -> None:
        branch = self._new_branch(ctx)
        host, port = self._local(target.transport)
        in_tp = ctx.txn.source.transport
        rrs = [record_route(host, port, target.transport)]
        if in_tp != target.transport:
            ih, ip = self._local(in_tp)
            rrs.append(record_route(ih, ip, in_tp))  # RFC 5658 double Record-Route
        fwd = prepare_forward(
            ctx.base, uri=uri, via=via_value(target.transport, host, port, branch), record_routes=rrs, routes=routes
        )
        br = Branch(branch, fwd, position, auth_username, leg=ctx.leg)
        ctx.branches[branch] = br
        ctx.targets[branch] = target
        self.stack.send_request(fwd, target, now, context=ctx)

    def _to_trunk(self, ctx: CallContext, number: str, now: float) -> None:
        trunk = self.directory.trunk_for(number)
        if trunk is None:
            self._finish(ctx, 404, "Not Found (no such number here and no trunk for external calls)", now)
            return
        ctx.leg += 1
        ctx.plan = None
        target = Target(trunk.transport, trunk.host, trunk.port)
        tp = "" if trunk.transport == "udp" else f";transport={trunk.transport}"
        self._send_branch(ctx, f"sip:{number}@{trunk.host}:{trunk.port}{tp}", target, None, None, [], now)

    # ------------------------------------------------------------------ responses
    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        ctx = txn.context
        if isinstance(ctx, Relay):
            if resp.status != 100:
                self.stack.respond(ctx.txn, pop_own_via(resp), now)
                if resp.status >= 200 and txn.method == "BYE":
                    self._call_ended(resp.call_id)
            return
        if not isinstance(ctx, CallContext):
            return
        br = ctx.branches.get(txn.branch)
        if br is None:
            return
        status = resp.status
        if status < 200:
            self._provisional(ctx, br, resp, now)
        elif status < 300:
            self._answer(ctx, br, resp, now)
        else:
            self._branch_failed(ctx, br, status, resp, now)

    def _provisional(self, ctx: CallContext, br: Branch, resp: Response, now: float) -> None:
        if br.cancel_pending:
            br.cancel_pending = False
            self._send_cancel(ctx, br, br.cancel_reason, now)
            return
        if br.state is BranchState.TRYING:
            br.state = BranchState.RINGING
        if resp.status == 100 or ctx.done or br.state is not BranchState.RINGING:
            return
        if resp.status not in br.provisionals:  # once per branch and status
            br.provisionals.add(resp.status)
            self.stack.respond(ctx.txn, pop_own_via(resp), now)

    def _answer(self, ctx: CallContext, br: Branch, resp: Response, now: float) -> None:
        if ctx.answered == br.branch:
            self.stack.respond(ctx.txn, pop_own_via(resp), now)  # a 2xx retransmission
            return
        if ctx.answered is not None or ctx.done:
            self._hang_up_late_answer(ctx, br, resp, now)
            return
        ctx.answered = br.branch
        ctx.done = True
        br.state = BranchState.ANSWERED
        br.status = resp.status
        self.stats["answered"] += 1
        self.stack.respond(ctx.txn, pop_own_via(resp), now)
        self._stop_timers(ctx)
        for other in ctx.branches.values():
            if other is not br:
                self._cancel_branch(ctx, other, REASON_COMPLETED_ELSEWHERE, now)
        self._call_started(ctx, br, now)
        self._release(ctx)

    def _release(self, ctx: CallContext) -> None:
        """The outcome is decided: keep only what late responses still need (a branch still
        ringing or being cancelled may answer late and must be ACKed and hung up), so calls
        waiting out their transactions' timers hold few objects."""
        ctx.base = None  # type: ignore[assignment]
        for br in ctx.branches.values():
            br.response = None
            if br.state in (BranchState.ANSWERED, BranchState.FAILED):
                br.request = None  # type: ignore[assignment]

    def _branch_failed(self, ctx: CallContext, br: Branch, status: int, resp: Response | None, now: float) -> None:
        was_cancelled = br.state is BranchState.CANCELLED
        br.state = BranchState.FAILED
        br.status = status
        br.cancel_pending = False
        if was_cancelled or ctx.done or br.leg != ctx.leg:
            return
        br.response = resp  # kept for choosing the best final response
        if 600 <= status < 700 and ctx.plan is not None and ctx.plan.decline is DeclineMode.EVERYWHERE:
            for other in ctx.branches.values():
                if other is not br:
                    self._cancel_branch(ctx, other, REASON_BUSY_EVERYWHERE, now)
            self._finish_with(ctx, resp, status, now)
            return
        self._check_done(ctx, now)

    def _check_done(self, ctx: CallContext, now: float) -> None:
        """When every branch of this leg failed: start the next stage at once, or end the leg."""
        if ctx.done or ctx.answered:
            return
        leg_branches = [b for b in ctx.branches.values() if b.leg == ctx.leg]
        if any(b.pending or b.cancel_pending for b in leg_branches):
            return
        if ctx.plan is not None and ctx.next_stage < len(ctx.plan.stages):
            self._start_stages(ctx, ctx.leg, ctx.next_stage, now)  # nobody left ringing: don't wait
            return
        best = best_response(leg_branches)
        statuses = [b.status for b in leg_branches if b.status is not None]
        plan = ctx.plan
        if plan is None:  # a trunk or plain target: pass the best answer on
            self._finish_with(ctx, best.response if best else None, best.status if best else 480, now)
            return
        busy = {*BUSY_STATUSES, 603} if plan.decline is DeclineMode.DEVICE else set(BUSY_STATUSES)
        if statuses and all(s in busy for s in statuses):
            self._final_action(ctx, plan.on_busy, "busy", now, fallback=best)
        elif best is None or best.status in (408, 480, 487):
            self._final_action(ctx, plan.on_no_answer, "no-answer", now, fallback=best)
        else:
            self._finish_with(ctx, best.response, best.status or 500, now)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        ctx = txn.context
        if isinstance(ctx, Relay):
            if not ctx.txn.final_sent:
                self.app.reply(ctx.txn, 408, "Request Timeout")
            return
        if isinstance(ctx, CallContext):
            br = ctx.branches.get(txn.branch)
            if (br is not None and br.pending) or (br is not None and br.state is BranchState.CANCELLED):
                self._branch_failed(ctx, br, 408, None, now)

    def on_stray_response(self, resp: Response, source: Source, now: float) -> None:
        """2xx retransmissions after our INVITE transaction ended: forward them statelessly."""
        if resp.status < 200 or resp.status >= 300 or resp.cseq.method != "INVITE":
            return
        vias = resp.headers.get_all("via")
        if len(vias) < 2:
            return
        try:
            top = resp.top_via
        except ParseError:
            return
        if top.sent_by not in {(h.lower(), p) for h, p in self.stack.local.values()}:
            return
        self.stack.forward_response(pop_own_via(resp), None)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ ending
    def _final_action(
        self, ctx: CallContext, action: FinalAction, cause: str, now: float, fallback: Branch | None = None
    ) -> None:
        if action.kind is FinalKind.FORWARD and action.target:
            self._retarget(ctx, action.target, cause, now)
        elif fallback is not None and fallback.response is not None and fallback.status == action.status:
            self._finish_with(ctx, fallback.response, action.status, now)
        else:
            self._finish(ctx, action.status or 480, action.reason or "Temporarily Unavailable", now)

    def _retarget(self, ctx: CallContext, number: str, cause: str, now: float) -> None:
        """Busy / no-answer / unconditional forward: the same call rings another number."""
        ctx.retargets += 1
        if ctx.retargets > MAX_RETARGETS:
            self._finish(ctx, 482, "Loop Detected (forwarding loop)", now)
            return
        for br in ctx.branches.values():
            self._cancel_branch(ctx, br, None, now)
        for t in ctx.timers[1:]:  # keep timer C
            t.cancel()
        del ctx.timers[1:]
        domain = self.domain()
        diverted = ctx.account.number if ctx.account else ctx.target_number
        counter = len(ctx.diverted_from) + 1
        ctx.diverted_from.append(diverted)
        base = ctx.base
        reason = DIVERSION_REASON.get(cause, cause)
        base.headers.prepend("Diversion", f"<sip:{diverted}@{domain}>;reason={reason};counter={counter}")
        if "history-info" not in base.headers:
            base.headers.add("History-Info", f"<sip:{diverted}@{domain}>;index=1")
        cause_code = {"busy": "486", "no-answer": "408", "unconditional": "302"}.get(cause, "480")
        base.headers.add(
            "History-Info",
            f"<sip:{number}@{domain}?Reason=SIP%3Bcause%3D{cause_code}>;index=1.{counter};rc=1",
        )
        base.uri = f"sip:{number}@{domain}"
        ctx.loop_key = None
        ctx.target_number = number
        target = self.directory.account_for(number)
        if target is not None:
            self._ring_account(ctx, target, now)
        else:
            self._to_trunk(ctx, number, now)

    def _no_answer(self, ctx: CallContext, leg: int, now: float) -> None:
        if ctx.done or ctx.answered or leg != ctx.leg or ctx.plan is None:
            return
        plan = ctx.plan
        for br in ctx.branches.values():
            self._cancel_branch(ctx, br, None, now)
        self._final_action(ctx, plan.on_no_answer, "no-answer", now)

    def _give_up(self, ctx: CallContext, now: float) -> None:
        if ctx.done or ctx.answered:
            return
        for br in ctx.branches.values():
            self._cancel_branch(ctx, br, None, now)
        self._finish(ctx, 408, "Request Timeout", now)

    def _finish(self, ctx: CallContext, status: int, reason: str, now: float) -> None:
        if ctx.done:
            return
        ctx.done = True
        self._stop_timers(ctx)
        self.app.reply(ctx.txn, status, reason)
        self._release(ctx)

    def _finish_with(self, ctx: CallContext, resp: Response | None, status: int, now: float) -> None:
        if resp is None:
            self._finish(ctx, status, "Request Timeout" if status == 408 else "Temporarily Unavailable", now)
            return
        if ctx.done:
            return
        ctx.done = True
        self._stop_timers(ctx)
        self.stack.respond(ctx.txn, pop_own_via(resp), now)
        self._release(ctx)

    def _stop_timers(self, ctx: CallContext) -> None:
        for t in ctx.timers:
            t.cancel()
        ctx.timers.clear()

    # ------------------------------------------------------------------ CANCEL
    def on_cancel(self, txn: ServerTxn, req: Request, now: float) -> None:
        """The caller hung up while ringing: a real missed call, so no 'completed elsewhere'."""
        ctx = txn.context
        if isinstance(ctx, CallContext):
            if ctx.done:
                return
            for br in ctx.branches.values():
                self._cancel_branch(ctx, br, None, now)
            self._finish(ctx, 487, "Request Terminated", now)
        elif isinstance(ctx, Relay):
            for ctxn in list(self.stack.client_txns.values()):
                if ctxn.context is ctx and ctxn.method == "INVITE" and ctxn.request is not None:
                    self.stack.send_request(make_cancel(ctxn.request, None), ctxn.target, now)
        elif not txn.final_sent:
            self.app.reply(txn, 487, "Request Terminated")

    def _cancel_branch(self, ctx: CallContext, br: Branch, reason: str | None, now: float) -> None:
        if br.state is BranchState.RINGING:
            self._send_cancel(ctx, br, reason, now)
            br.state = BranchState.CANCELLED
        elif br.state is BranchState.TRYING:
            br.state = BranchState.CANCELLED  # §9.1: CANCEL once a provisional arrives
            br.cancel_pending = True
            br.cancel_reason = reason

    def _send_cancel(self, ctx: CallContext, br: Branch, reason: str | None, now: float) -> None:
        target = ctx.targets.get(br.branch)
        if target is not None:
            self.stack.send_request(make_cancel(br.request, reason), target, now)

    def _hang_up_late_answer(self, ctx: CallContext, br: Branch, resp: Response, now: float) -> None:
        """A second device answered after the first: ACK and BYE it so it is not left in a call."""
        self.stats["late_answers"] += 1
        br.state = BranchState.FAILED
        target = ctx.targets.get(br.branch)
        contact = resp.headers.get("contact")
        if target is None or contact is None:
            return
        try:
            uri = str(NameAddr.parse(contact).uri)
        except ParseError:
            return
        host, port = self._local(target.transport)
        for method, cseq in (("ACK", br.request.cseq.number), ("BYE", br.request.cseq.number + 1)):
            branch = self.stack.new_branch()
            h = br.request.headers.copy()
            for name in ("via", "route", "record-route", "contact", "content-type", "content-length",
                         "diversion", "history-info", "p-asserted-identity"):
                h.remove(name)
            h.prepend("Via", via_value(target.transport, host, port, branch))
            h.set("To", resp.headers.get("to") or "")
            h.set("CSeq", f"{cseq} {method}")
            h.set("Max-Forwards", "70")
            if method == "BYE":
                h.add("Reason", REASON_COMPLETED_ELSEWHERE)
            h.set("Content-Length", "0")
            req = Request(method, uri, h)
            if method == "ACK":
                self.stack.send_stateless(req, target)
            else:
                self.stack.send_request(req, target, now)

    # ------------------------------------------------------------------ dialogs
    def on_ack(self, req: Request, source: Source, now: float) -> None:
        """ACK for a 2xx: relayed statelessly along the route set (§16.11 behaviour)."""
        target, fwd = self._in_dialog_target(req, source)
        if target is None or fwd is None:
            return
        host, port = self._local(target.transport)
        fwd.headers.prepend("Via", via_value(target.transport, host, port, self.stack.new_branch()))
        self.stack.send_stateless(fwd, target)

    def _relay_in_dialog(self, txn: ServerTxn, req: Request, now: float) -> None:
        mf = req.headers.get("max-forwards")
        if mf is not None and int(mf) == 0:
            self.app.reply(txn, 483, "Too Many Hops")
            return
        target, fwd = self._in_dialog_target(req, txn.source)
        if target is None or fwd is None:
            self.app.reply(txn, 481, "Call/Transaction Does Not Exist")
            return
        host, port = self._local(target.transport)
        fwd.headers.prepend("Via", via_value(target.transport, host, port, self.stack.new_branch()))
        if req.method == "BYE":
            self._call_ended(req.call_id)
        relay = Relay(txn)
        txn.context = relay
        self.stack.send_request(fwd, target, now, context=relay)

    def _in_dialog_target(self, req: Request, source: Source) -> tuple[Target | None, Request | None]:
        """Loose routing (§16.4, §16.12): pop our Routes, then the next Route or the Request-URI.

        For an answered call the two ends are known: a request from one side goes to where the
        other side was reached (its connection, or its source address behind NAT). A request
        that neither carries our Record-Route nor belongs to a call we know is not relayed:
        that would make the server an open relay."""
        if not strip_own_routes(req, self.is_own_uri) and req.call_id not in self.active:
            return None, None
        h = req.headers.copy()
        mf = h.get("max-forwards")
        h.set("Max-Forwards", str(int(mf) - 1) if mf is not None else "70")
        fwd = Request(req.method, req.uri, h, req.body)
        top = h.get("route")
        if top is not None:
            try:
                uri = NameAddr.parse(top).uri
            except ParseError:
                return None, None
        else:
            call = self.active.get(req.call_id)
            if call is not None and call.caller is not None and call.callee is not None:
                return (call.callee if _same_end(source, call.caller) else call.caller), fwd
            uri = target_uri(req.uri)  # type: ignore[assignment]
        if not isinstance(uri, SipUri):
            return None, None
        return self._target_for_uri(uri), fwd

    def _target_for_uri(self, uri: SipUri) -> Target:
        text = str(uri)
        binding = self.location.find_contact(text)
        if binding is not None:
            if binding.flow:
                return Target(binding.transport, binding.source[0], binding.source[1], binding.flow)
            if binding.transport == "udp":
                return Target("udp", binding.source[0], binding.source[1])
        transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
        return Target(transport, uri.host.strip("[]"), uri.default_port())

    def _call_started(self, ctx: CallContext, br: Branch, now: float) -> None:
        call_id = ctx.base.call_id
        accounts = tuple(a for a in (ctx.caller_account, ctx.account.number if ctx.account else None) if a)
        src = ctx.txn.source
        call = ActiveCall(call_id, accounts, now, caller=Target(src.transport, src.remote[0], src.remote[1], src.conn),
                          callee=ctx.targets.get(br.branch))
        if ctx.account is not None and br.position is not None:
            call.positions[ctx.account.number] = br.position
        self.active[call_id] = call
        for a in accounts:
            self.in_call.setdefault(a, set()).add(call_id)
        self._forget_stale_calls(now)

    def _call_ended(self, call_id: str) -> None:
        call = self.active.pop(call_id, None)
        if call is None:
            return
        for a in call.accounts:
            ids = self.in_call.get(a)
            if ids is not None:
                ids.discard(call_id)
                if not ids:
                    del self.in_call[a]

    def _forget_stale_calls(self, now: float) -> None:
        if len(self.active) < 1000:
            return
        for call_id in [c for c, call in self.active.items() if now - call.started > DIALOG_LIMIT]:
            self._call_ended(call_id)


def _same_end(source: Source, end: Target) -> bool:
    if source.conn is not None and source.conn == end.conn:
        return True
    return source.transport == end.transport and source.remote == (end.host, end.port)
