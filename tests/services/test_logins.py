"""LoginService: results, no enumeration, throttling, sliding expiry, hooks (real SQLite store)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from onenumber.services.logins import Invalid, LoggedIn, LoginService, Throttled
from onenumber.sip.auth import LoginThrottle
from onenumber.store import Store
from onenumber.store import logins as db
from onenumber.store.logins import WebSession


class Clock:
    now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite:///{tmp_path / 'logins.sqlite3'}")
    await opened.admin.add_account("1000", "Alice")
    await db.set_account_password(opened, "1000", "alice-password")
    await db.create_admin(opened, "root", "admin-password")
    try:
        yield opened
    finally:
        await opened.close()


def service(store: Store, clock: Clock, **kw: Any) -> LoginService:
    return LoginService(store, clock=clock, throttle=LoginThrottle(max_failures=3, max_usernames=3,
                                                                    block_seconds=30), **kw)


async def test_login_results(store: Store) -> None:
    s = service(store, Clock())
    user = await s.login("1000", "alice-password", "127.0.0.1")
    assert isinstance(user, LoggedIn) and user.session.kind == "user" and user.session.subject == "1000"
    admin = await s.login(" root ", "admin-password", "127.0.0.1")
    assert isinstance(admin, LoggedIn) and admin.session.kind == "admin"
    assert isinstance(await s.login("1000", "nope", "127.0.0.1"), Invalid)
    assert (await s.resolve(user.token)) is not None and await s.resolve("garbage") is None


async def test_unknown_users_cost_a_scrypt_too(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []
    real = db.check_password

    def spy(password: str, stored: str | None) -> bool:
        seen.append(stored)
        return real(password, stored)

    monkeypatch.setattr(db, "check_password", spy)
    s = service(store, Clock())
    for i, name in enumerate(("9999", "ghost-admin", "1000")):
        assert isinstance(await s.login(name, "wrong-password", f"127.0.0.{i + 2}"), Invalid)
    assert seen[0] is None and seen[1] is None and seen[2] is not None  # every attempt checked a hash


async def test_throttle_per_pair_and_per_address(store: Store) -> None:
    clock = Clock()
    s = service(store, clock)
    results = [await s.login("1000", "wrong", "10.0.0.1") for _ in range(3)]
    assert isinstance(results[-1], Throttled) and results[-1].retry_after >= 1
    assert isinstance(await s.login("1000", "alice-password", "10.0.0.1"), Throttled)
    assert isinstance(await s.login("1000", "alice-password", "10.0.0.2"), LoggedIn)  # another address
    # a spray over usernames from one address blocks the address
    for name in ("2001", "2002", "2003"):
        last = await s.login(name, "wrong", "10.0.0.3")
    assert isinstance(last, Throttled)
    assert isinstance(await s.login("root", "admin-password", "10.0.0.3"), Throttled)
    clock.now += 3600
    assert isinstance(await s.login("root", "admin-password", "10.0.0.3"), LoggedIn)


async def test_sliding_expiry_writes_rarely_and_hooks_run_once(store: Store) -> None:
    clock = Clock()
    s = service(store, clock, idle_seconds=100, max_age_seconds=1000, touch_seconds=30)
    ended: list[WebSession] = []

    async def hook(session: WebSession) -> None:
        ended.append(session)

    s.on_session_end.append(hook)
    result = await s.login("1000", "alice-password", "127.0.0.1")
    assert isinstance(result, LoggedIn)
    clock.now += 10
    first = await s.resolve(result.token)
    assert first is not None and first.expires_at == 1_100.0  # not touched within touch_seconds
    clock.now += 80
    slid = await s.resolve(result.token)
    assert slid is not None and slid.expires_at == clock.now + 100
    clock.now += 101
    assert await s.resolve(result.token) is None
    assert [e.id for e in ended] == [result.session.id]
    assert await s.sweep() == 0 and len(ended) == 1  # already gone: the hook ran once


async def test_logout_and_sweep(store: Store) -> None:
    clock = Clock()
    s = service(store, clock, idle_seconds=100)
    ended: list[str] = []

    async def hook(session: WebSession) -> None:
        ended.append(session.subject)

    async def broken(session: WebSession) -> None:
        raise RuntimeError("a broken hook breaks nothing")

    s.on_session_end[:] = [broken, hook]
    a = await s.login("1000", "alice-password", "127.0.0.1")
    b = await s.login("root", "admin-password", "127.0.0.1")
    assert isinstance(a, LoggedIn) and isinstance(b, LoggedIn)
    assert await s.logout(a.token) is True and await s.logout(a.token) is False
    clock.now += 101
    assert await s.sweep() == 1
    assert ended == ["1000", "root"]
    assert await s.end_sessions_of("user", "1000") == 0


async def test_sweep_soon_runs_in_the_background_and_coalesces(store: Store) -> None:
    import asyncio

    s = service(store, Clock())
    seen: list[set[str]] = []
    gate = asyncio.Event()

    async def hook(live: set[str]) -> None:
        seen.append(live)
        await gate.wait()

    s.on_sweep.append(hook)
    a = await s.login("1000", "alice-password", "127.0.0.1")
    assert isinstance(a, LoggedIn)
    s.sweep_soon()
    for _ in range(100):
        await asyncio.sleep(0.01)
        if seen:
            break
    assert seen == [{a.session.id}]
    # the CLI removed the session meanwhile, and announced it twice: one more sweep, not two
    await db.delete_sessions_of(store, "user", "1000", announce=True)
    s.sweep_soon()
    s.sweep_soon()
    gate.set()
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(seen) == 2 and s._sweeping is not None and s._sweeping.done():
            break
    assert seen == [{a.session.id}, set()]


async def test_announced_session_removal_bumps_the_revision(store: Store) -> None:
    before = await store.revision()
    await db.delete_sessions_of(store, "user", "1000")
    assert await store.revision() == before  # the server's own removals need no reload
    await db.delete_sessions_of(store, "user", "1000", announce=True)
    assert await store.revision() == before + 1
