"""The routing policy, rule by rule (SPEC.md "Incoming calls")."""

import pytest

from onenumber.routing import plan as rp
from onenumber.routing.model import (
    Account,
    Binding,
    CallState,
    DeclineMode,
    Device,
    DeviceKind,
    FinalAction,
    FinalKind,
    Forwarding,
    RingMode,
    RingPlan,
)
from onenumber.routing.plan import plan_call, plan_exclusive, plan_ordered

NOW = 1_000_000.0


def account(**kw) -> Account:
    return Account(number="1000", display_name="Alice", **kw)


def device(position: int, ring_order: int = 1, **kw) -> Device:
    user = "1000" if position == 0 else f"1000_{position + 1}"
    kw.setdefault("kind", DeviceKind.SOFTPHONE)
    return Device(
        account="1000", position=position, auth_username=user, secret="s", ring_order=ring_order, **kw
    )


def binding(dev: Device, contact: str | None = None, expires_at: float = NOW + 300, **kw) -> Binding:
    return Binding(
        account=kw.pop("account", dev.account),
        auth_username=dev.auth_username,
        contact=contact or f"sip:{dev.auth_username}@10.0.0.{dev.position + 1}:5060",
        expires_at=expires_at,
        transport="udp",
        source=("10.0.0.1", 5060),
        **kw,
    )


def reasons(plan: RingPlan) -> dict[int, str]:
    return {d.position: d.reason for d in plan.decisions}


def ringing(plan: RingPlan) -> set[int]:
    return {d.position for d in plan.decisions if d.rings}


def contacts(plan: RingPlan, stage: int) -> list[str]:
    return [b.contact for b in plan.stages[stage].bindings]


# -- ordered ----------------------------------------------------------------------------------


def test_ring_all_is_one_stage_at_zero():
    devs = [device(0), device(1), device(2)]
    plan = plan_call(account(), devs, [binding(d) for d in devs], now=NOW)
    assert len(plan.stages) == 1
    assert plan.stages[0].start == 0
    assert plan.stages[0].positions == (0, 1, 2)
    assert plan.immediate is None
    assert all(d.rings and d.stage == 0 for d in plan.decisions)
    assert reasons(plan)[0] == "ring order 1"


def test_ordered_groups_join_after_stage_seconds():
    devs = [device(0, 2), device(1, 1), device(2, 3), device(3, 1)]
    plan = plan_call(account(stage_seconds=7), devs, [binding(d) for d in devs], now=NOW)
    assert [s.start for s in plan.stages] == [0, 7, 14]
    assert [s.positions for s in plan.stages] == [(1, 3), (0,), (2,)]
    assert {d.position: d.stage for d in plan.decisions} == {0: 1, 1: 0, 2: 2, 3: 0}


def test_ring_order_gaps_do_not_add_delay():
    # Orders 1 and 5 are consecutive stages: only distinct orders count.
    devs = [device(0, 1), device(1, 5)]
    plan = plan_call(account(), devs, [binding(d) for d in devs], now=NOW)
    assert [s.start for s in plan.stages] == [0, 10]


def test_lowest_order_rings_first_even_when_not_one():
    devs = [device(0, 3), device(1, 4)]
    plan = plan_call(account(), devs, [binding(d) for d in devs], now=NOW)
    assert [s.positions for s in plan.stages] == [(0,), (1,)]
    assert plan.stages[0].start == 0


def test_ring_order_zero_never_rings():
    devs = [device(0), device(1, 0)]
    plan = plan_call(account(), devs, [binding(d) for d in devs], now=NOW)
    assert ringing(plan) == {0}
    assert reasons(plan)[1] == "ring order 0 (never rings)"


def test_disabled_device_never_rings():
    devs = [device(0), device(1, enabled=False)]
    plan = plan_call(account(), devs, [binding(d) for d in devs], now=NOW)
    assert ringing(plan) == {0}
    assert reasons(plan)[1] == "disabled"


def test_unregistered_device_does_not_ring():
    devs = [device(0), device(1)]
    plan = plan_call(account(), devs, [binding(devs[0])], now=NOW)
    assert ringing(plan) == {0}
    assert reasons(plan)[1] == "not registered"


def test_expired_bindings_are_ignored():
    devs = [device(0), device(1)]
    bindings = [binding(devs[0], expires_at=NOW), binding(devs[1], expires_at=NOW + 1)]
    plan = plan_call(account(), devs, bindings, now=NOW)
    assert ringing(plan) == {1}
    assert reasons(plan)[0] == "not registered"


def test_bindings_of_another_account_are_ignored():
    dev = device(0)
    plan = plan_call(account(), [dev], [binding(dev, account="2000")], now=NOW)
    assert plan.stages == ()
    assert reasons(plan)[0] == "not registered"


