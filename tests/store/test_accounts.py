"""Accounts and DIDs through the admin layer: CRUD, validation, collisions, revision bumps."""

from __future__ import annotations

import pytest

from onenumber.routing.model import DeclineMode, Forwarding, RingMode
from onenumber.store import AdminError, ConflictError, NotFoundError, Store


async def test_add_get_list_remove(store: Store) -> None:
    admin = store.admin
    account = await admin.add_account("1000", "Alice", ["+3225550100", "025550101"])
    assert account.number == "1000"
    assert account.display_name == "Alice"
    assert account.dids == ("+3225550100", "025550101")
    assert account.ring_mode == RingMode.ORDERED
    assert account.forwarding == Forwarding()
    await admin.add_account("1001", "Bob")
    assert [a.number for a in await admin.list_accounts()] == ["1000", "1001"]
    assert await admin.get_account("1000") == account
    removed = await admin.remove_account("1000")
    assert removed.number == "1000"
    assert [a.number for a in await admin.list_accounts()] == ["1001"]
    with pytest.raises(NotFoundError, match="no account 1000"):
        await admin.get_account("1000")


async def test_duplicate_number_and_collisions_with_dids(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice", ["5550100"])
    with pytest.raises(ConflictError, match="account 1000 already exists; choose another number"):
        await admin.add_account("1000", "Again")
    with pytest.raises(ConflictError, match="is a DID of account 1000"):
        await admin.add_account("5550100", "Clash")
    with pytest.raises(ConflictError, match="already belongs to account 1000"):
        await admin.add_account("1001", "Bob", ["5550100"])
    with pytest.raises(ConflictError, match="already an account number"):
        await admin.add_account("1002", "Carol", ["1000"])
    # a refused account is not half-written
    assert [a.number for a in await admin.list_accounts()] == ["1000"]


@pytest.mark.parametrize(
    ("number", "name", "dids", "message"),
    [
        ("10a0", "X", (), "account number '10a0' is not valid"),
        ("", "X", (), "account number '' is not valid"),
        ("1000", "   ", (), "display name is empty"),
        ("1000", 'Bad "name"', (), "without quotes"),
        ("1000", "Line\nbreak", (), "control characters"),
        ("1000", "X", ("abc",), "DID 'abc' is not valid"),
        ("1000", "X", ("123", "123"), "same DID is given twice"),
    ],
)
async def test_add_account_validation(store: Store, number: str, name: str, dids: tuple, message: str) -> None:
    with pytest.raises(AdminError, match=message):
        await store.admin.add_account(number, name, dids)
    assert await store.admin.list_accounts() == []


async def test_update_account(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice", ["111"])
    await admin.add_account("1001", "Bob")
    await admin.add_device("1000", "deskphone")
    await admin.add_device("1000", "webphone")
    account = await admin.update_account(
        "1000",
        name="Alice Smith",
        add_dids=["222"],
        remove_dids=["111"],
        ring_mode="exclusive",
        stage_seconds=5,
        no_answer_seconds=20,
        forward_unconditional=None,
        forward_busy="2000",
        forward_no_answer="1001",
        decline="device",
        dnd=True,
        selected_device=1,
        custom_cli="+3225550199",
    )
    assert account.display_name == "Alice Smith"
    assert account.dids == ("222",)
    assert account.ring_mode == RingMode.EXCLUSIVE
    assert (account.stage_seconds, account.no_answer_seconds) == (5, 20)
    assert account.forwarding == Forwarding(None, "2000", "1001")
    assert account.decline == DeclineMode.DEVICE
    assert account.dnd is True
    assert account.selected_device == 1
    assert account.custom_cli == "+3225550199"
    # untouched fields stay; None / "" clear the clearable ones
    account = await admin.update_account("1000", forward_busy="", custom_cli=None, selected_device="none")
    assert account.forwarding == Forwarding(None, None, "1001")
    assert account.custom_cli is None
    assert account.selected_device is None
    assert account.ring_mode == RingMode.EXCLUSIVE


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"ring_mode": "random"}, "ring mode 'random' is not known; use one of ordered, exclusive"),
        ({"decline": "never"}, "decline mode 'never' is not known"),
        ({"stage_seconds": 0}, "stage seconds must be between 1 and"),
        ({"no_answer_seconds": 100000}, "no-answer seconds must be between"),
        ({"forward_busy": "abc"}, "busy forward 'abc' is not valid"),
        ({"forward_no_answer": "1000"}, "cannot forward to its own number 1000"),
        ({"forward_unconditional": "111"}, "cannot forward to its own number 111"),
        ({"selected_device": 5}, "has no device at position 5"),
        ({"selected_device": "x"}, "must be a device position"),
        ({"custom_cli": "hello"}, "caller ID 'hello' is not valid"),
        ({"voicemail_pin": "12a4"}, "voicemail PIN must be 4-12 digits"),
        ({"voicemail_pin": "123"}, "voicemail PIN must be 4-12 digits"),
        ({"voicemail_pin": "1234567890123"}, "voicemail PIN must be 4-12 digits"),
        ({"remove_dids": ["999"]}, "999 is not a DID of account 1000"),
        ({"add_dids": ["1001"]}, "already an account number"),
        ({"add_dids": ["111"]}, "already belongs to this account"),
    ],
)
async def test_update_account_validation(store: Store, changes: dict, message: str) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice", ["111"])
    await admin.add_account("1001", "Bob")
    before = await admin.get_account("1000")
    revision = await store.revision()
    with pytest.raises(AdminError, match=message):
        await admin.update_account("1000", **changes)
    assert await admin.get_account("1000") == before
    assert await store.revision() == revision  # a refused change bumps nothing


