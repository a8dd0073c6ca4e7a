"""Accounts, devices, settings and trunks held in memory, indexed for the call path.

Loaded from the store at start and reloaded when the store's revision changes (every
configuration write by the CLI or API bumps it), so admin changes apply to the next SIP
request without a restart and no SIP message waits on the database. On PostgreSQL the
write's NOTIFY wakes the reload at once (polling only as a slow safety net); on SQLite the
revision is polled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..routing.model import Account, Device, Snapshot
from ..settings import Settings, Trunk

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger("onenumber.directory")


class Directory:
    def __init__(self, snapshot: Snapshot) -> None:
        self.listeners: list[Callable[[Directory], None]] = []
        self._install(snapshot)

    def _install(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.revision = snap.revision
        self.settings: Settings = snap.settings
        self.accounts: dict[str, Account] = {a.number: a for a in snap.accounts}
        self.by_did: dict[str, Account] = {}
        for a in snap.accounts:
            for did in a.dids:
                self.by_did[did] = a
        self.devices_by_auth: dict[str, Device] = {d.auth_username: d for d in snap.devices}
        self.devices_by_account: dict[str, list[Device]] = {}
        for d in sorted(snap.devices, key=lambda d: d.position):
            self.devices_by_account.setdefault(d.account, []).append(d)
        self.trunks: tuple[Trunk, ...] = snap.trunks

    def account_for(self, number: str) -> Account | None:
        """The account a dialled number reaches: its own number or one of its DIDs."""
        return self.accounts.get(number) or self.by_did.get(number)

    def devices(self, account: str) -> list[Device]:
        return self.devices_by_account.get(account, [])

    def trunk_for(self, number: str) -> Trunk | None:
        """The trunk with the longest prefix matching the number ('' matches everything)."""
        best = None
        for t in self.trunks:
            if number.startswith(t.prefix) and (best is None or len(t.prefix) > len(best.prefix)):
                best = t
        return best

    async def reload(self, store: Store) -> bool:
        """Reload now when the store's revision moved (the HTTP API after a write, so the change
        holds for the very next call); True when it did."""
        rev = await store.revision()
        if rev == self.revision:
            return False
        self._install(await store.snapshot())
        log.info("configuration reloaded (revision %d)", rev)
        for listener in self.listeners:
            listener(self)
        return True

    async def watch(self, store: Store, interval: float, *, safety_interval: float = 10.0) -> None:
        """Reload when the store's revision moved: told by the database (PostgreSQL NOTIFY,
        checked every `safety_interval` s as well) or by polling every `interval` s (SQLite)."""
        wake = asyncio.Event()
        listener = None
        if store.notifies:
            listener = asyncio.get_running_loop().create_task(store.listen_config(wake.set))
            interval = max(interval, safety_interval)
        try:
            while True:
                try:
                    await asyncio.wait_for(wake.wait(), interval)
                except TimeoutError:
                    pass
                wake.clear()
                try:
                    await self.reload(store)
                except Exception:
                    log.exception("could not reload the configuration")
        finally:
            if listener is not None:
                listener.cancel()
