"""The one login system of the web phone, the portal and the REST API.

    service = LoginService(store)
    result = await service.login(username, password, client_address)
        -> LoggedIn(session, token) | Invalid() | Throttled(retry_after)
    session = await service.resolve(cookie_token)      # None when unknown or expired
    await service.logout(cookie_token)                 # runs the on_session_end hooks
    service.on_session_end.append(async_callable)      # gets the ended WebSession
    await service.run_sweeper()                        # ends expired sessions, every 60 s

Usernames: an admin's username (never all digits), else an account number. One answer
(`Invalid`) for every failure: unknown name, wrong password, account without a password.
An unknown name costs one scrypt like a known one (a dummy hash), and failures are
throttled like SIP logins (`sip.auth.LoginThrottle`: per address and username, and per
address across usernames), counting the claimed name whether it exists or not.

Sessions slide: each use moves the expiry to `idle_seconds` ahead (written at most once per
`touch_seconds`, so browsing does not write on every request), up to `max_age_seconds`
after login. Expired rows are deleted when met (`resolve`) and by a rare sweep.
scrypt runs in a worker thread so the SIP loop is not held up for its ~50 ms.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..sip.auth import LoginThrottle
from ..store import Store
from ..store import logins as db
from ..store.logins import Kind, WebSession

log = logging.getLogger("onenumber.logins")

SessionHook = Callable[[WebSession], Awaitable[None]]


@dataclass(frozen=True)
class LoggedIn:
    session: WebSession
    token: str  # the cookie value; only its sha256 is stored


@dataclass(frozen=True)
class Invalid:
    pass


@dataclass(frozen=True)
class Throttled:
    retry_after: int  # seconds


LoginResult = LoggedIn | Invalid | Throttled


class LoginService:
    def __init__(
        self,
        store: Store,
        *,
        throttle: LoginThrottle | None = None,
        idle_seconds: float = 8 * 3600,
        max_age_seconds: float = 7 * 86400,
        touch_seconds: float = 60.0,
        sweep_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.throttle = throttle or LoginThrottle()
        self.idle_seconds = idle_seconds
        self.max_age_seconds = max_age_seconds
        self.touch_seconds = touch_seconds
        self.sweep_seconds = sweep_seconds
        self.clock = clock
        self.on_session_end: list[SessionHook] = []
        # run after each sweep with the ids of the live sessions: state kept elsewhere (web phone
        # credentials) is reconciled with sessions removed behind our back (the CLI's set-password)
        self.on_sweep: list[Callable[[set[str]], Awaitable[None]]] = []
        self._sweeping: asyncio.Task[None] | None = None
        self._sweep_again = False

    def configure(self, max_failures: int, max_usernames: int, block_seconds: float) -> None:
        """The SIP login limits apply here too (settings auth_*); a change starts a fresh count."""
        t = self.throttle
        if (t.max_failures, t.max_usernames, t.block_seconds) != (max_failures, max_usernames, block_seconds):
            self.throttle = LoginThrottle(max_failures=max_failures, max_usernames=max_usernames,
                                          block_seconds=block_seconds)

    # ------------------------------------------------------------------ login / logout
    async def login(self, username: str, password: str, address: str) -> LoginResult:
        now = self.clock()
        username = username.strip()[:64]
        if self.throttle.is_blocked(address, username, now):
            return Throttled(self._retry_after(address, username, now))
        kind: Kind = "admin" if username and not username.isdigit() else "user"
        stored = await db.password_hash(self.store, kind, username) if username else None
        ok = await asyncio.to_thread(db.check_password, password, stored)
        now = self.clock()
        if not ok:
            if self.throttle.record_failure(address, username, now):
                log.warning("login failures from %s for %r: blocked", address, username)
                return Throttled(self._retry_after(address, username, now))
            return Invalid()
        self.throttle.record_success(address, username, now)
        token, session = await db.create_session(self.store, kind, username, now=now, ttl=self._ttl(now, now))
        return LoggedIn(session, token)

    async def logout(self, token: str) -> bool:
        """End the session of a cookie token; False when there was none."""
        session = await db.delete_session(self.store, db.sha256(token))
        if session is None:
            return False
        await self._ended(session)
        return True

    async def end_sessions_of(self, kind: Kind, subject: str, *, keep: str | None = None) -> int:
        """End every session of an admin or account (password changed, account removed) but `keep`."""
        sessions = await db.delete_sessions_of(self.store, kind, subject, keep=keep)
        for session in sessions:
            await self._ended(session)
        return len(sessions)

    # ------------------------------------------------------------------ use
    async def resolve(self, token: str | None) -> WebSession | None:
        """The live session of a cookie token, its expiry slid forward; None otherwise."""
        if not token or len(token) > 200:
            return None
        session = await db.get_session(self.store, db.sha256(token))
        if session is None:
            return None
        now = self.clock()
        if session.expires_at <= now:
            if await db.delete_session(self.store, session.id) is not None:
                await self._ended(session)
            return None
        if now - session.last_seen_at >= self.touch_seconds:
            expires = self._ttl(session.created_at, now) + now
            await db.touch_session(self.store, session.id, now=now, expires_at=expires)
            session = WebSession(session.id, session.kind, session.subject, session.csrf, session.created_at,
                                 expires, now)
        return session

    def _ttl(self, created_at: float, now: float) -> float:
        return max(0.0, min(self.idle_seconds, created_at + self.max_age_seconds - now))

    def _retry_after(self, address: str, username: str, now: float) -> int:
        until = [u for u in (self.throttle.pairs.blocked_until((address, username)),
                             self.throttle.addresses.blocked_until(address)) if u is not None]
        return max(1, int((max(until) if until else now + self.throttle.block_seconds) - now + 0.999))

    # ------------------------------------------------------------------ expiry
    async def sweep(self) -> int:
        """End the sessions whose expiry passed; returns how many."""
        now = self.clock()
        ended = await db.delete_expired_sessions(self.store, now)
        for session in ended:
            await self._ended(session)
        if self.on_sweep:
            live = {s.id for s in await db.live_sessions(self.store, now)}
            for hook in list(self.on_sweep):
                try:
                    await hook(live)
                except Exception:
                    log.exception("a sweep hook failed")
        return len(ended)

    def sweep_soon(self) -> None:
        """A sweep now, in the background: the configuration changed, maybe with sessions removed
        behind our back (the CLI's set-password). Calls while one runs make one more after it."""
        if self._sweeping is not None and not self._sweeping.done():
            self._sweep_again = True
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a reload outside the server): the periodic sweep will do
            return
        self._sweeping = loop.create_task(self._sweep_until_settled())

    async def _sweep_until_settled(self) -> None:
        while True:
            self._sweep_again = False
            try:
                await self.sweep()
            except Exception:  # the periodic sweep catches up
                log.exception("session sweep failed")
            if not self._sweep_again:
                return

    async def run_sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            try:
                await self.sweep()
            except Exception:  # a busy database now is fine: the next sweep (or resolve) catches up
                log.exception("session sweep failed")

    async def _ended(self, session: WebSession) -> None:
        for hook in list(self.on_session_end):
            try:
                await hook(session)
            except Exception:
                log.exception("a session-end hook failed")
