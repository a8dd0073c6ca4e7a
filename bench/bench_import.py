"""CSV import at scale: 10,000 accounts x 2 devices into a fresh SQLite database.

    .venv/bin/python bench/bench_import.py [--accounts 10000] [--db sqlite:///tmp/x.sqlite3]

Prints the time of each step: generating the file, the import (the whole CLI/API path: parse,
validate with the admin layer's checks, one transaction with bulk inserts), the export, and a
re-import of the export (a no-op: nothing written). The goal (issue 9) is under 30 s for
the import on SQLite. Uses a temporary directory unless --db is given; touches no network.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from onenumber.store import Store
from onenumber.store.csvio import export_csv, import_csv

HEADER = "number,name,dids,ring_mode,position,kind,label,order,enabled,internet,call_waiting\n"


def make_csv(accounts: int) -> str:
    lines = [HEADER]
    for i in range(accounts):
        number = str(100000 + i)
        did = f"+32255{i:06d}"
        lines.append(f"{number},User {i},{did},ordered,0,deskphone,Yealink T54W,1,yes,no,yes\n")
        lines.append(f"{number},User {i},{did},ordered,1,mobile,,2,yes,yes,no\n")
    return "".join(lines)


async def run(url: str, accounts: int) -> float:
    t0 = time.perf_counter()
    text = make_csv(accounts)
    t1 = time.perf_counter()
    store = await Store.open(url)
    try:
        t2 = time.perf_counter()
        report = await import_csv(store, text)
        t3 = time.perf_counter()
        exported = await export_csv(store)
        t4 = time.perf_counter()
        again = await import_csv(store, exported)
        t5 = time.perf_counter()
    finally:
        await store.close()
    assert report.accounts["created"] == accounts and report.devices["created"] == 2 * accounts
    assert not again.changed
    print(f"file:      {accounts} accounts x 2 devices, {len(text) / 1e6:.1f} MB, made in {t1 - t0:.2f} s")
    print(f"import:    {t3 - t2:.2f} s  ({2 * accounts / (t3 - t2):,.0f} devices/s; goal < 30 s)")
    print(f"export:    {t4 - t3:.2f} s")
    print(f"re-import: {t5 - t4:.2f} s  (no-op: changed={again.changed})")
    return t3 - t2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--db", help="database URL (default: a fresh SQLite file in a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        seconds = asyncio.run(run(url, args.accounts))
    sys.exit(0 if seconds < 30 else 1)


if __name__ == "__main__":
    main()
