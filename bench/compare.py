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


def cpu_table(report: dict) -> dict[tuple[str, float], float]:
    """(part, rate) → server CPU µs per operation."""
    out: dict[tuple[str, float], float] = {}
    for step in report.get("register", {}).get("steps", []):
        if step.get("server_cpu_us_per_call"):
            out[("register", float(step["rate"]))] = float(step["server_cpu_us_per_call"])
    for step in report.get("calls", {}).get("runs", {}).get("OneNumber", {}).get("steps", []):
        if step.get("server_cpu_us_per_call"):
            out[("call", float(step["rate"]))] = float(step["server_cpu_us_per_call"])
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the git revision to compare with (e.g. the last release)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--register-rates", default="1000,2000")
    ap.add_argument("--call-rates", default="300,500")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "compare")
    args = ap.parse_args()
    results: dict[str, list[dict[tuple[str, float], float]]] = {"base": [], "no-history": [], "history": []}
    with tempfile.TemporaryDirectory(prefix="onenumber-base-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(base), args.base], check=True,
                       stdout=subprocess.DEVNULL)
        try:
            for r in range(args.rounds):
                results["base"].append(cpu_table(run_variant("base", base, args.out / f"base-{r}", args)))
                results["no-history"].append(cpu_table(
                    run_variant("no-history", ROOT, args.out / f"nohistory-{r}", args, "--no-history")))
                results["history"].append(cpu_table(run_variant("history", ROOT, args.out / f"history-{r}", args)))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=False)
    keys = sorted(set().union(*[set(t) for runs in results.values() for t in runs]))
    lines = [f"server CPU per operation (µs, median of {args.rounds} rounds), base = {args.base}", "",
             "| operation | rate/s | base | seam, no history | vs base | seam + history | vs base "
             "| history vs no history |",
             "|---|---|---|---|---|---|---|---|"]
    for part, rate in keys:
        med = {k: statistics.median([t[(part, rate)] for t in runs if (part, rate) in t] or [float("nan")])
               for k, runs in results.items()}
        b, n, h = med["base"], med["no-history"], med["history"]
        lines.append(f"| {'authenticated REGISTER' if part == 'register' else 'forked call'} | {rate:g} | {b:.0f} | "
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
