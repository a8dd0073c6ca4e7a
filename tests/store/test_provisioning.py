"""Provisioning links in the store: hashed tokens, one use (also under a race), expiry."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from onenumber.store import AdminError, NotFoundError, Store
from onenumber.store.provisioning import LinkGoneError, create_link, hash_token, link_state, use_link


async def seed(store: Store) -> None:
    await store.admin.add_account("1000", "Alice")
    await store.admin.add_device("1000", "deskphone")


async def test_only_the_hash_of_a_token_is_stored(store: Store) -> None:
    await seed(store)
    revision = await store.revision()
    link = await create_link(store, "1000", 0)
    async with store.read() as conn:
        stored = (await conn.execute(text("SELECT token_hash FROM provisioning_links"))).scalars().all()
    assert stored == [hash_token(link.token)] and len(link.token) >= 43  # 256 bits
    assert await store.revision() == revision  # a link is not configuration: nothing reloads


async def test_one_use_then_gone_and_expiry(store: Store) -> None:
    await seed(store)
    link = await create_link(store, "1000", 0, now=1000.0, hours=1)
    assert await link_state(store, link.token, 1000.0) == "ok"
    assert await link_state(store, link.token, 1000.0 + 3600) == "expired"
    with pytest.raises(LinkGoneError, match="expired"):
        await use_link(store, link.token, 1000.0 + 3600)
    fresh = await create_link(store, "1000", 0, now=2000.0, hours=1)
    found = await use_link(store, fresh.token, 2001.0)
    assert found.device.auth_username == "1000" and found.account.display_name == "Alice"
    with pytest.raises(LinkGoneError, match="already used") as gone:
        await use_link(store, fresh.token, 2002.0)
    assert gone.value.status == 410
    with pytest.raises(NotFoundError):
        await use_link(store, "x" * 43, 2002.0)
    with pytest.raises(AdminError, match="link hours"):
        await create_link(store, "1000", 0, hours=0)
    with pytest.raises(NotFoundError):
        await create_link(store, "1000", 3)


async def test_two_uses_at_once_hand_out_the_settings_once(store: Store) -> None:
    await seed(store)
    link = await create_link(store, "1000", 0)
    results = await asyncio.gather(*(use_link(store, link.token) for _ in range(3)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, LinkGoneError) for r in results if isinstance(r, BaseException))


async def test_removing_the_device_removes_its_links(store: Store) -> None:
    await seed(store)
    link = await create_link(store, "1000", 0)
    await store.admin.remove_device("1000", 0)
    assert await link_state(store, link.token) == "unknown"
