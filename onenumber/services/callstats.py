"""Call counters for /metrics, kept by an event subscriber: calls started, answered, failed
(by cause) and ended, so calls active = started − failed − ended. Counting only: no I/O."""

from __future__ import annotations

from .events import CallAnswered, CallEnded, CallFailed, CallStarted, Event, EventBus


class CallStats:
    def __init__(self, events: EventBus) -> None:
        self.started = 0
        self.answered = 0
        self.ended = 0
        self.failed: dict[str, int] = {}  # by FailCause
        events.subscribe(self.on_event, CallStarted, CallAnswered, CallFailed, CallEnded)

    def on_event(self, event: Event) -> None:
        kind = type(event)
        if kind is CallStarted:
            self.started += 1
        elif kind is CallAnswered:
            self.answered += 1
        elif kind is CallEnded:
            self.ended += 1
        elif isinstance(event, CallFailed):
            cause = str(event.cause)
            self.failed[cause] = self.failed.get(cause, 0) + 1

    @property
    def active(self) -> int:
        """Calls ringing or in conversation."""
        return max(0, self.started - sum(self.failed.values()) - self.ended)
