"""The Store: one async handle on the database for the server, the CLI and the API.

It opens (and migrates) the database, reads configuration snapshots, reads and writes
bindings in batches, and gives the admin layer (`admin.py`) its transactions. Every
configuration write bumps `meta.revision` in the same transaction; the server reloads a
`Snapshot` when it moves. On PostgreSQL the write also sends a `NOTIFY` on `CONFIG_CHANNEL`
(delivered at commit), which `listen_config` turns into a wake-up: the server reloads at once
instead of polling; on SQLite it polls `revision()`. Binding writes do not bump it.
Depends on SQLAlchemy, the tables, and the routing value types; nothing SIP-specific.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from onenumber.routing.model import (
    Account,
    Binding,
    DeclineMode,
    Device,
    DeviceKind,
    Forwarding,
    RingMode,
    Snapshot,
)
from onenumber.settings import Settings, Trunk
from onenumber.store import tables as t
from onenumber.store.db import WRITE_OPTION, create_engine, display_url

if TYPE_CHECKING:
    from onenumber.store.admin import Admin

log = logging.getLogger("onenumber.store")

CONFIG_CHANNEL = "onenumber_config"  # PostgreSQL NOTIFY channel of configuration writes
# the configuration revision, polled 4 times a second (SQLite): built once, not per poll
_REVISION = select(t.meta.c.revision).where(t.meta.c.id == 1)


async def notify_config(conn: AsyncConnection) -> None:
    """Inside a configuration write: tell every listening server at commit (PostgreSQL only;
    a rolled-back transaction notifies no one)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CONFIG_CHANNEL})


class Store:
    """Async access to the OneNumber database. Create with `await Store.open(url)`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._upsert: Any = None
        self._admin: Admin | None = None

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Connect to `url` (user form or async form) and, by default, upgrade to the newest schema."""
        engine = create_engine(url)
        try:
            if migrate:
                from onenumber.store.migrate import upgrade

                await upgrade(engine)
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    async def close(self) -> None:
        await self.engine.dispose()

    @property
    def url(self) -> str:
        """The database URL with the password hidden."""
        return display_url(self.engine.url.render_as_string(hide_password=False))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def admin(self) -> Admin:
        """The validating admin operations (accounts, devices, settings, trunks)."""
        if self._admin is None:
            from onenumber.store.admin import Admin

            self._admin = Admin(self)
        return self._admin

    # --- transactions ---------------------------------------------------------------------------

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self, *, config: bool = True) -> AsyncIterator[AsyncConnection]:
        """A write transaction; `config=True` bumps the revision first, which also serialises
        configuration writers on PostgreSQL (row lock) so validate-then-write is race-free."""
        async with self.engine.connect() as conn:
            await conn.execution_options(**{WRITE_OPTION: True})
            async with conn.begin():
                if config:
                    await conn.execute(update(t.meta).where(t.meta.c.id == 1).values(revision=t.meta.c.revision + 1))
                    await notify_config(conn)
                yield conn

    # --- configuration ------------------------------------------------------------------------------

    @property
    def notifies(self) -> bool:
        """Whether configuration writes are announced (`listen_config` works): PostgreSQL."""
        return self.dialect == "postgresql"

    async def listen_config(self, on_change: Callable[[], None]) -> None:
        """Call `on_change` whenever a configuration write commits (PostgreSQL LISTEN), until
        cancelled. Holds one connection of its own; a lost connection is reopened after a second
        (and `on_change` is called then too: writes may have been missed meanwhile)."""
        if not self.notifies:
            raise RuntimeError("configuration notifications need PostgreSQL")
        first = True
        while True:
            try:
                async with self.engine.connect() as conn:
                    raw: Any = (await conn.get_raw_connection()).driver_connection  # asyncpg's connection
                    lost = asyncio.Event()
                    raw.add_termination_listener(lambda _c, lost=lost: lost.set())
                    await raw.add_listener(CONFIG_CHANNEL, lambda *_args: on_change())
                    if not first:
                        on_change()
                    first = False
                    await lost.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("configuration notifications: %s; listening again in 1 s", exc)
            first = False
            await asyncio.sleep(1.0)

    async def revision(self) -> int:
        async with self.engine.connect() as conn:
            value = await conn.scalar(_REVISION)
        return int(value or 0)

    async def snapshot(self) -> Snapshot:
        async with self.read() as conn:
            # revision first: a write that lands during our reads makes the next poll reload again
            revision = await conn.scalar(_REVISION)
            accounts = await load_accounts(conn)
            devices = await load_devices(conn)
            settings = await load_settings(conn)
            trunks = await load_trunks(conn)
        return Snapshot(tuple(accounts), tuple(devices), settings, tuple(trunks), int(revision or 0))

    # --- bindings -----------------------------------------------------------------------------------

    async def load_bindings(self, now: float) -> list[Binding]:
        """Every live binding (expires after `now`)."""
        async with self.read() as conn:
            rows = await conn.execute(select(t.bindings).where(t.bindings.c.expires_at > now).order_by(t.bindings.c.id))
            return [binding_from_row(row) for row in rows]

    async def list_bindings(self, account: str, now: float) -> list[Binding]:
        async with self.read() as conn:
            rows = await conn.execute(
                select(t.bindings)
                .where(t.bindings.c.account == account, t.bindings.c.expires_at > now)
                .order_by(t.bindings.c.auth_username, t.bindings.c.id)
            )
            return [binding_from_row(row) for row in rows]

    async def write_bindings(self, upserts: Sequence[Binding], deletes: Sequence[tuple[str, str]]) -> None:
        """Apply a batch in one transaction: `deletes` ((account, key) pairs) first, then
        `upserts` by (account, Binding.key), so a key in both ends up stored."""
        if not upserts and not deletes:
            return
        async with self.write(config=False) as conn:
            if deletes:
                await conn.execute(
                    delete(t.bindings).where(
                        t.bindings.c.account == bindparam("b_account"), t.bindings.c.key == bindparam("b_key")
                    ),
                    [{"b_account": account, "b_key": key} for account, key in deletes],
                )
            if upserts:
                # the last write of a key in one batch wins (ON CONFLICT can't hit one row twice)
                rows = {(b.account, b.key): binding_row(b) for b in upserts}
                await conn.execute(self._upsert_statement(), list(rows.values()))

    async def delete_expired_bindings(self, now: float) -> int:
        async with self.write(config=False) as conn:
            result = await conn.execute(delete(t.bindings).where(t.bindings.c.expires_at <= now))
            return int(result.rowcount or 0)

    def _upsert_statement(self) -> Any:
        if self._upsert is None:
            from sqlalchemy.dialects import postgresql, sqlite

            insert: Any = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
            stmt = insert(t.bindings)
            keep = ("id", "account", "key")
            self._upsert = stmt.on_conflict_do_update(
                index_elements=["account", "key"],
                set_={c.name: stmt.excluded[c.name] for c in t.bindings.c if c.name not in keep},
            )
        return self._upsert