def test_devices_of_another_account_are_ignored():
    other = Device(account="2000", position=1, kind=DeviceKind.MOBILE, auth_username="2000_2", secret="s")
    dev = device(0)
    plan = plan_call(account(), [dev, other], [binding(dev)], now=NOW)
    assert [d.position for d in plan.decisions] == [0]


def test_expired_credentials():
    devs = [device(0, credential_expires_at=NOW), device(1, credential_expires_at=NOW + 1), device(2)]
    plan = plan_call(account(), devs, [binding(d) for d in devs], now=NOW)
    assert ringing(plan) == {1, 2}
    assert reasons(plan)[0] == "credentials expired"


def test_device_with_several_bindings_rings_on_all_in_its_stage():
    devs = [device(0), device(1, 2)]
    bindings = [
        binding(devs[1], "sip:b@10.0.0.9"),
        binding(devs[0], "sip:z@10.0.0.1"),
        binding(devs[1], "sip:a@10.0.0.8"),
        binding(devs[0], "sip:y@10.0.0.2"),
    ]
    plan = plan_call(account(), devs, bindings, now=NOW)
    assert contacts(plan, 0) == ["sip:y@10.0.0.2", "sip:z@10.0.0.1"]
    assert contacts(plan, 1) == ["sip:a@10.0.0.8", "sip:b@10.0.0.9"]


def test_bindings_in_a_stage_ordered_by_position_then_contact():
    devs = [device(2), device(0), device(1)]
    bindings = [binding(devs[0], "sip:a@x"), binding(devs[1], "sip:c@x"), binding(devs[2], "sip:b@x")]
    plan = plan_call(account(), devs, bindings, now=NOW)
    assert contacts(plan, 0) == ["sip:c@x", "sip:b@x", "sip:a@x"]
    assert plan.stages[0].positions == (0, 1, 2)


def test_decisions_sorted_by_position_and_complete():
    devs = [device(5), device(2, 0), device(0, enabled=False), device(7)]
    plan = plan_call(account(), devs, [binding(devs[0])], now=NOW)
    assert [d.position for d in plan.decisions] == [0, 2, 5, 7]
    assert [d.auth_username for d in plan.decisions] == ["1000", "1000_3", "1000_6", "1000_8"]


def test_reason_precedence_disabled_first():
    dev = device(0, 0, enabled=False, credential_expires_at=0.0)
    assert reasons(plan_call(account(), [dev], [], now=NOW))[0] == "disabled"
    dev = device(0, 0, credential_expires_at=0.0)
    assert reasons(plan_call(account(), [dev], [], now=NOW))[0] == "ring order 0 (never rings)"
    dev = device(0, credential_expires_at=0.0)
    assert reasons(plan_call(account(), [dev], [], now=NOW))[0] == "credentials expired"


def test_stage_after_no_answer_timeout_is_dropped():
    devs = [device(0, 1), device(1, 2), device(2, 3), device(3, 4)]
    acc = account(stage_seconds=10, no_answer_seconds=30)
    plan = plan_call(acc, devs, [binding(d) for d in devs], now=NOW)
    assert [s.start for s in plan.stages] == [0, 10, 20]
    late = plan.decisions[3]
    assert not late.rings and late.stage is None
    assert "after the no-answer timeout" in late.reason


def test_plan_carries_timeout_and_decline():
    acc = account(no_answer_seconds=25, decline=DeclineMode.DEVICE)
    plan = plan_call(acc, [], [], now=NOW)
    assert plan.no_answer_seconds == 25
    assert plan.decline == DeclineMode.DEVICE
    assert plan.account == "1000"


def test_no_devices_at_all():
    plan = plan_call(account(), [], [], now=NOW)
    assert plan.stages == () and plan.decisions == () and plan.immediate is None


# -- nothing can ring --------------------------------------------------------------------------


def test_nothing_registered_uses_unavailable_not_immediate():
    devs = [device(0), device(1, 0), device(2, enabled=False)]
    plan = plan_call(account(), devs, [], now=NOW)
    assert plan.stages == ()
    assert plan.immediate is None
    assert plan.on_unavailable == FinalAction(FinalKind.REJECT, 480, "Temporarily Unavailable")


def test_unavailable_goes_to_no_answer_forward():
    plan = plan_call(account(forwarding=Forwarding(no_answer="voicemail")), [device(0)], [], now=NOW)
    assert plan.on_unavailable.kind == FinalKind.FORWARD
    assert plan.on_unavailable.target == "voicemail"


