"""A forked-call test bed for the long-running benchmarks (RSS over time, overload): the same
devices, UAS and caller scenario as `bench_calls.py`, but the caller runs in the background
so the benchmark can watch the server (RSS, per-second rates) while the load runs.

Depends on benchlib; every process is bounded (`-m`, `-timeout`) and stopped by its PID.
"""

from __future__ import annotations

import csv
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import (
    Dev,
    OneNumberServer,
    SippResult,
    _read_rtt,
    _read_stats,
    auth_keyword,
    free_port,
    provision,
    register_rows,
    sipp_args,
    start_sipp_uas,
    stop_pid,
    write_csv,
)


@dataclass
class CallBed:
    server: OneNumberServer
    calls_csv: Path
    workdir: Path
    uas: list[subprocess.Popen] = field(default_factory=list)
    devices: list[Dev] = field(default_factory=list)  # every provisioned device (position 0 answers)
    uas_ports: tuple[int, int] = (0, 0)  # the answering and the cancelled UAS's ports
    registrations: list[dict] = field(default_factory=list)  # how the set-up registrations went, per UAS


@contextmanager
def call_bed(workdir: Path, *, accounts: int, lifetime: float, settings: dict[str, str] | None = None,
             extra: tuple[str, ...] = (), db: str = "") -> Iterator[CallBed]:
    """Provision `accounts` × 2 devices, start the server (`extra`: more serve options; `db`: a
    database URL instead of a fresh SQLite file), register every device at one of two SIPp UAS
    (answer / cancelled) and keep them up for `lifetime` seconds at most."""
    server = OneNumberServer(workdir / "server", extra=extra, db=db)
    devs = provision(server.db, accounts, 2)
    if settings:
        _apply_settings(server.db, settings)
    numbers = sorted({d.account for d in devs})
    server.start()
    bed = CallBed(server, workdir / "calls.csv", workdir, devices=devs)
    try:
        port_a, port_b = free_port(), free_port()
        bed.uas_ports = (port_a, port_b)
        for pos, port in ((0, port_a), (1, port_b)):
            rows = [(d.account, d.auth_username, auth_keyword(d)) for d in devs if d.position == pos]
            reg = register_rows(server.sip_port, rows, db=server.db, workdir=workdir, local_port=port,
                                name=f"devices-{pos}")
            bed.registrations.append(reg.summary())
            if not reg.complete:
                raise RuntimeError(f"device registrations: {reg.registered}/{len(rows)} ok; {reg.errors[:400]}")
        bed.uas = [
            start_sipp_uas("uas_answer.xml", port_a, workdir=workdir, timeout=lifetime, remote_port=server.sip_port),
            start_sipp_uas("uas_cancelled.xml", port_b, workdir=workdir, timeout=lifetime,
                           remote_port=server.sip_port),
        ]
        time.sleep(0.5)
        keyword = {d.account: auth_keyword(d) for d in devs if d.position == 0}
        n = len(numbers)
        write_csv(bed.calls_csv, [(callee, numbers[(i + n // 2) % n], keyword[numbers[(i + n // 2) % n]])
                                  for i, callee in enumerate(numbers)])
        yield bed
    finally:
        for p in bed.uas:
            stop_pid(p, 5)
        server.stop()


def _apply_settings(db: str, settings: dict[str, str]) -> None:
    import asyncio

    from onenumber.store import Store

    async def go() -> None:
        store = await Store.open(db)
        try:
            for name, value in settings.items():
                await store.admin.set_setting(name, value)
        finally:
            await store.close()

    asyncio.run(go())


@dataclass
class Caller:
    """A SIPp caller running in the background (`call_uac_auth.xml`)."""

    proc: subprocess.Popen
    run_dir: Path
    rate: float
    calls: int

    def wait(self, timeout: float) -> SippResult:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_pid(self.proc, 5)
            rc = -9
        res = SippResult("call_uac_auth.xml", self.rate, self.calls, returncode=rc)
        _read_stats(self.run_dir, res)
        _read_rtt(self.run_dir, res)
        errs = list(self.run_dir.glob("*_errors.log"))
        if errs and not res.successful:
            res.errors = errs[0].read_text(errors="replace")[:1500]
        return res

    def timeline(self) -> list[dict[str, float]]:
        """SIPp's per-period statistics (one row a second with `-fd 1`): elapsed seconds and the
        calls that succeeded / failed in that period."""
        files = list(self.run_dir.glob("*_.csv"))
        if not files:
            return []
        with open(files[0], newline="") as f:
            rows = list(csv.reader(f, delimiter=";"))
        if len(rows) < 2:
            return []
        col = {name: i for i, name in enumerate(rows[0])}
        out = []
        for row in rows[1:]:
            try:
                h, m, s = row[col["ElapsedTime(C)"]].split(":")[:3]
                out.append({
                    "t": int(h) * 3600 + int(m) * 60 + float(s),
                    "ok": float(row[col["SuccessfulCall(P)"]]),
                    "failed": float(row[col["FailedCall(P)"]]),
                })
            except (KeyError, ValueError, IndexError):
                continue
        return out


def start_caller(bed: CallBed, rate: float, seconds: float, *, timeout: float | None = None) -> Caller:
    calls = max(1, int(rate * seconds))
    run_dir = bed.workdir / f"caller-{int(rate)}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir(parents=True)
    args = sipp_args("call_uac_auth.xml", bed.server.sip_port, local_port=free_port(), workdir=run_dir,
                     calls=calls, rate=rate, inf=bed.calls_csv, timeout=timeout or seconds + 20)
    proc = subprocess.Popen(args, cwd=run_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return Caller(proc, run_dir, rate, calls)
