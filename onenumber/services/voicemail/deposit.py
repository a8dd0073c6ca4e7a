"""Leaving a message: the voicemail user agent's side of one call, sans-IO.

`DepositCall` answers the INVITE the proxy sent to the box (SDP answer with PCMU or
PCMA and telephone-event, 488 when neither is offered; an INVITE without SDP gets our
offer and the answer is read from the ACK), plays the greeting (the glue appends the
beep), records until the maximum length, silence, `#` or the caller's BYE, saves the
message, says goodbye and hangs up. Everything else (RTP, files, the stack) is the
glue's: it feeds events in (`on_invite`, `on_ack`, `on_bye`, `on_cancel`, `on_digit`,
`on_play_done`, `on_recording_stopped`, `on_timer`, `on_bye_answered`) and carries out
the returned actions (voicemail.actions) in order.

Crash safety: the message record is saved (`complete=False`) when recording starts and
again when it ends; the WAV on disk is valid throughout (media.wav).

Choices:
- `#` during the greeting skips it; during the recording it ends the message.
- A recording shorter than `min_seconds` is discarded (a caller who hangs up at the
  beep leaves nothing), and so is everything when the caller hangs up during the greeting.
- As a UAS core we retransmit our 2xx until the ACK (T1 doubling up to T2, RFC 3261
  §13.3.1.4); with no ACK after 64·T1 we hang up with BYE.

Pure: no asyncio, no clock (`now` is passed in); depends on sip, media.sdp and
voicemail.actions/store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ...media import sdp
from ...sip.dialog import Dialog, response_for
from ...sip.message import Request
from .actions import (
    Action,
    CloseMedia,
    DiscardMessage,
    Finished,
    Play,
    Reply,
    SaveMessage,
    SendRequest,
    StartMedia,
    StartRecording,
    StopPlayback,
    StopRecording,
)
from .store import VoicemailMessage

ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO"

# outcomes (Finished.outcome), for the call history
LEFT_MESSAGE = "voicemail"
NO_MESSAGE = "no-message"  # answered, but nothing worth keeping was recorded
CANCELLED = "cancelled"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class DepositSettings:
    max_seconds: float = 120.0
    silence_seconds: float | None = 5.0
    min_seconds: float = 1.0
    contact: str = "sip:voicemail@127.0.0.1"  # our Contact URI
    media_host: str = "127.0.0.1"  # the address in our SDP
    t1: float = 0.5
    t2: float = 4.0


class Phase(StrEnum):
    NEW = "new"
    GREETING = "greeting"
    RECORDING = "recording"
    SAVING = "saving"  # recording stopped, waiting for its duration
    GOODBYE = "goodbye"
    CLOSING = "closing"  # our BYE sent
    DONE = "done"


class DepositCall:
    def __init__(
        self,
        box: str,
        message_id: str,
        path: str,
        *,
        local_tag: str,
        media_port: int,
        session_id: int,
        received_at: float,
        settings: DepositSettings | None = None,
    ) -> None:
        self.box = box
        self.settings = settings or DepositSettings()
        self.local_tag = local_tag
        self.media_port = media_port
        self.session_id = session_id
        self.phase = Phase.NEW
        self.dialog: Dialog | None = None
        self.invite: Request | None = None
        self.plan: sdp.AudioPlan | None = None
        self.message = VoicemailMessage(message_id, box, "", "", received_at, path)
        self.hung_up = False  # the caller sent BYE
        self.saved = False
        self._ok = None  # our 2xx, retransmitted until the ACK
        self._acked = False
        self._retransmit_at: float | None = None
        self._interval = self.settings.t1
        self._give_up_at: float | None = None

    # ---------------------------------------------------------------- the INVITE
    def on_invite(self, req: Request, now: float) -> list[Action]:
        if self.phase is not Phase.NEW:
            return []
        self.invite = req
        try:
            self.dialog = Dialog.from_request(req, self.local_tag)
        except ValueError:
            return self._reject(req, 400, "Bad Request (no Contact)")
        frm = req.from_
        caller = getattr(frm.uri, "user", None) or ""
        self.message = replace(self.message, caller=caller, caller_name=frm.display_text or "")
        s = self.settings
        actions: list[Action] = []
        if req.body:
            try:
                body, self.plan = sdp.answer(sdp.parse(req.body), s.media_host, self.media_port,
                                             session_id=self.session_id)
            except sdp.NoCommonCodec:
                return self._reject(req, 488, "Not Acceptable Here")
            except sdp.SdpError:
                return self._reject(req, 400, "Bad Request (invalid SDP)")
        else:  # late offer: ours goes in the 200, the answer comes in the ACK
            body = sdp.offer(s.media_host, self.media_port, session_id=self.session_id)
        self._ok = response_for(req, 200, "OK", self.local_tag,
                                [("Contact", f"<{s.contact}>"), ("Allow", ALLOW)], body, "application/sdp")
        actions.append(Reply(self._ok))
        self._retransmit_at = now + s.t1
        self._give_up_at = now + 64 * s.t1
        if self.plan is not None:
            actions += self._start_greeting()
        return actions

    def _reject(self, req: Request, status: int, reason: str) -> list[Action]:
        self.phase = Phase.DONE
        return [Reply(response_for(req, status, reason, self.local_tag)), Finished(REJECTED)]

    def _start_greeting(self) -> list[Action]:
        assert self.plan is not None
        self.phase = Phase.GREETING
        return [StartMedia(self.plan), Play("greeting")]

    def on_ack(self, req: Request, now: float) -> list[Action]:
        if self._acked or self._ok is None:
            return []
        self._acked = True
        self._retransmit_at = self._give_up_at = None
        if self.plan is None and self.phase is Phase.NEW:
            try:
                self.plan = sdp.plan_from_answer(sdp.parse(req.body))
            except sdp.SdpError:  # no usable answer: nothing to play to, hang up
                return self._bye_now()
            return self._start_greeting()
        return []

    def on_cancel(self, now: float) -> list[Action]:
        """The stack answered a CANCEL for our INVITE: 487 if we have not answered yet."""
        if self.invite is None or self._ok is not None or self.phase is Phase.DONE:
            return []
        self.phase = Phase.DONE
        return [Reply(response_for(self.invite, 487, "Request Terminated", self.local_tag)), Finished(CANCELLED)]

    # ---------------------------------------------------------------- in the call
    def on_digit(self, digit: str, now: float) -> list[Action]:
        if digit != "#":
            return []
        if self.phase is Phase.GREETING:
            return [StopPlayback(), *self._start_recording()]
        if self.phase is Phase.RECORDING:
            self.phase = Phase.SAVING
            return [StopRecording("dtmf")]
        return []

    def on_play_done(self, item: Play, now: float) -> list[Action]:
        if self.phase is Phase.GREETING and item.prompt == "greeting":
            return self._start_recording()
        if self.phase is Phase.GOODBYE and item.prompt == "goodbye":
            return self._bye_now()
        return []

    def _start_recording(self) -> list[Action]:
        s = self.settings
        self.phase = Phase.RECORDING
        return [
            SaveMessage(self.message, new=True),  # the record exists before the first sample
            StartRecording(self.message.path, s.max_seconds, s.silence_seconds),
        ]

    def on_recording_stopped(self, duration: float, now: float) -> list[Action]:
        """The recording ended (asked for, or the recorder's own max length / silence)."""
        if self.phase not in (Phase.RECORDING, Phase.SAVING):
            return []
        done = replace(self.message, duration=duration, complete=True)
        self.message = done
        actions: list[Action]
        if duration < self.settings.min_seconds:
            actions = [DiscardMessage(done)]
        else:
            self.saved = True
            actions = [SaveMessage(done, new=False)]
        if self.hung_up:
            self.phase = Phase.DONE
            return [*actions, CloseMedia(), Finished(self._outcome())]
        self.phase = Phase.GOODBYE
        return [*actions, Play("goodbye")]

    def on_bye(self, req: Request, now: float) -> list[Action]:
        """The caller hung up (the glue matched the BYE to our dialog)."""
        ok = Reply(response_for(req, 200, "OK", None))
        self.hung_up = True
        self._retransmit_at = self._give_up_at = None
        if self.phase is Phase.RECORDING:
            self.phase = Phase.SAVING
            return [ok, StopRecording("hangup")]
        if self.phase is Phase.SAVING:
            return [ok]  # the duration is on its way: on_recording_stopped finishes
        if self.phase is Phase.DONE:
            return [ok]
        self.phase = Phase.DONE
        return [ok, StopPlayback(), CloseMedia(), Finished(self._outcome())]

    def _bye_now(self) -> list[Action]:
        assert self.dialog is not None
        self.phase = Phase.CLOSING
        self._retransmit_at = self._give_up_at = None
        return [StopPlayback(), SendRequest(self.dialog.request("BYE"))]

    def on_bye_answered(self, status: int | None, now: float) -> list[Action]:
        """Our BYE got a final response (None: it timed out): the call is over either way."""
        if self.phase is not Phase.CLOSING:
            return []
        self.phase = Phase.DONE
        return [CloseMedia(), Finished(self._outcome())]

    def _outcome(self) -> str:
        return LEFT_MESSAGE if self.saved else NO_MESSAGE

    # ---------------------------------------------------------------- timers
    def next_timer(self) -> float | None:
        times = [t for t in (self._retransmit_at, self._give_up_at) if t is not None]
        return min(times) if times else None

    def on_timer(self, now: float) -> list[Action]:
        if self._give_up_at is not None and now >= self._give_up_at:  # never ACKed
            self._retransmit_at = self._give_up_at = None
            self._acked = True
            actions: list[Action] = []
            if self.phase is Phase.RECORDING:
                actions.append(StopRecording("no ack"))
                self.phase = Phase.SAVING
                self.hung_up = False
                return actions  # on_recording_stopped says goodbye and hangs up
            if self.phase is Phase.DONE:
                return []
            return self._bye_now()
        if self._retransmit_at is not None and now >= self._retransmit_at and self._ok is not None:
            self._interval = min(self._interval * 2, self.settings.t2)
            self._retransmit_at = now + self._interval
            return [Reply(self._ok)]
        return []
