"""Call history rows in the store: batch upserts and reads (onenumber/store/history.py)."""

from __future__ import annotations

import gc

from onenumber.store import Store
from onenumber.store.history import HistoryRow, _upsert, read_history, write_history

T0 = 1_800_000_000.0


async def test_a_batch_upserts_rows_by_account_call_and_direction(store: Store) -> None:
    await write_history(store, [
        HistoryRow("1001", "c1", "in", "1000", "Alice", T0, "answered", T0 + 2),
        HistoryRow("1000", "c1", "out", "1001", "Bob", T0, "answered", T0 + 2),
    ])
    # the answered call ends: the same rows again, with the end and the duration
    await write_history(store, [HistoryRow("1001", "c1", "in", "1000", "Alice", T0, "answered", T0 + 2, T0 + 9, 7.0)])
    rows = await read_history(store, "1001")
    assert [(r["call_id"], r["ended_at"], r["duration"]) for r in rows] == [("c1", T0 + 9, 7.0)]
    assert len(await read_history(store, "1000")) == 1


async def test_the_upsert_statement_is_built_once(store: Store) -> None:
    # built per batch, its `excluded` alias left reference cycles every second (long GC pauses)
    assert _upsert(store) is _upsert(store)
    await write_history(store, [HistoryRow("1001", "c2", "in", "1000", "", T0, "missed")])
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for i in range(5):
            await write_history(store, [HistoryRow("1001", f"c{i + 3}", "in", "1000", "", T0, "missed")])
        gc.collect()
        cyclic = [o for o in gc.garbage if type(o).__module__.startswith("sqlalchemy.sql")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not cyclic
