"""Credential rotation in the store: on demand with the overlap window, and on a schedule."""

from __future__ import annotations

import pytest

from onenumber.store import AdminError, Store
from onenumber.store.admin import new_secret


def test_generated_secrets_have_128_bits_or_more() -> None:
    secrets = {new_secret() for _ in range(200)}
    assert len(secrets) == 200 and min(len(s) for s in secrets) >= 22  # 16 bytes of base64url
    assert not any(s.lower().startswith("0x") for s in secrets)


async def test_rotate_keeps_the_previous_secret_for_the_overlap(store: Store) -> None:
    await store.admin.add_account("1000", "Alice")
    first = await store.admin.add_device("1000", "deskphone", now=100.0)
    assert first.secret_rotated_at == 100.0
    await store.admin.set_setting("credential_overlap_hours", "2")
    second = await store.admin.rotate_secret("1000", 0, now=1000.0)
    assert second.secret != first.secret and second.previous_secret == first.secret
    assert second.previous_secret_until == 1000.0 + 7200 and second.secret_rotated_at == 1000.0
    third = await store.admin.rotate_secret("1000", 0, now=2000.0, overlap_hours=0)  # a lost phone: at once
    assert third.previous_secret is None and third.previous_secret_until is None
    with pytest.raises(AdminError, match="overlap hours"):
        await store.admin.rotate_secret("1000", 0, overlap_hours=-1)


async def test_scheduled_rotation_by_age(store: Store) -> None:
    await store.admin.add_account("1000", "Alice")
    old = await store.admin.add_device("1000", "deskphone", now=0.0)
    young = await store.admin.add_device("1000", "mobile", now=9 * 86400.0)
    revision = await store.revision()
    assert await store.admin.rotate_due(now=10 * 86400.0) == []  # credential_max_age_days 0: never
    assert await store.revision() == revision  # and nothing written
    await store.admin.set_setting("credential_max_age_days", "5")
    await store.admin.set_setting("credential_overlap_hours", "1")
    (rotated,) = await store.admin.rotate_due(now=10 * 86400.0)
    assert rotated.auth_username == old.auth_username
    stored = await store.admin.get_device("1000", 0)
    assert stored.secret == rotated.secret != old.secret and stored.previous_secret == old.secret
    assert (await store.admin.get_device("1000", 1)).secret == young.secret
    revision = await store.revision()
    assert await store.admin.rotate_due(now=10 * 86400.0 + 3601) == []  # nothing due: nothing written
    assert await store.revision() == revision
