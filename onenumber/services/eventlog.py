"""Logs one line per call event with its Call-ID (and per binding change), and formats log
records as JSON when asked (`serve --log-format json`): an operator's tools can follow a call
or an overload as it happens, with `grep` or a log shipper.

`EventLog` is a subscriber like the history writer: it only formats and hands lines to the
logging module. `JsonFormatter` puts the record's `call_id`, `event` and `fields` (given with
`extra=`) next to the time, level, logger and message.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from enum import Enum

from .events import (
    BindingChanged,
    BranchRinging,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallForwarded,
    CallStarted,
    Event,
    EventBus,
)

log = logging.getLogger("onenumber.calls")

LOGGED = (CallStarted, BranchRinging, CallForwarded, CallAnswered, CallFailed, CallEnded, BindingChanged)


def _plain(value: object) -> object:
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items() if v is not None}
    return value


class EventLog:
    """Subscribes only when INFO is logged: otherwise the events are not even built."""

    def __init__(self, events: EventBus) -> None:
        if log.isEnabledFor(logging.INFO):
            events.subscribe(self.on_event, *LOGGED)

    def on_event(self, event: Event) -> None:
        name = type(event).__name__
        fields = {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)
                  if f.name not in ("call_id", "at") and getattr(event, f.name) is not None}
        call_id = getattr(event, "call_id", None)
        text = " ".join(f"{k}={v}" for k, v in fields.items() if not isinstance(v, dict))
        log.info("%s %s%s", name, f"call_id={call_id} " if call_id else "", text,
                 extra={"call_id": call_id, "event": name, "fields": fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, and call_id / event / fields when given."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("call_id", "event", "fields"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)
