"""What to do when the branches of a call ended without an answer: kamailio's `failure_route`.

Pure policy over the ring plan and the final statuses of the branches: the proxy
(services/proxy.py) executes what these functions decide. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from .model import DeclineMode, FinalAction, FinalKind, RingPlan

BUSY_STATUSES = frozenset({486, 600})
NO_ANSWER_STATUSES = frozenset({408, 480, 487})
DIVERSION_REASON = {"unconditional": "unconditional", "busy": "user-busy", "no-answer": "no-answer"}
HISTORY_CAUSE = {"busy": "486", "no-answer": "408", "unconditional": "302"}


class Cause(StrEnum):
    """Why a final action applies: the names forwarding rules and Diversion use."""

    UNCONDITIONAL = "unconditional"
    BUSY = "busy"
    NO_ANSWER = "no-answer"


def declines_everywhere(plan: RingPlan | None, status: int) -> bool:
    """A 6xx from one device stops the whole call when the account says `decline: everywhere`."""
    return plan is not None and 600 <= status < 700 and plan.decline is DeclineMode.EVERYWHERE


@dataclass(frozen=True, slots=True)
class AfterBranches:
    """The decision once every branch of the current target failed.

    `action` set: apply it (forward or reject) for `cause`; otherwise relay the best response
    the branches gave (`relay_best`), or reject with 480 when there is none."""

    action: FinalAction | None
    cause: Cause | None
    relay_best: bool


def after_branches(plan: RingPlan | None, statuses: Sequence[int], best: int | None) -> AfterBranches:
    """Every branch failed: busy everywhere, no answer, or pass the best response on (§16.7)."""
    if plan is None:  # a trunk or plain target: its answer is the answer
        return AfterBranches(None, None, relay_best=True)
    busy = {*BUSY_STATUSES, 603} if plan.decline is DeclineMode.DEVICE else set(BUSY_STATUSES)
    if statuses and all(s in busy for s in statuses):
        return AfterBranches(plan.on_busy, Cause.BUSY, relay_best=False)
    if best is None or best in NO_ANSWER_STATUSES:
        return AfterBranches(plan.on_no_answer, Cause.NO_ANSWER, relay_best=False)
    return AfterBranches(None, None, relay_best=True)


def immediate_cause(action: FinalAction) -> Cause:
    """A plan that must not ring: forwarding it is unconditional, rejecting it is busy (DND)."""
    return Cause.UNCONDITIONAL if action.kind is FinalKind.FORWARD and action.target else Cause.BUSY


def diversion_header(diverted: str, domain: str, cause: Cause, counter: int) -> str:
    """RFC 5806 Diversion for a forwarded call."""
    return f"<sip:{diverted}@{domain}>;reason={DIVERSION_REASON[cause]};counter={counter}"


def history_info(target: str, domain: str, cause: Cause, counter: int) -> str:
    """RFC 7044 History-Info entry for the new target, with the cause of the retarget."""
    code = HISTORY_CAUSE.get(cause, "480")
    return f"<sip:{target}@{domain}?Reason=SIP%3Bcause%3D{code}>;index=1.{counter};rc=1"
