"""Voicemail messages and where their records live.

A message is a WAV file plus a record (`VoicemailMessage`). The record is written when
recording starts (`complete=False`, duration 0) and updated when it ends, so a crash
mid-message leaves a record pointing at a WAV that `recover` completes (the WAV writer
keeps the file valid; `media.wav.recover_wav` extends its header to what was written).

`MessageStore` is the interface the service writes through: `DatabaseMessageStore` (the
`voicemail_messages` table, what the server uses), `MemoryMessageStore` (tests) and
`DirectoryMessageStore` (a JSON side-car next to each WAV, one directory per account:
usable without a database).

Depends on media.wav, sip.bodies and the store; the directory store does small blocking
file I/O.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Protocol

from ...media.wav import recover_wav
from ...sip.bodies import MessageSummary
from ...store import Store
from ...store import voicemail as rows


@dataclass(frozen=True, slots=True)
class VoicemailMessage:
    id: str
    account: str  # the box: the account's number
    caller: str  # the caller's number (From user), "" when unknown
    caller_name: str  # the caller's display name, "" when none
    received_at: float  # unix time the recording started
    path: str  # the WAV file
    duration: float = 0.0  # seconds
    heard: bool = False
    urgent: bool = False
    complete: bool = False  # False while recording (or after a crash, until recovered)


def summary(messages: Iterable[VoicemailMessage], account_uri: str = "") -> MessageSummary:
    """RFC 3842 counts: new = not heard, old = heard (incomplete messages count as new)."""
    new = old = new_urgent = old_urgent = 0
    for m in messages:
        if m.heard:
            old += 1
            old_urgent += m.urgent
        else:
            new += 1
            new_urgent += m.urgent
    return MessageSummary(new, old, new_urgent, old_urgent, account_uri)


def listening_order(messages: Iterable[VoicemailMessage]) -> list[VoicemailMessage]:
    """New messages (oldest first), then saved ones (oldest first)."""
    ms = list(messages)
    key = lambda m: (m.received_at, m.id)  # noqa: E731
    return sorted((m for m in ms if not m.heard), key=key) + sorted((m for m in ms if m.heard), key=key)


class MessageStore(Protocol):
    async def add(self, message: VoicemailMessage) -> None: ...

    async def update(self, message: VoicemailMessage) -> None: ...

    async def get(self, message_id: str) -> VoicemailMessage | None: ...

    async def list(self, account: str) -> list[VoicemailMessage]: ...

    async def set_heard(self, message_id: str, heard: bool = True) -> VoicemailMessage | None: ...

    async def delete(self, message_id: str) -> VoicemailMessage | None:
        """Remove the record and its WAV; returns what was removed."""
        ...


class MemoryMessageStore:
    def __init__(self) -> None:
        self.messages: dict[str, VoicemailMessage] = {}

    async def add(self, message: VoicemailMessage) -> None:
        self.messages[message.id] = message

    async def update(self, message: VoicemailMessage) -> None:
        self.messages[message.id] = message

    async def get(self, message_id: str) -> VoicemailMessage | None:
        return self.messages.get(message_id)

    async def list(self, account: str) -> list[VoicemailMessage]:
        return sorted((m for m in self.messages.values() if m.account == account), key=lambda m: m.received_at)

    async def set_heard(self, message_id: str, heard: bool = True) -> VoicemailMessage | None:
        m = self.messages.get(message_id)
        if m is None:
            return None
        m = self.messages[message_id] = replace(m, heard=heard)
        return m

    async def delete(self, message_id: str) -> VoicemailMessage | None:
        m = self.messages.pop(message_id, None)
        if m is not None:
            _unlink(m.path)
        return m


class DirectoryMessageStore:
    """`root/<account>/<id>.wav` with `<id>.json` beside it (written atomically)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path_for(self, account: str, message_id: str) -> Path:
        if not _safe(account) or not _safe(message_id):
            raise ValueError("account and message id must be plain names")
        return self.root / account / f"{message_id}.wav"

    def _meta(self, message: VoicemailMessage) -> Path:
        return Path(message.path).with_suffix(".json")

    async def add(self, message: VoicemailMessage) -> None:
        self._write(message)

    async def update(self, message: VoicemailMessage) -> None:
        self._write(message)

    def _write(self, message: VoicemailMessage) -> None:
        meta = self._meta(message)
        meta.parent.mkdir(parents=True, exist_ok=True)
        tmp = meta.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(asdict(message), sort_keys=True))
        os.replace(tmp, meta)

    def _all(self, account: str | None = None) -> list[VoicemailMessage]:
        dirs = [self.root / account] if account is not None else [p for p in self.root.iterdir() if p.is_dir()]
        out = []
        for d in dirs:
            if not d.is_dir():
                continue
            for meta in d.glob("*.json"):
                try:
                    out.append(VoicemailMessage(**json.loads(meta.read_text())))
                except (ValueError, TypeError):
                    continue  # a damaged side-car: skip it rather than fail the listing
        return sorted(out, key=lambda m: (m.received_at, m.id))

    async def get(self, message_id: str) -> VoicemailMessage | None:
        if not self.root.is_dir():
            return None
        return next((m for m in self._all() if m.id == message_id), None)

    async def list(self, account: str) -> list[VoicemailMessage]:
        return self._all(account) if _safe(account) else []

    async def boxes(self) -> builtins.list[str]:
        """The accounts that have a folder of messages (for message waiting at start-up)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _safe(p.name))

    async def set_heard(self, message_id: str, heard: bool = True) -> VoicemailMessage | None:
        m = await self.get(message_id)
        if m is None:
            return None
        m = replace(m, heard=heard)
        self._write(m)
        return m

    async def delete(self, message_id: str) -> VoicemailMessage | None:
        m = await self.get(message_id)
        if m is None:
            return None
        _unlink(m.path)
        _unlink(self._meta(m))
        return m

    async def recover(self) -> builtins.list[VoicemailMessage]:  # `list` is a method of this class
        """Complete the records of messages cut short by a crash; returns them."""
        if not self.root.is_dir():
            return []
        done = []
        for m in self._all():
            if m.complete:
                continue
            try:
                duration = recover_wav(m.path)
            except (OSError, ValueError):
                duration = 0.0
            m = replace(m, duration=duration, complete=True)
            self._write(m)
            done.append(m)
        return done


def to_row(m: VoicemailMessage) -> dict[str, object]:
    return {"id": m.id, "account": m.account, "caller_number": m.caller, "caller_name": m.caller_name,
            "started_at": m.received_at, "duration": m.duration, "path": m.path, "heard": m.heard,
            "urgent": m.urgent, "complete": m.complete, "deleted": False}


def from_row(row: dict[str, object]) -> VoicemailMessage:
    return VoicemailMessage(
        id=str(row["id"]), account=str(row["account"]), caller=str(row["caller_number"] or ""),
        caller_name=str(row["caller_name"] or ""), received_at=float(row["started_at"]),  # type: ignore[arg-type]
        path=str(row["path"]), duration=float(row["duration"] or 0.0),  # type: ignore[arg-type]
        heard=bool(row["heard"]), urgent=bool(row["urgent"]), complete=bool(row["complete"]),
    )


class DatabaseMessageStore:
    """Records in the `voicemail_messages` table, WAVs wherever the service wrote them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def add(self, message: VoicemailMessage) -> None:
        await rows.put_message(self.store, to_row(message))

    async def update(self, message: VoicemailMessage) -> None:
        await rows.put_message(self.store, to_row(message))

    async def get(self, message_id: str) -> VoicemailMessage | None:
        row = await rows.get_message(self.store, message_id)
        return from_row(row) if row is not None else None

    async def list(self, account: str) -> builtins.list[VoicemailMessage]:
        return [from_row(r) for r in await rows.list_messages(self.store, account)]

    async def boxes(self) -> builtins.list[str]:
        return await rows.boxes(self.store)

    async def set_heard(self, message_id: str, heard: bool = True) -> VoicemailMessage | None:
        if not await rows.set_heard(self.store, message_id, heard):
            return None
        return await self.get(message_id)

    async def delete(self, message_id: str) -> VoicemailMessage | None:
        row = await rows.mark_deleted(self.store, message_id)
        if row is None:
            return None
        _unlink(str(row["path"]))
        return from_row(row)

    async def recover(self) -> builtins.list[VoicemailMessage]:
        """Complete the rows of messages cut short by a crash (their WAV holds what was said)."""
        done = []
        for row in await rows.list_messages(self.store, incomplete_only=True):
            m = from_row(row)
            try:
                duration = recover_wav(m.path)
            except (OSError, ValueError):
                duration = 0.0
            m = replace(m, duration=duration, complete=True)
            await self.update(m)
            done.append(m)
        return done

    async def import_directory(self, directory: DirectoryMessageStore) -> int:
        """Take over the records a `DirectoryMessageStore` kept in JSON side-cars (the server
        before the table existed); the side-cars are removed once their row is written."""
        if not directory.root.is_dir():
            return 0
        count = 0
        for m in directory._all():
            if await rows.get_message(self.store, m.id, deleted=True) is None:
                await self.add(m)
                count += 1
            _unlink(directory._meta(m))
        return count


def _safe(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "-_.+" for c in name) and not name.startswith(".")


def _unlink(path: str | os.PathLike[str]) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