async def test_update_unknown_account(store: Store) -> None:
    with pytest.raises(NotFoundError, match="no account 4242; see 'onenumber account list'"):
        await store.admin.update_account("4242", name="X")


async def test_remove_account_removes_dids_devices_bindings(store: Store) -> None:
    from onenumber.routing.model import Binding

    admin = store.admin
    await admin.add_account("1000", "Alice", ["555"])
    await admin.add_device("1000", "deskphone")
    await store.write_bindings([Binding("1000", "1000", "sip:1000@10.0.0.5", 2e9, "udp", ("10.0.0.5", 5060))], [])
    await admin.remove_account("1000")
    snapshot = await store.snapshot()
    assert snapshot.accounts == () and snapshot.devices == ()
    assert await store.load_bindings(0) == []
    # the number and the DID are free again
    await admin.add_account("555", "Reuse")
    await admin.add_account("1000", "Alice again", ["556"])


async def test_portal_password(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    assert await admin.check_portal_password("1000", "whatever") is False
    with pytest.raises(AdminError, match="too short"):
        await admin.set_portal_password("1000", "short")
    await admin.set_portal_password("1000", "correct horse")
    assert await admin.check_portal_password("1000", "correct horse") is True
    assert await admin.check_portal_password("1000", "wrong horse") is False
    await admin.set_portal_password("1000", None)
    assert await admin.check_portal_password("1000", "correct horse") is False


async def test_every_configuration_write_bumps_revision(store: Store) -> None:
    admin = store.admin
    seen = [await store.revision()]

    async def bumped() -> None:
        seen.append(await store.revision())
        assert seen[-1] == seen[-2] + 1, seen

    await admin.add_account("1000", "Alice")
    await bumped()
    await admin.update_account("1000", dnd=True)
    await bumped()
    await admin.add_device("1000", "deskphone")
    await bumped()
    await admin.update_device("1000", 0, ring_order=2)
    await bumped()
    await admin.rotate_secret("1000", 0)
    await bumped()
    await admin.remove_device("1000", 0)
    await bumped()
    await admin.set_setting("domain", "pbx.example.com")
    await bumped()
    await admin.add_trunk("gw", "192.0.2.1")
    await bumped()
    await admin.remove_trunk("gw")
    await bumped()
    await admin.remove_account("1000")
    await bumped()


async def test_forward_to_voicemail_is_the_accounts_box(store: Store) -> None:
    await store.admin.add_account("1000", "Alice")
    account = await store.admin.update_account("1000", forward_no_answer="VoiceMail")
    assert account.forwarding.no_answer == "voicemail"


async def test_voicemail_pin_per_account(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice")
    assert (await admin.get_account("1000")).voicemail_pin is None  # the server-wide one
    account = await admin.update_account("1000", voicemail_pin=" 135790 ")
    assert account.voicemail_pin == "135790" and (await admin.get_account("1000")).voicemail_pin == "135790"
    assert (await admin.update_account("1000", dnd=True)).voicemail_pin == "135790"  # other changes keep it
    assert (await admin.update_account("1000", voicemail_pin="")).voicemail_pin is None
    await admin.update_account("1000", voicemail_pin="2468")
    assert (await admin.update_account("1000", voicemail_pin=None)).voicemail_pin is None
