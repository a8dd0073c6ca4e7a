"""The voicemail service's asyncio glue: runs deposit and listening calls on the stack.

`VoicemailService` owns the calls the proxy (or a standalone transaction user) hands
it: `deposit(txn, invite, box)` and `listen(txn, invite, box, menu)`. For each it opens
an RTP session (`media.rtp`), creates the sans-IO call (`deposit.DepositCall`,
`listen.ListenCall`) and carries out its actions: responses in the INVITE's (or BYE's)
server transaction, our BYE as a client transaction, prompts and messages played one
after the other, the recorder (`media.recorder`) fed from RTP, and message records
written through the injected `MessageStore` in order. In-dialog requests and responses
come back through `on_ack`, `on_bye`, `on_cancel`, `on_response`, `on_timeout`, which
return False when the request is not one of ours.

Hooks for the rest of OneNumber: `on_change(box)` after every change of a box (message
waiting NOTIFYs), `on_finished(box, outcome)` when a call ends (history), and `pump` (the
transport driver's, to flush what we queued on the stack outside a receive).

`StandaloneVoicemail` is a complete transaction user around the service (INVITE to the
access number → listen to the caller's own box, any other INVITE → leave a message in
the box named by the Request-URI user): used by the tests with real phones, and a model
for the proxy's wiring.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from ...media.recorder import MAX_LENGTH, SILENCE, Recorder
from ...media.rtp import RtpPacket, RtpSession, open_session
from ...media.wav import WavWriter, load_greeting
from ...sip.bodies import MessageSummary
from ...sip.message import Request, Response
from ...sip.stack import ClientTxn, ServerTxn, Source, Stack, Target, Timer
from ...sip.uri import SipUri
from ..subscriptions import Package, Subscription, Subscriptions, WatchSettings, may_subscribe
from .actions import (
    Action,
    CloseMedia,
    DeleteMessage,
    DiscardMessage,
    Finished,
    MarkHeard,
    Play,
    PlayMessage,
    Reply,
    SaveMessage,
    SendRequest,
    StartMedia,
    StartRecording,
    StopPlayback,
    StopRecording,
)
from .deposit import DepositCall, DepositSettings
from .listen import ListenCall
from .menu import MenuSettings
from .mwi import render_summary
from .store import MessageStore, summary
from .ua import AnsweringCall, UaSettings

log = logging.getLogger("onenumber.voicemail")

TEXTS = {
    "goodbye": "Goodbye.",
    "intro": "You have {new} new and {saved} saved messages.",
    "no-messages": "You have no messages.",
    "no-more-messages": "No more messages.",
    "new-message": "New message {number}.",
    "saved-message": "Saved message {number}.",
    "message-menu": "Press 1 to replay, 7 to delete, 9 to save, or the hash key for the next message.",
    "deleted": "Message deleted.",
    "saved": "Message saved.",
    "enter-pin": "Please enter your PIN, then the hash key.",
    "wrong-pin": "Wrong PIN.",
}


class Prompts:
    """The PCM (8 kHz 16-bit LE) of each prompt: recorded sounds, else spoken text, else a beep."""

    def __init__(
        self,
        default_greeting: str | os.PathLike[str] | None = None,
        *,
        greeting_for: Callable[[str], str | os.PathLike[str] | None] = lambda box: None,
        sounds: Mapping[str, bytes] | None = None,
        speak: Callable[[str], bytes] | None = None,
    ) -> None:
        self.default_greeting = default_greeting
        self.greeting_for = greeting_for
        self.sounds = dict(sounds or {})
        self.speak = speak
        self._cache: dict[str, bytes] = {}

    async def pcm(self, item: Play, box: str) -> bytes:
        from ...media.greeting import beep

        if item.prompt == "greeting":
            path = self.greeting_for(box) or self.default_greeting
            key = f"greeting:{path}"
            if key not in self._cache and path is not None:
                try:
                    self._cache[key] = await asyncio.to_thread(load_greeting, path)
                except (OSError, ValueError):
                    log.warning("greeting %s unreadable: beep only", path)
                    self._cache[key] = b""
            return self._cache.get(key, b"") + beep()
        if item.prompt in self.sounds:
            return self.sounds[item.prompt]
        text = TEXTS.get(item.prompt, item.prompt).format(**dict(item.args))
        if self.speak is not None:
            if text not in self._cache:
                try:
                    self._cache[text] = await asyncio.to_thread(self.speak, text)
                except Exception:
                    log.warning("could not speak %r: beep instead", text)
                    self._cache[text] = beep(0.2)
            return self._cache[text]
        return beep(0.2)


@dataclass(eq=False)
class _Leg:
    transport: asyncio.DatagramTransport
    session: RtpSession
    recorder: Recorder | None = None
    queue: deque[Play | PlayMessage] = field(default_factory=deque)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    player: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return int(self.transport.get_extra_info("sockname")[1])


@dataclass(eq=False)
class _Call:
    model: AnsweringCall
    box: str
    txn: ServerTxn
    source: Source
    leg: _Leg
    timer: Timer | None = None
    timer_at: float | None = None
    chain: asyncio.Task[None] | None = None  # store operations, one after the other
    done: bool = False


Hook = Callable[..., Awaitable[None] | None]


class _ByeContext:
    """The context of our BYE's client transaction: the router (or the standalone TU) hands
    its response or timeout back through `on_response` / `on_timeout`."""

    __slots__ = ("call", "service")

    def __init__(self, service: VoicemailService, call: _Call) -> None:
        self.service = service
        self.call = call

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        self.service.on_response(txn, resp)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        self.service.on_timeout(txn)


def send_request(stack: Stack, req: Request, source: Source, now: float, *, context: object = None) -> ClientTxn:
    """Send an in-dialog request of ours (no Via yet) back towards the peer that created the
    dialog: its connection when it came over a stream, else the first Route or the
    Request-URI. A Via for the transport the dialog's request came on is added."""
    host, port = stack.local.get(source.transport, source.local)
    req.headers.prepend("Via", f"SIP/2.0/{source.transport.upper()} {host}:{port};branch={stack.new_branch()};rport")
    routes = req.routes
    uri = routes[0].uri if routes else req.request_uri
    if source.reliable and source.conn is not None:
        target = Target(source.transport, source.remote[0], source.remote[1], source.conn)
    elif isinstance(uri, SipUri):
        target = Target(uri.transport or "udp", uri.host.strip("[]"), uri.port or 5060)
    else:
        target = Target("udp", source.remote[0], source.remote[1])
    return stack.send_request(req, target, now, context=context)


