"""Properties of every ring plan, over generated accounts, devices, bindings and call states."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.routing.model import (
    MAX_DEVICES,
    Account,
    Binding,
    CallState,
    Device,
    DeviceKind,
    Forwarding,
    RingMode,
    RingPlan,
)
from onenumber.routing.plan import plan_call

NOW = 5_000.0
NUMBER = "1000"


def _user(position: int) -> str:
    return NUMBER if position == 0 else f"{NUMBER}_{position + 1}"


@st.composite
def devices(draw) -> list[Device]:
    positions = draw(st.lists(st.integers(0, MAX_DEVICES - 1), unique=True, max_size=MAX_DEVICES))
    return [
        Device(
            account=NUMBER,
            position=p,
            kind=draw(st.sampled_from(list(DeviceKind))),
            auth_username=_user(p),
            secret="s",
            ring_order=draw(st.integers(0, 4)),
            enabled=draw(st.booleans()),
            credential_expires_at=draw(st.one_of(st.none(), st.sampled_from([NOW - 1, NOW, NOW + 1]))),
            call_waiting=draw(st.booleans()),
        )
        for p in positions
    ]


@st.composite
def bindings(draw, devs: list[Device]) -> list[Binding]:
    # Usernames of this account's devices, plus one that no device has, plus another account's.
    users = [d.auth_username for d in devs] + [f"{NUMBER}_9"]
    out = []
    for _ in range(draw(st.integers(0, 12))):
        out.append(
            Binding(
                account=draw(st.sampled_from([NUMBER, NUMBER, NUMBER, "2000"])),
                auth_username=draw(st.sampled_from(users)),
                contact=f"sip:u{draw(st.integers(0, 5))}@10.0.0.{draw(st.integers(1, 3))}",
                expires_at=draw(st.sampled_from([NOW - 10, NOW, NOW + 1, NOW + 3600])),
                transport="udp",
                source=("10.0.0.1", 5060),
            )
        )
    return out


forwardings = st.builds(
    Forwarding,
    unconditional=st.sampled_from([None, None, None, "2000"]),
    busy=st.sampled_from([None, "3000"]),
    no_answer=st.sampled_from([None, "voicemail"]),
)


def accounts(mode: RingMode | None = None, quiet: bool = False):
    return st.builds(
        Account,
        number=st.just(NUMBER),
        display_name=st.just("Alice"),
        ring_mode=st.just(mode) if mode else st.sampled_from(list(RingMode)),
        stage_seconds=st.integers(1, 30),
        no_answer_seconds=st.integers(1, 90),
        forwarding=st.just(Forwarding()) if quiet else forwardings,
        dnd=st.just(False) if quiet else st.sampled_from([False, False, False, True]),
        selected_device=st.one_of(st.none(), st.integers(0, MAX_DEVICES - 1)),
    )


states = st.builds(
    CallState,
    active_calls=st.integers(0, 2),
    devices_in_call=st.frozensets(st.integers(0, MAX_DEVICES - 1), max_size=3),
)


@st.composite
def scenarios(draw, mode: RingMode | None = None, quiet: bool = False):
    devs = draw(devices())
    return draw(accounts(mode, quiet)), devs, draw(bindings(devs)), draw(states)


def plan_of(scenario) -> RingPlan:
    account, devs, binds, state = scenario
    return plan_call(account, devs, binds, state, now=NOW)


def staged_positions(plan: RingPlan) -> set[int]:
    return {p for s in plan.stages for p in s.positions}


@given(scenarios())
def test_order_zero_and_disabled_devices_never_ring(scenario):
    plan = plan_of(scenario)
    silent = {d.position for d in scenario[1] if d.ring_order == 0 or not d.enabled}
    silent_users = {d.auth_username for d in scenario[1] if d.position in silent}
    assert not silent & staged_positions(plan)
    assert not silent_users & {b.auth_username for s in plan.stages for b in s.bindings}


@given(scenarios())
def test_stages_strictly_increasing_start(scenario):
    starts = [s.start for s in plan_of(scenario).stages]
    assert starts == sorted(set(starts))
    assert not starts or starts[0] == 0


@given(scenarios())
def test_every_binding_belongs_to_an_enabled_registered_device(scenario):
    account, devs, binds, _ = scenario
    plan = plan_of(scenario)
    by_user = {d.auth_username: d for d in devs}
    for stage in plan.stages:
        assert stage.bindings, "a stage always rings something"
        for b in stage.bindings:
            assert b in binds
            assert b.account == account.number and b.expires_at > NOW
            dev = by_user[b.auth_username]
            assert dev.enabled and dev.ring_order > 0
            assert dev.position in stage.positions


@given(scenarios())
def test_a_ringing_device_rings_on_all_its_live_bindings_in_its_stage(scenario):
    _, devs, binds, _ = scenario
    plan = plan_of(scenario)
    by_pos = {d.position: d for d in devs}
    for decision in plan.decisions:
        if not decision.rings:
            assert decision.stage is None
            continue
        user = by_pos[decision.position].auth_username
        live = sorted(b.contact for b in binds if b.auth_username == user and b.account == NUMBER
                      and b.expires_at > NOW)
        stage = plan.stages[decision.stage]
        assert decision.position in stage.positions
        assert sorted(b.contact for b in stage.bindings if b.auth_username == user) == live


@st.composite
def exclusive_with_ringable_selection(draw):
    """An exclusive account whose selected device is enabled, registered and free to ring."""
    account, devs, binds, state = draw(scenarios(mode=RingMode.EXCLUSIVE, quiet=True))
    position = draw(st.sampled_from([d.position for d in devs] or [0]))
    selected = Device(NUMBER, position, DeviceKind.WEBPHONE, _user(position), "s",
                      ring_order=draw(st.integers(1, 4)), call_waiting=True)
    devs = [d for d in devs if d.position != position] + [selected]
    live = Binding(NUMBER, selected.auth_username, "sip:web@10.0.0.7", NOW + 60, "wss", ("10.0.0.7", 443))
    account = replace(account, selected_device=position)
    return account, devs, [*binds, live], state


@given(exclusive_with_ringable_selection())
def test_exclusive_with_a_ringable_selected_device_rings_only_it(scenario):
    account, devs, binds, _ = scenario
    selected = next(d for d in devs if d.position == account.selected_device)
    live = [b for b in binds if b.account == NUMBER and b.auth_username == selected.auth_username
            and b.expires_at > NOW]
    plan = plan_of(scenario)
    assert len(plan.stages) == 1
    assert plan.stages[0].start == 0
    assert plan.stages[0].positions == (selected.position,)
    # two bindings may share a contact (different expiry): compare them whole, in a total order
    assert sorted(plan.stages[0].bindings, key=repr) == sorted(live, key=repr)
    assert all(d.rings == (d.position == selected.position) for d in plan.decisions)


@given(scenarios())
def test_every_device_appears_once_in_decisions(scenario):
    plan = plan_of(scenario)
    positions = [d.position for d in plan.decisions]
    assert positions == sorted({d.position for d in scenario[1]})
    assert all(d.reason for d in plan.decisions)


@given(scenarios(mode=RingMode.ORDERED))
def test_ordered_one_stage_per_distinct_ring_order(scenario):
    plan = plan_of(scenario)
    by_pos = {d.position: d for d in scenario[1]}
    orders = {by_pos[d.position].ring_order for d in plan.decisions if d.rings}
    assert len(plan.stages) == len(orders)
    for stage in plan.stages:
        assert len({by_pos[p].ring_order for p in stage.positions}) == 1


@given(scenarios())
def test_immediate_means_no_stages_and_stages_before_timeout(scenario):
    account = scenario[0]
    plan = plan_of(scenario)
    if plan.immediate is not None:
        assert plan.stages == ()
    for index, stage in enumerate(plan.stages):
        assert stage.start == index * account.stage_seconds
        assert index == 0 or stage.start < account.no_answer_seconds


@settings(max_examples=50)
@given(scenarios())
def test_plan_ignores_input_order(scenario):
    account, devs, binds, state = scenario
    assert plan_of(scenario) == plan_call(account, devs[::-1], binds[::-1], state, now=NOW)
