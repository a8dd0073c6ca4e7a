"""The presence policy: examples of XiVO's exclusive rules and the ordered "any device" rules,
then properties over generated accounts, devices, bindings and dialogs."""

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.routing.model import MAX_DEVICES, Account, Binding, Device, DeviceKind, RingMode
from onenumber.routing.presence import (
    DeviceDialog,
    DialogState,
    Direction,
    Presence,
    account_presence,
    account_view,
    any_device,
    device_state,
    visible_dialogs,
)

NOW = 1_000.0
NUMBER = "1000"
DESK, WEB, MOBILE = 0, 1, 2

T, P, E, C, X = (
    DialogState.TRYING,
    DialogState.PROCEEDING,
    DialogState.EARLY,
    DialogState.CONFIRMED,
    DialogState.TERMINATED,
)
OUT, IN = Direction.INITIATOR, Direction.RECIPIENT


def _user(position: int) -> str:
    return NUMBER if position == 0 else f"{NUMBER}_{position + 1}"


def dev(position: int, kind: DeviceKind = DeviceKind.DESKPHONE, **kw) -> Device:
    return Device(NUMBER, position, kind, _user(position), "s", **kw)


def reg(position: int, expires_at: float = NOW + 60, account: str = NUMBER) -> Binding:
    return Binding(account, _user(position), f"sip:u{position}@10.0.0.1", expires_at, "udp", ("10.0.0.1", 5060))


def dlg(position: int, state: DialogState, direction: Direction = IN) -> DeviceDialog:
    return DeviceDialog(position, state, direction, f"c{position}{state}{direction}")


DEVICES = [dev(DESK), dev(WEB, DeviceKind.WEBPHONE), dev(MOBILE, DeviceKind.MOBILE)]
ORDERED = Account(NUMBER, "Alice")
EXCLUSIVE = Account(NUMBER, "Alice", ring_mode=RingMode.EXCLUSIVE, selected_device=WEB)


def state(account: Account, bindings=(), dialogs=(), devices=DEVICES) -> Presence:
    return account_presence(account, devices, list(bindings), list(dialogs), NOW)


# -- one device ---------------------------------------------------------------------------


def test_device_states():
    d = dev(DESK)
    assert device_state(d, [], [], NOW) is Presence.OFFLINE
    assert device_state(d, [reg(DESK)], [], NOW) is Presence.AVAILABLE
    assert device_state(d, [reg(DESK, expires_at=NOW)], [], NOW) is Presence.OFFLINE  # expired
    assert device_state(d, [reg(DESK, account="2000")], [], NOW) is Presence.OFFLINE  # another account's
    for s in (T, P, E):
        assert device_state(d, [reg(DESK)], [dlg(DESK, s, IN)], NOW) is Presence.RINGING
        assert device_state(d, [reg(DESK)], [dlg(DESK, s, OUT)], NOW) is Presence.IN_USE  # placing a call
    assert device_state(d, [reg(DESK)], [dlg(DESK, C, IN)], NOW) is Presence.IN_USE
    assert device_state(d, [reg(DESK)], [dlg(DESK, X, IN), dlg(DESK, X, OUT)], NOW) is Presence.AVAILABLE
    assert device_state(d, [reg(DESK)], [dlg(WEB, C)], NOW) is Presence.AVAILABLE  # not its dialog
    assert device_state(replace(d, enabled=False), [reg(DESK)], [], NOW) is Presence.OFFLINE
    assert device_state(replace(d, credential_expires_at=NOW), [reg(DESK)], [], NOW) is Presence.OFFLINE


def test_any_device_rule():
    assert any_device([]) is Presence.OFFLINE
    assert any_device([Presence.OFFLINE, Presence.AVAILABLE]) is Presence.AVAILABLE
    assert any_device([Presence.AVAILABLE, Presence.RINGING]) is Presence.RINGING
    assert any_device([Presence.RINGING, Presence.IN_USE, Presence.OFFLINE]) is Presence.IN_USE


# -- ordered mode -------------------------------------------------------------------------


def test_ordered_any_device():
    assert state(ORDERED) is Presence.OFFLINE
    assert state(ORDERED, [reg(MOBILE)]) is Presence.AVAILABLE
    assert state(ORDERED, [reg(DESK), reg(MOBILE)], [dlg(MOBILE, E)]) is Presence.RINGING
    assert state(ORDERED, [reg(DESK), reg(MOBILE)], [dlg(MOBILE, E), dlg(DESK, C)]) is Presence.IN_USE
    assert state(ORDERED, [reg(DESK)], [dlg(MOBILE, X)]) is Presence.AVAILABLE


def test_dnd_unless_in_a_call():
    dnd = replace(ORDERED, dnd=True)
    assert state(dnd) is Presence.DND
    assert state(dnd, [reg(DESK)]) is Presence.DND
    assert state(dnd, [reg(DESK)], [dlg(DESK, E, OUT)]) is Presence.IN_USE
    assert state(replace(EXCLUSIVE, dnd=True), [reg(DESK), reg(WEB)], [dlg(DESK, C)]) is Presence.IN_USE