class VoicemailService:
    def __init__(
        self,
        stack: Stack,
        store: MessageStore,
        *,
        recordings: str | os.PathLike[str],
        prompts: Prompts,
        media_host: str = "127.0.0.1",
        contact: str = "sip:voicemail@127.0.0.1",
        deposit_settings: DepositSettings | None = None,
        t1: float = 0.5,
        pump: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
        on_change: Hook | None = None,
        on_finished: Hook | None = None,
    ) -> None:
        self.stack = stack
        self.store = store
        self.recordings = Path(recordings)
        self.prompts = prompts
        self.media_host = media_host
        self.ua = UaSettings(contact=contact, media_host=media_host, t1=t1)
        self.deposit_settings = deposit_settings or DepositSettings()
        self.pump = pump
        self.clock = clock
        self.on_change = on_change
        self.on_finished = on_finished
        self.calls: dict[tuple[str, str], _Call] = {}  # (Call-ID, our tag)
        self.by_invite: dict[tuple, _Call] = {}  # INVITE server transaction key
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- new calls
    async def deposit(self, txn: ServerTxn, req: Request, box: str) -> None:
        """Answer `req` for `box` and take a message."""
        leg = await self._open_leg()
        now = self.clock()
        message_id = f"{int(now * 1000):x}-{os.getpid():x}-{next(self._ids)}"
        path = self.recordings / box / f"{message_id}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        model = DepositCall(box, message_id, str(path), local_tag=self.stack.new_tag(), media_port=leg.port,
                            session_id=int(now), received_at=now, settings=self.deposit_settings, ua=self.ua)
        self._start(model, box, txn, req, leg)

    async def listen(self, txn: ServerTxn, req: Request, box: str, menu: MenuSettings | None = None) -> None:
        """Answer `req` and run the listening menu on `box` (whoever may listen was decided before)."""
        messages = [m for m in await self.store.list(box) if m.complete]
        leg = await self._open_leg()
        model = ListenCall(box, messages, local_tag=self.stack.new_tag(), media_port=leg.port,
                           session_id=int(self.clock()), menu=menu, ua=self.ua)
        self._start(model, box, txn, req, leg)

    async def _open_leg(self) -> _Leg:
        transport, session = await open_session(self.media_host, 0, latch=True)
        return _Leg(transport, session)

    def _start(self, model: AnsweringCall, box: str, txn: ServerTxn, req: Request, leg: _Leg) -> None:
        call = _Call(model, box, txn, txn.source, leg)
        self.calls[(req.call_id, model.local_tag)] = call
        self.by_invite[txn.key] = call
        leg.session.on_dtmf = lambda digit: self._feed(call, call.model.on_digit(digit, self.clock()))
        leg.session.on_audio = lambda packet: self._on_audio(call, packet)
        if txn.cancelled:  # a CANCEL overtook us
            call.model.invite = req
            self._feed(call, call.model.on_cancel(self.clock()))
            return
        self._feed(call, model.on_invite(req, self.clock()))

    # ---------------------------------------------------------------- from the stack
    def _find(self, req: Request) -> _Call | None:
        return self.calls.get((req.call_id, req.to.tag or ""))

    def owns(self, req: Request) -> bool:
        return self._find(req) is not None

    def on_ack(self, req: Request) -> bool:
        call = self._find(req)
        if call is None:
            return False
        self._feed(call, call.model.on_ack(req, self.clock()))
        return True

    def on_bye(self, txn: ServerTxn, req: Request) -> bool:
        call = self._find(req)
        if call is None:
            return False
        self._feed(call, call.model.on_bye(req, self.clock()), txn)
        return True

    def on_cancel(self, txn: ServerTxn) -> bool:
        """`txn` is the INVITE's server transaction the CANCEL matched."""
        call = self.by_invite.get(txn.key)
        if call is None:
            return False
        self._feed(call, call.model.on_cancel(self.clock()))
        return True

    def on_response(self, txn: ClientTxn, resp: Response) -> bool:
        """A response to our BYE (its transaction's context is ours: `_ByeContext`)."""
        ctx = txn.context
        if not isinstance(ctx, _ByeContext):
            return False
        if resp.status >= 200:
            self._feed(ctx.call, ctx.call.model.on_bye_answered(resp.status, self.clock()))
        return True

    def on_timeout(self, txn: ClientTxn) -> bool:
        ctx = txn.context
        if not isinstance(ctx, _ByeContext):
            return False
        self._feed(ctx.call, ctx.call.model.on_bye_answered(None, self.clock()))
        return True

    # ---------------------------------------------------------------- carrying out actions
    def _feed(self, call: _Call, actions: list[Action], txn: ServerTxn | None = None) -> None:
        pending = deque(actions)
        while pending:
            action = pending.popleft()
            try:
                more = self._do(call, action, txn)
            except Exception:
                log.exception("voicemail action %s failed", type(action).__name__)
                more = []
            pending.extend(more)
        self._arm(call)
        self.pump()

    def _do(self, call: _Call, action: Action, txn: ServerTxn | None) -> list[Action]:
        leg = call.leg
        now = self.clock()
        if isinstance(action, Reply):
            target = txn if txn is not None and action.response.cseq.method != "INVITE" else call.txn
            self.stack.respond(target, action.response, now)
        elif isinstance(action, SendRequest):
            self._send_request(call, action.request, now)
        elif isinstance(action, StartMedia):
            plan = action.plan
            leg.session.payload_type = plan.payload_type
            leg.session.dtmf_payload_type = plan.dtmf_payload_type
            leg.session.remote = plan.remote
        elif isinstance(action, (Play, PlayMessage)):
            leg.queue.append(action)
            if leg.player is None or leg.player.done():
                leg.player = asyncio.get_running_loop().create_task(self._player(call))
        elif isinstance(action, StopPlayback):
            leg.queue.clear()
            leg.stop.set()
            leg.stop = asyncio.Event()
        elif isinstance(action, StartRecording):
            leg.recorder = Recorder(WavWriter(action.path), max_seconds=action.max_seconds,
                                    silence_seconds=action.silence_seconds)
        elif isinstance(action, StopRecording):
            return self._stop_recording(call)
        elif isinstance(action, SaveMessage):
            store, message, new = self.store, action.message, action.new
            self._chain(call, (store.add if new else store.update)(message), notify=not new)
        elif isinstance(action, DiscardMessage):
            self._chain(call, self._discard(action.message.id, action.message.path), notify=False)
        elif isinstance(action, MarkHeard):
            self._chain(call, self.store.set_heard(action.message_id), notify=True)
        elif isinstance(action, DeleteMessage):
            self._chain(call, self.store.delete(action.message_id), notify=True)
        elif isinstance(action, CloseMedia):
            self._close_leg(call)
        elif isinstance(action, Finished):
            self._finish(call, action.outcome)
        return []

    def _stop_recording(self, call: _Call) -> list[Action]:
        rec, call.leg.recorder = call.leg.recorder, None
        duration = rec.close() if rec is not None else 0.0
        return call.model.on_recording_stopped(duration, self.clock()) if isinstance(call.model, DepositCall) else []

    def _on_audio(self, call: _Call, packet: RtpPacket) -> None:
        rec = call.leg.recorder
        if rec is None:
            return
        rec.on_packet(packet)
        if rec.done in (MAX_LENGTH, SILENCE):
            self._feed(call, self._stop_recording(call))

    async def _discard(self, message_id: str, path: str) -> None:
        await self.store.delete(message_id)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass

    def _chain(self, call: _Call, op: Awaitable[object], *, notify: bool) -> None:
        previous = call.chain

        async def run() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await op
            except Exception:
                log.exception("voicemail store operation failed for box %s", call.box)
                return
            if notify and self.on_change is not None:
                result = self.on_change(call.box)
                if inspect.isawaitable(result):
                    await result

        call.chain = self.spawn(run())

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _player(self, call: _Call) -> None:
        leg = call.leg
        while leg.queue and not call.done:
            item = leg.queue[0]
            stop = leg.stop
            try:
                if isinstance(item, Play):
                    pcm = await self.prompts.pcm(item, call.box)
                else:
                    pcm = await asyncio.to_thread(load_greeting, item.path)
            except (OSError, ValueError):
                log.warning("cannot play %s", item)
                pcm = b""
            if stop.is_set() or call.done:
                continue  # cut while loading: the queue was emptied (and maybe refilled)
            await leg.session.play(pcm, stop)
            if stop.is_set() or call.done:
                continue
            if leg.queue and leg.queue[0] is item:
                leg.queue.popleft()
            self._feed(call, call.model.on_play_done(item, self.clock()))

    def _send_request(self, call: _Call, req: Request, now: float) -> None:
        send_request(self.stack, req, call.source, now, context=_ByeContext(self, call))

    def _arm(self, call: _Call) -> None:
        deadline = None if call.done else call.model.next_timer()
        if deadline == call.timer_at:
            return
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None
        call.timer_at = deadline
        if deadline is not None:
            call.timer = self.stack.call_at(deadline, lambda now: self._on_timer(call, now))

    def _on_timer(self, call: _Call, now: float) -> None:
        call.timer = None
        call.timer_at = None
        self._feed(call, call.model.on_timer(now))

    def _close_leg(self, call: _Call) -> None:
        leg = call.leg
        leg.queue.clear()
        leg.stop.set()
        if leg.recorder is not None:
            leg.recorder.close()
            leg.recorder = None
        leg.session.close()

    def _finish(self, call: _Call, outcome: str) -> None:
        call.done = True
        self._close_leg(call)
        if call.timer is not None:
            call.timer.cancel()
        for key in [k for k, c in self.calls.items() if c is call]:
            del self.calls[key]
        self.by_invite.pop(call.txn.key, None)
        if self.on_finished is not None:
            result = self.on_finished(call.box, outcome)
            if inspect.isawaitable(result):
                self.spawn(result)

    async def drain(self) -> None:
        """Wait for the store operations and players still running (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


class StandaloneVoicemail:
    """A transaction user that is only the voicemail service, with message waiting over
    SUBSCRIBE/NOTIFY (tests with real phones, and a model for wiring it into the proxy).

    INVITE to the access number → listen to the caller's own box (the From user: no
    authentication here, the proxy's job); to the access number followed by a box → that
    box after its PIN (the box's own, `box_pin(box)`, else the server-wide `menu.pin`; refused when
    neither is set); any other INVITE → leave a message in the box
    named by the Request-URI user; SUBSCRIBE `message-summary` → NOTIFYs on every change
    of the box (`notify_box`, to be set as the service's `on_change`).
    """

    def __init__(self, access_number: str = "*98", subscriptions: Subscriptions | None = None) -> None:
        self.access_number = access_number
        self.service: VoicemailService | None = None  # attached after the stack exists
        self.menu = MenuSettings()
        # the box's own PIN (the account's voicemail_pin), None when it has none: `menu.pin` then
        self.box_pin: Callable[[str], str | None] = lambda box: None
        self.subscriptions = subscriptions
        self.watch = WatchSettings()
        self._expiry: Timer | None = None
        self._expiry_at: float | None = None

    def _svc(self) -> VoicemailService:
        assert self.service is not None, "attach a VoicemailService first"
        return self.service

    # ---------------------------------------------------------------- message waiting
    async def summary(self, box: str) -> MessageSummary:
        svc = self._svc()
        host, port = svc.stack.local.get("udp", ("127.0.0.1", 0))
        return summary([m for m in await svc.store.list(box) if m.complete],
                       f"sip:{self.access_number}@{host}:{port}")

    async def notify_box(self, box: str) -> None:
        """Send every message-summary subscriber of `box` its new counts."""
        subs = self.subscriptions
        if subs is None:
            return
        render = render_summary(await self.summary(box))
        svc = self._svc()
        now = svc.clock()
        for sub in list(subs.for_target(Package.MESSAGE_SUMMARY, box)):
            self._send_notify(sub, subs.notify(sub, render, now), now)
        svc.pump()

    def _send_notify(self, sub: Subscription, req: Request, now: float) -> None:
        source = sub.flow if isinstance(sub.flow, Source) else None
        if source is None:
            return
        send_request(self._svc().stack, req, source, now, context=_MwiNotifyContext(self, sub))

    async def _subscribe(self, txn: ServerTxn, req: Request, box: str) -> None:
        svc = self._svc()
        subs = self.subscriptions
        assert subs is not None
        render = render_summary(await self.summary(box))
        now = svc.clock()
        watcher = getattr(req.from_.uri, "user", None) or ""
        package = (req.headers.get("event") or "").split(";", 1)[0].strip().lower()
        allowed = package in {p.value for p in Package} and may_subscribe(Package(package), watcher, box, self.watch)
        answer = subs.on_subscribe(req, watcher, box, render, now, allowed=allowed, flow=txn.source, device=watcher)
        svc.stack.respond(txn, answer.response(req), now)
        if answer.notify is not None and answer.subscription is not None:
            self._send_notify(answer.subscription, answer.notify, now)
        self._arm_expiry()
        svc.pump()

    def _arm_expiry(self) -> None:
        subs = self.subscriptions
        at = subs.next_expiry() if subs is not None else None
        if at == self._expiry_at:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = at
        self._expiry = None if at is None else self._svc().stack.call_at(at, self._on_expiry)

    def _on_expiry(self, now: float) -> None:
        self._expiry = self._expiry_at = None
        subs = self.subscriptions
        assert subs is not None
        for sub in subs.expire(now):
            self._send_notify(sub, subs.notify(sub, render_summary(MessageSummary()), now, reason="timeout"), now)
        self._arm_expiry()

    # ---------------------------------------------------------------- the transaction user
    def on_request(self, txn: ServerTxn, req: Request, now: float) -> None:
        svc = self._svc()
        stack = svc.stack
        ruri = req.request_uri
        user = ruri.user if isinstance(ruri, SipUri) else None
        if req.method == "INVITE" and req.to.tag is None:
            caller = getattr(req.from_.uri, "user", None)
            other = user[len(self.access_number):] if user and user.startswith(self.access_number) else ""
            if user == self.access_number and caller:
                svc.spawn(svc.listen(txn, req, caller, self.menu))
            elif other:  # access number + a box: from another account's device only the PIN opens it
                if other == caller:  # the proxy rewrote From to the calling device's account
                    svc.spawn(svc.listen(txn, req, caller, self.menu))
                elif not (pin := self.box_pin(other) or self.menu.pin):
                    reason = "Forbidden (no voicemail PIN is set: dial the access number from the box's own device)"
                    stack.respond(txn, stack.make_response(req, 403, reason), now)
                else:
                    svc.spawn(svc.listen(txn, req, other, replace(self.menu, pin=pin, pin_required=True)))
            elif user and user != self.access_number:
                svc.spawn(svc.deposit(txn, req, user))
            else:
                stack.respond(txn, stack.make_response(req, 404, "Not Found"), now)
            return
        if req.method == "SUBSCRIBE" and self.subscriptions is not None and user:
            svc.spawn(self._subscribe(txn, req, user))
            return
        if req.method == "BYE" and svc.on_bye(txn, req):
            return
        if req.method == "OPTIONS":
            stack.respond(txn, stack.make_response(req, 200, "OK"), now)
            return
        stack.respond(txn, stack.make_response(req, 481, "Call/Transaction Does Not Exist"), now)

    def on_ack(self, req: Request, source: Source, now: float) -> None:
        self._svc().on_ack(req)

    def on_cancel(self, txn: ServerTxn, req: Request, now: float) -> None:
        self._svc().on_cancel(txn)

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        handler = getattr(txn.context, "on_response", None)
        if handler is not None:
            handler(txn, resp, now)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        handler = getattr(txn.context, "on_timeout", None)
        if handler is not None:
            handler(txn, now)

    def on_stray_response(self, resp: Response, source: Source, now: float) -> None:
        pass


class _MwiNotifyContext:
    __slots__ = ("app", "sub")

    def __init__(self, app: StandaloneVoicemail, sub: Subscription) -> None:
        self.app = app
        self.sub = sub

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        if resp.status >= 300 and self.app.subscriptions is not None:
            self.app.subscriptions.notify_failed(self.sub, resp.status)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        if self.app.subscriptions is not None:
            self.app.subscriptions.notify_failed(self.sub, None)
