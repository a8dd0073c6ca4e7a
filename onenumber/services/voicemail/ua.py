"""The voicemail user agent's call, sans-IO: the dialog and media lifecycle of one answered call.

`AnsweringCall` answers an INVITE (SDP answer with PCMU or PCMA and telephone-event,
488 when neither is offered; without SDP our offer goes in the 200 and the answer is
read from the ACK), retransmits its 2xx until the ACK (T1 doubling up to T2, RFC 3261
§13.3.1.4; no ACK after 64·T1 → hang up), answers the caller's BYE, sends its own BYE
(`hang_up`), and reports the end (`Finished`). What happens in between belongs to a
subclass: `deposit.DepositCall` (leave a message), `listen.ListenCall` (the menu).

Subclass hooks: `_started(now)` once media can flow, `on_digit`, `on_play_done`,
`_caller_left(now)` when the caller's BYE arrives, `_no_ack(now)`, `_outcome()`.

Pure: no asyncio, no clock (`now` is passed in); depends on sip, media.sdp and
voicemail.actions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ...media import sdp
from ...sip.dialog import Dialog, response_for
from ...sip.message import Request, Response
from .actions import Action, CloseMedia, Finished, Play, PlayMessage, Reply, SendRequest, StartMedia, StopPlayback

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"

CANCELLED = "cancelled"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class UaSettings:
    contact: str = "sip:voicemail@127.0.0.1"  # our Contact URI
    media_host: str = "127.0.0.1"  # the address in our SDP
    t1: float = 0.5
    t2: float = 4.0


class CallPhase(StrEnum):
    NEW = "new"  # INVITE not answered (or answered without media yet: late offer)
    ACTIVE = "active"
    CLOSING = "closing"  # our BYE sent
    DONE = "done"


class AnsweringCall:
    def __init__(self, *, local_tag: str, media_port: int, session_id: int, ua: UaSettings | None = None) -> None:
        self.ua = ua or UaSettings()
        self.local_tag = local_tag
        self.media_port = media_port
        self.session_id = session_id
        self.phase = CallPhase.NEW
        self.dialog: Dialog | None = None
        self.invite: Request | None = None
        self.plan: sdp.AudioPlan | None = None
        self.hung_up = False  # the caller sent BYE
        self._ok: Response | None = None  # our 2xx, retransmitted until the ACK
        self._acked = False
        self._retransmit_at: float | None = None
        self._interval = self.ua.t1
        self._give_up_at: float | None = None

    # ---------------------------------------------------------------- hooks
    def _started(self, now: float) -> list[Action]:
        return []

    def on_digit(self, digit: str, now: float) -> list[Action]:
        return []

    def on_play_done(self, item: Play | PlayMessage, now: float) -> list[Action]:
        return []

    def _caller_left(self, now: float) -> list[Action]:
        return self.finish()

    def _no_ack(self, now: float) -> list[Action]:
        return self.hang_up()

    def _outcome(self) -> str:
        return "answered"

    # ---------------------------------------------------------------- the INVITE
    def on_invite(self, req: Request, now: float) -> list[Action]:
        if self.invite is not None:
            return []
        self.invite = req
        try:
            self.dialog = Dialog.from_request(req, self.local_tag)
        except ValueError:
            return self._reject(req, 400, "Bad Request (no Contact)")
        ua = self.ua
        if req.body:
            try:
                body, self.plan = sdp.answer(sdp.parse(req.body), ua.media_host, self.media_port,
                                             session_id=self.session_id)
            except sdp.NoCommonCodec:
                return self._reject(req, 488, "Not Acceptable Here")
            except sdp.SdpError:
                return self._reject(req, 400, "Bad Request (invalid SDP)")
        else:  # late offer: ours goes in the 200, the answer comes in the ACK
            body = sdp.offer(ua.media_host, self.media_port, session_id=self.session_id)
        self._ok = response_for(req, 200, "OK", self.local_tag,
                                [("Contact", f"<{ua.contact}>"), ("Allow", ALLOW)], body, "application/sdp")
        self._retransmit_at = now + ua.t1
        self._give_up_at = now + 64 * ua.t1
        actions: list[Action] = [Reply(self._ok)]
        if self.plan is not None:
            actions += self._start(now)
        return actions

    def _reject(self, req: Request, status: int, reason: str) -> list[Action]:
        self.phase = CallPhase.DONE
        return [Reply(response_for(req, status, reason, self.local_tag)), Finished(REJECTED)]

    def _start(self, now: float) -> list[Action]:
        assert self.plan is not None
        self.phase = CallPhase.ACTIVE
        return [StartMedia(self.plan), *self._started(now)]

    def on_ack(self, req: Request, now: float) -> list[Action]:
        if self._acked or self._ok is None:
            return []
        self._acked = True
        self._retransmit_at = self._give_up_at = None
        if self.plan is None and self.phase is CallPhase.NEW:
            try:
                self.plan = sdp.plan_from_answer(sdp.parse(req.body))
            except sdp.SdpError:  # no usable answer: nothing to play to, hang up
                return self.hang_up()
            return self._start(now)
        return []

    def on_cancel(self, now: float) -> list[Action]:
        """The stack answered a CANCEL for our INVITE: 487 if we have not answered yet."""
        if self.invite is None or self._ok is not None or self.phase is CallPhase.DONE:
            return []
        self.phase = CallPhase.DONE
        return [Reply(response_for(self.invite, 487, "Request Terminated", self.local_tag)), Finished(CANCELLED)]

    # ---------------------------------------------------------------- the end
    def on_bye(self, req: Request, now: float) -> list[Action]:
        """The caller hung up (the glue matched the BYE to our dialog)."""
        ok = Reply(response_for(req, 200, "OK", None))
        first = not self.hung_up
        self.hung_up = True
        self._retransmit_at = self._give_up_at = None
        if not first or self.phase is CallPhase.DONE:
            return [ok]
        return [ok, *self._caller_left(now)]

    def hang_up(self) -> list[Action]:
        """Send our BYE (media closes when it is answered)."""
        if self.phase in (CallPhase.CLOSING, CallPhase.DONE) or self.dialog is None:
            return []
        self.phase = CallPhase.CLOSING
        self._retransmit_at = self._give_up_at = None
        return [StopPlayback(), SendRequest(self.dialog.request("BYE"))]

    def finish(self) -> list[Action]:
        if self.phase is CallPhase.DONE:
            return []
        self.phase = CallPhase.DONE
        return [StopPlayback(), CloseMedia(), Finished(self._outcome())]

    def on_bye_answered(self, status: int | None, now: float) -> list[Action]:
        """Our BYE got a final response (None: it timed out): the call is over either way."""
        if self.phase is not CallPhase.CLOSING:
            return []
        self.phase = CallPhase.DONE
        return [CloseMedia(), Finished(self._outcome())]

    # ---------------------------------------------------------------- timers
    def next_timer(self) -> float | None:
        times = [t for t in (self._retransmit_at, self._give_up_at) if t is not None]
        return min(times) if times else None

    def on_timer(self, now: float) -> list[Action]:
        if self._give_up_at is not None and now >= self._give_up_at:  # never ACKed
            self._retransmit_at = self._give_up_at = None
            self._acked = True
            return [] if self.phase is CallPhase.DONE else self._no_ack(now)
        if self._retransmit_at is not None and now >= self._retransmit_at and self._ok is not None:
            self._interval = min(self._interval * 2, self.ua.t2)
            self._retransmit_at = now + self._interval
            return [Reply(self._ok)]
        return []
