"""Crash (issue 11, "Crash and soak"): kill -9 under load, restart, and check what survived.

    .venv/bin/python bench/crash.py [--db sqlite | --db postgresql://USER@HOST/ADMIN_DB]
                                    [--accounts 200] [--churn 1500] [--rate 40] [--register-rate 50]
                                    [--kill-after 20] [--workers 2 --redis redis://127.0.0.1:6379/11]

1. The test bed of `soak.py` (`bench_load.call_bed`): `--accounts` × 2 devices registered at
   two SIPp UAS, a few settings written. Plus `--churn` accounts of one device each that
   register during the load (`--register-rate`/s, from one more SIPp): bindings keep appearing
   up to the kill. `/metrics` is read every 0.25 s for the count of bindings.
2. Load: forked calls at `--rate`/s, configuration changes through the CLI (`settings set`)
   every few seconds; after `--kill-after` seconds, kill -9 of every server process (and of
   the SIPp callers right after).
3. With the server down: `PRAGMA integrity_check` (SQLite), the configuration (accounts,
   devices, settings, trunks, revision) against what was written before the kill, the
   persisted bindings against the count the server reported 1 s before the kill (the
   write-behind may lose at most that last second), and the call history: rows that break
   its rules (no outcome, ended before started, negative duration, answered before started,
   a direction other than in/out) and a row count of at most two per call placed.
4. Restart on the same database and ports: `/metrics` bindings equal what was persisted, the
   configuration is the same, and a few seconds of calls (the restored bindings of the UAS
   are what rings) complete — none fails other than refused with 503 by the overload control
   (a starved server on a shared machine), and at least half complete; their history rows
   are written.

Prints the figures as JSON; exit code 1 when a check fails. PostgreSQL: `--db` names a
server/database where a fresh database `onenumber_crash_<random>` is created and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import CallBed, call_bed, start_caller
from benchlib import (
    ONENUMBER,
    auth_keyword,
    free_port,
    metric_sum,
    provision,
    sipp_args,
    stop_pid,
    wait_idle,
    write_csv,
)
from overload import failures_by_kind
from soak import redis_extra

CONFIG_SETTING = "history_retention_days"  # changed during the load: harmless to calls


# ------------------------------------------------------------------------------------ database


async def _pg(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def pg_database(admin_url: str) -> str:
    name = f"onenumber_crash_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg(admin_url, f'CREATE DATABASE "{name}"'))
    return admin_url.rsplit("/", 1)[0] + "/" + name


def pg_drop(admin_url: str, url: str) -> None:
    name = url.rsplit("/", 1)[1]
    asyncio.run(_pg(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _state(db: str) -> dict:
    """What the checks compare: the configuration, the live bindings, the history's rows."""
    from sqlalchemy import func, or_, select

    from onenumber.store import Store
    from onenumber.store import tables as t

    store = await Store.open(db, migrate=False)
    try:
        snap = await store.snapshot()
        now = time.time()
        h = t.call_history.c
        async with store.read() as conn:
            bindings = int(await conn.scalar(select(func.count()).select_from(t.bindings)
                                             .where(t.bindings.c.expires_at > now)) or 0)
            rows = int(await conn.scalar(select(func.count()).select_from(t.call_history)) or 0)
            bad = int(await conn.scalar(select(func.count()).select_from(t.call_history).where(or_(
                h.outcome == "", h.direction.not_in(("in", "out")), h.duration < 0,
                h.ended_at < h.started_at, h.answered_at < h.started_at,
                h.account == "", h.call_id == ""))) or 0)
        return {"config": repr(snap), "revision": snap.revision, "accounts": len(snap.accounts),
                "devices": len(snap.devices), "setting": getattr(snap.settings, CONFIG_SETTING),
                "bindings": bindings, "history_rows": rows, "history_bad_rows": bad}
    finally:
        await store.close()


def state(db: str) -> dict:
    return asyncio.run(_state(db))


def sqlite_integrity(db: str) -> str:
    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # opening it replays the WAL, as the server's next start does
        return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())


