"""Overload benchmark (issue 11): offer about twice the clean capacity in forked calls for a
bounded time and see whether the server sheds (503) instead of collapsing.

    .venv/bin/python bench/overload.py [--capacity N] [--factor 2] [--seconds 30] [--accounts 500] [--set NAME=VALUE]

1. Clean capacity: unless `--capacity` is given, a short ramp (8 s steps) finds the highest rate
   with < 1 % failed calls (the same scenario as `bench_calls.py`).
2. Overload: `factor` × capacity for `--seconds`. Reported: calls completed per second (over the
   offered time), their share of the clean capacity, the calls refused with 503 (SIPp counts them
   as "unexpected message"), the calls that failed otherwise (timeouts: the collapse we avoid),
   p50/p99 of the accepted calls (authenticated INVITE → 200), and the server's own count of
   refused requests (from its "overload over" log lines).
3. Recovery: from the end of the offered load, the time until the server answers an OPTIONS
   within 20 ms again, then a step at half the capacity (its failures and p99 say "back to normal").
The machine this runs on matters: on a shared, loaded machine figures move by tens of percent.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import Caller, call_bed, start_caller
from benchlib import cpu_seconds, fmt, options_ping, percentile, wait_idle

RAMP = [100, 200, 300, 400, 500, 600, 800, 1000, 1200]


def failures_by_kind(caller: Caller) -> dict[str, int]:
    files = list(caller.run_dir.glob("*_.csv"))
    if not files:
        return {}
    with open(files[0], newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return {}
    col = {name: i for i, name in enumerate(rows[0])}
    last = rows[-1]
    kinds = {"refused_503": "FailedUnexpectedMessage(C)", "udp_retrans": "FailedMaxUDPRetrans(C)",
             "recv_timeout": "FailedTimeoutOnRecv(C)", "other": "FailedCall(C)"}
    out = {k: int(last[col[c]]) for k, c in kinds.items() if c in col}
    out["other"] = out.get("other", 0) - sum(v for k, v in out.items() if k != "other")
    return out


def step(bed, rate: float, seconds: float) -> dict:  # type: ignore[no-untyped-def]
    wait_idle(bed.server.sip_port)
    cpu0 = cpu_seconds(bed.server.pid)
    t0 = time.monotonic()
    caller = start_caller(bed, rate, seconds)
    res = caller.wait(seconds + 40)
    return {
        "rate": rate, "ok": res.successful, "calls": res.calls, "failed_pct": round(res.failure_pct, 2),
        "achieved_per_s": round(res.successful / seconds, 1), "p50_ms": res.pct(50), "p99_ms": res.pct(99),
        "cpu_s": round(cpu_seconds(bed.server.pid) - cpu0, 2), "wall_s": round(time.monotonic() - t0, 1),
        "failures": failures_by_kind(caller),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capacity", type=float, help="clean capacity in calls/s (default: measured by a ramp)")
    ap.add_argument("--factor", type=float, default=2.0, help="offered load as a multiple of the capacity")
    ap.add_argument("--seconds", type=float, default=30.0, help="seconds of overload (default 30)")
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                    help="a server setting for the run, e.g. overload_max_queue_ms=50 (repeatable)")
    args = ap.parse_args(argv)
    if not (0 < args.factor <= 10 and 0 < args.seconds <= 600):
        ap.error("--factor must be in (0, 10] and --seconds in (0, 600]")
    try:
        settings = dict(item.split("=", 1) for item in args.set)
    except ValueError:
        ap.error("--set takes NAME=VALUE, e.g. --set overload_max_queue_ms=50")
    report: dict = {"factor": args.factor, "seconds": args.seconds, "settings": settings}
    with tempfile.TemporaryDirectory(prefix="onenumber-overload-") as tmp, \
            call_bed(Path(tmp), accounts=args.accounts, lifetime=3600, settings=settings) as bed:
        capacity = args.capacity
        if capacity is None:
            ramp = []
            for rate in RAMP:
                s = step(bed, rate, 8.0)
                ramp.append(s)
                print(f"  ramp {rate:>5.0f}/s: ok {s['ok']}/{s['calls']}, failed {s['failed_pct']} %, "
                      f"p99 {fmt(s['p99_ms'], 0)} ms", flush=True)
                if s["failed_pct"] >= 1.0:
                    break
                capacity = rate
            report["ramp"] = ramp
            if capacity is None:
                print("no clean step: the machine is too loaded", file=sys.stderr)
                return 1
        report["capacity"] = capacity
        offered = capacity * args.factor
        print(f"overload: {offered:.0f} calls/s offered (×{args.factor} of {capacity:.0f}) for {args.seconds:.0f} s",
              flush=True)
        wait_idle(bed.server.sip_port)
        log_before = (bed.server.workdir / "server.log").read_text(errors="replace")
        cpu0 = cpu_seconds(bed.server.pid)
        t0 = time.monotonic()
        caller = start_caller(bed, offered, args.seconds)
        time.sleep(max(0.0, t0 + args.seconds - time.monotonic()))
        end_of_load = time.monotonic()
        recovered = None
        while time.monotonic() < end_of_load + 60:  # back to normal: OPTIONS answered within 20 ms
            rtt = options_ping(bed.server.sip_port, 0.5)
            if rtt is not None and rtt < 0.02:
                recovered = time.monotonic() - end_of_load
                break
            time.sleep(0.1)
        res = caller.wait(60)
        cpu = cpu_seconds(bed.server.pid) - cpu0
        log = (bed.server.workdir / "server.log").read_text(errors="replace")[len(log_before):]
        shed = [int(n) for n in re.findall(r"overload over: (\d+) request", log)]
        fails = failures_by_kind(caller)
        timeline = caller.timeline()
        report["overload"] = {
            "offered_per_s": offered, "calls": res.calls, "ok": res.successful,
            "completed_per_s": round(res.successful / args.seconds, 1),
            "completed_vs_capacity_pct": round(100 * res.successful / args.seconds / capacity, 1),
            "failures": fails, "p50_ms": res.pct(50), "p99_ms": res.pct(99),
            "server_cpu_pct": round(100 * cpu / (time.monotonic() - t0), 1),
            "server_refused_total": max(shed) if shed else None,
            "overload_log_lines": len(re.findall(r"overload \(", log)),
            # what started each shedding spell: lag, queue delay, queue or transactions
            "overload_reasons": dict(Counter(re.findall(r"overload \(([a-z ]+):", log))),
            "overload_first_lines": [line for line in log.splitlines() if "overload (" in line][:5],
            "recovery_s": None if recovered is None else round(recovered, 2),
            "timeline": [(round(r["t"]), r["ok"], r["failed"]) for r in timeline],
        }
        after = step(bed, capacity / 2, 10.0)
        report["after"] = after
        lat = [x for x in res.latencies_ms]
        report["overload"]["p999_ms"] = percentile(lat, 99.9)
    o = report["overload"]
    print(f"  completed {o['completed_per_s']}/s ({o['completed_vs_capacity_pct']} % of clean capacity "
          f"{capacity:.0f}/s), failures {o['failures']}, accepted calls p50 {fmt(o['p50_ms'], 0)} ms "
          f"p99 {fmt(o['p99_ms'], 0)} ms, server refused {o['server_refused_total']}, "
          f"recovery {o['recovery_s']} s")
    print(f"  after, at {after['rate']:.0f}/s: failed {after['failed_pct']} %, p99 {fmt(after['p99_ms'], 0)} ms")
    print(json.dumps({k: v for k, v in report.items() if k not in ("ramp",)} | {
        "overload": {k: v for k, v in o.items() if k != "timeline"}}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
