"""Before/after: the same load benchmark against an older revision and the working tree, back to back.

    .venv/bin/python bench/compare.py --base <git revision> [--rounds 2] [--seconds 15]

The older revision is checked out in a temporary git worktree and run with its own code
(`PYTHONPATH` points the `onenumber` command at it), by its own bench/run.py; the working tree
runs twice more: with the call history on (the default) and with `serve --no-history`. Rounds
interleave the variants (base, no-history, history, base, ...) so drift on a shared machine
spreads over all of them. Prints server CPU per authenticated registration and per forked
call at each rate, and each variant's ratio to the base (median over rounds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_variant(name: str, code: Path, out: Path, args: argparse.Namespace, serve_args: str = "") -> dict:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(code), ONENUMBER_BENCH_SERVE_ARGS=serve_args)
    cmd = [sys.executable, str(code / "bench" / "run.py"), "--only", "register", "--only", "calls",
           "--no-kamailio", "--no-profile", "--seconds", str(args.seconds),
           "--register-rates", args.register_rates, "--call-rates", args.call_rates, "--out", str(out)]
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    report = max(out.glob("bench-*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(report.read_text())


def run_core(name: str, code: Path, out: Path, history: bool) -> dict[tuple[str, float], float]:
    """The sans-IO core benchmarks (bench/bench_core.py) of one checkout: µs per operation (median)."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(code), ONENUMBER_BENCH_HISTORY="1" if history else "0")
    result = out / "core.json"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(code / "bench" / "bench_core.py"),
           "--benchmark-only", f"--benchmark-json={result}", "--benchmark-min-rounds=2000"]
    print(f"[{name}] {' '.join(cmd)}", flush=True)
    subprocess.run(cmd, env=env, cwd=code, check=True, stdout=subprocess.DEVNULL, timeout=1800)
    data = json.loads(result.read_text())
    names = {"test_authenticated_registration": "register", "test_forked_call": "call"}
    return {(names[b["name"]], 0.0): b["stats"]["median"] * 1e6 for b in data["benchmarks"] if b["name"] in names}


def count_instructions(name: str, code: Path, out: Path, history: bool, n: int) -> dict[tuple[str, float], float]:
    """Instructions per operation under callgrind: (run with n) - (run with 0), divided by n."""
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(code), ONENUMBER_BENCH_HISTORY="1" if history else "0")
    script = ROOT / "bench" / "count_core.py"  # the same driver for every checkout: only the code differs
    result: dict[tuple[str, float], float] = {}
    for what in ("register", "call"):
        totals = []
        for count in (0, n):
            cg = out / f"{what}-{count}.callgrind"
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", sys.executable, str(script),
                   what, str(count)]
            print(f"[{name}] {what} x{count}", flush=True)
            subprocess.run(cmd, env=env, cwd=code, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           timeout=3600)
            line = next(x for x in cg.read_text().splitlines() if x.startswith(("summary:", "totals:")))
            totals.append(int(line.split()[1]))
        result[(what, 0.0)] = (totals[1] - totals[0]) / n
    return result


def cpu_table(report: dict) -> dict[tuple[str, float], float]:
    """(part, rate) → server CPU µs per operation."""
    out: dict[tuple[str, float], float] = {}
    parts = (("register", report.get("register", {}).get("steps", [])),
             ("call", report.get("calls", {}).get("runs", {}).get("OneNumber", {}).get("steps", [])))
    for part, steps in parts:
        for step in steps:
            # a step with failures measures an overloaded server, not the cost of the work
            if step.get("server_cpu_us_per_call") and step.get("failure_pct", 100) < 1:
                out[(part, float(step["attempted_per_s"]))] = float(step["server_cpu_us_per_call"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the git revision to compare with (e.g. the last release)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--register-rates", default="1000,2000")
    ap.add_argument("--call-rates", default="300,500")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "compare")
    ap.add_argument("--instructions", type=int, metavar="N",
                    help="count instructions of N sans-IO exchanges under callgrind (repeatable on a busy machine)")
    ap.add_argument("--core", action="store_true",
                    help="compare the sans-IO core benchmarks (bench_core.py, no sockets) instead of SIPp load")
    args = ap.parse_args()
    results: dict[str, list[dict[tuple[str, float], float]]] = {"base": [], "no-history": [], "history": []}
    with tempfile.TemporaryDirectory(prefix="onenumber-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base], check=True,
                       stdout=subprocess.DEVNULL)
        try:
            for r in range(args.rounds):
                if args.instructions:
                    n = args.instructions
                    results["base"].append(count_instructions("base", base, args.out / f"ir-base-{r}", False, n))
                    results["no-history"].append(
                        count_instructions("no-history", ROOT, args.out / f"ir-nohist-{r}", False, n))
                    results["history"].append(count_instructions("history", ROOT, args.out / f"ir-hist-{r}", True, n))
                    continue
                if args.core:
                    results["base"].append(run_core("base", base, args.out / f"core-base-{r}", False))
                    results["no-history"].append(run_core("no-history", ROOT, args.out / f"core-nohist-{r}", False))
                    results["history"].append(run_core("history", ROOT, args.out / f"core-hist-{r}", True))
                    continue
                results["base"].append(cpu_table(run_variant("base", base, args.out / f"base-{r}", args)))
                # presence (issue 10) is left out of both: this compares the seam and the history writer
                results["no-history"].append(cpu_table(run_variant(
                    "no-history", ROOT, args.out / f"nohistory-{r}", args, "--no-history --no-presence")))
                results["history"].append(cpu_table(
                    run_variant("history", ROOT, args.out / f"history-{r}", args, "--no-presence")))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    keys = sorted(set().union(*[set(t) for runs in results.values() for t in runs]))
    unit = "instructions (callgrind)" if args.instructions else "server CPU µs"
    lines = [f"{unit} per operation (median of {args.rounds} rounds), base = {args.base}", "",
             "| operation | rate/s | base | seam, no history | vs base | seam + history | vs base "
             "| history vs no history |",
             "|---|---|---|---|---|---|---|---|"]
    for part, rate in keys:
        med = {k: statistics.median([t[(part, rate)] for t in runs if (part, rate) in t] or [float("nan")])
               for k, runs in results.items()}
        b, n, h = med["base"], med["no-history"], med["history"]
        lines.append(f"| {'authenticated REGISTER' if part == 'register' else 'forked call'} | "
                     f"{'sans-IO core' if args.core or args.instructions else f'{rate:g}'} | {b:.0f} | "
                     f"{n:.0f} | {100 * (n / b - 1):+.1f} % | {h:.0f} | {100 * (h / b - 1):+.1f} % | "
                     f"{100 * (h / n - 1):+.1f} % |")
    lines += ["", "each round: " + json.dumps({k: [{f"{p}@{r:g}": round(v) for (p, r), v in t.items()} for t in runs]
                                              for k, runs in results.items()})]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
