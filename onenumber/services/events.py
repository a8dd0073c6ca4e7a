"""Call events: what happened to a call, as frozen values, and the bus that hands them out.

The call path (proxy, in-dialog relay, dialogs, location) only *emits*: an event is appended
to a list, as bytes are appended to the stack's outbox. The glue (the transport driver after
each input, or a test) calls `EventBus.dispatch()`, which hands each queued event to every
subscriber. A subscriber that raises is logged (once per minute per subscriber, not per call)
and never touches the call; subscribers do their I/O off the hot path (they buffer, and a
task of their own writes).

Non-SIP actions the core asks for later (send a push, start a voicemail session) leave the
same way, as events a service subscribes to. No I/O, no clock here: times are passed in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from ..frozen import quick_init

log = logging.getLogger("onenumber.events")


class DialogState(StrEnum):
    """RFC 4235 §3.1.6 dialog states, per branch of a call."""

    TRYING = "trying"
    PROCEEDING = "proceeding"
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class EndCause(StrEnum):
    """Why an answered call ended."""

    BYE = "bye"
    EXPIRED = "expired"  # no BYE seen for the dialog limit: forgotten


class FailCause(StrEnum):
    """Why a call that was never answered ended (the caller's view)."""

    CANCELLED = "cancelled"  # the caller hung up while it rang
    BUSY = "busy"
    DECLINED = "declined"
    NO_ANSWER = "no-answer"
    UNAVAILABLE = "unavailable"  # nothing could ring
    NOT_FOUND = "not-found"
    FAILED = "failed"  # any other failure (timeout, trunk error, loop…)


@quick_init
@dataclass(frozen=True, slots=True)
class Party:
    """One end of a call as people see it: a number and a display name, and, when it is one
    of our accounts, the account and the device (auth username, position)."""

    number: str
    name: str = ""
    account: str | None = None
    device: str | None = None
    position: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class CallStarted:
    call_id: str
    at: float
    caller: Party
    dialled: str  # the number as dialled (Request-URI user)
    callee_account: str | None  # the account dialled, None for an external number
    trunk: str | None = None  # the trunk the call came in on, if any


@quick_init
@dataclass(frozen=True, slots=True)
class BranchRinging:
    """A device (or a trunk leg) of the call is alerting (first 18x on its branch)."""

    call_id: str
    at: float
    account: str | None
    device: str | None
    position: int | None


@quick_init
@dataclass(frozen=True, slots=True)
class CallForwarded:
    call_id: str
    at: float
    account: str  # whose rule forwarded it
    reason: str  # unconditional | busy | no-answer
    to: str  # the number it now rings


@quick_init
@dataclass(frozen=True, slots=True)
class CallAnswered:
    call_id: str
    at: float
    account: str | None  # the account that answered (None: a trunk or external number)
    device: str | None
    position: int | None
    number: str  # the number that answered (account number or the external number)


@quick_init
@dataclass(frozen=True, slots=True)
class CallFailed:
    """The call ended without an answer: the status the caller got, and why."""

    call_id: str
    at: float
    status: int
    cause: FailCause
    account: str | None  # the account being rung when it failed, if any


@quick_init
@dataclass(frozen=True, slots=True)
class CallEnded:
    """An answered call ended (BYE from either side, or forgotten after the dialog limit)."""

    call_id: str
    at: float
    cause: EndCause
    by: str | None  # "caller" | "callee" | None


@quick_init
@dataclass(frozen=True, slots=True)
class DialogChanged:
    """A branch's RFC 4235 state changed: what presence and BLF watch."""

    call_id: str
    at: float
    account: str
    device: str | None
    position: int | None
    state: DialogState
    direction: str  # "initiator" (the device placed the call) | "recipient"


@quick_init
@dataclass(frozen=True, slots=True)
class BindingChanged:
    account: str
    auth_username: str
    contact: str
    transport: str
    change: str  # added | removed
    reason: str  # register | unregister | expired | connection-closed | replaced | keepalive


@quick_init
@dataclass(frozen=True, slots=True)
class MediaRequest:
    """An action, not a report: the call waits until the glue answers it. Rewrite `sdp` through
    the media relay (an offer when `to_tag` is None, else an answer) for a peer that speaks
    WebRTC (`to_webrtc`) or plain RTP, then call `CallProxy.media_done(token, new_sdp, now)`
    (`None` when the relay failed)."""

    token: int
    call_id: str
    from_tag: str
    to_tag: str | None
    sdp: bytes
    to_webrtc: bool


Event = (
    CallStarted | BranchRinging | CallForwarded | CallAnswered | CallFailed | CallEnded | DialogChanged
    | BindingChanged | MediaRequest
)
Subscriber = Callable[[Event], None]
EVENT_TYPES: tuple[type, ...] = (
    CallStarted, BranchRinging, CallForwarded, CallAnswered, CallFailed, CallEnded, DialogChanged, BindingChanged,
    MediaRequest,
)

ERROR_LOG_INTERVAL = 60.0


class EventBus:
    """Queue of events emitted by the core, handed to subscribers by `dispatch()`.

    A subscriber names the event types it wants (all when it names none); emitters ask
    `wants(EventType)` before building an event, so an event nobody wants costs one set lookup.
    """

    __slots__ = ("_errors", "_last_error_log", "_routes", "clock", "queue", "subscribers", "wanted")

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.queue: list[Event] = []
        self.subscribers: list[Subscriber] = []
        self.wanted: frozenset[type] = frozenset()
        self._routes: dict[type, tuple[Subscriber, ...]] = {}
        self.clock = clock
        self._last_error_log: dict[int, float] = {}
        self._errors: dict[int, int] = {}

    def wants(self, kind: type) -> bool:
        return kind in self.wanted

    def emit(self, event: Event) -> None:
        if type(event) in self.wanted:
            self.queue.append(event)

    def subscribe(self, subscriber: Subscriber, *kinds: type) -> None:
        """`subscriber(event)` for every event of `kinds` (every kind when none is given)."""
        self.subscribers.append(subscriber)
        for kind in kinds or EVENT_TYPES:
            self._routes[kind] = (*self._routes.get(kind, ()), subscriber)
        self.wanted = frozenset(self._routes)

    def dispatch(self) -> int:
        """Hand every queued event to its subscribers; returns how many events went out."""
        if not self.queue:
            return 0
        events, self.queue = self.queue, []
        routes = self._routes
        for event in events:
            for sub in routes.get(type(event), ()):
                try:
                    sub(event)
                except Exception:
                    self._failed(sub, event)
        return len(events)

    def _failed(self, sub: Subscriber, event: Event) -> None:
        key = id(sub)
        self._errors[key] = self._errors.get(key, 0) + 1
        now = self.clock() if self.clock is not None else getattr(event, "at", 0.0)
        last = self._last_error_log.get(key)
        if last is not None and now - last < ERROR_LOG_INTERVAL:
            return
        self._last_error_log[key] = now
        count, self._errors[key] = self._errors[key], 0
        log.exception("event subscriber %r failed on %s (%d failure(s) since the last report)",
                      getattr(sub, "__qualname__", sub), type(event).__name__, count)
