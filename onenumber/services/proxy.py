"""The forking proxy: executes a call's ring plan and reports what happens as call events.

An INVITE that passed the gate (or came from a trunk) gets the caller's identity
(`routing.identity`), then the routing policy's RingPlan runs: stage 0 now, later stages on
their timers (earlier ones keep ringing), the no-answer timer, Timer C, best-response rules
(`sip.proxy`), and what to do when every branch failed (`routing.failure`). Calls to numbers
that are not local go to a trunk. The proxy executes; the policy decides.

Everything runs synchronously inside the stack's callbacks with time passed in: no I/O of
its own, so the same code is driven by the tests without sockets.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from ..media.bridge import NO_RELAY_REASON, RELAY_FAILED_REASON, BridgePlan
from ..routing.failure import (
    Cause,
    after_branches,
    declines_everywhere,
    diversion_header,
    history_info,
    immediate_cause,
)
from ..routing.identity import caller_identity
from ..routing.model import VOICEMAIL, Account, Binding, Device, FinalAction, FinalKind, RingPlan
from ..routing.pickup import PICKUP_PREFIX, RingingCall, decide_pickup, parse_replaces, pickup_target
from ..routing.plan import plan_call
from ..settings import Trunk
from ..sip.errors import ParseError
from ..sip.headers import NameAddr
from ..sip.message import Request, Response
from ..sip.proxy import (
    REASON_BUSY_EVERYWHERE,
    REASON_COMPLETED_ELSEWHERE,
    Branch,
    BranchState,
    best_response,
    loop_hash,
    make_cancel,
    pop_own_via,
    prepare_forward,
    record_route,
    set_from,
    signed_route_params,
    via_value,
)
from ..sip.stack import MAGIC, ClientTxn, ServerTxn, Source, Stack, Target, Timer
from .dialogs import CallRecord, DialogBranch, Dialogs
from .directory import Directory
from .events import (
    BranchRinging,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallForwarded,
    CallStarted,
    DialogState,
    EndCause,
    EventBus,
    FailCause,
    Party,
)
from .gate import strip_own_credentials
from .location import Location
from .media import MediaSeam
from .reach import Reach
from .replies import Replier

log = logging.getLogger("onenumber.proxy")

TIMER_C = 180.0  # §16.6 step 11: a ringing call is given up after this, whatever the plan says
MAX_RETARGETS = 5


@dataclass(slots=True, weakref_slot=True)  # weakref: tests check a finished call is freed
class CallContext:
    """One incoming INVITE being routed: its branches across attempts (each forward retargets
    the call and starts a new attempt; branches of older attempts are being cancelled)."""

    owner: CallProxy
    txn: ServerTxn
    base: Request  # identity rewritten, before per-branch changes
    record: CallRecord
    target_number: str
    account: Account | None = None
    plan: RingPlan | None = None
    attempt: int = 0
    branches: dict[str, Branch] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    dialogs: dict[str, DialogBranch] = field(default_factory=dict)
    next_stage: int = 0
    timers: list[Timer] = field(default_factory=list)
    done: bool = False  # a final response went upstream
    answered: str | None = None  # the winning branch
    retargets: int = 0
    diverted_from: list[str] = field(default_factory=list)
    loop_key: str | None = None  # loop_hash of `base`, reset when the call is retargeted
    caller_device: str | None = None  # auth username of the calling device: it never rings itself
    route_params: str = ""  # the signature our Record-Route carries
    unreachable: set[str] = field(default_factory=set)  # branches that failed without an answer (transport)
    replanned: bool = False
    bridged: dict[str, BridgePlan] = field(default_factory=dict)  # branches whose SDP goes through the relay
    answer_sdp: dict[str, bytes] = field(default_factory=dict)  # a bridged branch's rewritten 2xx SDP
    fail_reason: str | None = None  # the reason phrase when the proxy itself ends the call (no relay)
    early_tags: set[str] = field(default_factory=set)  # the rung devices' To-tags (their early dialogs)

    # the stack hands client-transaction results to the transaction's context
    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        self.owner.on_response(self, txn, resp, now)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        self.owner.on_timeout(self, txn, now)

    def on_cancel(self, txn: ServerTxn, req: Request, now: float) -> None:
        self.owner.on_cancel(self, now)


class CallProxy:
    def __init__(
        self,
        stack: Stack,
        replier: Replier,
        directory: Directory,
        location: Location,
        dialogs: Dialogs,
        events: EventBus,
        *,
        secret: bytes,
        realm: str,
        domain: Callable[[], str],
        media: MediaSeam | None = None,
    ) -> None:
        self.media = media or MediaSeam(events)
        self.voicemail: Target | None = None  # the voicemail service's address, when it runs
        self.pickup_prefix = PICKUP_PREFIX
        # whether account A may watch (and so pick up the calls of) account B: set by build_core
        # to the presence watch rule
        self.may_watch: Callable[[str, str], bool] = lambda watcher, target: True
        self.live: dict[str, CallContext] = {}  # Call-ID → a call not decided yet (pickup looks here)
        self.stack = stack
        self.replier = replier
        self.directory = directory
        self.location = location
        self.dialogs = dialogs
        self.events = events
        self.secret = secret
        self.realm = realm
        self.domain = domain
        self.reach = Reach()  # a binding's next hop and Route set (several nodes: services/reach.py)

    @property
    def access_number(self) -> str:
        """Dialled to listen to one's own box (the `voicemail_access` setting)."""
        return self.directory.settings.voicemail_access

    def _local(self, transport: str) -> tuple[str, int]:
        return self.stack.local.get(transport) or self.stack.local["udp"]

    def _new_branch(self, ctx: CallContext) -> str:
        """A branch carrying the loop-detection hash of the request as it leaves (§16.6 step 8)."""
        if ctx.loop_key is None:
            ctx.loop_key = loop_hash(ctx.base)
        return f"{MAGIC}on{ctx.loop_key}.{self.stack.new_branch()[len(MAGIC):]}"

    # ------------------------------------------------------------------ a new call
    def new_call(
        self, txn: ServerTxn, req: Request, number: str, device: Device | None, trunk: Trunk | None, now: float
    ) -> None:
        """Route an INVITE from a device (authenticated) or a trunk to `number`."""
        caller: Account | None = None
        if device is not None:
            caller = self.directory.accounts.get(device.account)
            if caller is None:
                self.replier.reply(txn, 403, "Forbidden (device has no account)")
                return
        if self._is_pickup(number, req) and self._pickup(txn, req, number, device, now):
            return
        target = self.directory.account_for(number)
        from_tag = req.from_.tag or ""
        caller_from = req.headers.get("from") or ""
        identity_from = None
        trying = self.stack.make_response(req, 100, "Trying")  # with the From the caller sent
        if caller is not None and device is not None:
            identity = caller_identity(caller, external=target is None and not number.startswith(self.access_number))
            name_addr = identity.name_addr(self.domain())
            identity_from = set_from(req, name_addr, from_tag)
            req.headers.remove("p-preferred-identity")
            req.headers.set("P-Asserted-Identity", name_addr)
            party = Party(identity.number, identity.name, caller.number, device.auth_username, device.position)
        else:
            party = _party_from(req)
        strip_own_credentials(req, self.realm)
        src = txn.source
        record = CallRecord(
            req.call_id, now, party, from_tag, Target(src.transport, src.remote[0], src.remote[1], src.conn),
            caller_from, identity_from, callee_account=target.number if target else None,
        )
        ctx = CallContext(self, txn, req, record, number, caller_device=device.auth_username if device else None)
        self.live[req.call_id] = ctx
        ctx.route_params = signed_route_params(
            self.secret, req.call_id, from_tag, caller_from if identity_from is not None else None
        )
        txn.context = ctx
        if CallStarted in self.events.wanted:
            self.events.emit(CallStarted(req.call_id, now, party, number, record.callee_account,
                                         trunk.name if trunk else None))
        self.dialogs.start(record, now)
        self.stack.respond(txn, trying, now)
        ctx.timers.append(self.stack.call_at(now + TIMER_C, lambda t: self._give_up(ctx, t)))
        if target is not None:
            self._ring_account(ctx, target, now)
        elif caller is None:
            self._finish(ctx, 404, "Not Found", now, FailCause.NOT_FOUND)
        elif number == self.access_number:
            self._to_voicemail(ctx, number, now)  # the box's own device: listen (the From names the box)
        elif self._other_box(number):
            self._to_voicemail(ctx, number, now)  # access number + a box: the voicemail asks for the PIN
        else:
            self._to_trunk(ctx, number, now)

    def _other_box(self, number: str) -> bool:
        """The access number followed by an account's number: listening to that box from a
        device not its own (or from outside), which only a PIN allows."""
        access = self.access_number
        rest = number[len(access):] if number.startswith(access) else ""
        return bool(rest) and self.directory.account_for(rest) is not None

    def _to_voicemail(self, ctx: CallContext, user: str, now: float) -> None:
        """The voicemail service, rung like a device: `user` is the box (a message is left there)
        or the access number (the caller listens to its own box)."""
        ctx.attempt += 1
        ctx.plan = None
        ctx.account = None
        target = self.voicemail
        if target is None:
            self._finish(ctx, 480, "Temporarily Unavailable (no voicemail service)", now, FailCause.FAILED)
            return
        uri = f"sip:{user}@{target.host}:{target.port}"
        self._send_branch(ctx, uri, target, None, None, None, [], now)

    # ------------------------------------------------------------------ pickup
    def _is_pickup(self, number: str, req: Request) -> bool:
        return pickup_target(number, self.pickup_prefix) is not None or (
            "replaces" in req.headers and (parse_replaces(req.headers.get("replaces")) or _NO).call_id in self.live
        )

    def _pickup(self, txn: ServerTxn, req: Request, number: str, device: Device | None, now: float) -> bool:
        """Directed pickup (`*8` + number, or an INVITE with Replaces naming a ringing call of
        ours): the picking device becomes a new branch of the ringing call, asked to answer at
        once (`Call-Info: answer-after=0`); its answer wins like any other, so every device of
        the rung account gets CANCEL "Call completed elsewhere". Its own INVITE ends first
        (487): the call comes to it as an incoming one. Who may pick up what: routing.pickup.
        Returns False when the request is no pickup after all (Replaces of a call not ringing
        here with no pickup code: routed as usual)."""
        code = pickup_target(number, self.pickup_prefix)
        replaces = parse_replaces(req.headers.get("replaces"))
        if device is None:
            if code is None:
                return False
            self.replier.reply(txn, 403, "Forbidden (pickup is for our own devices)")
            return True
        target = self.directory.account_for(code) if code is not None else None
        calls = [
            RingingCall(c.record.call_id, c.account.number, c.record.started, c.record.caller_tag,
                        c.answered is not None or c.done,
                        frozenset(c.early_tags) | _tags(c.record.callee_tag))
            for c in self.live.values() if c.account is not None
        ]
        named = target.number if target is not None else None
        if named is None and replaces is not None and code is None:
            found = self.live.get(replaces.call_id)
            named = found.account.number if found is not None and found.account is not None else None
        decision = decide_pickup(device.account, named if code is None or target is not None else None, calls,
                                 allowed=named is not None and self.may_watch(device.account, named),
                                 replaces=replaces)
        ctx = self.live.get(decision.call_id) if decision.call_id is not None else None
        if ctx is None or ctx.done or ctx.answered is not None or ctx.base is None:
            self.replier.reply(txn, decision.status if not decision.ok else 480,
                               decision.reason if not decision.ok else "Temporarily Unavailable")
            return True
        # the device is reached as for any call to it: its binding (the one it dialled from when
        # it has several), else where its INVITE came from, at its Contact
        src = txn.source
        mine = [b for b in self.location.get(device.account) if b.auth_username == device.auth_username]
        bindings = [b for b in mine if b.source == src.remote] or mine
        contacts = req.contacts
        uri = str(contacts[0].uri) if contacts else None
        if uri is None and not bindings:
            self.replier.reply(txn, 400, "Bad Request (a pickup INVITE needs a Contact)")
            return True
        log.info("call %s to %s picked up by %s", ctx.record.call_id, named, device.auth_username)
        self.replier.reply(txn, 487, "Request Terminated (picked up: the call is coming to this device)")
        extra = [("Call-Info", f"<sip:{self.domain()}>;answer-after=0")]
        if bindings:
            for b in bindings:
                self._branch_to_binding(ctx, b, device.position, now, extra=extra)
        elif uri is not None:
            target_addr = Target(src.transport, src.remote[0], src.remote[1], src.conn)
            self._send_branch(ctx, uri, target_addr, device.account, device.position, device.auth_username, [],
                              now, extra=extra)
        return True

    # ------------------------------------------------------------------ ringing an account
    def _ring_account(self, ctx: CallContext, account: Account, now: float) -> None:
        ctx.account = account
        ctx.record.callee_account = account.number
        plan = plan_call(
            account,
            self.directory.devices(account.number),
            self.location.get(account.number),
            self.dialogs.call_state(account.number),
            now,
        )
        ctx.plan = plan
        ctx.attempt += 1
        ctx.next_stage = 0
        if plan.immediate is not None:
            self._final_action(ctx, plan.immediate, immediate_cause(plan.immediate), now)
            return
        if not plan.stages:
            self._final_action(ctx, plan.on_unavailable, Cause.NO_ANSWER, now, unavailable=True)
            return
        attempt = ctx.attempt
        for index, stage in enumerate(plan.stages):
            if stage.start <= 0:
                self._start_stages(ctx, attempt, index, now)
            else:
                ctx.timers.append(
                    self.stack.call_at(now + stage.start, partial(self._start_stages, ctx, attempt, index))
                )
        ctx.timers.append(
            self.stack.call_at(now + plan.no_answer_seconds, lambda t: self._no_answer(ctx, attempt, t))
        )

    def _start_stages(self, ctx: CallContext, attempt: int, upto: int, now: float) -> None:
        """Start every stage up to index `upto` not started yet (earlier stages keep ringing)."""
        if ctx.done or ctx.answered or attempt != ctx.attempt or ctx.plan is None:
            return
        while ctx.next_stage <= upto and ctx.next_stage < len(ctx.plan.stages):
            stage = ctx.plan.stages[ctx.next_stage]
            ctx.next_stage += 1
            ringing = {b.request.uri for b in ctx.branches.values() if b.attempt == attempt and b.request is not None}
            positions = {d.auth_username: d.position for d in self.directory.devices(ctx.plan.account)}
            for binding in stage.bindings:
                if binding.contact not in ringing and binding.auth_username != ctx.caller_device:
                    self._branch_to_binding(ctx, binding, positions.get(binding.auth_username), now)
        self._check_done(ctx, now)

    def _branch_to_binding(self, ctx: CallContext, b: Binding, position: int | None, now: float,
                           extra: list[tuple[str, str]] | None = None) -> None:
        found = self.reach.route(b)
        if found is None:
            return
        target, routes, via_node = found
        # through another node, the media plan follows the device's own transport (a web phone
        # held by that node still needs the relay), not the hop between the nodes
        self._send_branch(ctx, b.contact, target, b.account, position, b.auth_username, routes, now,
                          extra=extra, device_transport=b.transport if via_node else None)

    def _send_branch(
        self,
        ctx: CallContext,
        uri: str,
        target: Target,
        account: str | None,
        position: int | None,
        auth_username: str | None,
        routes: list[str],
        now: float,
        *,
        extra: list[tuple[str, str]] | None = None,
        device_transport: str | None = None,
    ) -> None:
        branch = self._new_branch(ctx)
        host, port = self._local(target.transport)
        in_tp = ctx.txn.source.transport
        params = ctx.route_params
        rrs = [record_route(host, port, target.transport, params)]
        if in_tp != target.transport:
            ih, ip = self._local(in_tp)
            rrs.append(record_route(ih, ip, in_tp, params))  # RFC 5658 double Record-Route
        fwd = prepare_forward(
            ctx.base, uri=uri, via=via_value(target.transport, host, port, branch), record_routes=rrs, routes=routes
        )
        for name, value in extra or ():
            fwd.headers.add(name, value)
        br = Branch(branch, fwd, position, auth_username, attempt=ctx.attempt)
        ctx.branches[branch] = br
        ctx.targets[branch] = target
        dbr = DialogBranch(branch, account, auth_username, position)
        ctx.dialogs[branch] = dbr
        self.dialogs.branch(ctx.record, dbr, now)
        plan = self.media.plan(ctx.txn.source.transport, fwd.body, device_transport or target.transport)
        if plan is not None:
            self._bridge_offer(ctx, br, fwd, target, plan, now)
            return
        self.stack.send_request(fwd, target, now, context=ctx)

    # ------------------------------------------------------------------ the media relay
    def _bridge_offer(self, ctx: CallContext, br: Branch, fwd: Request, target: Target, plan: BridgePlan,
                      now: float) -> None:
        """The two sides speak differently (WebRTC ↔ RTP): the INVITE leaves once the relay has
        rewritten its offer. With no relay, this device cannot be reached (488, and why)."""
        ctx.bridged[br.branch] = plan
        if not self.media.relay_ready():
            ctx.fail_reason = NO_RELAY_REASON
            self._branch_failed(ctx, br, 488, None, now)
            return

        def send(sdp: bytes | None, at: float) -> None:
            if ctx.done or br.state is not BranchState.TRYING:
                br.state = BranchState.FAILED  # cancelled or decided while the relay worked
                br.status = br.status or 487
                self._check_done(ctx, at)
                return
            if sdp is None:
                ctx.fail_reason = RELAY_FAILED_REASON
                self._branch_failed(ctx, br, 488, None, at)
                return
            fwd.set_body(sdp)
            self.stack.send_request(fwd, target, at, context=ctx)

        self.media.request(ctx.record.call_id, ctx.record.caller_tag, None, fwd.body, plan.offer_to_webrtc, send)

    def _bridge_answer(self, ctx: CallContext, br: Branch, txn: ClientTxn, resp: Response, now: float) -> bool:
        """A bridged branch's 18x/2xx SDP goes to the caller once the relay has rewritten it;
        True when the response now waits for that."""
        plan = ctx.bridged[br.branch]
        known = ctx.answer_sdp.get(br.branch)
        if known is not None and resp.status >= 200:  # a 2xx retransmission: rewritten already
            resp.set_body(known)
            return False

        def go_on(sdp: bytes | None, at: float) -> None:
            if sdp is not None:
                resp.set_body(sdp)
                if resp.status >= 200:
                    ctx.answer_sdp[br.branch] = sdp
            self._dispatch_response(ctx, br, resp, at)

        self.media.request(ctx.record.call_id, ctx.record.caller_tag, resp.to.tag, resp.body,
                           plan.answer_to_webrtc, go_on)
        return True

    def _to_trunk(self, ctx: CallContext, number: str, now: float) -> None:
        trunk = self.directory.trunk_for(number)
        if trunk is None:
            self._finish(ctx, 404, "Not Found (no such number here and no trunk for external calls)", now,
                         FailCause.NOT_FOUND)
            return
        ctx.attempt += 1
        ctx.plan = None
        ctx.account = None
        target = Target(trunk.transport, trunk.host, trunk.port)
        tp = "" if trunk.transport == "udp" else f";transport={trunk.transport}"
        self._send_branch(ctx, f"sip:{number}@{trunk.host}:{trunk.port}{tp}", target, None, None, None, [], now)

    # ------------------------------------------------------------------ responses
    def _upstream(self, ctx: CallContext, resp: Response, now: float) -> None:
        """Relay a response to the caller: our Via off, and the caller's own From back (the
        identity rewrite is for the callee; RFC 3261 §8.2.6.2 wants the request's From)."""
        pop_own_via(resp)
        if ctx.record.identity_from is not None:
            resp.headers.set("From", ctx.record.caller_from)
        self.stack.respond(ctx.txn, resp, now)

    def on_response(self, ctx: CallContext, txn: ClientTxn, resp: Response, now: float) -> None:
        br = ctx.branches.get(txn.branch)
        if br is None:
            return
        if ctx.bridged and resp.body and 100 < resp.status < 300 and br.branch in ctx.bridged and (
            self._bridge_answer(ctx, br, txn, resp, now)
        ):
            return
        self._dispatch_response(ctx, br, resp, now)

    def _dispatch_response(self, ctx: CallContext, br: Branch, resp: Response, now: float) -> None:
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
            dbr = ctx.dialogs.get(br.branch)
            if dbr is not None:
                self.dialogs.set_state(ctx.record, dbr, DialogState.PROCEEDING, now)
        if resp.status == 100 or ctx.done or br.state is not BranchState.RINGING:
            return
        if resp.status not in br.provisionals:  # once per branch and status
            first = not br.provisionals
            br.provisionals.add(resp.status)
            dbr = ctx.dialogs.get(br.branch)
            if resp.to.tag:
                ctx.early_tags.add(resp.to.tag)  # what a pickup's Replaces may name (routing.pickup)
            if dbr is not None and resp.to.tag:
                self.dialogs.set_state(ctx.record, dbr, DialogState.EARLY, now)
            if first and dbr is not None and BranchRinging in self.events.wanted:
                self.events.emit(BranchRinging(ctx.record.call_id, now, dbr.account, dbr.device, dbr.position))
            self._upstream(ctx, resp, now)

    def _answer(self, ctx: CallContext, br: Branch, resp: Response, now: float) -> None:
        if ctx.answered == br.branch:
            self._upstream(ctx, resp, now)  # a 2xx retransmission
            return
        if ctx.answered is not None or ctx.done:
            self._hang_up_late_answer(ctx, br, resp, now)
            return
        ctx.answered = br.branch
        ctx.done = True
        br.state = BranchState.ANSWERED
        br.status = resp.status
        self._upstream(ctx, resp, now)
        self._stop_timers(ctx)
        for other in ctx.branches.values():
            if other is not br:
                self._cancel_branch(ctx, other, REASON_COMPLETED_ELSEWHERE, now)
        rec = ctx.record
        bridged = ctx.bridged.get(br.branch)
        if bridged is not None:  # re-INVITEs of this call go through the relay too
            rec.media = (bridged.answer_to_webrtc, bridged.offer_to_webrtc)
        dbr = ctx.dialogs.get(br.branch) or DialogBranch(br.branch, None, None, None)
        self.dialogs.confirm(rec, dbr, resp.to.tag, ctx.targets.get(br.branch), now)
        self.dialogs.terminate_branches(rec, now, keep=dbr)
        if CallAnswered in self.events.wanted:
            number = ctx.account.number if ctx.account is not None else ctx.target_number
            self.events.emit(CallAnswered(rec.call_id, now, dbr.account, dbr.device, dbr.position, number))
        self._release(ctx)

    def _release(self, ctx: CallContext) -> None:
        """The outcome is decided: keep only what late responses still need (a branch still
        ringing or being cancelled may answer late and must be ACKed and hung up), so calls
        waiting out their transactions' timers hold few objects."""
        ctx.base = None  # type: ignore[assignment]  # released: nothing reads it once done
        ctx.plan = None  # read only while the call is ringing (stages, no-answer, every branch failed)
        if self.live.get(ctx.record.call_id) is ctx:
            del self.live[ctx.record.call_id]
        for br in ctx.branches.values():
            br.response = None
            if br.state in (BranchState.ANSWERED, BranchState.FAILED):
                br.request = None  # released, as above

    def _branch_failed(self, ctx: CallContext, br: Branch, status: int, resp: Response | None, now: float) -> None:
        was_cancelled = br.state is BranchState.CANCELLED
        br.state = BranchState.FAILED
        br.status = status
        br.cancel_pending = False
        dbr = ctx.dialogs.get(br.branch)
        if dbr is not None:
            self.dialogs.set_state(ctx.record, dbr, DialogState.TERMINATED, now)
        if was_cancelled or ctx.done or br.attempt != ctx.attempt:
            if ctx.done:
                # a branch cancelled once the call was decided: its final ends it, and no late
                # answer can follow, so its request (what `_release` kept for one) is released
                br.request = None
            return
        br.response = resp  # kept for choosing the best final response
        if declines_everywhere(ctx.plan, status):
            for other in ctx.branches.values():
                if other is not br:
                    self._cancel_branch(ctx, other, REASON_BUSY_EVERYWHERE, now)
            self._finish_with(ctx, resp, status, now, FailCause.DECLINED)
            return
        self._check_done(ctx, now)

    def _check_done(self, ctx: CallContext, now: float) -> None:
        """When every branch of this attempt failed: start the next stage at once, or decide."""
        if ctx.done or ctx.answered:
            return
        current = [b for b in ctx.branches.values() if b.attempt == ctx.attempt]
        if any(b.pending or b.cancel_pending for b in current):
            return
        if ctx.plan is not None and ctx.next_stage < len(ctx.plan.stages):
            self._start_stages(ctx, ctx.attempt, ctx.next_stage, now)  # nobody left ringing: don't wait
            return
        if current and all(b.branch in ctx.unreachable for b in current) and self._replan(ctx, current, now):
            return
        best = best_response(current)
        statuses = [b.status for b in current if b.status is not None]
        decision = after_branches(ctx.plan, statuses, best.status if best else None)
        if decision.action is not None and decision.cause is not None:
            self._final_action(ctx, decision.action, decision.cause, now, fallback=best)
        elif best is not None:
            self._finish_with(ctx, best.response, best.status or 500, now, _fail_cause(best.status or 500))
        else:
            self._finish(ctx, 480, "Temporarily Unavailable", now, FailCause.FAILED)

    def _replan(self, ctx: CallContext, tried: list[Branch], now: float) -> bool:
        """Every device rung was unreachable (its connection closed, e.g. a web phone's tab):
        plan the call again, once, if the devices able to ring now are others (in exclusive mode
        the fallback to the other devices), instead of failing a call someone could take."""
        account = ctx.account
        if ctx.replanned or account is None:
            return False
        plan = plan_call(account, self.directory.devices(account.number), self.location.get(account.number),
                         self.dialogs.call_state(account.number), now)
        uris = {b.request.uri for b in tried if b.request is not None}
        if plan.immediate is not None or not any(
            bd.contact not in uris for stage in plan.stages for bd in stage.bindings
        ):
            return False
        ctx.replanned = True
        log.info("call %s: every device rung is unreachable; ringing the account again", ctx.record.call_id)
        self._ring_account(ctx, account, now)
        return True

    def on_timeout(self, ctx: CallContext, txn: ClientTxn, now: float) -> None:
        br = ctx.branches.get(txn.branch)
        if br is not None and (br.pending or br.state is BranchState.CANCELLED):
            if br.pending:
                ctx.unreachable.add(br.branch)
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
        pop_own_via(resp)
        rec = self.dialogs.get(resp.call_id)
        if rec is not None and rec.identity_from is not None:
            resp.headers.set("From", rec.caller_from)
        self.stack.forward_response(resp, None)

    # ------------------------------------------------------------------ ending
    def _final_action(
        self, ctx: CallContext, action: FinalAction, cause: Cause, now: float, fallback: Branch | None = None,
        *, unavailable: bool = False,
    ) -> None:
        if action.kind is FinalKind.FORWARD and action.target:
            self._retarget(ctx, action.target, cause, now)
            return
        fail = FailCause.UNAVAILABLE if unavailable else FailCause.BUSY if cause is Cause.BUSY else (
            FailCause.NO_ANSWER if cause is Cause.NO_ANSWER else FailCause.FAILED)
        if fallback is not None and fallback.response is not None and fallback.status == action.status:
            self._finish_with(ctx, fallback.response, action.status, now, fail)
        else:
            self._finish(ctx, action.status or 480, action.reason or "Temporarily Unavailable", now, fail)

    def _retarget(self, ctx: CallContext, number: str, cause: Cause, now: float) -> None:
        """Busy / no-answer / unconditional forward: the same call rings another number."""
        ctx.retargets += 1
        if ctx.retargets > MAX_RETARGETS:
            self._finish(ctx, 482, "Loop Detected (forwarding loop)", now, FailCause.FAILED)
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
        base.headers.prepend("Diversion", diversion_header(diverted, domain, cause, counter))
        if "history-info" not in base.headers:
            base.headers.add("History-Info", f"<sip:{diverted}@{domain}>;index=1")
        base.headers.add("History-Info", history_info(number, domain, cause, counter))
        base.uri = f"sip:{number}@{domain}"
        ctx.loop_key = None
        ctx.target_number = number
        if CallForwarded in self.events.wanted:
            self.events.emit(CallForwarded(ctx.record.call_id, now, diverted, str(cause), number))
        if number == VOICEMAIL:
            self._to_voicemail(ctx, diverted, now)
            return
        target = self.directory.account_for(number)
        if target is not None:
            self._ring_account(ctx, target, now)
        else:
            self._to_trunk(ctx, number, now)

    def _no_answer(self, ctx: CallContext, attempt: int, now: float) -> None:
        if ctx.done or ctx.answered or attempt != ctx.attempt or ctx.plan is None:
            return
        plan = ctx.plan
        for br in ctx.branches.values():
            self._cancel_branch(ctx, br, None, now)
        self._final_action(ctx, plan.on_no_answer, Cause.NO_ANSWER, now)

    def _give_up(self, ctx: CallContext, now: float) -> None:
        if ctx.done or ctx.answered:
            return
        for br in ctx.branches.values():
            self._cancel_branch(ctx, br, None, now)
        self._finish(ctx, 408, "Request Timeout", now, FailCause.NO_ANSWER)

    def _finish(self, ctx: CallContext, status: int, reason: str, now: float, cause: FailCause) -> None:
        if ctx.done:
            return
        ctx.done = True
        self._stop_timers(ctx)
        txn = ctx.txn
        if txn.request is not None:
            resp = self.stack.make_response(txn.request, status, reason)
            if ctx.record.identity_from is not None:  # the request was rewritten in place for the callee
                resp.headers.set("From", ctx.record.caller_from)
            self.stack.respond(txn, resp, now)
        self._failed(ctx, status, cause, now)
        self._release(ctx)

    def _finish_with(
        self, ctx: CallContext, resp: Response | None, status: int, now: float, cause: FailCause
    ) -> None:
        if resp is None:
            reason = ctx.fail_reason if status == 488 and ctx.fail_reason else (
                "Request Timeout" if status == 408 else "Temporarily Unavailable")
            self._finish(ctx, status, reason, now, cause)
            return
        if ctx.done:
            return
        ctx.done = True
        self._stop_timers(ctx)
        self._upstream(ctx, resp, now)
        self._failed(ctx, status, cause, now)
        self._release(ctx)

    def _failed(self, ctx: CallContext, status: int, cause: FailCause, now: float) -> None:
        rec = ctx.record
        self.dialogs.end(rec.call_id, now)
        if CallFailed in self.events.wanted:
            account = ctx.account.number if ctx.account is not None else None
            self.events.emit(CallFailed(rec.call_id, now, status, cause, account))

    def _stop_timers(self, ctx: CallContext) -> None:
        for t in ctx.timers:
            t.cancel()
        ctx.timers.clear()

    def forget_stale_calls(self, now: float) -> None:
        """Answered calls with no BYE for the dialog limit are over (a phone died mid-call)."""
        for rec in self.dialogs.sweep(now):
            if rec.answered is not None and CallEnded in self.events.wanted:
                self.events.emit(CallEnded(rec.call_id, now, EndCause.EXPIRED, None))

    # ------------------------------------------------------------------ CANCEL
    def on_cancel(self, ctx: CallContext, now: float) -> None:
        """The caller hung up while ringing: a real missed call, so no 'completed elsewhere'."""
        if ctx.done:
            return
        for br in ctx.branches.values():
            self._cancel_branch(ctx, br, None, now)
        self._finish(ctx, 487, "Request Terminated", now, FailCause.CANCELLED)

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
        if target is not None and br.request is not None:  # a pending branch: not released
            self.stack.send_request(make_cancel(br.request, reason), target, now)

    def _hang_up_late_answer(self, ctx: CallContext, br: Branch, resp: Response, now: float) -> None:
        """A second device answered after the first: ACK and BYE it so it is not left in a call."""
        br.state = BranchState.FAILED
        target = ctx.targets.get(br.branch)
        contact = resp.headers.get("contact")
        req = br.request
        if target is None or contact is None or req is None:  # None: released once it failed
            return
        try:
            uri = str(NameAddr.parse(contact).uri)
        except ParseError:
            return
        host, port = self._local(target.transport)
        for method, cseq in (("ACK", req.cseq.number), ("BYE", req.cseq.number + 1)):
            branch = self.stack.new_branch()
            h = req.headers.copy()
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


def _tags(tag: str | None) -> frozenset[str]:
    return frozenset((tag,)) if tag else frozenset()


class _NoReplaces:
    call_id = ""


_NO = _NoReplaces()


def _party_from(req: Request) -> Party:
    """The caller as its From shows it (a trunk's caller: the number and name it sent)."""
    try:
        na = req.from_
        number = getattr(na.uri, "user_unescaped", None) or ""
        name = (na.display or "").strip('"')
    except ParseError:
        number, name = "", ""
    return Party(number, name)


def _fail_cause(status: int) -> FailCause:
    if status in (486, 600):
        return FailCause.BUSY
    if 600 <= status < 700 or status == 603:
        return FailCause.DECLINED
    if status in (408, 480):
        return FailCause.NO_ANSWER
    if status == 404:
        return FailCause.NOT_FOUND
    return FailCause.FAILED