# --- row <-> value conversions (shared with admin.py) --------------------------------------------------


def account_from_row(row: Row[Any], dids: Iterable[str] = ()) -> Account:
    return Account(
        number=row.number,
        display_name=row.display_name,
        dids=tuple(sorted(dids)),
        ring_mode=RingMode(row.ring_mode),
        stage_seconds=row.stage_seconds,
        no_answer_seconds=row.no_answer_seconds,
        forwarding=Forwarding(row.fwd_unconditional, row.fwd_busy, row.fwd_no_answer),
        decline=DeclineMode(row.decline),
        dnd=bool(row.dnd),
        selected_device=row.selected_device,
        custom_cli=row.custom_cli,
        voicemail_pin=row.voicemail_pin,
    )


def device_from_row(row: Row[Any]) -> Device:
    return Device(
        account=row.account,
        position=row.position,
        kind=DeviceKind(row.kind),
        auth_username=row.auth_username,
        secret=row.secret,
        ring_order=row.ring_order,
        enabled=bool(row.enabled),
        label=row.label,
        internet=bool(row.internet),
        credential_expires_at=row.credential_expires_at,
        call_waiting=bool(row.call_waiting),
        previous_secret=row.previous_secret,
        previous_secret_until=row.previous_secret_until,
        secret_rotated_at=row.secret_rotated_at,
    )


def binding_row(b: Binding) -> dict[str, Any]:
    return {
        "account": b.account,
        "key": b.key,
        "auth_username": b.auth_username,
        "contact": b.contact,
        "expires_at": b.expires_at,
        "transport": b.transport,
        "source_host": b.source[0],
        "source_port": b.source[1],
        "local_host": b.local[0],
        "local_port": b.local[1],
        "instance": b.instance,
        "reg_id": b.reg_id,
        "flow": b.flow,
        "path": json.dumps(list(b.path)),
        "user_agent": b.user_agent,
        "call_id": b.call_id,
        "cseq": b.cseq,
        "q": b.q,
        "outbound": b.outbound,
        "params": b.params,
    }


def binding_from_row(row: Row[Any]) -> Binding:
    return Binding(
        account=row.account,
        auth_username=row.auth_username,
        contact=row.contact,
        expires_at=row.expires_at,
        transport=row.transport,
        source=(row.source_host, row.source_port),
        local=(row.local_host, row.local_port),
        instance=row.instance,
        reg_id=row.reg_id,
        flow=row.flow,
        path=tuple(json.loads(row.path or "[]")),
        user_agent=row.user_agent,
        call_id=row.call_id,
        cseq=row.cseq,
        q=row.q,
        outbound=bool(row.outbound),
        params=row.params,
    )


async def load_accounts(conn: AsyncConnection, number: str | None = None) -> list[Account]:
    query = select(t.accounts).order_by(t.accounts.c.number)
    did_query = select(t.dids.c.account, t.dids.c.did)
    if number is not None:
        query = query.where(t.accounts.c.number == number)
        did_query = did_query.where(t.dids.c.account == number)
    by_account: dict[str, list[str]] = {}
    for account, did in await conn.execute(did_query):
        by_account.setdefault(str(account), []).append(str(did))
    return [account_from_row(row, by_account.get(row.number, ())) for row in await conn.execute(query)]


async def load_devices(conn: AsyncConnection, account: str | None = None) -> list[Device]:
    query = select(t.devices).order_by(t.devices.c.account, t.devices.c.position)
    if account is not None:
        query = query.where(t.devices.c.account == account)
    return [device_from_row(row) for row in await conn.execute(query)]


async def load_settings(conn: AsyncConnection) -> Settings:
    rows = await conn.execute(select(t.settings.c.key, t.settings.c.value))
    return Settings.from_rows({str(key): str(value) for key, value in rows})


async def load_trunks(conn: AsyncConnection) -> list[Trunk]:
    rows = await conn.execute(select(t.trunks).order_by(t.trunks.c.name))
    return [Trunk(r.name, r.host, r.port, r.transport, r.prefix) for r in rows]
