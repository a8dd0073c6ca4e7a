"""Bindings: batch upsert by (account, key), deletes, expiry, listing; no revision bump."""

from __future__ import annotations

import time
from dataclasses import replace

from onenumber.routing.model import Binding
from onenumber.store import Store

NOW = 1_700_000_000.0


def binding(n: int = 1, account: str = "1000", **changes: object) -> Binding:
    base = Binding(
        account=account,
        auth_username=account if n == 1 else f"{account}_{n}",
        contact=f"sip:{account}@10.0.0.{n}:5060;transport=tcp",
        expires_at=NOW + 3600,
        transport="tcp",
        source=(f"10.0.0.{n}", 40000 + n),
        local=("10.0.0.254", 5060),
        flow=f"tcp-{n}",
        user_agent="Yealink SIP-T54W",
        call_id=f"call-{n}@phone",
        cseq=7,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


async def test_round_trip_of_every_field(store: Store) -> None:
    full = binding(
        2,
        instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>",
        reg_id=1,
        path=("<sip:edge1.example.com;lr>", "<sip:edge2.example.com;lr>"),
        q=0.5,
        outbound=True,
        params='+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1;ob',
        source=("2001:db8::1", 5062),
    )
    plain = binding(1)
    await store.write_bindings([full, plain], [])
    loaded = await store.load_bindings(NOW)
    assert sorted(loaded, key=lambda b: b.auth_username) == [plain, full]


async def test_upsert_replaces_same_key(store: Store) -> None:
    instance = "<urn:uuid:1>"
    first = binding(1, instance=instance, reg_id=1, contact="sip:1000@10.0.0.1:5060")
    # same instance + reg-id from a new address: replaces, does not pile up
    moved = replace(first, contact="sip:1000@10.0.0.9:6000", source=("10.0.0.9", 6000), cseq=8)
    await store.write_bindings([first], [])
    await store.write_bindings([moved], [])
    assert await store.load_bindings(NOW) == [moved]
    # without instance the key is the contact: another contact adds a binding
    other = binding(1, contact="sip:1000@10.0.0.7:5060")
    await store.write_bindings([other], [])
    assert len(await store.load_bindings(NOW)) == 2
    # the last of two writes of one key in a batch wins
    later = replace(other, cseq=99)
    await store.write_bindings([other, later], [])
    assert {b.cseq for b in await store.load_bindings(NOW)} == {8, 99}


async def test_deletes_then_upserts_in_one_batch(store: Store) -> None:
    a, b, c = binding(1), binding(2), binding(3)
    await store.write_bindings([a, b], [])
    await store.write_bindings([c], [(a.account, a.key), (b.account, b.key), ("9999", "nothing")])
    assert await store.load_bindings(NOW) == [c]
    # a key both deleted and upserted in one batch ends up stored
    await store.write_bindings([a], [(a.account, a.key)])
    assert {x.key for x in await store.load_bindings(NOW)} == {a.key, c.key}
    await store.write_bindings([], [])  # nothing to do is fine


async def test_expiry_and_listing(store: Store) -> None:
    live = binding(1)
    dying = binding(2, expires_at=NOW + 10)
    dead = binding(3, expires_at=NOW - 1)
    bob = binding(1, account="1001")
    await store.write_bindings([live, dying, dead, bob], [])
    assert {b.key for b in await store.load_bindings(NOW)} == {live.key, dying.key, bob.key}
    assert [b.auth_username for b in await store.list_bindings("1000", NOW)] == ["1000", "1000_2"]
    assert await store.list_bindings("1000", NOW + 100) == [live]
    assert await store.delete_expired_bindings(NOW) == 1
    assert await store.delete_expired_bindings(NOW + 100) == 1
    assert await store.delete_expired_bindings(NOW + 100) == 0
    assert len(await store.load_bindings(0)) == 2


async def test_binding_writes_do_not_bump_revision(store: Store) -> None:
    revision = await store.revision()
    await store.write_bindings([binding(1)], [])
    await store.write_bindings([], [("1000", binding(1).key)])
    await store.delete_expired_bindings(NOW)
    assert await store.revision() == revision


async def test_thousands_of_bindings_per_batch(store: Store) -> None:
    batch = [
        binding(1, account=str(2000 + i // 2), contact=f"sip:{i}@10.1.{i // 250}.{i % 250}:5060", flow=None)
        for i in range(3000)
    ]
    started = time.perf_counter()
    await store.write_bindings(batch, [])
    await store.write_bindings([replace(b, cseq=8) for b in batch], [])
    elapsed = time.perf_counter() - started
    loaded = await store.load_bindings(NOW)
    assert len(loaded) == 3000 and {b.cseq for b in loaded} == {8}
    await store.write_bindings([], [(b.account, b.key) for b in batch])
    assert await store.load_bindings(NOW) == []
    assert elapsed < 5, f"two batches of 3000 took {elapsed:.2f} s"