# -- exclusive mode (XiVO) ----------------------------------------------------------------


def test_exclusive_without_web_phone_is_the_deskphones_state():
    assert state(EXCLUSIVE, [reg(DESK)]) is Presence.AVAILABLE
    assert state(EXCLUSIVE, []) is Presence.OFFLINE
    assert state(EXCLUSIVE, [reg(DESK)], [dlg(DESK, E)]) is Presence.RINGING
    assert state(EXCLUSIVE, [reg(DESK)], [dlg(DESK, C, OUT)]) is Presence.IN_USE
    # a stale web phone dialog (not registered any more) does not count
    assert state(EXCLUSIVE, [reg(DESK)], [dlg(WEB, C)]) is Presence.AVAILABLE


def test_exclusive_selected_web_phone_wins():
    both = [reg(DESK), reg(WEB)]
    assert state(EXCLUSIVE, both) is Presence.AVAILABLE
    assert state(EXCLUSIVE, both, [dlg(WEB, E)]) is Presence.RINGING
    assert state(EXCLUSIVE, both, [dlg(WEB, C)]) is Presence.IN_USE
    # only the web phone registered and selected: its state, even with the deskphone offline
    assert state(EXCLUSIVE, [reg(WEB)]) is Presence.AVAILABLE


def test_exclusive_call_placed_from_deskphone_still_in_use():
    both = [reg(DESK), reg(WEB)]
    for s in (T, P, E, C):
        assert state(EXCLUSIVE, both, [dlg(DESK, s, OUT)]) is Presence.IN_USE
    # a ring on a non-selected device does not show (it cannot happen through the plan anyway)
    assert state(EXCLUSIVE, both, [dlg(DESK, E, IN)]) is Presence.AVAILABLE


def test_exclusive_selected_deskphone_web_phone_registered():
    desk_selected = replace(EXCLUSIVE, selected_device=DESK)
    both = [reg(DESK), reg(WEB)]
    assert state(desk_selected, both, [dlg(DESK, E)]) is Presence.RINGING
    assert state(desk_selected, both, [dlg(WEB, E)]) is Presence.AVAILABLE
    assert state(desk_selected, both, [dlg(WEB, P, OUT)]) is Presence.IN_USE


def test_exclusive_selected_unavailable_falls_back_to_any_device():
    desk_selected = replace(EXCLUSIVE, selected_device=DESK)
    assert state(desk_selected, [reg(WEB), reg(MOBILE)], [dlg(MOBILE, E)]) is Presence.RINGING
    no_selection = replace(EXCLUSIVE, selected_device=None)
    assert state(no_selection, [reg(WEB), reg(DESK)], [dlg(DESK, E)]) is Presence.RINGING
    missing = replace(EXCLUSIVE, selected_device=7)
    assert state(missing, [reg(WEB)]) is Presence.AVAILABLE
    order_zero = [dev(DESK), dev(WEB, DeviceKind.WEBPHONE, ring_order=0)]
    assert state(EXCLUSIVE, [reg(DESK), reg(WEB)], [dlg(DESK, E)], devices=order_zero) is Presence.RINGING


# -- properties ---------------------------------------------------------------------------


@st.composite
def scenes(draw):
    positions = draw(st.lists(st.integers(0, MAX_DEVICES - 1), unique=True, max_size=5))
    devices = [
        dev(
            p,
            draw(st.sampled_from(list(DeviceKind))),
            ring_order=draw(st.integers(0, 3)),
            enabled=draw(st.booleans()),
            credential_expires_at=draw(st.sampled_from([None, None, NOW, NOW + 1])),
        )
        for p in positions
    ]
    bindings = [
        reg(draw(st.sampled_from([*positions, 9])), draw(st.sampled_from([NOW - 1, NOW, NOW + 60])),
            draw(st.sampled_from([NUMBER, NUMBER, "2000"])))
        for _ in range(draw(st.integers(0, 8)))
    ]
    dialogs = [
        DeviceDialog(draw(st.sampled_from([*positions, 9])), draw(st.sampled_from(list(DialogState))),
                     draw(st.sampled_from(list(Direction))), f"c{i}")
        for i in range(draw(st.integers(0, 6)))
    ]
    account = Account(
        NUMBER,
        "Alice",
        ring_mode=draw(st.sampled_from(list(RingMode))),
        dnd=draw(st.booleans()),
        selected_device=draw(st.one_of(st.none(), st.integers(0, MAX_DEVICES - 1))),
    )
    return account, devices, bindings, dialogs


def presence(scene) -> Presence:
    account, devices, bindings, dialogs = scene
    return account_presence(account, devices, bindings, dialogs, NOW)


