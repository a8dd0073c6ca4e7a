"""Soak (issue 11, "Crash and soak"): forked calls at half the clean capacity for 10 minutes.

    .venv/bin/python bench/soak.py [--capacity 100 | --measure] [--seconds 600] [--interval 5]
                                   [--workers 2 --redis redis://127.0.0.1:6379/10] [--json FILE]

The test bed of `overload.py` and `rss.py` (`bench_load.call_bed`: devices registered at two
SIPp UAS, one answers, the other is cancelled; the caller authenticates and hangs up after
200 ms). The caller offers `capacity / 2` calls per second for `--seconds`; every `--interval`
seconds the script samples the server's RSS (all of its processes) and, from `/metrics`, the
live transactions, dialogs and calls. Then it waits `--drain` seconds (Timer J/M/D: 32 s) and
samples once more.

Criteria (exit code 1 when one fails):
- 0 failed calls (SIPp's count, plus calls that never completed);
- RSS flat within 5 %: the mean of the samples of the load's second minute against the mean of
  its last minute (`--rss-tolerance`; a run shorter than 4 minutes compares its second and
  last quarters);
- no growth in live transactions or dialogs: the same two windows, the last at most 10 % (plus
  a few, `--live-slack`) above the first; and after the drain no dialogs and no calls left.

The clean capacity: `--capacity` (default 100 calls/s: the clean figure bench/README.md
reports for this shared 2-core machine), or `--measure` for the ramp of `overload.py`
(8 s steps, < 1 % failed). The machine this runs on matters: on a shared one, another
engineer's load shows up as failed calls.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import CallBed, call_bed, start_caller
from benchlib import metric_sum
from overload import RAMP, failures_by_kind, step

DEFAULT_CAPACITY = 100.0


def redis_extra(workers: int, url: str | None) -> tuple[str, ...]:
    """The serve options of a run with worker processes (its Redis database flushed first, when
    it holds nothing but OneNumber's keys)."""
    if workers <= 1:
        return ()
    if not url:
        raise SystemExit("--workers N needs --redis URL")
    import redis

    client = redis.Redis.from_url(url)
    strangers = [k for k in client.scan_iter(count=1000) if not k.startswith(b"onenumber:")]
    if strangers:  # a database someone else uses: never flushed
        raise SystemExit(f"{url} holds keys that are not OneNumber's ({strangers[:3]}): choose another database")
    client.flushdb()
    client.close()
    return ("--workers", str(workers), "--redis", url)


def sample_live(bed: CallBed, t: float) -> dict[str, float]:
    """RSS and the live counts at one moment (None for a count when /metrics did not answer)."""
    row: dict[str, float] = {"t": round(t, 1), "rss_mib": round(bed.server.rss() / 2**20, 1)}
    try:
        m = bed.server.metrics()
    except OSError:
        return row
    row["transactions"] = metric_sum(m, "onenumber_transactions")
    row["dialogs"] = metric_sum(m, "onenumber_dialogs")
    row["calls_active"] = metric_sum(m, "onenumber_calls_active")
    row["in_progress"] = metric_sum(m, "onenumber_requests_in_progress")
    return row


def window_mean(samples: list[dict[str, float]], key: str, start: float, end: float) -> float | None:
    values = [s[key] for s in samples if start <= s["t"] < end and key in s]
    return round(statistics.fmean(values), 1) if values else None


def judge(report: dict, rss_tolerance: float, live_slack: float) -> list[str]:
    """The criteria that failed, in words."""
    bad = []
    if report["failed_calls"] > 0:
        bad.append(f"{report['failed_calls']} failed call(s)")
    first, last = report["rss_early_mib"], report["rss_late_mib"]
    if first is None or last is None or abs(last - first) > rss_tolerance / 100 * first:
        bad.append(f"RSS {first} → {last} MiB ({report['rss_change_pct']} %), beyond ±{rss_tolerance} %")
    for key in ("transactions", "dialogs"):
        a, b = report[f"{key}_early"], report[f"{key}_late"]
        if a is None or b is None or b > a * 1.10 + live_slack:
            bad.append(f"live {key} grew: {a} → {b}")
    drained = report["drained"]
    if drained.get("dialogs", 1) != 0 or drained.get("calls_active", 1) != 0:
        bad.append(f"after the drain: {drained}")
    return bad


def server_warnings(bed: CallBed, limit: int = 50) -> list[str]:
    """The server's log lines (it logs at warning level here: overload starting and ending, slow
    collections, errors), the first `limit` of them: what a failed call's second shows."""
    lines: list[str] = []
    for log in sorted(bed.workdir.rglob("server.log")):
        lines += [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[:limit]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capacity", type=float, help=f"clean capacity in calls/s (default {DEFAULT_CAPACITY:.0f})")
    ap.add_argument("--measure", action="store_true", help="measure the clean capacity first (overload.py's ramp)")
    ap.add_argument("--fraction", type=float, default=0.5, help="offered load as a share of the capacity (0.5)")
    ap.add_argument("--seconds", type=float, default=600.0, help="seconds of load (default 600)")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples (default 5)")
    ap.add_argument("--drain", type=float, default=40.0, help="seconds waited after the load (default 40)")
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--workers", type=int, default=1, help="serve --workers N (needs --redis)")
    ap.add_argument("--redis", help="Redis URL for --workers (its database is flushed first)")
    ap.add_argument("--rss-tolerance", type=float, default=5.0, help="allowed RSS change in %% (default 5)")
    ap.add_argument("--live-slack", type=float, default=5.0, help="allowed growth in live counts beyond 10 %%")
    ap.add_argument("--json", type=Path, help="also write the figures (and every sample) here")
    args = ap.parse_args(argv)
    if not (0 < args.fraction <= 2 and 10 <= args.seconds <= 7200 and 1 <= args.interval <= 60):
        ap.error("--fraction in (0, 2], --seconds in [10, 7200], --interval in [1, 60]")
    extra = redis_extra(args.workers, args.redis)
    samples: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="onenumber-soak-") as tmp, \
            call_bed(Path(tmp), accounts=args.accounts, lifetime=args.seconds + args.drain + 600,
                     extra=extra) as bed:
        capacity = args.capacity
        if args.measure:
            for rate in RAMP:
                s = step(bed, rate, 8.0)
                print(f"  ramp {rate:>5.0f}/s: failed {s['failed_pct']} %", flush=True)
                if s["failed_pct"] >= 1.0:
                    break
                capacity = rate
            if capacity is None:
                print("no clean step: the machine is too loaded", file=sys.stderr)
                return 1
        capacity = capacity or DEFAULT_CAPACITY
        rate = capacity * args.fraction
        print(f"soak: {rate:.0f} calls/s ({args.fraction:.0%} of {capacity:.0f}) for {args.seconds:.0f} s, "
              f"{args.workers} worker(s); a sample every {args.interval:.0f} s", flush=True)
        deadline = time.monotonic() + 30
        while "transactions" not in sample_live(bed, 0):  # worker 0's HTTP is up
            if time.monotonic() > deadline:
                print("/metrics did not answer", file=sys.stderr)
                return 1
            time.sleep(0.5)
        t0 = time.monotonic()
        samples.append(sample_live(bed, 0.0))
        caller = start_caller(bed, rate, args.seconds, timeout=args.seconds + 60)
        end = t0 + args.seconds + args.drain
        next_at = t0 + args.interval
        while time.monotonic() < end:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += args.interval
            s = sample_live(bed, time.monotonic() - t0)
            samples.append(s)
            if len(samples) % max(1, int(60 / args.interval)) == 0:
                print(f"  t={s['t']:6.0f} s  RSS {s['rss_mib']:7.1f} MiB  transactions {s.get('transactions')}  "
                      f"dialogs {s.get('dialogs')}  calls {s.get('calls_active')}", flush=True)
        res = caller.wait(90)
        fails = failures_by_kind(caller)
        failed_when = [(round(r["t"]), int(r["failed"])) for r in caller.timeline() if r["failed"]]
        warnings = server_warnings(bed)
    # the windows compared: the minute after the first one, and the load's last minute (a short
    # run: a quarter of it after its first quarter, and its last quarter)
    span = min(60.0, args.seconds / 4)
    early, late = (span, 2 * span), (args.seconds - span, args.seconds + 0.5)
    report: dict = {
        "rate": rate, "capacity": capacity, "seconds": args.seconds, "workers": args.workers,
        "calls": res.calls, "ok": res.successful, "failed_calls": res.calls - res.successful,
        "sipp_failures": fails, "failed_per_second": failed_when, "server_warnings": warnings,
        "p50_ms": res.pct(50), "p99_ms": res.pct(99),
        "rss_start_mib": samples[0]["rss_mib"],
        "windows_s": [early, late],
        "rss_early_mib": window_mean(samples, "rss_mib", *early),
        "rss_late_mib": window_mean(samples, "rss_mib", *late),
    }
    a, b = report["rss_early_mib"], report["rss_late_mib"]
    report["rss_change_pct"] = round(100 * (b - a) / a, 2) if a and b else None
    for key in ("transactions", "dialogs", "calls_active"):
        report[f"{key}_start"] = samples[0].get(key)
        report[f"{key}_early"] = window_mean(samples, key, *early)
        report[f"{key}_late"] = window_mean(samples, key, *late)
    report["drained"] = {k: v for k, v in samples[-1].items() if k != "t"}
    bad = judge(report, args.rss_tolerance, args.live_slack)
    report["verdict"] = "ok" if not bad else "FAILED: " + "; ".join(bad)
    print(json.dumps(report))
    if args.json:
        args.json.write_text(json.dumps(report | {"samples": samples}, indent=2, default=str))
    for line in warnings:
        print(f"  server: {line}")
    print(f"soak {report['verdict']}: {res.successful}/{res.calls} calls ok at {rate:.0f}/s, "
          f"RSS {a} → {b} MiB ({report['rss_change_pct']} %), transactions {report['transactions_early']} → "
          f"{report['transactions_late']}, dialogs {report['dialogs_early']} → "
          f"{report['dialogs_late']}; after the drain {report['drained']}")
    return 0 if not bad else 1


if __name__ == "__main__":
    raise SystemExit(main())
