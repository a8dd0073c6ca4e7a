"""BLF with real peers: a SIPp BLF key of 1001 watches 1000 while a SIPp caller rings 1000's
device, which answers; the caller hangs up. The NOTIFYs the key got (read from its message
trace) go idle → early → confirmed → terminated, with the pickup code on the early one."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

from onenumber.sip.bodies import DIALOG_NS

from .harness import Server, add_accounts, free_port, place_call, read_trace, run_sipp, sipp_trace_args, start_device

D = f"{{{DIALOG_NS}}}"


def _states(body: str) -> list[str]:
    root = ET.fromstring(body.strip())
    return [d.findtext(f"{D}state") or "" for d in root.findall(f"{D}dialog")]


def test_blf_key_sees_early_confirmed_terminated(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 1), ("1002", "Carol", 1)])
    alice, bob, carol = made["1000"][0], made["1001"][0], made["1002"][0]
    trace = tmp_path / "blf.trace"
    (tmp_path / "fields.csv").write_text(f"SEQUENTIAL\n{bob.auth_username};\n")
    blf = run_sipp(
        "blf_subscribe.xml", server, service="1000", auth=(bob.auth_username, bob.secret), local_port=free_port(),
        timeout=40, background=True, workdir=tmp_path,
        extra=["-inf", str(tmp_path / "fields.csv"), *sipp_trace_args(trace, "blf")],
    )
    assert isinstance(blf, subprocess.Popen)
    deadline_ok = _wait_for_notify(trace)
    assert deadline_ok, "no first NOTIFY"
    device = start_device(server, alice, "dev_answer.xml", tmp_path / "dev")
    caller = place_call(server, carol, "1000", "call_answered.xml", tmp_path / "caller")
    assert caller.returncode == 0, caller.output[-3000:]
    device.wait(10)
    out, _ = blf.communicate(timeout=30)
    assert blf.returncode == 0, out[-3000:] + server.log()[-3000:]
    notifies = [m for m in read_trace(trace) if not m.sent and m.method == "NOTIFY"]
    bodies = [m.text.replace("\r\n", "\n").split("\n\n", 1)[1] for m in notifies]
    seen = [_states(b) for b in bodies]
    print("BLF NOTIFYs:", seen)
    assert seen[0] == []  # idle when subscribed
    flat = [s for states in seen for s in states]
    order = [s for s in ("early", "confirmed", "terminated") if s in flat]
    assert order == ["early", "confirmed", "terminated"], seen
    assert flat.index("early") < flat.index("confirmed") < flat.index("terminated")
    early_body = next(b for b, s in zip(bodies, seen, strict=True) if "early" in s)
    assert re.search(r'<target uri="sip:\*81000@', early_body), early_body
    versions = [int(ET.fromstring(b.strip()).get("version")) for b in bodies]
    assert versions == list(range(len(versions)))


def _wait_for_notify(trace: Path, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if trace.exists() and "NOTIFY sip:" in trace.read_text(errors="replace"):
            return True
        time.sleep(0.05)
    return False