def test_finals_follow_forwarding():
    acc = account(forwarding=Forwarding(busy="2000", no_answer="3000"))
    plan = plan_call(acc, [device(0)], [binding(device(0))], now=NOW)
    assert (plan.on_busy.kind, plan.on_busy.target) == (FinalKind.FORWARD, "2000")
    assert (plan.on_no_answer.kind, plan.on_no_answer.target) == (FinalKind.FORWARD, "3000")
    plan = plan_call(account(), [device(0)], [binding(device(0))], now=NOW)
    assert plan.on_busy == FinalAction(FinalKind.REJECT, 486, "Busy Here")
    assert plan.on_no_answer == FinalAction(FinalKind.REJECT, 480, "Temporarily Unavailable")


# -- call waiting ------------------------------------------------------------------------------


def test_call_waiting_off_keeps_device_quiet_during_a_call():
    devs = [device(0, call_waiting=False), device(1)]
    plan = plan_call(account(), devs, [binding(d) for d in devs], CallState(active_calls=1), now=NOW)
    assert ringing(plan) == {1}
    assert reasons(plan)[0] == "account in a call and call waiting is off"


def test_call_waiting_off_rings_when_idle():
    devs = [device(0, call_waiting=False)]
    plan = plan_call(account(), devs, [binding(devs[0])], CallState(), now=NOW)
    assert ringing(plan) == {0}


def test_call_waiting_on_rings_during_a_call():
    devs = [device(0)]
    state = CallState(active_calls=1, devices_in_call=frozenset({0}))
    assert ringing(plan_call(account(), devs, [binding(devs[0])], state, now=NOW)) == {0}


def test_device_in_call_with_call_waiting_off():
    devs = [device(0, call_waiting=False), device(1)]
    state = CallState(active_calls=0, devices_in_call=frozenset({0}))
    plan = plan_call(account(), devs, [binding(d) for d in devs], state, now=NOW)
    assert ringing(plan) == {1}
    assert reasons(plan)[0] == rp.DEVICE_IN_CALL


def test_everyone_quiet_because_of_call_waiting_means_busy():
    devs = [device(0, call_waiting=False), device(1)]
    acc = account(forwarding=Forwarding(busy="2000"))
    plan = plan_call(acc, devs, [binding(devs[0])], CallState(active_calls=1), now=NOW)
    assert plan.stages == ()
    assert plan.immediate == plan.on_busy
    assert plan.immediate.target == "2000"


# -- DND and unconditional forward -------------------------------------------------------------


@pytest.mark.parametrize("mode", list(RingMode))
def test_dnd_rejects_busy(mode):
    devs = [device(0), device(1)]
    plan = plan_call(account(dnd=True, ring_mode=mode, selected_device=0), devs, [binding(d) for d in devs])
    assert plan.stages == ()
    assert plan.immediate == FinalAction(FinalKind.REJECT, 486, "Busy Here (do not disturb)")
    assert set(reasons(plan).values()) == {"account in do-not-disturb"}
    assert all(not d.rings and d.stage is None for d in plan.decisions)


def test_dnd_with_busy_forward():
    acc = account(dnd=True, forwarding=Forwarding(busy="2000"))
    plan = plan_call(acc, [device(0)], [binding(device(0))], now=NOW)
    assert plan.immediate is not None
    assert (plan.immediate.kind, plan.immediate.target) == (FinalKind.FORWARD, "2000")


@pytest.mark.parametrize("mode", list(RingMode))
def test_unconditional_forward_skips_devices(mode):
    acc = account(ring_mode=mode, selected_device=0, forwarding=Forwarding(unconditional="0611"))
    devs = [device(0), device(1)]
    plan = plan_call(acc, devs, [binding(d) for d in devs], now=NOW)
    assert plan.stages == ()
    assert plan.immediate == FinalAction(FinalKind.FORWARD, reason="unconditional forward", target="0611")
    assert set(reasons(plan).values()) == {"forwarded unconditionally"}


# -- exclusive ---------------------------------------------------------------------------------


def exclusive(selected: int | None, **kw) -> Account:
    return account(ring_mode=RingMode.EXCLUSIVE, selected_device=selected, **kw)


def test_exclusive_rings_only_the_selected_device():
    devs = [device(0), device(1, kind=DeviceKind.WEBPHONE), device(2, 2)]
    bindings = [binding(d) for d in devs] + [binding(devs[1], "sip:second@x")]
    plan = plan_call(exclusive(1), devs, bindings, now=NOW)
    assert len(plan.stages) == 1
    assert plan.stages[0].start == 0
    assert plan.stages[0].positions == (1,)
    assert {b.auth_username for b in plan.stages[0].bindings} == {"1000_2"}
    assert len(plan.stages[0].bindings) == 2
    assert reasons(plan) == {0: rp.NOT_SELECTED, 1: rp.RINGS_SELECTED, 2: rp.NOT_SELECTED}
    assert reasons(plan)[0] == "not selected (exclusive mode)"


