"""BLF watchers against the running server (issue 10's speed criterion, end to end): the CPU the
server spends per forked call when every called account is watched by 3 BLF subscribers, against
the same run without watchers.

    .venv/bin/python bench/bench_blf_load.py [--accounts 668] [--watchers 3] [--rate 100]
                                             [--seconds 20] [--rounds 2] [--keep DIR]

Each round starts two fresh servers one after the other, alike but for the watchers: `accounts`
accounts × 2 devices registered at the two SIPp UAS of the forked-call bench (`bench_calls.py`:
one answers, the other rings and is cancelled); the first half of the accounts are called at
`rate` calls/s for `seconds` by the second half, with the authenticated caller of that bench. In
the watched server a SIPp process first holds `watchers` `Event: dialog` subscriptions per called
account (digest-authenticated with another account's device, `scenarios/blf_watch.xml`) and
answers every NOTIFY 200, as deskphones' BLF keys do: each call shows (trying →) early →
confirmed → terminated to each of its 3 watchers, 9 to 12 NOTIFYs and their 200s. The callers'
accounts are not watched (their outgoing calls would add as many again).
Server CPU per call = the server's CPU during the calls / the calls completed. The server runs on
core 0, SIPp on core 1, as in `make bench`; the CPU is read from /proc, so a loaded machine adds
noise (rounds alternate the two servers to spread it). `bench_blf.py` measures the same through
the sans-IO core alone (instructions under callgrind).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_register import row_text, run_step
from benchlib import (
    LOOPBACK,
    SCENARIOS,
    SIPP_CORE,
    OneNumberServer,
    auth_keyword,
    free_port,
    provision,
    register_rows,
    scrape_metrics,
    start_sipp_uas,
    stop_pid,
    write_csv,
)

TRACE: list[str] = []  # ["-trace_msg"] to see every NOTIFY (with --keep)
SUBSCRIBES = 'onenumber_sip_requests_total{method="SUBSCRIBE"}'


def _watch(server: OneNumberServer, rows: list[tuple[str, str, str]], workdir: Path,
           timeout: float) -> tuple[subprocess.Popen, Path]:
    """The watchers' SIPp: every row (target, watcher account, auth keyword) subscribes at
    200/s and then answers NOTIFYs until stopped."""
    run_dir = workdir / "watchers"
    run_dir.mkdir(parents=True, exist_ok=True)
    inf = write_csv(workdir / "watchers.csv", rows)
    args = ["taskset", "-c", SIPP_CORE, "sipp", f"{LOOPBACK}:{server.sip_port}", "-sf",
            str(SCENARIOS / "blf_watch.xml"), "-i", LOOPBACK, "-p", str(free_port()),
            "-mp", str(free_port(span=4)), "-inf", str(inf), "-m", str(len(rows)), "-l", str(len(rows)),
            "-r", "200", "-buff_size", "8388608", "-timeout", f"{int(timeout)}s", "-nostdin",
            "-max_recv_loops", "10000", "-trace_err", "-trace_counts", *TRACE]
    log = open(run_dir / "sipp.log", "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(args, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT), run_dir


def _notifies_answered(run_dir: Path) -> int | None:
    """NOTIFYs the watchers received: SIPp's per-message counts (`-trace_counts`, a CSV whose
    columns are `<n>_<message>_Recv` and the like, a row per dump; the last row at its exit)."""
    for path in run_dir.glob("*_counts.csv"):
        lines = [line.rstrip(";").split(";") for line in path.read_text().splitlines() if line.strip()]
        if len(lines) < 2:
            continue
        head, last = lines[0], lines[-1]
        cols = [i for i, name in enumerate(head) if name.endswith("NOTIFY_Recv")]
        if cols and len(last) > cols[0]:
            return int(last[cols[0]] or 0)
    return None


def run_variant(workdir: Path, *, accounts: int, watchers: int, rate: float, seconds: float) -> dict:
    server = OneNumberServer(workdir / "server")
    devs = provision(server.db, accounts, 2)
    numbers = sorted({d.account for d in devs})
    server.start()
    port_a, port_b = free_port(), free_port()
    uas: list[subprocess.Popen] = []
    watch: subprocess.Popen | None = None
    out: dict = {"watchers_per_account": watchers}
    try:
        for pos, port in ((0, port_a), (1, port_b)):
            rows = [(d.account, d.auth_username, auth_keyword(d)) for d in devs if d.position == pos]
            reg = register_rows(server.sip_port, rows, db=server.db, workdir=workdir, local_port=port,
                                name=f"devices-{pos}")
            if not reg.complete:
                out["error"] = f"device registrations: {reg.registered}/{len(rows)}; {reg.errors[:400]}"
                return out
        total = seconds + 120
        uas = [start_sipp_uas("uas_answer.xml", port_a, workdir=workdir, timeout=total, remote_port=server.sip_port),
               start_sipp_uas("uas_cancelled.xml", port_b, workdir=workdir, timeout=total,
                              remote_port=server.sip_port)]
        # the first half of the accounts are called (and watched), by the second half (not
        # watched: the measure is the cost of watchers on the called account)
        callees, callers = numbers[: len(numbers) // 2], numbers[len(numbers) // 2:]
        if watchers:
            second = {d.account: d for d in devs if d.position == 1}  # a watcher's credentials
            rows_w = []
            for i, target in enumerate(callees):
                for k in range(watchers):
                    who = numbers[(i + 1 + k) % len(numbers)]
                    rows_w.append((target, who, auth_keyword(second[who])))
            watch, run_dir = _watch(server, rows_w, workdir, total)
            deadline = time.monotonic() + 60
            subs = 0.0
            while time.monotonic() < deadline:  # every SUBSCRIBE twice: challenged, then accepted
                subs = scrape_metrics(server.http_port).get(SUBSCRIBES, 0.0)
                if subs >= 2 * len(rows_w) or watch.poll() is not None:
                    break
                time.sleep(0.5)
            out["subscribe_requests"] = int(subs)
            out["subscriptions"] = len(rows_w)
            if subs < 2 * len(rows_w):
                out["error"] = f"only {int(subs)} of {2 * len(rows_w)} SUBSCRIBEs reached the server"
                return out
            time.sleep(2.0)  # the initial NOTIFYs and their 200s
        time.sleep(0.5)
        keyword = {d.account: auth_keyword(d) for d in devs if d.position == 0}
        inf = write_csv(workdir / "calls.csv", [(callee, caller, keyword[caller])
                                                 for callee, caller in zip(callees, callers, strict=True)])
        step = run_step(server, "call_uac_auth.xml", inf, rate, seconds, workdir, free_port(), pids=[server.pid])
        out.update(step.row())
        print(f"  {watchers} watchers/account, calls {rate:>5.0f}/s: " + row_text(step.row()), flush=True)
        if watch is not None:
            stop_pid(watch, 5)
            out["notifies_answered"] = _notifies_answered(run_dir)
    finally:
        for p in [*uas, *([watch] if watch is not None else [])]:
            stop_pid(p, 5)
        server.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=668,
                    help="accounts (even): the first half called and watched, by the second half (default 668)")
    ap.add_argument("--watchers", type=int, default=3, help="watchers per called account (default 3)")
    ap.add_argument("--rate", type=float, default=100.0, help="calls/s (default 100)")
    ap.add_argument("--seconds", type=float, default=20.0, help="seconds of calls per run (default 20)")
    ap.add_argument("--rounds", type=int, default=2, help="rounds of (no watchers, watchers) (default 2)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--keep", type=Path, help="work in this directory and keep it (servers' logs, SIPp's files)")
    args = ap.parse_args(argv)
    runs: dict[str, list[dict]] = {"none": [], "watched": []}
    with tempfile.TemporaryDirectory(prefix="onenumber-blf-") as tmp_dir:
        tmp = args.keep or Path(tmp_dir)
        for r in range(args.rounds):
            for name, watchers in (("none", 0), ("watched", args.watchers)):
                runs[name].append(run_variant(Path(tmp) / f"{name}-{r}", accounts=args.accounts,
                                              watchers=watchers, rate=args.rate, seconds=args.seconds))
    report: dict = {"accounts": args.accounts, "watchers": args.watchers, "rate": args.rate,
                    "seconds": args.seconds, "runs": runs}
    errors = [run["error"] for rs in runs.values() for run in rs if run.get("error")]
    cpu = {name: [run["server_cpu_us_per_call"] for run in rs if run.get("server_cpu_us_per_call")]
           for name, rs in runs.items()}
    print(f"\nBLF end to end: {args.accounts} accounts × 2 devices; calls at {args.rate:.0f}/s to {args.accounts // 2} "
          f"accounts, each watched by {args.watchers} ({args.accounts // 2 * args.watchers} subscriptions)")
    for name, rs in runs.items():
        print(f"  {name:>8}: CPU µs per call {cpu[name]}, failed {[run.get('failed') for run in rs]}"
              + (f", NOTIFYs answered {[run.get('notifies_answered') for run in rs]}" if name == "watched" else ""))
    if cpu["none"] and cpu["watched"]:
        base, watched = statistics.median(cpu["none"]), statistics.median(cpu["watched"])
        report["extra_pct"] = round(100 * (watched / base - 1), 1)
        print(f"  medians {base:.0f} → {watched:.0f} µs per call: {report['extra_pct']:+.1f} % with watchers "
              "(issue 10's target: under +30 %)")
    for e in errors:
        print(f"  ERROR: {e}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
