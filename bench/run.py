"""OneNumber load benchmarks: `make bench` (full, several minutes) or `bench/run.py --quick` (< 60 s).

Starts the server pinned to core 0, drives it with SIPp pinned to core 1 over 127.0.0.1,
and writes a report to bench/results/ (JSON + text) that it also prints. See bench/README.md
for what each figure means. Needs `sipp` and `taskset`; Kamailio and py-spy are optional.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_calls import run_calls, run_register_kamailio
from bench_memory import run_memory_restart
from bench_register import TIMER_J, run_memory, run_memory_inprocess, run_register
from benchlib import fmt

RESULTS = Path(__file__).resolve().parent / "results"

FULL = {
    "accounts": 1000, "devices": 2, "seconds": 10.0,
    "register_rates": [500, 1000, 1500, 2000, 3000, 4000, 5000], "profile_rate": 1000,
    "memory_points": [10_000, 100_000], "memory_rate": 1000.0, "memory_settle": TIMER_J + 5,
    "inprocess_counts": [10_000, 100_000], "restart_settle": 8.0,
    "call_rates": [50, 100, 200, 300, 500, 750, 1000, 1500], "call_profile_rate": 100,
}
QUICK = {
    "accounts": 20, "devices": 2, "seconds": 2.0,
    "register_rates": [100, 200], "profile_rate": None,
    "memory_points": [200, 1000], "memory_rate": 500.0, "memory_settle": 0.0,
    "inprocess_counts": [1000], "restart_settle": 1.0,
    "call_rates": [20], "call_profile_rate": None,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["register", "memory", "calls"], action="append",
                    help="run only these parts (repeatable); default: all")
    ap.add_argument("--quick", action="store_true", help="a smoke run of a few seconds per part")
    ap.add_argument("--seconds", type=float, help="seconds per load step")
    ap.add_argument("--register-rates", type=lambda s: [float(x) for x in s.split(",")])
    ap.add_argument("--call-rates", type=lambda s: [float(x) for x in s.split(",")])
    ap.add_argument("--no-kamailio", action="store_true", help="skip the Kamailio reference run")
    ap.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    ap.add_argument("--call-profile-rate", type=float, help="calls/s of the step py-spy records")
    ap.add_argument("--workers", type=int, default=None,
                    help="REGISTER and forked calls also with N worker processes sharing Redis "
                         "(db 9 on 127.0.0.1:6379, flushed), Redis CPU counted; default 2 (0 with --quick); 0 skips it")
    ap.add_argument("--out", type=Path, default=RESULTS, help="report directory (default bench/results)")
    args = ap.parse_args(argv)

    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            print(f"bench: '{tool}' is missing; run 'make peers' (sipp) or install util-linux", file=sys.stderr)
            return 2
    cfg = dict(QUICK if args.quick else FULL)
    if args.seconds:
        cfg["seconds"] = args.seconds
    if args.register_rates:
        cfg["register_rates"] = args.register_rates
    if args.call_rates:
        cfg["call_rates"] = args.call_rates
    if args.call_profile_rate:
        cfg["call_profile_rate"] = args.call_profile_rate
    if args.no_profile:
        cfg["profile_rate"] = cfg["call_profile_rate"] = None
    parts = args.only or ["register", "memory", "calls"]

    args.out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    report: dict = {"started": stamp, "quick": args.quick, "config": cfg, "machine": machine()}
    with tempfile.TemporaryDirectory(prefix="onenumber-bench-") as tmp:
        work = Path(tmp)
        workers = args.workers if args.workers is not None else (0 if args.quick else 2)
        if "register" in parts:
            print(f"REGISTER: {cfg['accounts']} accounts × {cfg['devices']} devices, digest, UDP", flush=True)
            report["register"] = run_register(
                work / "register", accounts=cfg["accounts"], devices=cfg["devices"],
                rates=cfg["register_rates"], seconds=cfg["seconds"], profile_rate=cfg["profile_rate"],
            )
            if workers > 1:  # the same with N worker processes sharing Redis (its CPU counted too)
                report["register_workers"] = run_register(
                    work / "register-workers", accounts=cfg["accounts"], devices=cfg["devices"],
                    rates=cfg["register_rates"], seconds=cfg["seconds"], profile_rate=None, workers=workers,
                )
            if not args.no_kamailio and shutil.which("kamailio"):  # the same work: digest REGISTER
                report["register_kamailio"] = run_register_kamailio(
                    work / "register-kamailio", accounts=cfg["accounts"], devices=cfg["devices"],
                    rates=cfg["register_rates"], seconds=cfg["seconds"],
                )
        if "memory" in parts:
            print("Memory per binding", flush=True)
            report["memory_inprocess"] = run_memory_inprocess(cfg["inprocess_counts"])
            report["memory_restart"] = run_memory_restart(
                work / "restart", points=cfg["inprocess_counts"], settle=cfg["restart_settle"]
            )
            report["memory_server"] = run_memory(
                work / "memory", points=cfg["memory_points"], rate=cfg["memory_rate"], settle=cfg["memory_settle"],
            )
        if "calls" in parts:
            print(f"Forked calls: {cfg['accounts']} accounts × 2 devices", flush=True)
            report["calls"] = run_calls(
                work / "calls", accounts=cfg["accounts"], rates=cfg["call_rates"], seconds=cfg["seconds"],
                kamailio=not args.no_kamailio, profile_rate=cfg["call_profile_rate"],
                workers=workers,
            )
    text = render(report)
    (args.out / f"bench-{stamp}.json").write_text(json.dumps(report, indent=2, default=str))
    (args.out / f"bench-{stamp}.txt").write_text(text)
    (args.out / "latest.txt").write_text(text)
    print()
    print(text)
    print(f"report: {args.out / f'bench-{stamp}.txt'} (and .json)")
    return 0


def machine() -> dict:
    kam = shutil.which("kamailio")
    sipp_v = subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout.strip().splitlines()
    return {
        "cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
        "sipp": next((line.strip() for line in sipp_v if "SIPp" in line), "?"),
        "kamailio": kam is not None,
        "sip_core": _sip_core(),
    }


def _sip_core() -> str:
    """"compiled" (mypyc: `make bench` builds it) or "pure": what the server under test imports,
    asked of a Python started as the server is (same PYTHONPATH, not this script's directory)."""
    out = subprocess.run([sys.executable, "-c", "import onenumber.sip as s; print(s.sip_core())"],
                         capture_output=True, text=True, cwd=tempfile.gettempdir())
    return out.stdout.strip() or f"unknown ({out.stderr.strip()[-200:]})"


def _steps_table(title: str, steps: list[dict]) -> list[str]:
    lines = [title, f"  {'rate/s':>7} {'achieved':>9} {'fail %':>7} {'p50 ms':>7} {'p99 ms':>7} "
                    f"{'CPU %':>6} {'CPU µs/call':>11}"]
    for s in steps:
        lines.append(
            f"  {s['attempted_per_s']:>7.0f} {s['achieved_per_s']:>9.1f} {s['failure_pct']:>7.2f} "
            f"{fmt(s['p50_ms'], 0):>7} {fmt(s['p99_ms'], 0):>7} {s['server_cpu_pct']:>6.1f} "
            f"{fmt(s['server_cpu_us_per_call'], 0):>11}"
        )
    return lines


def _profile(prof: dict | None) -> list[str]:
    if not prof:
        return []
    if not prof.get("samples"):
        return [f"  profile: {prof}"]
    out = [f"  profile at {prof['rate']:.0f}/s ({prof['samples']} samples), self time:"]
    out += [f"    {pct:5.1f} %  {name}" for name, pct in prof["self"][:15]]
    out.append("  inclusive time:")
    out += [f"    {pct:5.1f} %  {name}" for name, pct in prof["inclusive"][:30]]
    return out


def _register_vs(title: str, run: dict, one: dict | None, label: str) -> list[str]:
    """Another REGISTER run's table and how it compares with OneNumber's single process
    (`one`: its best step): highest clean rates and CPU per registration at those steps."""
    out = _steps_table(title, run.get("steps", []))
    if run.get("error"):
        out.append(f"  ERROR: {run['error']}")
    best = run.get("best")
    if not best:
        out.append("  no step had < 1 % failures")
    elif one and best.get("server_cpu_us_per_call") and one.get("server_cpu_us_per_call"):
        cpu, one_cpu = best["server_cpu_us_per_call"], one["server_cpu_us_per_call"]
        out.append(f"  {label}: highest clean rate {best['attempted_per_s']:.0f}/s vs {one['attempted_per_s']:.0f}/s "
                   f"with 1 worker in memory; CPU per registration {cpu} µs vs {one_cpu} µs "
                   f"(×{cpu / one_cpu:.2f}; the summary below gives the ratios to Kamailio+auth)")
    return [*out, ""]


def render(report: dict) -> str:
    out = [f"OneNumber benchmark {report['started']}{' (quick smoke run)' if report['quick'] else ''}",
           f"machine: {report['machine']}",
           f"SIP core: {report['machine'].get('sip_core', '?')} (make bench compiles it: bench/README.md)", ""]
    reg = report.get("register")
    if reg:
        out += _steps_table(
            f"Authenticated REGISTER (401 + 200 per registration), {reg['accounts']} accounts, "
            f"{reg['devices']} devices, {reg['step_seconds']:.0f} s per step:", reg.get("steps", []))
        if reg.get("error"):
            out.append(f"  ERROR: {reg['error']}")
        best = reg.get("best")
        out.append(f"  highest rate with < 1 % failures: "
                   f"{best['attempted_per_s']:.0f}/s (achieved {best['achieved_per_s']:.0f}/s)" if best
                   else "  no step had < 1 % failures")
        out.append(f"  bindings persisted: {reg.get('bindings_persisted')}, server RSS {reg.get('server_rss_mib')} MiB")
        out += _profile(reg.get("profile"))
        out.append("")
    best = (reg or {}).get("best")
    wreg = report.get("register_workers")
    if wreg:
        out += _register_vs(f"Authenticated REGISTER with {wreg['workers']} workers + Redis (CPU of the workers, "
                            "the supervisor and Redis):", wreg, best, f"{wreg['workers']} workers+Redis")
    kreg = report.get("register_kamailio")
    if kreg:
        out += _register_vs(f"Authenticated REGISTER against Kamailio+auth ({kreg['note']}):", kreg, best,
                            "Kamailio+auth")
    mem_in = report.get("memory_inprocess")
    if mem_in:
        out.append("Memory per binding in Location (tracemalloc, Binding + indexes): "
                   + ", ".join(f"{n} bindings → {b} B" for n, b in mem_in.items()))
    mem_rs = report.get("memory_restart")
    if mem_rs:
        out.append(f"Server RSS holding restored bindings (no load; empty server {mem_rs.get('rss_empty_mib')} MiB): "
                   + ", ".join(f"{p['held']} → {p['rss_mib']} MiB ({p['bytes_per_binding']} B/binding)"
                               for p in mem_rs.get("points", [])))
    mem = report.get("memory_server")
    if mem:
        out.append(f"Server RSS: start {mem.get('rss_start_mib')} MiB (registering at {mem['rate']:.0f}/s):")
        for p in mem.get("points", []):
            again = p.get("registered_again")
            out.append(f"  {p['held']:>7} bindings held: RSS {p['rss_mib']} MiB, "
                       f"{p['bytes_per_binding_vs_previous']} B/binding vs previous point"
                       + (f" ({p['registrations_ok']}/{p['of']} registrations of the load ok, {again} sent again)"
                          if again else ""))
        out.append("")
    calls = report.get("calls")
    if calls:
        for name, run in calls.get("runs", {}).items():
            out += _steps_table(f"Forked calls against {name} ({run.get('note', '')}):", run.get("steps", []))
            if run.get("error"):
                out.append(f"  ERROR: {run['error']}")
            out += _profile(run.get("profile"))
            best = run.get("best")
            out.append(f"  highest rate with < 1 % failures: {best['attempted_per_s']:.0f}/s "
                       f"(achieved {best['achieved_per_s']:.0f}/s)" if best else "  no step had < 1 % failures")
            out.append("")
        for key in ("ratio", "ratio_auth"):
            if calls.get(key):
                out.append(f"Kamailio / OneNumber: {calls[key]}")
        if calls.get("ratio_workers"):
            out.append(f"Workers: {calls['ratio_workers']}")
        if calls.get("kamailio_skipped"):
            out.append(f"Kamailio reference: skipped ({calls['kamailio_skipped']})")
    out += summary(report)
    return "\n".join(out) + "\n"


def _clean(step: dict) -> bool:
    return step.get("failure_pct", 100.0) < 1.0 and bool(step.get("ok"))


def _cells(step: dict, ref: dict | None) -> str:
    """p50/p99, CPU per operation and its ratio to the reference's, of one step."""
    cpu, rcpu = step.get("server_cpu_us_per_call"), (ref or {}).get("server_cpu_us_per_call")
    return (f"{fmt(step['p50_ms'], 0) + '/' + fmt(step['p99_ms'], 0):>11} {fmt(cpu, 0):>7} "
            f"{fmt(cpu / rcpu if cpu and rcpu else None, 2):>5}")


def summary(report: dict) -> list[str]:
    """Issue 11's table: per operation and system, the highest clean rate, its p50/p99 and CPU per
    operation, and the ratio to Kamailio+auth — at each one's best step, and at the highest rate
    every system ran cleanly (CPU per operation falls as the rate rises, so best steps at different
    rates flatter the faster system)."""
    calls = (report.get("calls") or {}).get("runs", {})
    workers = next((n for n in calls if n.startswith("OneNumber ") and "workers" in n), None)
    ops = {
        "authenticated REGISTER": [
            ("OneNumber, 1 worker", report.get("register")),
            (f"OneNumber, {(report.get('register_workers') or {}).get('workers')} workers + Redis",
             report.get("register_workers")),
            ("Kamailio+auth", report.get("register_kamailio")),
        ],
        "authenticated forked call": [
            ("OneNumber, 1 worker", calls.get("OneNumber")),
            (f"OneNumber, {workers.split()[1] if workers else '?'} workers + Redis", calls.get(workers or "")),
            ("Kamailio+auth", calls.get("Kamailio+auth")),
            ("Kamailio (no auth)", calls.get("Kamailio")),
        ],
    }
    out: list[str] = []
    for op, systems in ops.items():
        runs = [(name, run) for name, run in systems if run]
        if not runs:
            continue
        ref = next((run for name, run in runs if name == "Kamailio+auth"), None)
        ref_best = (ref or {}).get("best") or {}
        clean_sets = [{s["attempted_per_s"] for s in run.get("steps", []) if _clean(s)} for _, run in runs]
        common = max(set.intersection(*clean_sets), default=None) if clean_sets else None
        ref_common = next((s for s in (ref or {}).get("steps", []) if s["attempted_per_s"] == common), None)
        out += ["", f"Summary, {op} (CPU per operation in µs; ×: OneNumber's CPU over Kamailio+auth's):",
                f"  {'':<30} {'best rate/s':>11} {'p50/p99 ms':>11} {'CPU µs':>7} {'×':>5}"
                + (f"   at {common:.0f}/s: {'p50/p99 ms':>11} {'CPU µs':>7} {'×':>5}" if ref_common else "")]
        for name, run in runs:
            best = run.get("best")
            line = f"  {name:<30} " + (f"{best['attempted_per_s']:>11.0f} " + _cells(best, ref_best) if best
                                       else f"{'no clean step':>11}")
            step = next((s for s in run.get("steps", []) if s["attempted_per_s"] == common), None)
            if step and ref_common:
                line += f"   {'':>{len(f'at {common:.0f}/s:')}} " + _cells(step, ref_common)
            out.append(line)
        if ref is None:
            out.append("  (no Kamailio+auth run: no ratio)")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
