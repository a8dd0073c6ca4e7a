"""Logins in the database: passwords, admins, sessions and API tokens (both backends)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from onenumber.store import AdminError, ConflictError, NotFoundError, Store
from onenumber.store import logins as db
from onenumber.store import tables as t


def test_password_hashes_are_salted_and_checked() -> None:
    from onenumber.store.admin import hash_password

    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert db.check_password("correct horse", a) and not db.check_password("wrong horse", a)
    assert not db.check_password("correct horse", None)  # unknown user: the dummy hash, never True
    assert not db.check_password("x" * (db.MAX_PASSWORD + 1), a)


async def test_admins(store: Store) -> None:
    assert await db.create_admin(store, " root ", "long-enough") == "root"
    assert await db.list_admins(store) == ["root"]
    with pytest.raises(ConflictError, match="already exists"):
        await db.create_admin(store, "root", "long-enough")
    with pytest.raises(AdminError, match="username"):
        await db.create_admin(store, "1000", "long-enough")  # digits are account numbers
    with pytest.raises(AdminError, match="too short"):
        await db.create_admin(store, "other", "short")
    stored = await db.password_hash(store, "admin", "root")
    assert db.check_password("long-enough", stored)
    await db.set_admin_password(store, "root", "another-one")
    assert db.check_password("another-one", await db.password_hash(store, "admin", "root"))
    with pytest.raises(NotFoundError):
        await db.set_admin_password(store, "ghost", "another-one")


async def test_account_passwords(store: Store) -> None:
    await store.admin.add_account("1000", "Alice")
    revision = await store.revision()
    await db.set_account_password(store, "1000", "alice-password")
    assert await store.revision() == revision  # no configuration reload for a password
    assert db.check_password("alice-password", await db.password_hash(store, "user", "1000"))
    await db.set_account_password(store, "1000", None)
    assert await db.password_hash(store, "user", "1000") is None
    with pytest.raises(NotFoundError):
        await db.set_account_password(store, "9999", "long-enough")


async def test_sessions_are_stored_by_hash(store: Store) -> None:
    token, session = await db.create_session(store, "user", "1000", now=100.0, ttl=60.0)
    assert session.id == db.sha256(token) and session.expires_at == 160.0
    async with store.read() as conn:
        ids = list((await conn.scalars(select(t.web_sessions.c.id))).all())
    assert ids == [session.id] and token not in ids
    assert await db.get_session(store, session.id) == session
    await db.touch_session(store, session.id, now=130.0, expires_at=190.0)
    assert (await db.get_session(store, session.id)).expires_at == 190.0  # type: ignore[union-attr]
    _, other = await db.create_session(store, "admin", "root", now=100.0, ttl=10.0)
    assert [s.id for s in await db.delete_expired_sessions(store, 150.0)] == [other.id]
    assert await db.delete_expired_sessions(store, 150.0) == []
    assert [s.id for s in await db.live_sessions(store, 150.0)] == [session.id]
    deleted = await db.delete_session(store, session.id)
    assert deleted is not None and deleted.id == session.id
    assert await db.get_session(store, session.id) is None
    assert await db.delete_session(store, session.id) is None


async def test_sessions_of_one_subject(store: Store) -> None:
    for _ in range(2):
        await db.create_session(store, "user", "1000", now=0.0, ttl=60.0)
    await db.create_session(store, "user", "1001", now=0.0, ttl=60.0)
    assert len(await db.delete_sessions_of(store, "user", "1000")) == 2
    assert [s.subject for s in await db.live_sessions(store, 1.0)] == ["1001"]


async def test_api_tokens(store: Store) -> None:
    await store.admin.add_account("1000", "Alice")
    token, record = await db.create_api_token(store, "billing", "admin", now=5.0)
    assert token.startswith("on_") and record.role == "admin" and record.account is None
    user_token, user = await db.create_api_token(store, "alice's script", "user", "1000", now=6.0)
    assert (await db.find_api_token(store, token)) == record
    assert (await db.find_api_token(store, user_token)) == user
    assert await db.find_api_token(store, "on_unknown") is None
    assert await db.find_api_token(store, "not even the prefix") is None
    async with store.read() as conn:
        hashes = list((await conn.scalars(select(t.api_tokens.c.token_hash))).all())
    assert token not in hashes and db.sha256(token) in hashes
    assert [x.id for x in await db.list_api_tokens(store)] == [record.id, user.id]
    assert [x.id for x in await db.list_api_tokens(store, account="1000")] == [user.id]
    revoked = await db.revoke_api_token(store, record.id, now=9.0)
    assert revoked.revoked_at == 9.0 and await db.find_api_token(store, token) is None
    with pytest.raises(NotFoundError):
        await db.revoke_api_token(store, user.id, now=9.0, account="1001")  # not that account's
    with pytest.raises(NotFoundError):
        await db.create_api_token(store, "x", "user", "9999", now=1.0)
    with pytest.raises(AdminError, match="account"):
        await db.create_api_token(store, "x", "user", None, now=1.0)
    with pytest.raises(AdminError, match="role"):
        await db.create_api_token(store, "x", "root", None, now=1.0)  # type: ignore[arg-type]
    with pytest.raises(AdminError, match="name"):
        await db.create_api_token(store, " ", "admin", now=1.0)


async def test_migration_keeps_accounts_and_devices(db_url: str) -> None:
    """0002 -> 0003 renames a column of `accounts` in place: its rows (and their devices) stay."""
    from alembic import command
    from alembic.config import Config

    from onenumber.store.migrate import MIGRATIONS_DIR

    store = await Store.open(db_url)
    try:
        await store.admin.add_account("1000", "Alice")
        await store.admin.add_device("1000", "deskphone")
        await db.set_account_password(store, "1000", "alice-password")

        def run(sync_conn, target: str) -> None:  # type: ignore[no-untyped-def]
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
            cfg.attributes["connection"] = sync_conn
            (command.downgrade if target == "0002" else command.upgrade)(cfg, target)

        for target in ("0002", "head"):
            async with store.engine.connect() as conn:
                await conn.run_sync(run, target)
                await conn.commit()
        assert [d.auth_username for d in await store.admin.list_devices("1000")] == ["1000"]
        assert await db.password_hash(store, "user", "1000") is not None
    finally:
        await store.close()
