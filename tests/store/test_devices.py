"""Devices: default auth usernames, positions, the 8-device limit, secrets, updates, removal."""

from __future__ import annotations

import pytest

from onenumber.routing.model import MAX_DEVICES, Binding, DeviceKind
from onenumber.store import AdminError, ConflictError, NotFoundError, Store
from onenumber.store.admin import default_auth_username


def test_default_auth_usernames() -> None:
    assert default_auth_username("1000", 0) == "1000"
    assert default_auth_username("1000", 1) == "1000_2"
    assert default_auth_username("1000", 7) == "1000_8"


async def test_add_devices_lowest_free_position_and_usernames(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    desk = await admin.add_device("1000", "deskphone", label="Yealink T54W")
    soft = await admin.add_device("1000", "softphone", ring_order=2)
    assert (desk.position, desk.auth_username, desk.kind) == (0, "1000", DeviceKind.DESKPHONE)
    assert (soft.position, soft.auth_username, soft.ring_order) == (1, "1000_2", 2)
    assert desk.label == "Yealink T54W"
    mobile = await admin.add_device("1000", "mobile", position=5, internet=True, call_waiting=False)
    assert (mobile.position, mobile.auth_username, mobile.internet, mobile.call_waiting) == (5, "1000_6", True, False)
    await admin.remove_device("1000", 0)
    again = await admin.add_device("1000", "webphone")
    assert (again.position, again.auth_username) == (0, "1000")
    assert [d.position for d in await admin.list_devices("1000")] == [0, 1, 5]


async def test_secrets_are_generated_unique_and_rotate(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    a = await admin.add_device("1000", "deskphone")
    b = await admin.add_device("1000", "softphone")
    assert len(a.secret) >= 16 and a.secret != b.secret
    assert (await admin.get_device("1000", 0)).secret == a.secret  # stored as given, for digest
    rotated = await admin.rotate_secret("1000", 0)
    assert rotated.secret != a.secret
    assert (await admin.get_device("1000", 0)).secret == rotated.secret


async def test_ninth_device_is_refused(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    for _ in range(MAX_DEVICES):
        await admin.add_device("1000", "softphone")
    revision = await store.revision()
    with pytest.raises(ConflictError, match="already has 8 devices, the most allowed; remove one first"):
        await admin.add_device("1000", "softphone")
    assert len(await admin.list_devices("1000")) == MAX_DEVICES
    assert await store.revision() == revision
    assert {d.auth_username for d in await admin.list_devices("1000")} == {"1000"} | {f"1000_{i}" for i in range(2, 9)}


async def test_position_taken_and_out_of_range(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    await admin.add_device("1000", "deskphone", position=3)
    with pytest.raises(ConflictError, match=r"position 3 of account 1000 is taken; choose a free one \(0, 1, 2, 4"):
        await admin.add_device("1000", "softphone", position=3)
    with pytest.raises(AdminError, match="position 8 is out of range; use 0 to 7"):
        await admin.add_device("1000", "softphone", position=8)
    with pytest.raises(AdminError, match="position -1 is out of range"):
        await admin.add_device("1000", "softphone", position=-1)


async def test_auth_username_override_and_uniqueness(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    await admin.add_account("1001", "Bob")
    custom = await admin.add_device("1000", "deskphone", auth_username="alice-desk")
    assert custom.auth_username == "alice-desk"
    with pytest.raises(ConflictError, match="auth username alice-desk is already used by account 1000 position 0"):
        await admin.add_device("1001", "deskphone", auth_username="alice-desk")
    # the default name of 1001's main device is taken by 1000's custom one
    await admin.add_device("1000", "softphone", auth_username="1001")
    with pytest.raises(ConflictError, match="auth username 1001 is already used by account 1000 position 1; give"):
        await admin.add_device("1001", "deskphone")
    with pytest.raises(AdminError, match="auth username 'a b' is not valid"):
        await admin.add_device("1001", "deskphone", auth_username="a b")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "fax"}, "device kind 'fax' is not known; use one of deskphone, softphone, mobile, webphone"),
        ({"kind": "deskphone", "ring_order": -1}, "ring order must be between 0 and 99"),
        ({"kind": "deskphone", "label": "a\x00b"}, "label must be at most 200 characters"),
        ({"kind": "deskphone", "expires_days": -3}, "expiry days must be positive"),
    ],
)
async def test_add_device_validation(store: Store, kwargs: dict, message: str) -> None:
    await store.admin.add_account("1000", "Alice")
    with pytest.raises(AdminError, match=message):
        await store.admin.add_device("1000", **kwargs)
    assert await store.admin.list_devices("1000") == []


async def test_device_of_unknown_account(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no account 1000"):
        await store.admin.add_device("1000", "deskphone")
    with pytest.raises(NotFoundError, match="no account 1000"):
        await store.admin.list_devices("1000")


async def test_update_device(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    await admin.add_device("1000", "deskphone")
    await admin.add_device("1000", "softphone")
    await admin.update_account("1000", selected_device=1)
    device = await admin.update_device(
        "1000",
        1,
        kind="webphone",
        ring_order=0,
        enabled=False,
        label="browser",
        internet=True,
        call_waiting=False,
        expires_days=30,
        now=1000.0,
    )
    assert device.kind == DeviceKind.WEBPHONE
    assert (device.ring_order, device.enabled, device.label, device.internet, device.call_waiting) == (
        0,
        False,
        "browser",
        True,
        False,
    )
    assert device.credential_expires_at == 1000.0 + 30 * 86400
    assert (await admin.update_device("1000", 1, expires_days=0)).credential_expires_at is None
    moved = await admin.update_device("1000", 1, new_position=4)
    assert (moved.position, moved.auth_username) == (4, "1000_2")  # the auth username stays
    assert (await admin.get_account("1000")).selected_device == 4  # the selection follows the move
    with pytest.raises(ConflictError, match="position 0 of account 1000 is taken"):
        await admin.update_device("1000", 4, new_position=0)
    renamed = await admin.update_device("1000", 4, auth_username="alice-web")
    assert renamed.auth_username == "alice-web"
    assert (await admin.find_device("alice-web")) == renamed
    assert await admin.find_device("1000_2") is None
    with pytest.raises(NotFoundError, match="account 1000 has no device at position 6"):
        await admin.update_device("1000", 6, enabled=True)


async def test_remove_device_clears_selection_and_bindings(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    await admin.add_device("1000", "deskphone")
    await admin.add_device("1000", "webphone")
    await admin.update_account("1000", selected_device=1, ring_mode="exclusive")
    keep = Binding("1000", "1000", "sip:a@10.0.0.1", 2e9, "udp", ("10.0.0.1", 5060))
    gone = Binding("1000", "1000_2", "sip:b@10.0.0.2", 2e9, "ws", ("10.0.0.2", 40000), flow="ws-1")
    await store.write_bindings([keep, gone], [])
    removed = await admin.remove_device("1000", 1)
    assert removed.auth_username == "1000_2"
    assert (await admin.get_account("1000")).selected_device is None
    assert [b.auth_username for b in await store.load_bindings(0)] == ["1000"]
    with pytest.raises(NotFoundError):
        await admin.remove_device("1000", 1)
