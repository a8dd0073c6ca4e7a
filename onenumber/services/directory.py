"""Accounts, devices, settings and trunks held in memory, indexed for the call path.

Loaded from the store at start and reloaded when the store's revision changes (every
configuration write by the CLI or API bumps it), so admin changes apply to the next SIP
request without a restart and no SIP message waits on the database.
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

    async def reload(self, store: Store) -> None:
        """Take the stored configuration now (also when another worker said it changed)."""
        self._install(await store.snapshot())
        log.info("configuration reloaded (revision %d)", self.revision)
        for listener in self.listeners:
            listener(self)

    async def watch(self, store: Store, interval: float) -> None:
        """Poll the store's revision; reload when it moved."""
        while True:
            await asyncio.sleep(interval)
            try:
                rev = await store.revision()
                if rev != self.revision:
                    await self.reload(store)
            except Exception:
                log.exception("could not reload the configuration")
