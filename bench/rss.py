"""Server RSS over a bounded run of forked calls (issue 11: memory must follow the live calls).

    .venv/bin/python bench/rss.py [--rate 80] [--seconds 210] [--interval 10] [--accounts 200]

Runs the forked-call scenario of `bench_calls.py` (authenticated INVITE, two devices ring, one
answers, the other is cancelled, BYE after 200 ms) at a fixed rate and samples the server's
VmRSS every `--interval` seconds, then keeps sampling for 40 s after the load (Timer J/M/D
are 32 s). Before the cancelled-timer fix a call's context lived ~180 s (its cancelled Timer C
stayed in the heap) so RSS climbed for three minutes; now it should level after ~35 s.
Before/after on older code: `PYTHONPATH=/path/to/old/checkout .venv/bin/python bench/rss.py`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_load import call_bed, start_caller
from benchlib import rss_bytes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=80.0, help="calls per second (default 80)")
    ap.add_argument("--seconds", type=float, default=210.0, help="seconds of load (default 210)")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between RSS samples")
    ap.add_argument("--accounts", type=int, default=200)
    ap.add_argument("--after", type=float, default=40.0, help="seconds sampled after the load")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    if not (0 < args.rate <= 2000 and 0 < args.seconds <= 3600 and args.interval >= 1):
        ap.error("--rate must be in (0, 2000], --seconds in (0, 3600], --interval >= 1")
    samples: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="onenumber-rss-") as tmp, \
            call_bed(Path(tmp), accounts=args.accounts, lifetime=args.seconds + args.after + 120) as bed:
        pid = bed.server.pid
        samples.append((0.0, rss_bytes(pid) / 2**20))
        caller = start_caller(bed, args.rate, args.seconds)
        t0 = time.monotonic()
        end = t0 + args.seconds + args.after
        while time.monotonic() < end:
            time.sleep(args.interval)
            samples.append((time.monotonic() - t0, rss_bytes(pid) / 2**20))
            print(f"  t={samples[-1][0]:6.0f} s  RSS {samples[-1][1]:7.1f} MiB", flush=True)
        res = caller.wait(30)
    peak = max(s[1] for s in samples)
    at_load_end = min(samples, key=lambda s: abs(s[0] - args.seconds))
    report = {
        "rate": args.rate, "seconds": args.seconds, "calls": res.calls, "ok": res.successful,
        "failed_pct": round(res.failure_pct, 2), "rss_start_mib": round(samples[0][1], 1),
        "rss_peak_mib": round(peak, 1), "rss_at_load_end_mib": round(at_load_end[1], 1),
        "rss_final_mib": round(samples[-1][1], 1),
        "samples": [(round(t), round(m, 1)) for t, m in samples],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
