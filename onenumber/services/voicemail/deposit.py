"""Leaving a message: the voicemail user agent's side of one call, sans-IO.

`DepositCall` (an `ua.AnsweringCall`: answer, ACK, BYE, CANCEL, 2xx retransmission)
plays the greeting (the glue appends the beep), records until the maximum length,
silence, `#` or the caller's BYE, saves the message, says goodbye and hangs up. The
glue feeds events in (`on_invite`, `on_ack`, `on_bye`, `on_cancel`, `on_digit`,
`on_play_done`, `on_recording_stopped`, `on_timer`, `on_bye_answered`) and carries out
the returned actions (voicemail.actions) in order.

Crash safety: the message record is saved (`complete=False`) when recording starts and
again when it ends; the WAV on disk is valid throughout (media.wav).

Choices:
- `#` during the greeting skips it; during the recording it ends the message.
- A recording shorter than `min_seconds` is discarded (a caller who hangs up at the
  beep leaves nothing), and so is everything when the caller hangs up during the greeting.
- No ACK after 64·T1 while recording: the message so far is kept, then goodbye and BYE.

Pure: no asyncio, no clock (`now` is passed in); depends on voicemail.ua/actions/store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ...sip.message import Request
from .actions import Action, DiscardMessage, Play, PlayMessage, SaveMessage, StartRecording, StopPlayback, StopRecording
from .store import VoicemailMessage
from .ua import CANCELLED, REJECTED, AnsweringCall, CallPhase, UaSettings

LEFT_MESSAGE = "voicemail"  # outcomes (Finished.outcome), for the call history
NO_MESSAGE = "no-message"  # answered, but nothing worth keeping was recorded

__all__ = [
    "CANCELLED",
    "LEFT_MESSAGE",
    "NO_MESSAGE",
    "REJECTED",
    "CallPhase",
    "DepositCall",
    "DepositSettings",
    "Stage",
]


@dataclass(frozen=True, slots=True)
class DepositSettings:
    max_seconds: float = 120.0
    silence_seconds: float | None = 5.0
    min_seconds: float = 1.0


class Stage(StrEnum):
    WAITING = "waiting"  # not answered / no media yet
    GREETING = "greeting"
    RECORDING = "recording"
    SAVING = "saving"  # recording stopped, waiting for its duration
    GOODBYE = "goodbye"
    OVER = "over"


class DepositCall(AnsweringCall):
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
        ua: UaSettings | None = None,
    ) -> None:
        super().__init__(local_tag=local_tag, media_port=media_port, session_id=session_id, ua=ua)
        self.box = box
        self.settings = settings or DepositSettings()
        self.stage = Stage.WAITING
        self.message = VoicemailMessage(message_id, box, "", "", received_at, path)
        self.saved = False

    def on_invite(self, req: Request, now: float) -> list[Action]:
        if self.invite is None:
            frm = req.from_
            caller = getattr(frm.uri, "user", None) or ""
            self.message = replace(self.message, caller=caller, caller_name=frm.display_text or "")
        return super().on_invite(req, now)

    def _started(self, now: float) -> list[Action]:
        self.stage = Stage.GREETING
        return [Play("greeting")]

    def on_digit(self, digit: str, now: float) -> list[Action]:
        if digit != "#" or self.phase is not CallPhase.ACTIVE:
            return []
        if self.stage is Stage.GREETING:
            return [StopPlayback(), *self._start_recording()]
        if self.stage is Stage.RECORDING:
            self.stage = Stage.SAVING
            return [StopRecording("dtmf")]
        return []

    def on_play_done(self, item: Play | PlayMessage, now: float) -> list[Action]:
        if not isinstance(item, Play) or self.phase is not CallPhase.ACTIVE:
            return []
        if self.stage is Stage.GREETING and item.prompt == "greeting":
            return self._start_recording()
        if self.stage is Stage.GOODBYE and item.prompt == "goodbye":
            self.stage = Stage.OVER
            return self.hang_up()
        return []

    def _start_recording(self) -> list[Action]:
        s = self.settings
        self.stage = Stage.RECORDING
        return [
            SaveMessage(self.message, new=True),  # the record exists before the first sample
            StartRecording(self.message.path, s.max_seconds, s.silence_seconds),
        ]

    def on_recording_stopped(self, duration: float, now: float) -> list[Action]:
        """The recording ended (asked for, or the recorder's own max length / silence)."""
        if self.stage not in (Stage.RECORDING, Stage.SAVING):
            return []
        done = replace(self.message, duration=duration, complete=True)
        self.message = done
        actions: list[Action]
        if duration < self.settings.min_seconds:
            actions = [DiscardMessage(done)]
        else:
            self.saved = True
            actions = [SaveMessage(done, new=False)]
        if self.hung_up or self.phase is not CallPhase.ACTIVE:
            self.stage = Stage.OVER
            return [*actions, *self.finish()] if self.hung_up else actions
        self.stage = Stage.GOODBYE
        return [*actions, Play("goodbye")]

    def _caller_left(self, now: float) -> list[Action]:
        if self.stage is Stage.RECORDING:
            self.stage = Stage.SAVING
            return [StopRecording("hangup")]
        if self.stage is Stage.SAVING:
            return []  # the duration is on its way: on_recording_stopped finishes
        self.stage = Stage.OVER
        return self.finish()

    def _no_ack(self, now: float) -> list[Action]:
        if self.stage is Stage.RECORDING:  # keep what was said, then goodbye and BYE
            self.stage = Stage.SAVING
            return [StopRecording("no ack")]
        self.stage = Stage.OVER
        return self.hang_up()

    def _outcome(self) -> str:
        return LEFT_MESSAGE if self.saved else NO_MESSAGE
