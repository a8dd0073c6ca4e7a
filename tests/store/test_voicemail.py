"""Voicemail message rows (SQLite and PostgreSQL) through `DatabaseMessageStore`: the row
written when recording starts, completed at the end or by recovery after a crash, heard,
deleted (WAV removed, row kept marked), side-car records taken over."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from onenumber.media.wav import WavWriter
from onenumber.services.voicemail.store import (
    DatabaseMessageStore,
    DirectoryMessageStore,
    VoicemailMessage,
    summary,
)
from onenumber.store import Store
from onenumber.store.voicemail import get_message, list_messages


def _message(tmp_path: Path, mid: str, account: str = "1000", at: float = 100.0) -> VoicemailMessage:
    path = tmp_path / account / f"{mid}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    return VoicemailMessage(mid, account, "1002", "Carol", at, str(path))


async def test_row_lifecycle(store: Store, tmp_path: Path) -> None:
    db = DatabaseMessageStore(store)
    m = _message(tmp_path, "m1")
    w = WavWriter(m.path)
    w.write(b"\x01\x00" * 8000)
    w.close()
    await db.add(m)  # recording started
    assert (await db.get("m1")) == m and not m.complete
    done = replace(m, duration=1.0, complete=True)
    await db.update(done)
    await db.add(_message(tmp_path, "m2", at=200.0))
    await db.add(_message(tmp_path, "m3", account="1001"))
    assert [x.id for x in await db.list("1000")] == ["m1", "m2"]
    assert await db.boxes() == ["1000", "1001"]
    heard = await db.set_heard("m1")
    assert heard is not None and heard.heard
    assert summary(await db.list("1000")).new == 1 and summary(await db.list("1000")).old == 1
    assert await db.set_heard("nope") is None
    gone = await db.delete("m1")
    assert gone is not None and gone.id == "m1"
    assert not os.path.exists(m.path)
    assert [x.id for x in await db.list("1000")] == ["m2"]
    assert await db.get("m1") is None and await db.delete("m1") is None
    row = await get_message(store, "m1", deleted=True)
    assert row is not None and row["deleted"] and row["caller_name"] == "Carol"


async def test_recovery_completes_a_message_cut_short(store: Store, tmp_path: Path) -> None:
    db = DatabaseMessageStore(store)
    m = _message(tmp_path, "crash")
    await db.add(m)
    w = WavWriter(m.path, fixup_every=100.0)  # header not fixed up: as if killed mid-message
    w.write(b"\x02\x00" * 12000)
    assert w._file is not None
    w._file.close()
    recovered = await db.recover()
    assert [r.id for r in recovered] == ["crash"]
    row = await db.get("crash")
    assert row is not None and row.complete and abs(row.duration - 1.5) < 0.01
    assert await db.recover() == []
    assert await list_messages(store, incomplete_only=True) == []


async def test_side_car_records_are_taken_over(store: Store, tmp_path: Path) -> None:
    files = DirectoryMessageStore(tmp_path)
    m = replace(_message(tmp_path, "old"), complete=True, duration=2.0)
    await files.add(m)
    db = DatabaseMessageStore(store)
    assert await db.import_directory(files) == 1
    assert await db.get("old") == m
    assert not Path(m.path).with_suffix(".json").exists()
    assert await db.import_directory(files) == 0
