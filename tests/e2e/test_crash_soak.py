"""Short versions of issue 11's crash and soak checks (`bench/crash.py`, `bench/soak.py`),
each under half a minute. The full runs and their figures are in bench/README.md.

The crash check's verdict is asserted (its checks are about correctness: what a kill -9
leaves in the database and what a restart restores). The soak's is not (RSS flatness and
live counts need minutes, failed calls depend on the machine): only that it ran, counted,
and that nothing is left once the calls are over.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")


def run(script: str, *args: str, out: Path, timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / script), *args, "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc, json.loads(out.read_text())


def test_crash_short_kill_9_under_load_keeps_config_bindings_and_history(tmp_path: Path) -> None:
    proc, report = run("crash.py", "--accounts", "20", "--churn", "200", "--rate", "10", "--register-rate", "40",
                       "--kill-after", "4", "--after", "3", out=tmp_path / "crash.json", timeout=120)
    assert proc.returncode == 0 and report["verdict"] == "ok", json.dumps(report, indent=1) + proc.stderr[-2000:]
    assert report["sqlite_integrity_check"] == "ok" and report["config_intact"]
    assert report["persisted"]["bindings"] >= report["bindings_reported_1s_before_kill"] > 40  # churn began
    assert report["persisted"]["history_rows"] > 0 and report["persisted"]["history_bad_rows"] == 0
    assert report["bindings_after_restart"] >= report["persisted"]["bindings"]


def test_soak_short_runs_and_leaves_nothing_behind(tmp_path: Path) -> None:
    _, report = run("soak.py", "--seconds", "10", "--capacity", "20", "--interval", "1", "--drain", "3",
                    "--accounts", "20", out=tmp_path / "soak.json", timeout=120)
    assert report["ok"] > 0 and report["calls"] == 100, report
    assert report["rss_early_mib"] and report["rss_late_mib"] and report["transactions_early"], report
    assert report["drained"]["dialogs"] == 0 and report["drained"]["calls_active"] == 0, report
    assert len(report["samples"]) >= 10
