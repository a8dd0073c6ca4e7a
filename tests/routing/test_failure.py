"""What happens when every branch of a call failed (routing/failure.py): unit and property tests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onenumber.routing.failure import (
    BUSY_STATUSES,
    Cause,
    after_branches,
    declines_everywhere,
    diversion_header,
    history_info,
    immediate_cause,
)
from onenumber.routing.model import Account, DeclineMode, FinalAction, FinalKind, Forwarding
from onenumber.routing.plan import plan_call


def plan(decline: DeclineMode = DeclineMode.EVERYWHERE, **fwd: str):
    return plan_call(Account("1000", "Alice", decline=decline, forwarding=Forwarding(**fwd)), [], [], now=0.0)


def test_all_busy_applies_the_busy_rule() -> None:
    d = after_branches(plan(busy="1001"), [486, 486], 486)
    assert (d.cause, d.action.kind, d.action.target) == (Cause.BUSY, FinalKind.FORWARD, "1001")  # type: ignore[union-attr]


def test_no_answer_timeout_and_cancel_apply_the_no_answer_rule() -> None:
    for statuses, best in (([408], 408), ([480, 487], 480), ([], None)):
        d = after_branches(plan(no_answer="1002"), statuses, best)
        assert d.cause is Cause.NO_ANSWER and d.action is not None and d.action.target == "1002"


def test_decline_counts_as_busy_only_in_device_mode() -> None:
    assert after_branches(plan(DeclineMode.DEVICE), [603, 486], 603).cause is Cause.BUSY
    d = after_branches(plan(DeclineMode.EVERYWHERE), [603, 486], 603)
    assert d.action is None and d.relay_best


def test_a_trunk_leg_passes_its_answer_on() -> None:
    d = after_branches(None, [503], 503)
    assert d.action is None and d.relay_best


def test_declines_everywhere_only_for_6xx_in_everywhere_mode() -> None:
    assert declines_everywhere(plan(DeclineMode.EVERYWHERE), 603)
    assert not declines_everywhere(plan(DeclineMode.DEVICE), 603)
    assert not declines_everywhere(plan(DeclineMode.EVERYWHERE), 486)
    assert not declines_everywhere(None, 603)


def test_immediate_cause() -> None:
    assert immediate_cause(FinalAction(FinalKind.FORWARD, target="1001")) is Cause.UNCONDITIONAL
    assert immediate_cause(FinalAction(FinalKind.REJECT, 486, "Busy Here")) is Cause.BUSY


def test_diversion_and_history_info() -> None:
    assert diversion_header("1000", "pbx", Cause.BUSY, 1) == "<sip:1000@pbx>;reason=user-busy;counter=1"
    assert history_info("1001", "pbx", Cause.NO_ANSWER, 2) == (
        "<sip:1001@pbx?Reason=SIP%3Bcause%3D408>;index=1.2;rc=1")


statuses = st.lists(st.sampled_from([404, 408, 480, 486, 487, 500, 503, 600, 603]), min_size=1, max_size=8)


@given(statuses, st.sampled_from(list(DeclineMode)))
def test_every_outcome_is_exactly_one_decision(codes: list[int], decline: DeclineMode) -> None:
    p = plan(decline, busy="1001", no_answer="1002")
    best = min(codes, key=lambda s: (0 if 600 <= s < 700 else 3 if s == 486 else 4 if s < 500 else 5, s))
    d = after_branches(p, codes, best)
    assert (d.action is None) == d.relay_best  # either a rule applies or the best answer goes back
    if all(c in BUSY_STATUSES for c in codes):
        assert d.cause is Cause.BUSY  # busy everywhere is always the busy rule
    if d.cause is Cause.BUSY:
        allowed = set(BUSY_STATUSES) | ({603} if decline is DeclineMode.DEVICE else set())
        assert all(c in allowed for c in codes)
