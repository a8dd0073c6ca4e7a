"""The location service: live bindings in memory, written behind to the store.

Held per account and indexed by connection, so the call path never touches the
database. Changes are queued and flushed by `run_flusher` within `flush_interval`
(Kamailio usrloc's write-back mode); `flush()` on shutdown writes what is left, so a
restart finds the bindings again. A plain refresh (the same binding, only its expiry,
CSeq and maybe Call-ID moved on) waits for the periodic flush, up to `refresh_interval`,
while the stored expiry is far enough ahead: a device refreshing every few seconds (a NAT
keep-alive by REGISTER; the benchmark's phones) then costs one write per interval instead of
one per REGISTER (a write was ~12 µs of CPU, ~3 % of a REGISTER), and after a kill -9 the
binding comes back with its previous expiry, still live. Bindings on a closed TCP/TLS/WS
connection and expired bindings are removed here.

The interface (`get`, `apply`, `drop_flow`, `expire`) stays the same with several worker
processes: each keeps this in-memory copy as its cache, queues its own changes in
`outgoing_*` for the shared store (services/replication.py) and takes the other workers'
changes through `apply_remote`, so the call path never waits on Redis.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING

from ..model import Binding
from .events import BindingChanged, EventBus

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger("onenumber.location")

Listener = Callable[[str], None]

REFRESH_INTERVAL = 30.0  # seconds a plain refresh may wait for its write (Kamailio's write-back: 60 s for all)


class Location:
    def __init__(self, store: Store | None, *, flush_interval: float = 0.05,
                 refresh_interval: float = REFRESH_INTERVAL) -> None:
        self.store = store
        self.flush_interval = flush_interval  # new, changed and removed bindings reach the store this fast
        self.refresh_interval = refresh_interval  # plain refreshes (new expiry only) are batched longer
        self._by_account: dict[str, dict[str, Binding]] = {}
        self._by_flow: dict[str, set[tuple[str, str]]] = {}
        self._by_contact: dict[str, Binding] = {}  # for in-dialog requests to a device's contact
        self._expiry: list[tuple[float, str, str]] = []
        self._by_transport: dict[str, int] = {}  # kept as bindings come and go: /metrics reads it
        self._pending_up: dict[tuple[str, str], Binding] = {}
        self._pending_del: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self.listeners: list[Listener] = []  # told the account number whenever its bindings change
        self.events: EventBus | None = None  # BindingChanged for subscribers (presence, push…)
        # worker processes (services/replication.py): this worker's own changes are queued for
        # the shared store; changes other workers made arrive through `apply_remote`
        self.replicate = False
        self.outgoing_up: dict[tuple[str, str], Binding] = {}
        self.outgoing_del: set[tuple[str, str]] = set()
        self.on_outgoing: Callable[[], None] | None = None  # woken when something was queued
        self._remote: set[tuple[str, str]] = set()  # bindings another worker made (it expires them)
        self.janitor = True  # expires the others' too (worker 0: in case their worker died)

    # ------------------------------------------------------------------ reads
    def get(self, account: str) -> list[Binding]:
        found = self._by_account.get(account)
        return list(found.values()) if found else []

    def all(self) -> Iterable[Binding]:
        for bindings in self._by_account.values():
            yield from bindings.values()

    def lookup(self, account: str, key: str) -> Binding | None:
        found = self._by_account.get(account)
        return found.get(key) if found else None

    def find_contact(self, contact: str) -> Binding | None:
        return self._by_contact.get(contact)

    def count(self) -> int:
        return sum(self._by_transport.values())

    def count_by_transport(self) -> dict[str, int]:
        """Bindings per transport (udp, tcp, tls, ws, wss), without a walk over them."""
        return {t: n for t, n in self._by_transport.items() if n}

    # ------------------------------------------------------------------ writes
    def load(self, bindings: Iterable[Binding]) -> None:
        """Start-up: take the persisted bindings (already filtered to live ones)."""
        for b in bindings:
            self._put(b)

    def apply(self, upserts: Iterable[Binding], removes: Iterable[Binding], now: float | None = None) -> None:
        """A registration's changes. `now` lets a plain refresh wait for the periodic flush
        (see the module's text); without it every change is written within `flush_interval`."""
        changed: set[str] = set()
        for b in removes:
            if self._remove(b.account, b.key, "unregister"):
                changed.add(b.account)
        for b in upserts:
            old = self._by_account.get(b.account, {}).get(b.key)
            self._put(b)
            self._pending_up[(b.account, b.key)] = b
            self._pending_del.discard((b.account, b.key))
            if self.replicate:
                self._remote.discard((b.account, b.key))
                self.outgoing_up[(b.account, b.key)] = b
                self.outgoing_del.discard((b.account, b.key))
            if old is None or not _same_route(old, b):
                changed.add(b.account)
                self._changed(b, "added", "register")
            elif not self._refresh_may_wait(old, b, now):
                self._wake.set()  # written within flush_interval, like a new binding
        if changed:
            self._notify(changed)
        if self.replicate and self.on_outgoing is not None:
            self.on_outgoing()

    def apply_remote(self, upserts: Iterable[Binding], removes: Iterable[tuple[str, str]]) -> None:
        """Changes another worker made: kept in the local cache only (that worker wrote them to
        the database and the shared store, and it emits their events)."""
        changed: set[str] = set()
        for account, key in removes:
            if self._remove(account, key, "remote", local=False):
                changed.add(account)
        for b in upserts:
            old = self._by_account.get(b.account, {}).get(b.key)
            self._put(b)
            self._remote.add((b.account, b.key))
            if old is None or not _same_route(old, b):
                changed.add(b.account)
        if changed:
            self._notify(changed, wake=False)

    def remove(self, account: str, key: str, reason: str) -> bool:
        """Drop one binding the server found dead (e.g. it stopped answering keepalives)."""
        if not self._remove(account, key, reason):
            return False
        self._notify({account})
        return True

    def drop_flow(self, flow: str) -> int:
        """A connection closed: its bindings are dead at once."""
        keys = self._by_flow.pop(flow, None)
        if not keys:
            return 0
        changed = set()
        for account, key in list(keys):
            if self._remove(account, key, "connection-closed"):
                changed.add(account)
        self._notify(changed)
        return len(keys)

    def drop_device(self, account: str, auth_username: str, reason: str = "revoked") -> int:
        """A device's credential was revoked (a web phone session ended): its bindings go at once."""
        slot = self._by_account.get(account)
        if not slot:
            return 0
        keys = [key for key, b in slot.items() if b.auth_username == auth_username]
        removed = sum(1 for key in keys if self._remove(account, key, reason))
        if removed:
            self._notify({account})
        return removed

    def expire(self, now: float) -> int:
        """Remove bindings whose expiry has passed; return how many."""
        removed = 0
        changed = set()
        heap = self._expiry
        while heap and heap[0][0] <= now:
            _, account, key = heapq.heappop(heap)
            b = self._by_account.get(account, {}).get(key)
            if b is None:
                continue
            if b.expires_at > now:  # refreshed since: one heap entry per binding, moved on
                heapq.heappush(heap, (b.expires_at, account, key))
            elif self._remove(account, key, "expired", local=self.janitor or (account, key) not in self._remote):
                removed += 1
                changed.add(account)
        if changed:
            self._notify(changed)
        return removed

    def _refresh_may_wait(self, old: Binding, new: Binding, now: float | None) -> bool:
        """Whether `new`, replacing `old`, may wait for the periodic flush: only its expiry, CSeq
        and Call-ID moved on, and the expiry stored (`old`'s, or an earlier one, whose own wait was
        checked the same way) stays live for another `refresh_interval` after the write is due,
        so a server killed meanwhile and restarted within that time still has the binding."""
        return (now is not None and old.expires_at - now > 2 * self.refresh_interval
                and _refresh_fields(old) == _refresh_fields(new))

    def _put(self, b: Binding) -> None:
        slot = self._by_account.setdefault(b.account, {})
        old = slot.get(b.key)
        if old is not None and old.flow and old.flow != b.flow:
            self._unindex_flow(old)
        slot[b.key] = b
        counts = self._by_transport
        if old is None or old.transport != b.transport:
            counts[b.transport] = counts.get(b.transport, 0) + 1
            if old is not None:
                counts[old.transport] -= 1
        self._by_contact[b.contact] = b
        if b.flow:
            self._by_flow.setdefault(b.flow, set()).add((b.account, b.key))
        if old is None or b.expires_at < old.expires_at:
            heapq.heappush(self._expiry, (b.expires_at, b.account, b.key))

    def _changed(self, b: Binding, change: str, reason: str) -> None:
        events = self.events
        if events is not None and BindingChanged in events.wanted:
            events.emit(BindingChanged(b.account, b.auth_username, b.contact, b.transport, change, reason))

    def _remove(self, account: str, key: str, reason: str, *, local: bool = True) -> bool:
        slot = self._by_account.get(account)
        if not slot or key not in slot:
            return False
        b = slot.pop(key)
        self._by_transport[b.transport] -= 1
        self._remote.discard((account, key))
        if local:
            self._changed(b, "removed", reason)
        if self._by_contact.get(b.contact) is b:
            del self._by_contact[b.contact]
        if not slot:
            del self._by_account[account]
        self._unindex_flow(b)
        if not local:
            return True
        self._pending_up.pop((account, key), None)
        self._pending_del.add((account, key))
        if self.replicate:
            self.outgoing_up.pop((account, key), None)
            self.outgoing_del.add((account, key))
            if self.on_outgoing is not None:
                self.on_outgoing()
        return True

    def _unindex_flow(self, b: Binding) -> None:
        if b.flow:
            keys = self._by_flow.get(b.flow)
            if keys is not None:
                keys.discard((b.account, b.key))
                if not keys:
                    del self._by_flow[b.flow]

    def _notify(self, accounts: set[str], *, wake: bool = True) -> None:
        if wake:
            self._wake.set()
        for listener in self.listeners:
            for account in accounts:
                try:
                    listener(account)
                except Exception:
                    log.exception("binding listener failed")

    # ------------------------------------------------------------------ persistence
    async def flush(self) -> None:
        if self.store is None or (not self._pending_up and not self._pending_del):
            return
        ups = list(self._pending_up.values())
        dels = list(self._pending_del)
        self._pending_up = {}
        self._pending_del = set()
        try:
            await self.store.write_bindings(ups, dels)
        except Exception:
            log.exception("could not write %d bindings; will retry", len(ups) + len(dels))
            for b in ups:
                self._pending_up.setdefault((b.account, b.key), b)
            self._pending_del.update(d for d in dels if d not in self._pending_up)
            await asyncio.sleep(1.0)

    async def run_flusher(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.refresh_interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await asyncio.sleep(self.flush_interval)  # batch what arrives meanwhile
            await self.flush()


# every field of a binding but those a plain refresh moves on (a field added later counts as a change):
# the Call-ID too (SIPp and some phones take a new one per REGISTER); a stale stored Call-ID and
# CSeq only mean the next REGISTER after a restart is taken as from a new registration, as it is
_REFRESHED = ("expires_at", "cseq", "call_id")
_refresh_fields = attrgetter(*(f.name for f in fields(Binding) if f.name not in _REFRESHED))


def _same_route(a: Binding, b: Binding) -> bool:
    """A refresh: the same binding reached the same way, only its expiry and CSeq moved on."""
    return (a.contact, a.flow, a.transport, a.source, a.auth_username) == (
        b.contact, b.flow, b.transport, b.source, b.auth_username)
