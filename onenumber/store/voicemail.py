"""Voicemail message rows: written by the voicemail service (through
`services.voicemail.store.DatabaseMessageStore`), read by the CLI and the API.

A row is inserted when recording starts (`complete` false) and updated when it ends, so a
crash leaves a row pointing at a WAV that start-up recovery completes. Deleting marks the
row `deleted` (the WAV is removed by the caller); listings leave deleted rows out.
Depends on SQLAlchemy and the tables only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from . import tables as t

if TYPE_CHECKING:
    from .repository import Store

COLUMNS: tuple[str, ...] = tuple(c.name for c in t.voicemail_messages.c)


async def put_message(store: Store, row: dict[str, Any]) -> None:
    """Insert or replace the row `row["id"]` (every column given)."""
    from sqlalchemy.dialects import postgresql, sqlite

    insert: Any = postgresql.insert if store.dialect == "postgresql" else sqlite.insert
    values = {name: row[name] for name in COLUMNS if name in row}
    stmt = insert(t.voicemail_messages).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"], set_={k: stmt.excluded[k] for k in values if k != "id"},
    )
    async with store.write(config=False) as conn:
        await conn.execute(stmt)


async def get_message(store: Store, message_id: str, *, deleted: bool = False) -> dict[str, Any] | None:
    c = t.voicemail_messages.c
    query = select(t.voicemail_messages).where(c.id == message_id)
    if not deleted:
        query = query.where(c.deleted.is_(False))
    async with store.read() as conn:
        row = (await conn.execute(query)).first()
    return dict(row._mapping) if row is not None else None


async def list_messages(store: Store, account: str | None = None, *, incomplete_only: bool = False) -> list[
    dict[str, Any]
]:
    """Messages not deleted, oldest first (every account's when `account` is None)."""
    c = t.voicemail_messages.c
    query = select(t.voicemail_messages).where(c.deleted.is_(False))
    if account is not None:
        query = query.where(c.account == account)
    if incomplete_only:
        query = query.where(c.complete.is_(False))
    query = query.order_by(c.started_at, c.id)
    async with store.read() as conn:
        return [dict(row._mapping) for row in await conn.execute(query)]


async def boxes(store: Store) -> list[str]:
    """Accounts with messages (not deleted)."""
    c = t.voicemail_messages.c
    query = select(c.account).where(c.deleted.is_(False)).distinct().order_by(c.account)
    async with store.read() as conn:
        result = await conn.execute(query)
        values: list[Any] = list(result.scalars())
    return [str(v) for v in values]


async def set_heard(store: Store, message_id: str, heard: bool = True) -> bool:
    c = t.voicemail_messages.c
    async with store.write(config=False) as conn:
        result = await conn.execute(
            update(t.voicemail_messages).where(c.id == message_id, c.deleted.is_(False)).values(heard=heard)
        )
    return bool(result.rowcount)


async def mark_deleted(store: Store, message_id: str, *, notify: bool = False) -> dict[str, Any] | None:
    """Mark the message deleted; returns its row as it was (None: no such message). With
    `notify` (the CLI) the configuration revision moves too, so a running server reloads and
    sends the box's devices their new message-waiting counts."""
    row = await get_message(store, message_id)
    if row is None:
        return None
    c = t.voicemail_messages.c
    async with store.write(config=notify) as conn:
        await conn.execute(update(t.voicemail_messages).where(c.id == message_id).values(deleted=True))
    return row
