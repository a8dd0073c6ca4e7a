"""Snapshots, persistence across reopen, and the demo data."""

from __future__ import annotations

from onenumber.demo import format_demo, seed_demo, sip_settings_text
from onenumber.routing.model import Binding, DeviceKind
from onenumber.settings import Trunk
from onenumber.store import Store


async def populate(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1001", "Bob")
    await admin.add_account("1000", "Alice", ["+3225550100"])
    await admin.add_device("1000", "softphone", position=1, ring_order=2)
    await admin.add_device("1000", "deskphone")
    await admin.add_device("1001", "mobile", internet=True)
    await admin.update_account("1000", forward_no_answer="1001")
    await admin.set_setting("domain", "pbx.example.com")
    await admin.add_trunk("gw", "192.0.2.10")


async def test_snapshot(store: Store) -> None:
    await populate(store)
    snapshot = await store.snapshot()
    assert [a.number for a in snapshot.accounts] == ["1000", "1001"]
    assert snapshot.accounts[0].dids == ("+3225550100",)
    assert snapshot.accounts[0].forwarding.no_answer == "1001"
    assert [(d.account, d.position, d.auth_username) for d in snapshot.devices] == [
        ("1000", 0, "1000"),
        ("1000", 1, "1000_2"),
        ("1001", 0, "1001"),
    ]
    assert all(d.secret for d in snapshot.devices)
    assert snapshot.settings.domain == "pbx.example.com"
    assert snapshot.trunks == (Trunk("gw", "192.0.2.10"),)
    assert snapshot.revision == await store.revision()


async def test_data_survives_reopen(db_url: str) -> None:
    store = await Store.open(db_url)
    try:
        await populate(store)
        await store.write_bindings([Binding("1000", "1000", "sip:1000@10.0.0.1", 2e9, "udp", ("10.0.0.1", 5060))], [])
        before = await store.snapshot()
        bindings = await store.load_bindings(0)
    finally:
        await store.close()
    reopened = await Store.open(db_url)
    try:
        assert await reopened.snapshot() == before
        assert await reopened.load_bindings(0) == bindings
    finally:
        await reopened.close()


async def test_changes_from_another_handle_are_seen(db_url: str) -> None:
    """What the server relies on: the CLI writes through its own Store, the server polls revision()."""
    server = await Store.open(db_url)
    cli = await Store.open(db_url)
    try:
        seen = await server.revision()
        await cli.admin.add_account("1000", "Alice")
        assert await server.revision() > seen
        assert [a.number for a in (await server.snapshot()).accounts] == ["1000"]
    finally:
        await cli.close()
        await server.close()


async def test_seed_demo(store: Store) -> None:
    devices = await seed_demo(store)
    assert devices is not None
    assert [(d.account, d.position, d.kind, d.ring_order, d.auth_username) for d in devices] == [
        ("1000", 0, DeviceKind.DESKPHONE, 1, "1000"),
        ("1000", 1, DeviceKind.SOFTPHONE, 1, "1000_2"),
        ("1001", 0, DeviceKind.DESKPHONE, 1, "1001"),
        ("1001", 1, DeviceKind.SOFTPHONE, 1, "1001_2"),
    ]
    assert [(a.number, a.display_name) for a in await store.admin.list_accounts()] == [
        ("1000", "Alice"),
        ("1001", "Bob"),
    ]
    assert await seed_demo(store) is None  # never twice

    text = sip_settings_text(devices, domain="pbx.example.com", server="192.0.2.1", sip_port=5070)
    for device in devices:
        assert device.secret in text and device.auth_username in text
    assert "pbx.example.com" in text and "5070" in text

    class Config:
        bind = "127.0.0.1"
        sip_port = 5060
        domain = None
        tls_cert = None

    banner = format_demo(devices, Config())
    assert "Alice" in banner and "Bob" in banner and "127.0.0.1" in banner
