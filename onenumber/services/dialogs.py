"""Dialog state of every call the proxy routes: the one source for call waiting, presence,
history and (later) moving a call.

A `CallRecord` per Call-ID holds the caller's side and one `DialogBranch` per device (or
trunk leg) rung, each with its RFC 4235 state (trying → proceeding → early → confirmed →
terminated). The proxy and the in-dialog relay update it; it emits `DialogChanged` events
for the accounts' devices. Time is passed in; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..routing.model import CallState
from ..sip.stack import Target
from .events import DialogChanged, DialogState, EventBus, Party

DIALOG_LIMIT = 4 * 3600.0  # an established call with no BYE is forgotten after this long
INITIATOR = "initiator"
RECIPIENT = "recipient"


@dataclass(slots=True)
class DialogBranch:
    """One device (or trunk leg) rung for a call."""

    key: str  # the branch id of the INVITE sent to it
    account: str | None
    device: str | None
    position: int | None
    state: DialogState = DialogState.TRYING
    tag: str | None = None  # its To-tag once it answered


@dataclass(slots=True)
class CallRecord:
    call_id: str
    started: float
    caller: Party
    caller_tag: str
    caller_target: Target  # where the caller's side is reached (its connection or NAT address)
    caller_from: str  # the From header exactly as the caller sent it
    identity_from: str | None  # the From the callee sees, when we rewrote it
    callee_account: str | None = None
    branches: dict[str, DialogBranch] = field(default_factory=dict)
    answered: DialogBranch | None = None
    answered_at: float | None = None
    callee_target: Target | None = None
    state: DialogState = DialogState.TRYING  # the caller's side

    @property
    def callee_tag(self) -> str | None:
        return self.answered.tag if self.answered is not None else None


class Dialogs:
    def __init__(self, events: EventBus) -> None:
        self.events = events
        self.calls: dict[str, CallRecord] = {}
        self.in_call: dict[str, set[str]] = {}  # account → ids of its confirmed calls

    def get(self, call_id: str) -> CallRecord | None:
        return self.calls.get(call_id)

    def call_state(self, account: str) -> CallState:
        """What routing needs for call waiting: the account's established calls and the devices
        in them."""
        ids = self.in_call.get(account)
        if not ids:
            return CallState()
        positions: set[int] = set()
        for call_id in ids:
            rec = self.calls.get(call_id)
            if rec is None:
                continue
            if rec.caller.account == account and rec.caller.position is not None:
                positions.add(rec.caller.position)
            ans = rec.answered
            if ans is not None and ans.account == account and ans.position is not None:
                positions.add(ans.position)
        return CallState(active_calls=len(ids), devices_in_call=frozenset(positions))

    # ------------------------------------------------------------------ changes
    def start(self, rec: CallRecord, now: float) -> None:
        self.calls[rec.call_id] = rec
        self._caller_state(rec, DialogState.TRYING, now)

    def branch(self, rec: CallRecord, br: DialogBranch, now: float) -> None:
        rec.branches[br.key] = br
        self._announce(rec, br, now)

    def set_state(self, rec: CallRecord, br: DialogBranch, state: DialogState, now: float) -> None:
        if br.state is state or br.state is DialogState.TERMINATED:
            return
        br.state = state
        self._announce(rec, br, now)
        if state is DialogState.EARLY and rec.state is DialogState.TRYING:
            self._caller_state(rec, DialogState.EARLY, now)

    def confirm(self, rec: CallRecord, br: DialogBranch, tag: str | None, target: Target | None, now: float) -> None:
        """The branch answered: the call is a dialog between the caller and this device."""
        br.tag = tag
        rec.answered = br
        rec.answered_at = now
        rec.callee_target = target
        self.set_state(rec, br, DialogState.CONFIRMED, now)
        self._caller_state(rec, DialogState.CONFIRMED, now)
        for account in {rec.caller.account, br.account}:
            if account:
                self.in_call.setdefault(account, set()).add(rec.call_id)

    def terminate_branches(self, rec: CallRecord, now: float, *, keep: DialogBranch | None = None) -> None:
        for br in rec.branches.values():
            if br is not keep and br.state is not DialogState.TERMINATED:
                self.set_state(rec, br, DialogState.TERMINATED, now)

    def end(self, call_id: str, now: float) -> CallRecord | None:
        """The call is over (BYE, failure, forgotten): every dialog of it terminates."""
        rec = self.calls.pop(call_id, None)
        if rec is None:
            return None
        self.terminate_branches(rec, now)
        self._caller_state(rec, DialogState.TERMINATED, now)
        for account in {rec.caller.account, rec.answered.account if rec.answered else None}:
            if account:
                ids = self.in_call.get(account)
                if ids is not None:
                    ids.discard(call_id)
                    if not ids:
                        del self.in_call[account]
        return rec

    # ------------------------------------------------------------------ internals
    def _announce(self, rec: CallRecord, br: DialogBranch, now: float) -> None:
        if br.account is not None and self.events.subscribers:
            self.events.emit(DialogChanged(rec.call_id, now, br.account, br.device, br.position, br.state, RECIPIENT))

    def _caller_state(self, rec: CallRecord, state: DialogState, now: float) -> None:
        rec.state = state
        c = rec.caller
        if c.account is not None and self.events.subscribers:
            self.events.emit(DialogChanged(rec.call_id, now, c.account, c.device, c.position, state, INITIATOR))

    def sweep(self, now: float) -> list[CallRecord]:
        """Forget calls older than the dialog limit (no BYE seen); returns them. Called once a
        second by the server; calls are held in start order, so only the oldest are looked at."""
        stale = []
        for call_id, rec in self.calls.items():
            if now - rec.started <= DIALOG_LIMIT:
                break
            stale.append(call_id)
        return [rec for rec in (self.end(c, now) for c in stale) if rec is not None]
