"""The call history survives a crash: `kill -9` loses at most the last second of rows and never
leaves the table corrupt (SPEC "History", issue 7)."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

from .harness import Server, add_accounts, history, place_call, start_device


def test_kill_9_keeps_history_written_more_than_a_second_ago(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 1)])
    for i in range(3):
        dev = start_device(server, made["1000"][0], "dev_answer.xml", tmp_path / f"d{i}", name=f"alice{i}")
        caller = place_call(server, made["1001"][0], "1000", "call_answered.xml", tmp_path / f"c{i}",
                            from_user="1001", name=f"bob{i}")
        assert caller.returncode == 0, caller.describe() + server.log()[-2000:]
        assert dev.wait(15) == 0
    rows = history(server, "1000", 3)  # written: the writer flushed them
    assert server.proc is not None
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    server.proc = None
    path = server.db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    server.start()
    after = history(server, "1000", 3)
    assert [r["call_id"] for r in after] == [r["call_id"] for r in rows]
    assert {r["outcome"] for r in after} == {"answered"}
