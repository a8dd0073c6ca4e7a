"""The load benchmark still runs: `bench/run.py --quick` completes and writes a report.

It asserts that every part produced figures, never what the figures are (performance
is reported by `make bench`, not tested).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_bench_quick_produces_a_report(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    reports = list(tmp_path.glob("bench-*.json"))
    assert len(reports) == 1, list(tmp_path.iterdir())
    report = json.loads(reports[0].read_text())
    reg = report["register"]
    assert reg["steps"] and all(s["ok"] > 0 for s in reg["steps"]), reg
    assert reg["bindings_persisted"] == reg["devices"]
    assert report["memory_inprocess"]
    assert [p["held"] for p in report["memory_server"]["points"]] == report["config"]["memory_points"]
    for name, run in report["calls"]["runs"].items():
        assert run["steps"] and run["steps"][0]["ok"] > 0, (name, run)
    text = (tmp_path / "latest.txt").read_text()
    assert "Authenticated REGISTER" in text and "Forked calls against OneNumber" in text
    assert "Summary, authenticated REGISTER" in text and "Summary, authenticated forked call" in text


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_blf_load_bench_runs(tmp_path: Path) -> None:
    """`bench/bench_blf_load.py` (watchers against the running server) completes a tiny round:
    the watchers subscribe, every call is completed and the watchers get NOTIFYs."""
    out = tmp_path / "blf.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_blf_load.py"), "--accounts", "20", "--rate", "10",
         "--seconds", "2", "--rounds", "1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = json.loads(out.read_text())["runs"]
    assert all(run["ok"] > 0 and run["failed"] == 0 for rs in runs.values() for run in rs), runs
    (watched,) = runs["watched"]
    assert watched["subscriptions"] == 30 and watched["notifies_answered"] > 30, watched