@settings(max_examples=400, deadline=None)
@given(scenes())
def test_property_terminated_dialogs_never_matter(scene):
    account, devices, bindings, dialogs = scene
    live = [d for d in dialogs if d.state is not DialogState.TERMINATED]
    assert presence(scene) is presence((account, devices, bindings, live))


@settings(max_examples=400, deadline=None)
@given(scenes(), st.randoms(use_true_random=False))
def test_property_order_of_inputs_does_not_matter(scene, rnd):
    account, devices, bindings, dialogs = scene
    shuffled = [list(devices), list(bindings), list(dialogs)]
    for lst in shuffled:
        rnd.shuffle(lst)
    assert presence(scene) is presence((account, *shuffled))


@settings(max_examples=400, deadline=None)
@given(scenes())
def test_property_in_use_needs_a_call_and_dnd_needs_dnd(scene):
    account, devices, _, dialogs = scene
    result = presence(scene)
    positions = {d.position for d in devices}
    if result is Presence.IN_USE:
        assert any(d.in_call and d.position in positions for d in dialogs)
    if result is Presence.RINGING:
        assert any(d.ringing and d.position in positions for d in dialogs)
    assert (result is Presence.DND) == (account.dnd and result is not Presence.IN_USE)


@settings(max_examples=400, deadline=None)
@given(scenes())
def test_property_ordered_is_any_device(scene):
    account, devices, bindings, dialogs = scene
    account = replace(account, ring_mode=RingMode.ORDERED, dnd=False)
    states = [device_state(d, bindings, dialogs, NOW) for d in devices]
    assert presence((account, devices, bindings, dialogs)) is any_device(states)


@settings(max_examples=400, deadline=None)
@given(scenes())
def test_property_exclusive_in_use_when_any_counted_device_places_a_call(scene):
    account, devices, bindings, dialogs = scene
    account = replace(account, ring_mode=RingMode.EXCLUSIVE)
    non_web = [d for d in devices if d.kind != DeviceKind.WEBPHONE]
    if non_web:
        placing = DeviceDialog(non_web[0].position, DialogState.EARLY, Direction.INITIATOR, "placed")
        assert presence((account, devices, bindings, [*dialogs, placing])) is Presence.IN_USE


@settings(max_examples=400, deadline=None)
@given(scenes())
def test_property_exclusive_without_web_phone_equals_ordered_without_it(scene):
    account, devices, bindings, dialogs = scene
    devices = [d for d in devices if d.kind != DeviceKind.WEBPHONE]
    exclusive = presence((replace(account, ring_mode=RingMode.EXCLUSIVE), devices, bindings, dialogs))
    ordered = presence((replace(account, ring_mode=RingMode.ORDERED), devices, bindings, dialogs))
    assert exclusive is ordered


@settings(max_examples=200, deadline=None)
@given(scenes())
def test_property_other_accounts_are_ignored(scene):
    account, devices, bindings, dialogs = scene
    other = [Device("2000", 0, DeviceKind.DESKPHONE, "2000", "s")]
    other_b = [Binding("2000", "2000", "sip:x@10.0.0.9", NOW + 60, "udp", ("10.0.0.9", 5060))]
    assert presence(scene) is presence((account, devices + other, bindings + other_b, dialogs))


def test_visible_dialogs_follow_the_exclusive_rules():
    both = [reg(DESK), reg(WEB)]
    ring_desk, ring_web, call_desk = dlg(DESK, E), dlg(WEB, E), dlg(DESK, C, OUT)
    assert visible_dialogs(EXCLUSIVE, DEVICES, both, [ring_desk, ring_web, call_desk], NOW) == [ring_web, call_desk]
    assert visible_dialogs(EXCLUSIVE, DEVICES, [reg(DESK)], [ring_desk, ring_web], NOW) == [ring_desk]
    assert visible_dialogs(ORDERED, DEVICES, [], [ring_desk, dlg(MOBILE, X), dlg(7, E)], NOW) == [ring_desk]


@settings(max_examples=400, deadline=None)
@given(scenes())
def test_property_visible_dialogs_give_the_same_state(scene):
    account, devices, bindings, dialogs = scene
    visible = visible_dialogs(account, devices, bindings, dialogs, NOW)
    assert set(visible) <= set(dialogs)
    assert all(d.active for d in visible)
    assert presence((account, devices, bindings, visible)) is presence(scene)


@settings(max_examples=600, deadline=None)
@given(scenes(), st.booleans())
def test_property_account_view_is_presence_and_visible_dialogs(scene, stranger):
    account, devices, bindings, dialogs = scene
    if stranger:  # another account's device at a position of this one: ignored by both
        devices = [*devices, Device("2000", 0, DeviceKind.WEBPHONE, "2000", "s")]
    presence, visible = account_view(account, devices, bindings, dialogs, NOW)
    expected = visible_dialogs(account, devices, bindings, dialogs, NOW)
    assert presence is account_presence(account, devices, bindings, dialogs, NOW)
    assert len(visible) == len(expected) and all(a is b for a, b in zip(visible, expected, strict=True))
