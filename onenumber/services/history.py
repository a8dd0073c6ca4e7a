"""The merged call history: the first subscriber of the call events (SPEC "History").

`CallSummary` gathers what the events said about one call; `history_rows()` (pure) turns it
into one row per account involved: an outgoing row for the calling account, an incoming row
for each account the call was for (the one dialled, and each one a forward sent it to).
Outcomes, for an incoming row: `answered` (by one of its devices: the others record
nothing), `answered elsewhere` (a device of another account took it, e.g. a pickup),
`forwarded` (to what, and why), `voicemail` (forwarded to the box), `busy`, `declined`,
`missed` (it rang, nobody answered),
`no answer` (nothing could ring), `failed`; for an outgoing row: `answered`, `busy`,
`declined`, `no answer`, `failed`.

`HistoryWriter` subscribes to the bus, keeps a summary per live call, and writes its rows
when the call is over (failed, or ended after an answer), in batches from its own task
(every second), never on the call path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..routing.model import VOICEMAIL
from ..store.history import HistoryRow, prune_history, write_history
from .directory import Directory
from .events import (
    BranchRinging,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallForwarded,
    CallStarted,
    EventBus,
    FailCause,
    Party,
)

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger("onenumber.history")

FLUSH_INTERVAL = 1.0
PRUNE_INTERVAL = 3600.0
IN, OUT = "in", "out"


@dataclass(slots=True)
class CallSummary:
    """What the events told about one call."""

    call_id: str
    started: float
    caller: Party
    dialled: str
    targets: list[str] = field(default_factory=list)  # accounts the call was for, in order
    rang: set[str] = field(default_factory=set)  # accounts whose devices rang
    forwards: dict[str, tuple[str, str]] = field(default_factory=dict)  # account → (to, reason)
    answered_at: float | None = None
    answered_by: Party | None = None  # account/device that answered (number: who it is)
    ended_at: float | None = None
    fail_cause: FailCause | None = None


_OUT_FAIL = {
    FailCause.BUSY: "busy",
    FailCause.DECLINED: "declined",
    FailCause.CANCELLED: "no answer",
    FailCause.NO_ANSWER: "no answer",
    FailCause.UNAVAILABLE: "no answer",
}
_IN_FAIL = {FailCause.BUSY: "busy", FailCause.DECLINED: "declined"}


def history_rows(call: CallSummary, names: Callable[[str], str]) -> list[HistoryRow]:
    """One row per account involved (pure). `names` gives an account number's display name."""
    rows: list[HistoryRow] = []
    ans = call.answered_by
    answered = call.answered_at is not None
    end = call.ended_at
    duration = max(0.0, end - call.answered_at) if answered and end is not None and call.answered_at else 0.0
    caller = call.caller
    if caller.account is not None:
        callee_number = call.dialled
        callee_name = names(call.targets[0]) if call.targets else ""
        outcome = "answered" if answered else _OUT_FAIL.get(call.fail_cause or FailCause.FAILED, "failed")
        rows.append(HistoryRow(
            caller.account, call.call_id, OUT, callee_number, callee_name, call.started, outcome,
            call.answered_at, end, duration, caller.device, caller.position,
        ))
    seen: set[str] = set()
    for account in call.targets:
        if account in seen:
            continue
        seen.add(account)
        fwd = call.forwards.get(account)
        device = position = None
        answered_at = None
        row_duration = 0.0
        if fwd is not None:
            outcome = "voicemail" if fwd[0] == VOICEMAIL else "forwarded"
        elif answered and ans is not None and ans.account == account:
            outcome, device, position = "answered", ans.device, ans.position
            answered_at, row_duration = call.answered_at, duration
        elif answered:
            outcome = "answered elsewhere"
        elif call.fail_cause in _IN_FAIL:
            outcome = _IN_FAIL[call.fail_cause]
        elif call.fail_cause in (FailCause.CANCELLED, FailCause.NO_ANSWER, FailCause.UNAVAILABLE):
            outcome = "missed" if account in call.rang else "no answer"
        else:
            outcome = "failed"
        rows.append(HistoryRow(
            account, call.call_id, IN, caller.number, caller.name, call.started, outcome,
            answered_at, end, row_duration, device, position,
            fwd[0] if fwd else None, fwd[1] if fwd else None,
        ))
    if answered and ans is not None and ans.account and ans.account not in seen and ans.account != caller.account:
        # picked up (`*8`): answered by a device of an account the call was not for
        rows.append(HistoryRow(
            ans.account, call.call_id, IN, caller.number, caller.name, call.started, "answered",
            call.answered_at, end, duration, ans.device, ans.position,
        ))
    return rows


class HistoryWriter:
    """Subscriber: summaries of live calls in memory, rows to the store in 1 s batches."""

    def __init__(self, store: Store | None, events: EventBus, directory: Directory,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.directory = directory
        self.clock = clock
        self.calls: dict[str, CallSummary] = {}
        self.pending: list[HistoryRow] = []
        events.subscribe(self.on_event, CallStarted, BranchRinging, CallForwarded, CallAnswered, CallFailed, CallEnded)

    def _name(self, number: str) -> str:
        account = self.directory.accounts.get(number)
        return account.display_name if account is not None else ""

    def on_event(self, event: object) -> None:
        if isinstance(event, CallStarted):
            call = CallSummary(event.call_id, event.at, event.caller, event.dialled)
            if event.callee_account:
                call.targets.append(event.callee_account)
            self.calls[event.call_id] = call
            return
        found = self.calls.get(getattr(event, "call_id", ""))
        if found is None:
            return
        call = found
        if isinstance(event, BranchRinging):
            if event.account:
                call.rang.add(event.account)
        elif isinstance(event, CallForwarded):
            call.forwards.setdefault(event.account, (event.to, event.reason))
            if self.directory.accounts.get(event.to) is not None:
                call.targets.append(event.to)
            else:
                target = self.directory.account_for(event.to)
                if target is not None:
                    call.targets.append(target.number)
        elif isinstance(event, CallAnswered):
            call.answered_at = event.at
            call.answered_by = Party(event.number, "", event.account, event.device, event.position)
        elif isinstance(event, CallFailed):
            call.ended_at = event.at
            call.fail_cause = event.cause
            self._write(call)
            del self.calls[call.call_id]
        elif isinstance(event, CallEnded):
            call.ended_at = event.at
            self._write(call)
            del self.calls[call.call_id]

    def _write(self, call: CallSummary) -> None:
        self.pending.extend(history_rows(call, self._name))

    async def flush(self) -> None:
        if not self.pending or self.store is None:
            return
        rows, self.pending = self.pending, []
        try:
            await write_history(self.store, rows)
        except Exception:
            log.exception("could not write %d history rows; will retry", len(rows))
            self.pending = rows + self.pending

    async def run(self) -> None:
        last_prune = 0.0
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            await self.flush()
            now = self.clock()
            if now - last_prune > PRUNE_INTERVAL:
                last_prune = now
                days = self.directory.settings.history_retention_days
                if self.store is None:
                    continue
                try:
                    pruned = await prune_history(self.store, now - days * 86400.0)
                    if pruned:
                        log.info("history: %d row(s) older than %d days removed", pruned, days)
                except Exception:
                    log.exception("history pruning failed")
