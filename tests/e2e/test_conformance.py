"""RFC 4475 (and RFC 5118) torture messages against a running server, with the shared corpus.

The corpus and its sender live outside the repository (shared/conformance beside it, as on
CI; or $ONENUMBER_CONFORMANCE). A clone without it skips the test and says why; with
ONENUMBER_REQUIRE_CONFORMANCE=1 (set by .ci/run) not finding it is a failure, so CI never
hides a parser regression behind a skip. Note: send.py itself listens on
127.0.0.1:5080 while it runs mpart01 (the message's own Route), not a port we choose.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .harness import Server


def conformance_dir() -> Path:
    """The directory holding rfc4475/send.py."""
    candidates = []
    env = os.environ.get("ONENUMBER_CONFORMANCE")
    if env:
        candidates += [Path(env), Path(env) / "conformance"]
    here = Path(__file__).resolve()
    candidates += [here.parents[3] / "shared" / "conformance", here.parents[2] / "shared" / "conformance"]
    for c in candidates:
        if (c / "rfc4475" / "send.py").is_file():
            return c
    message = (
        "RFC 4475 conformance corpus not found: looked for rfc4475/send.py in "
        + ", ".join(str(c) for c in candidates)
        + "; put shared/conformance beside the repository or set ONENUMBER_CONFORMANCE"
    )
    if os.environ.get("ONENUMBER_REQUIRE_CONFORMANCE") == "1":
        pytest.fail(message + " (ONENUMBER_REQUIRE_CONFORMANCE=1)")
    pytest.skip(message)


def test_rfc4475_and_rfc5118_torture_messages(server: Server) -> None:
    send = conformance_dir() / "rfc4475" / "send.py"
    proc = subprocess.run(
        [sys.executable, str(send), "--port", str(server.sip_port), "--rfc5118"],
        capture_output=True, text=True, timeout=240,
    )
    out = proc.stdout + proc.stderr
    lines = [line for line in out.splitlines() if line.strip()]
    summary = lines[-1] if lines else ""
    failed = [line for line in lines if " FAIL" in line]
    assert proc.returncode == 0 and summary.endswith(" 0 failed"), (
        f"conformance run: {summary}\nfailing:\n" + "\n".join(failed) + f"\n\nfull table:\n{out}"
        f"\n\nserver log tail:\n{server.log()[-3000:]}"
    )
    assert server.proc is not None and server.proc.poll() is None, "server died during the torture run"