def test_exclusive_selected_unregistered_falls_back_to_ordered_others():
    devs = [device(0), device(1, kind=DeviceKind.WEBPHONE), device(2, 2)]
    plan = plan_call(exclusive(1), devs, [binding(devs[0]), binding(devs[2])], now=NOW)
    assert [s.positions for s in plan.stages] == [(0,), (2,)]
    assert [s.start for s in plan.stages] == [0, 10]
    assert reasons(plan)[1] == "selected device not registered"
    assert plan.decisions[0].rings


def test_exclusive_selected_disabled_falls_back():
    devs = [device(0), device(1, enabled=False)]
    plan = plan_call(exclusive(1), devs, [binding(d) for d in devs], now=NOW)
    assert ringing(plan) == {0}
    assert reasons(plan)[1] == "selected device disabled"


def test_exclusive_selected_order_zero_or_expired_falls_back():
    devs = [device(0), device(1, 0), device(2, credential_expires_at=NOW - 1)]
    bindings = [binding(d) for d in devs]
    plan = plan_call(exclusive(1), devs, bindings, now=NOW)
    assert reasons(plan)[1] == rp.SELECTED_ORDER_ZERO
    assert ringing(plan) == {0}
    plan = plan_call(exclusive(2), devs, bindings, now=NOW)
    assert reasons(plan)[2] == rp.SELECTED_CREDENTIALS_EXPIRED
    assert ringing(plan) == {0}


def test_exclusive_fallback_still_applies_device_rules():
    devs = [device(0, 0), device(1), device(2, enabled=False)]
    plan = plan_call(exclusive(1), devs, [binding(d) for d in devs[::2]], now=NOW)
    assert plan.stages == ()
    assert reasons(plan) == {0: rp.ORDER_ZERO, 1: rp.SELECTED_NOT_REGISTERED, 2: rp.DISABLED}


@pytest.mark.parametrize("selected", [None, 6])
def test_exclusive_without_a_selected_device_is_ordered(selected):
    devs = [device(0), device(1, 2)]
    plan = plan_call(exclusive(selected), devs, [binding(d) for d in devs], now=NOW)
    assert [s.positions for s in plan.stages] == [(0,), (1,)]


def test_exclusive_selected_in_call_without_call_waiting_is_busy():
    devs = [device(0), device(1, call_waiting=False)]
    state = CallState(active_calls=1, devices_in_call=frozenset({1}))
    plan = plan_call(exclusive(1), devs, [binding(d) for d in devs], state, now=NOW)
    assert plan.stages == ()
    assert plan.immediate == plan.on_busy
    assert reasons(plan) == {0: rp.NOT_SELECTED, 1: rp.DEVICE_IN_CALL}


def test_exclusive_no_answer_does_not_ring_other_devices():
    # XiVO: with the web phone selected, no answer goes to the rule, never to the deskphone.
    acc = exclusive(1, forwarding=Forwarding(no_answer="voicemail"))
    devs = [device(0), device(1, kind=DeviceKind.WEBPHONE)]
    plan = plan_call(acc, devs, [binding(d) for d in devs], now=NOW)
    assert len(plan.stages) == 1
    assert plan.on_no_answer.target == "voicemail"


# -- dispatch ----------------------------------------------------------------------------------


def test_plan_call_dispatches_on_ring_mode():
    devs = [device(0), device(1, 2)]
    bindings = [binding(d) for d in devs]
    acc = exclusive(1)
    assert plan_call(acc, devs, bindings, now=NOW) == plan_exclusive(acc, devs, bindings, now=NOW)
    acc = account(selected_device=1)
    assert plan_call(acc, devs, bindings, now=NOW) == plan_ordered(acc, devs, bindings, now=NOW)
    assert len(plan_call(acc, devs, bindings, now=NOW).stages) == 2


def test_plan_is_deterministic_regardless_of_input_order():
    devs = [device(0), device(1, 2), device(2), device(3, 3)]
    bindings = [binding(d) for d in devs] + [binding(devs[2], "sip:aa@x")]
    one = plan_call(account(), devs, bindings, now=NOW)
    two = plan_call(account(), devs[::-1], bindings[::-1], now=NOW)
    assert one == two


def test_unknown_ring_mode_is_a_clear_error():
    acc = Account(number="1000", display_name="Alice", ring_mode="hunt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown ring mode 'hunt'"):
        plan_call(acc, [], [])
