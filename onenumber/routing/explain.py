""""Who would ring now?": a RingPlan as JSON-ready rows and as text for the CLI.

`explain` feeds the API, `format_plan` prints `onenumber ring-plan 1000`. Both only
read the plan: every decision was made (with its reason) by routing.plan.

Pure: depends on routing.model only; no I/O.
"""

from __future__ import annotations

from typing import Any

from onenumber.routing.model import FinalAction, FinalKind, RingPlan


def explain(plan: RingPlan) -> list[dict[str, Any]]:
    """One row per device, by position: does it ring, in which stage, from when, and why."""
    rows = []
    for d in plan.decisions:
        start = plan.stages[d.stage].start if d.rings and d.stage is not None else None
        rows.append(
            {
                "position": d.position,
                "auth_username": d.auth_username,
                "rings": d.rings,
                "stage": d.stage,
                "start": start,
                "reason": d.reason,
            }
        )
    return rows


def describe_action(action: FinalAction) -> str:
    """'forward to 2000 (busy forward)' or 'reject 486 Busy Here'."""
    if action.kind == FinalKind.FORWARD:
        why = f" ({action.reason})" if action.reason else ""
        return f"forward to {action.target}{why}"
    return f"reject {action.status} {action.reason}".rstrip()


def format_plan(plan: RingPlan) -> str:
    """The plan as a few lines of text: stages, each device with its reason, the outcomes."""
    lines = [f"Ring plan for {plan.account}"]
    if plan.immediate is not None:
        lines.append(f"  rings nothing: {describe_action(plan.immediate)}")
    elif not plan.stages:
        lines.append(f"  rings nothing: {describe_action(plan.on_unavailable)}")
    for index, stage in enumerate(plan.stages):
        who = ", ".join(_device_name(plan, pos) for pos in stage.positions)
        contacts = len(stage.bindings)
        plural = "s" if contacts != 1 else ""
        lines.append(f"  stage {index} at {stage.start:g} s, {contacts} contact{plural}: {who}")
    if plan.decisions:
        lines.append("Devices:")
        rows = explain(plan)
        width = max(len(r["auth_username"]) for r in rows)
        for r in rows:
            state = f"rings at {r['start']:g} s" if r["rings"] else "out"
            lines.append(f"  {r['position']}  {r['auth_username']:<{width}}  {state:<14}  {r['reason']}")
    else:
        lines.append("Devices: none")
    if plan.stages:
        lines.append(f"If every device is busy: {describe_action(plan.on_busy)}")
        lines.append(f"No answer after {plan.no_answer_seconds:g} s: {describe_action(plan.on_no_answer)}")
    return "\n".join(lines)


def _device_name(plan: RingPlan, position: int) -> str:
    name = next((d.auth_username for d in plan.decisions if d.position == position), "?")
    return f"{name} (position {position})"