def cli(db: str, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ONENUMBER_DB"}
    subprocess.run([ONENUMBER, *args, "--db", db], check=True, capture_output=True, timeout=30, env=env)


# ------------------------------------------------------------------------------------ the run


class BindingWatch(threading.Thread):
    """The server's own count of bindings, read from /metrics every 0.25 s."""

    def __init__(self, bed: CallBed) -> None:
        super().__init__(daemon=True)
        self.bed = bed
        self.samples: list[tuple[float, float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                m = self.bed.server.metrics(timeout=1.0)
                self.samples.append((time.monotonic(), metric_sum(m, "onenumber_bindings")))
            except OSError:
                pass
            self.stopping.wait(0.25)

    def before(self, moment: float) -> float | None:
        """The last count read at or before `moment`."""
        seen = [n for t, n in self.samples if t <= moment]
        return seen[-1] if seen else None


def kill_all(bed: CallBed) -> list[int]:
    """kill -9 of every server process: the workers first (a supervisor killed alone would
    have them stop cleanly, PR_SET_PDEATHSIG), then the supervisor / the single process."""
    pids = bed.server.pids()
    for pid in reversed(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    bed.server.kill()
    return pids


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite", help="sqlite (a fresh file) or a PostgreSQL admin URL")
    ap.add_argument("--accounts", type=int, default=200, help="accounts called during the load (2 devices each)")
    ap.add_argument("--churn", type=int, default=1500, help="accounts whose one device registers during the load")
    ap.add_argument("--rate", type=float, default=40.0, help="calls per second during the load (default 40)")
    ap.add_argument("--register-rate", type=float, default=50.0, help="new registrations per second (default 50)")
    ap.add_argument("--kill-after", type=float, default=20.0, help="seconds of load before kill -9 (default 20)")
    ap.add_argument("--after", type=float, default=8.0, help="seconds of calls after the restart (default 8)")
    ap.add_argument("--workers", type=int, default=1, help="serve --workers N (needs --redis)")
    ap.add_argument("--redis", help="Redis URL for --workers (its database is flushed first)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if not (1 <= args.kill_after <= 600 and 0 < args.rate <= 1000 and 0 < args.register_rate <= 1000):
        ap.error("--kill-after in [1, 600], --rate and --register-rate in (0, 1000]")
    extra = redis_extra(args.workers, args.redis)
    pg_admin = None if args.db == "sqlite" else args.db
    with tempfile.TemporaryDirectory(prefix="onenumber-crash-") as tmp:
        work = Path(tmp)
        (work / "server").mkdir()
        db = pg_database(pg_admin) if pg_admin else f"sqlite:///{work / 'server' / 'onenumber.sqlite3'}"
        try:
            report = run(args, work, db, extra)
        finally:
            if pg_admin:
                pg_drop(pg_admin, db)
    report["db"] = "postgresql" if pg_admin else "sqlite"
    print(json.dumps(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    print(f"crash {report['verdict']}")
    return 0 if report["verdict"] == "ok" else 1


def run(args: argparse.Namespace, work: Path, db: str, extra: tuple[str, ...]) -> dict:
    churn = provision(db, args.churn, 1, first=300000)  # migrates the fresh database too
    settings = {"auth_max_failures": "20", CONFIG_SETTING: "400"}
    lifetime = args.kill_after + args.after + 300
    problems: list[str] = []
    report: dict = {"workers": args.workers, "rate": args.rate, "register_rate": args.register_rate}
    with call_bed(work, accounts=args.accounts, lifetime=lifetime, settings=settings, extra=extra, db=db) as bed:
        watch = BindingWatch(bed)
        watch.start()
        time.sleep(1.0)
        report["bindings_at_start"] = watch.before(time.monotonic())
        churn_csv = write_csv(work / "churn.csv", [(d.account, d.auth_username, auth_keyword(d)) for d in churn])
        churn_dir = work / "churn"
        churn_dir.mkdir()
        register = subprocess.Popen(
            sipp_args("register.xml", bed.server.sip_port, local_port=free_port(), workdir=churn_dir,
                      calls=len(churn), rate=args.register_rate, inf=churn_csv, timeout=lifetime),
            cwd=churn_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        caller = start_caller(bed, args.rate, args.kill_after + 30, timeout=lifetime)
        t0 = time.monotonic()
        changes = 0
        while time.monotonic() < t0 + args.kill_after:  # configuration changes while the calls run
            time.sleep(min(3.0, max(0.0, t0 + args.kill_after - time.monotonic())))
            if time.monotonic() < t0 + args.kill_after - 1.0:
                changes += 1
                cli(db, "settings", "set", CONFIG_SETTING, str(400 + changes))
        before = state(db)  # what the database holds just before the kill, read from outside
        killed_at = time.monotonic()
        pids = kill_all(bed)
        watch.stopping.set()
        stop_pid(register, 5)
        stop_pid(caller.proc, 5)
        watch.join(2)
        placed = caller.wait(1)
        report.update({
            "killed_pids": pids, "config_changes": changes, "calls_placed_before_kill": placed.successful
            + placed.failed, "calls_ok_before_kill": placed.successful,
            "bindings_reported_1s_before_kill": watch.before(killed_at - 1.0),
            "bindings_reported_last": watch.before(killed_at),
        })

        # --- with the server down
        if db.startswith("sqlite"):
            report["sqlite_integrity_check"] = sqlite_integrity(db)
            if report["sqlite_integrity_check"] != "ok":
                problems.append(f"integrity_check: {report['sqlite_integrity_check']}")
        after = state(db)
        report["persisted"] = {k: v for k, v in after.items() if k != "config"}
        if after["config"] != before["config"]:
            problems.append("configuration changed by the crash")
        if after["setting"] != 400 + changes:
            problems.append(f"{CONFIG_SETTING} is {after['setting']}, the last change wrote {400 + changes}")
        report["config_intact"] = after["config"] == before["config"]
        want = report["bindings_reported_1s_before_kill"]
        report["bindings_lost_vs_1s_before"] = None if want is None else want - after["bindings"]
        if want is None or after["bindings"] < want:
            problems.append(f"bindings persisted {after['bindings']} < {want} reported 1 s before the kill")
        if after["history_bad_rows"]:
            problems.append(f"{after['history_bad_rows']} history row(s) break its rules")
        placed_total = report["calls_placed_before_kill"]
        if not 0 < after["history_rows"] <= 2 * max(placed_total, caller.calls):
            problems.append(f"{after['history_rows']} history rows for {placed_total} calls placed")

        # --- restart on the same database and ports
        restart_t = time.monotonic()
        bed.server.start()
        deadline = time.monotonic() + 30
        restored = None
        while time.monotonic() < deadline:
            try:
                restored = metric_sum(bed.server.metrics(), "onenumber_bindings")
                break
            except OSError:
                time.sleep(0.3)
        report["restart_s"] = round(time.monotonic() - restart_t, 2)
        report["bindings_after_restart"] = restored
        # the UAS and the churn SIPp are not registering any more: what the server has is what it restored
        if restored is None or restored < after["bindings"]:
            problems.append(f"bindings after the restart {restored} < {after['bindings']} persisted")
        again = state(db)
        if again["config"] != before["config"]:
            problems.append("configuration differs after the restart")
        wait_idle(bed.server.sip_port, 20)  # the start-up's own work done (OPTIONS within 20 ms)
        check = start_caller(bed, max(1.0, args.rate / 2), args.after, timeout=args.after + 40)
        res = check.wait(args.after + 60)
        report["after_restart_calls"] = {"calls": res.calls, "ok": res.successful, "p99_ms": res.pct(99),
                                         "failures": failures_by_kind(check), "errors": res.errors[:600]}
        # refused with 503 is the overload control answering a starved server (a shared machine):
        # counted, but not a failure of the restart; anything else is
        refused = report["after_restart_calls"]["failures"].get("refused_503", 0)
        if res.successful + refused != res.calls or res.successful < res.calls / 2:
            problems.append(f"after the restart {res.calls - res.successful} of {res.calls} calls failed "
                            f"({refused} refused with 503)")
        time.sleep(2.0)  # the history writer's one-second batches
        final = state(db)
        report["history_rows_final"] = final["history_rows"]
        if final["history_rows"] <= after["history_rows"] or final["history_bad_rows"]:
            problems.append(f"history after the restart: {final['history_rows']} rows "
                            f"({final['history_bad_rows']} bad), {after['history_rows']} before")
    report["verdict"] = "ok" if not problems else "FAILED: " + "; ".join(problems)
    return report


if __name__ == "__main__":
    raise SystemExit(main())
