"""What the sans-IO voicemail parts ask their asyncio glue to do.

Frozen values, returned in lists, carried out in order. Playback is a queue: each
`Play`/`PlayMessage` starts when the one before it ends, `StopPlayback` empties the
queue (and cuts what is playing); the glue reports the end of each item it played to
the end (`on_play_done(item)`), never of one that was stopped.

Depends on sip.message, media.sdp and voicemail.store only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...media.sdp import AudioPlan
from ...sip.message import Request, Response
from .store import VoicemailMessage


@dataclass(frozen=True, slots=True, eq=False)
class Reply:
    """Send this response in the request's server transaction (again, for a 2xx retransmission)."""

    response: Response


@dataclass(frozen=True, slots=True, eq=False)
class SendRequest:
    """Send this in-dialog request (BYE) in a new client transaction; it has no Via yet."""

    request: Request


@dataclass(frozen=True, slots=True)
class StartMedia:
    """Open RTP towards `plan.remote` with `plan.payload_type` on the port given at answer time."""

    plan: AudioPlan


@dataclass(frozen=True, slots=True)
class CloseMedia:
    pass


@dataclass(frozen=True, slots=True)
class Play:
    """Play a prompt. `prompt` names a sound the glue knows (`greeting`: the box's greeting
    followed by a beep; `goodbye`, `intro`…); `args` fill in spoken numbers."""

    prompt: str
    args: tuple[tuple[str, int], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class PlayMessage:
    message_id: str
    path: str


@dataclass(frozen=True, slots=True)
class StopPlayback:
    pass


@dataclass(frozen=True, slots=True)
class StartRecording:
    path: str
    max_seconds: float
    silence_seconds: float | None


@dataclass(frozen=True, slots=True)
class StopRecording:
    """End the recording; the glue then reports `on_recording_stopped(duration)`."""

    reason: str


@dataclass(frozen=True, slots=True)
class SaveMessage:
    """Write the message record (add when new, update otherwise) and notify message waiting."""

    message: VoicemailMessage
    new: bool


@dataclass(frozen=True, slots=True)
class DiscardMessage:
    """Remove a message too short to keep (record and WAV)."""

    message: VoicemailMessage


@dataclass(frozen=True, slots=True)
class MarkHeard:
    message_id: str


@dataclass(frozen=True, slots=True)
class DeleteMessage:
    message_id: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The call is over for us: forget it. `outcome` is for history (`voicemail`, `cancelled`…)."""

    outcome: str


Action = (
    Reply | SendRequest | StartMedia | CloseMedia | Play | PlayMessage | StopPlayback | StartRecording
    | StopRecording | SaveMessage | DiscardMessage | MarkHeard | DeleteMessage | Finished
)
