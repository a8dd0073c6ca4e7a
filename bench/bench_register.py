"""REGISTER benchmark (issue 2): authenticated REGISTER/s at increasing rates, memory per
binding in the running server, and a py-spy profile of one step.

Depends on benchlib (processes, SIPp, /proc readings); no test code.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import (
    OneNumberServer,
    SippResult,
    auth_keyword,
    count_bindings,
    cpu_seconds,
    fmt,
    free_port,
    provision,
    register_rows,
    rss_bytes,
    run_sipp,
    wait_idle,
    wait_workers,
    workers_args,
    write_csv,
)

SATURATED_PCT = 20.0  # stop raising the rate once this many registrations fail
TIMER_J = 33.0  # UDP non-INVITE server transactions live 64*T1 = 32 s after their answer


@dataclass
class Step:
    rate: float
    result: SippResult
    server_cpu: float  # CPU seconds the server used during the step
    wall: float

    @property
    def cpu_pct(self) -> float:
        return 100.0 * self.server_cpu / self.wall if self.wall else 0.0

    @property
    def cpu_us_per_call(self) -> float | None:
        ok = self.result.successful
        return 1e6 * self.server_cpu / ok if ok else None

    def row(self) -> dict:
        r = self.result
        return {
            "attempted_per_s": self.rate, "achieved_per_s": round(r.achieved, 1), "calls": r.calls,
            "ok": r.successful, "failed": r.calls - r.successful, "failure_pct": round(r.failure_pct, 2),
            "p50_ms": r.pct(50), "p99_ms": r.pct(99), "server_cpu_pct": round(self.cpu_pct, 1),
            "server_cpu_us_per_call": None if self.cpu_us_per_call is None else round(self.cpu_us_per_call),
            "sipp_cpu_s": round(r.sipp_cpu, 2),
        }


def run_step(
    server: Any, scenario: str, inf: Path, rate: float, seconds: float, workdir: Path,
    local_port: int, pids: list[int] | None = None,
) -> Step:
    wait_idle(server.sip_port)
    watched = pids or [server.pid]
    cpu0 = sum(cpu_seconds(p) for p in watched)
    t0 = time.monotonic()
    res = run_sipp(scenario, server.sip_port, workdir=workdir, calls=max(1, int(rate * seconds)), rate=rate,
                   inf=inf, timeout=seconds + 15, local_port=local_port)
    wall = time.monotonic() - t0
    cpu1 = sum(cpu_seconds(p) for p in watched)
    return Step(rate, res, cpu1 - cpu0, wall)


def best_rate(steps: list[Step]) -> Step | None:
    good = [s for s in steps if s.result.failure_pct < 1.0 and s.result.successful]
    return max(good, key=lambda s: s.rate) if good else None


def run_register(
    workdir: Path, *, accounts: int, devices: int, rates: list[float], seconds: float,
    profile_rate: float | None, workers: int = 1,
) -> dict:
    """Authenticated REGISTER at each rate; with `workers` > 1, `serve --workers N` sharing Redis
    (the CPU of the supervisor, the workers and Redis counted)."""
    extra, watch = workers_args(workers)
    server = OneNumberServer(workdir / "server", extra=extra)
    devs = provision(server.db, accounts, devices)
    inf = write_csv(workdir / "users.csv", [(d.account, d.auth_username, auth_keyword(d)) for d in devs])
    server.start()
    wait_workers(server, workers)
    port = free_port()
    out: dict = {"accounts": accounts, "devices": len(devs), "step_seconds": seconds, "steps": [],
                 "workers": workers}
    try:
        # set-up, not measured: every device holds its binding before the rate steps begin
        warm = register_rows(server.sip_port, [(d.account, d.auth_username, auth_keyword(d)) for d in devs],
                             db=server.db, workdir=workdir, local_port=port, name="warmup")
        out["warmup"] = {"ok": warm.registered, **warm.summary()}
        if not warm.complete:
            out["error"] = f"warm-up registrations: {warm.registered}/{len(devs)} ok; {warm.errors[:500]}"
            return out
        steps: list[Step] = []
        for rate in rates:
            prof = None
            if profile_rate is not None and rate == profile_rate:
                prof = start_profile(server.pid, workdir / "profile.txt", seconds)
            step = run_step(server, "register.xml", inf, rate, seconds, workdir, port, watch(server))
            if prof is not None:
                out["profile"] = finish_profile(prof, workdir / "profile.txt")
                out["profile"]["rate"] = rate
            steps.append(step)
            out["steps"].append(step.row())
            label = "REGISTER" if workers <= 1 else f"REGISTER ({workers} workers)"
            print(f"  {label} {rate:>6.0f}/s: " + row_text(step.row()), flush=True)
            if step.result.failure_pct > SATURATED_PCT:
                break
        best = best_rate(steps)
        out["best"] = best.row() if best else None
        time.sleep(0.3)  # let the write-behind flush
        out["bindings_persisted"] = count_bindings(server.db)
        out["server_rss_mib"] = round(rss_bytes(server.pid) / 2**20, 1)
    finally:
        server.stop()
    return out


def row_text(r: dict) -> str:
    return (
        f"achieved {r['achieved_per_s']:>7.1f}/s, failures {r['failure_pct']:5.2f} %, "
        f"p50 {fmt(r['p50_ms'], 0)} ms, p99 {fmt(r['p99_ms'], 0)} ms, server CPU {r['server_cpu_pct']:5.1f} %"
        f" ({r['server_cpu_us_per_call']} µs/call)"
    )


# ------------------------------------------------------------------------------------- memory


def run_memory(workdir: Path, *, points: list[int], rate: float, settle: float) -> dict:
    """Server RSS before and after holding each number of distinct bindings.

    Devices hold at most 10 bindings each, so there are max(points)/10 devices (8 per
    account). Every phase runs long enough (≥ Timer J) to reach the steady-state number of
    live transactions for `rate`, so the RSS difference between two phases is the bindings,
    not the transaction table."""
    per_dev = 10
    devices = math.ceil(max(points) / per_dev)
    accounts = math.ceil(devices / 8)
    server = OneNumberServer(workdir / "server")
    devs = provision(server.db, accounts, 8, first=300000)[:devices]
    rows = [(d.account, f"{d.auth_username}-{j}", auth_keyword(d)) for j in range(per_dev) for d in devs]
    server.start()
    port = free_port()
    out: dict = {"rate": rate, "devices": devices, "points": []}
    try:
        time.sleep(0.5)
        out["rss_start_mib"] = round(rss_bytes(server.pid) / 2**20, 1)
        prev_n, prev_rss = 0, rss_bytes(server.pid)
        for n in points:
            inf = write_csv(workdir / f"bindings-{n}.csv", rows[:n])
            calls = max(n, int(rate * settle))  # a short phase re-registers (refreshes) the same bindings
            wait_idle(server.sip_port, 10.0)  # a server just started runs late for a moment and sheds
            res = run_sipp("register.xml", server.sip_port, workdir=workdir, calls=calls, rate=rate, inf=inf,
                           timeout=calls / rate + 30, local_port=port)
            # the measured load may lose some to 503 (a burst the overload control sheds, and SIPp
            # does not retry): those register again, so the point holds the n bindings it names
            reg = register_rows(server.sip_port, rows[:n], db=server.db, workdir=workdir, local_port=port,
                                rate=rate, first=res, name=f"bindings-{n}")
            wait_idle(server.sip_port)
            time.sleep(0.5)
            rss = rss_bytes(server.pid)
            held = count_bindings(server.db)
            point = {
                "bindings": n, "held": held, "registrations_ok": res.successful, "of": calls,
                "registered_again": reg.retried,
                "rss_mib": round(rss / 2**20, 1),
                "bytes_per_binding_vs_previous": round((rss - prev_rss) / max(held - prev_n, 1)),
            }
            out["points"].append(point)
            print(f"  memory: {held} bindings held, RSS {point['rss_mib']} MiB "
                  f"({point['bytes_per_binding_vs_previous']} B/binding vs previous point)", flush=True)
            prev_n, prev_rss = held, rss
    finally:
        server.stop()
    return out


def run_memory_inprocess(counts: list[int]) -> dict:
    """Bytes per binding in `services.location.Location` (Binding objects + indexes), by tracemalloc."""
    import gc
    import tracemalloc

    from onenumber.routing.model import Binding
    from onenumber.services.location import Location

    out = {}
    for n in counts:
        gc.collect()
        tracemalloc.start()
        loc = Location(None)
        before = tracemalloc.get_traced_memory()[0]
        now = time.time()
        local = ("127.0.0.1", 15060)

        def make(i: int, now: float = now, local: tuple[str, int] = local) -> Binding:
            dev, j = divmod(i, 10)
            account = str(400000 + dev // 8)
            user = f"{account}_{dev % 8 + 1}"
            return Binding(
                account=account, auth_username=user, contact=f"sip:{user}-{j}@127.0.0.1:40000;transport=UDP",
                expires_at=now + 3600 + i % 600, transport="udp", source=("127.0.0.1", 40000), local=local,
                user_agent="".join(("SIPp", " bench")), call_id=f"{i}-12345@127.0.0.1", cseq=2,
            )

        loc.load(make(i) for i in range(n))
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        assert loc.count() == n
        out[str(n)] = round((after - before) / n)
        del loc
    return out


# ------------------------------------------------------------------------------------- profile


def start_profile(pid: int, path: Path, seconds: float) -> subprocess.Popen | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return None
    args = [spy, "record", "-p", str(pid), "-d", str(int(seconds) + 2), "-r", "200", "--nonblocking",
            "-f", "raw", "-o", str(path)]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish_profile(proc: subprocess.Popen | None, path: Path, top: int = 25) -> dict:
    if proc is None:
        return {"error": "py-spy not installed (pip install py-spy)"}
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if not path.exists():
        return {"error": f"py-spy wrote nothing: {err[-300:]}"}
    return summarize_collapsed(path.read_text(), top)


def summarize_collapsed(text: str, top: int = 25) -> dict:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    if not total:
        return {"samples": 0}
    return {
        "samples": total,
        "self": [(f, round(100 * c / total, 1)) for f, c in own.most_common(top)],
        "inclusive": [(f, round(100 * c / total, 1)) for f, c in incl.most_common(top + 15)],
    }


def _short(frame: str) -> str:
    """`func (path/to/module.py:12)` → `func (module.py)`: lines differ per sample."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = file.split("/")
    file = "/".join(parts[parts.index("onenumber"):]) if "onenumber" in parts else parts[-1]
    return f"{name} ({file})"
