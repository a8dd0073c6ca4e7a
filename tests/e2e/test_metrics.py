"""End-to-end /metrics and JSON logs (issue 11, "Seeing it"): a real server with
`--log-format json` answers a call and a wrong-password registration; /metrics on its HTTP
port counts them, and the log has one JSON line per call event carrying the Call-ID."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import LOOPBACK, Server, add_accounts, configure, place_call, run_sipp, start_device


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "server", extra=["--log-format", "json"])
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} missing in\n{text}"
    return float(m.group(1))


def test_metrics_and_json_event_lines_from_a_running_server(json_server: Server, tmp_path: Path) -> None:
    server = json_server
    made = add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 1)])
    configure(server, "settings", "set", "auth_max_failures", "2")
    (alice,), (bob,) = made["1000"], made["1001"]
    answers = start_device(server, alice, "dev_answer.xml", tmp_path / "peers", name="alice")
    caller = place_call(server, bob, "1000", "call_answered.xml", tmp_path / "peers", from_user="1001")
    assert caller.returncode == 0, caller.describe() + server.log()[-2000:]
    assert answers.wait(15) == 0, answers.describe()
    wrong = run_sipp("reg_wrong_password.xml", server, service="1001", auth=(bob.auth_username, "wrong"))
    assert isinstance(wrong, subprocess.CompletedProcess)

    with urllib.request.urlopen(f"http://{LOOPBACK}:{server.http_port}/metrics", timeout=5) as r:
        assert r.status == 200
        text = r.read().decode()
    assert metric(text, 'onenumber_sip_requests_total{method="INVITE"}') >= 2  # 407 round + authenticated
    assert metric(text, 'onenumber_sip_responses_total{method="INVITE",status="200"}') >= 1
    assert metric(text, 'onenumber_sip_requests_total{method="BYE"}') >= 1
    assert metric(text, "onenumber_calls_answered_total") == 1
    assert metric(text, "onenumber_calls_ended_total") == 1
    assert metric(text, "onenumber_calls_active") == 0
    assert metric(text, 'onenumber_bindings{transport="udp"}') >= 1
    assert metric(text, "onenumber_auth_failures_total") >= 2
    assert metric(text, "onenumber_auth_blocks_total") == 1
    assert metric(text, 'onenumber_requests_shed_total{method="INVITE"}') == 0
    assert "onenumber_loop_lag_seconds" in text

    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    events = [line for line in lines if line.get("event")]
    call_id = caller.received(200)[0].header("Call-ID")
    assert [e["event"] for e in events if e.get("call_id") == call_id][:1] == ["CallStarted"]
    assert {"CallStarted", "CallAnswered", "CallEnded"} <= {e["event"] for e in events if e.get("call_id") == call_id}
    assert any(line["level"] == "warning" and "blocked" in line["msg"] for line in lines)
