"""Directed call pickup, the policy: who may pick up, and which ringing call they get.

A device picks up a call ringing at another account by dialling the pickup prefix and the
number (`*81000`), or from a BLF key with an INVITE carrying `Replaces` (RFC 3891) built
from the dialog-info the key received (RFC 4235: call-id, tags; our dialog-info gives
`sip:*8<number>@domain` as the remote target of a ringing dialog, so both forms arrive at
the same Request-URI). The proxy collects the calls ringing now (`RingingCall`) and asks
`decide_pickup`; it executes the answer (services/proxy.py: the picking device becomes a
new branch of the ringing call, and answering it cancels every other branch with
"Call completed elsewhere").

Rules:
- only an account allowed to watch the target (the presence watch rule, decided by the
  caller of `decide_pickup` and passed as `allowed`) may pick up its calls;
- with `Replaces`, exactly the call it names, tags included (RFC 3891 §3): its Call-ID;
  `from-tag` the caller's tag; `to-tag` the callee side's, that is a tag one of the rung
  devices gave its early dialog (180 with a To-tag) or empty (what our dialog-info shows
  as the local tag of a call still ringing, so a BLF key copying it sends `to-tag=`);
  anything else names no dialog here: 481. A call already answered is not picked up
  (486 with `early-only`, else 481);
- without, the call ringing at the account the longest (the oldest first, as a
  receptionist expects);
- nothing ringing: 480 with a reason that says so.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PICKUP_PREFIX = "*8"  # dialled before the number whose ringing call to take


@dataclass(frozen=True, slots=True)
class Replaces:
    """An RFC 3891 Replaces header: the dialog the new INVITE takes over."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False


def parse_replaces(value: str | None) -> Replaces | None:
    """`call-id;to-tag=a;from-tag=b[;early-only]` → Replaces; None when absent or malformed."""
    if not value:
        return None
    call_id, _, rest = value.strip().partition(";")
    call_id = call_id.strip()
    if not call_id:
        return None
    params: dict[str, str] = {}
    for item in rest.split(";"):
        name, _, val = item.strip().partition("=")
        if name:
            params[name.strip().lower()] = val.strip().strip('"')
    if "to-tag" not in params or "from-tag" not in params:
        return None  # both are mandatory (RFC 3891 §6.1)
    return Replaces(call_id, params["to-tag"], params["from-tag"], "early-only" in params)


def pickup_target(number: str, prefix: str = PICKUP_PREFIX) -> str | None:
    """The number a pickup code names (`*81000` → `1000`; spaces are ignored, so a
    phone's `*8 1000` works too); None when `number` is not a pickup code."""
    if not prefix or not number.startswith(prefix):
        return None
    rest = "".join(number[len(prefix):].split())
    return rest or None


@dataclass(frozen=True, slots=True)
class RingingCall:
    """A call being offered to an account's devices, not answered yet (or just answered)."""

    call_id: str
    account: str  # the rung account's number
    started: float
    caller_tag: str
    answered: bool = False
    tags: frozenset[str] = frozenset()  # the callee side's tags: the rung devices' early dialogs


@dataclass(frozen=True, slots=True)
class PickupDecision:
    call_id: str | None  # the call to take; None: answer the picking INVITE with `status`
    status: int = 200
    reason: str = "OK"

    @property
    def ok(self) -> bool:
        return self.call_id is not None


def decide_pickup(
    picker: str,
    target: str | None,
    calls: Iterable[RingingCall],
    *,
    allowed: bool,
    replaces: Replaces | None = None,
) -> PickupDecision:
    """Which call `picker`'s device takes. `target` is the account the code names (None: the
    number is no account; with Replaces alone, the account of the call it names)."""
    calls = list(calls)
    if replaces is not None:
        call = next((c for c in calls if c.call_id == replaces.call_id), None)
        if call is None or not _same_dialog(replaces, call) or (target is not None and call.account != target):
            return PickupDecision(None, 481, "Call/Transaction Does Not Exist (no such ringing call to pick up)")
        if not allowed:
            return PickupDecision(None, 403, f"Forbidden (not allowed to pick up calls of {call.account})")
        if call.answered:
            if replaces.early_only:
                return PickupDecision(None, 486, "Busy Here (the call was already answered)")
            return PickupDecision(None, 481, "Call/Transaction Does Not Exist (the call was already answered)")
        return PickupDecision(call.call_id)
    if target is None:
        return PickupDecision(None, 404, "Not Found (no such number to pick up)")
    if not allowed:
        return PickupDecision(None, 403, f"Forbidden (not allowed to pick up calls of {target})")
    ringing = [c for c in calls if c.account == target and not c.answered]
    if not ringing:
        return PickupDecision(None, 480, f"Temporarily Unavailable (nothing is ringing at {target})")
    oldest = min(ringing, key=lambda c: (c.started, c.call_id))
    return PickupDecision(oldest.call_id)


def _same_dialog(replaces: Replaces, call: RingingCall) -> bool:
    """Whether the tags of `replaces` name the (early) dialog of `call` (see the module doc)."""
    return replaces.from_tag == call.caller_tag and (not replaces.to_tag or replaces.to_tag in call.tags)


__all__ = [
    "PICKUP_PREFIX",
    "PickupDecision",
    "Replaces",
    "RingingCall",
    "decide_pickup",
    "parse_replaces",
    "pickup_target",
]
