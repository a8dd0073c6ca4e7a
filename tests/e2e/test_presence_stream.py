"""The browser's presence stream against the real server: Bob's page (server-sent events)
(logged in with his password)
sees Alice go available (her SIPp device registers), ringing (Carol calls her), in-use
(she answers) and available again (the call ends) — pushed, not polled."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx

from .harness import Server, add_accounts, place_call, start_device
from .test_web_login import set_password


def test_presence_stream_follows_a_call(server: Server, tmp_path: Path) -> None:
    made = add_accounts(server, [("1000", "Alice", 1), ("1001", "Bob", 1), ("1002", "Carol", 1)])
    set_password(server, "1001", "bob-password")
    base = f"http://127.0.0.1:{server.http_port}"
    bob = httpx.Client(base_url=base, timeout=httpx.Timeout(5.0, read=20.0))
    assert bob.post("/api/login", json={"username": "1001", "password": "bob-password"}).status_code == 200
    events: list[tuple[str, dict]] = []
    opened = threading.Event()

    def read() -> None:
        deadline = time.monotonic() + 40
        with bob.stream("GET", "/api/presence/stream") as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind:
                    events.append((kind, json.loads(line[6:])))
                    opened.set()
                    states = [d["state"] for k, d in events if k == "presence" and d["account"] == "1000"]
                    if ("in-use" in states and states[-1] == "available") or time.monotonic() > deadline:
                        return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert opened.wait(10), "no snapshot on the stream"
    assert events[0][0] == "snapshot"
    assert {s["account"]: s["state"] for s in events[0][1]} == {"1000": "offline", "1002": "offline"}
    device = start_device(server, made["1000"][0], "dev_answer.xml", tmp_path / "dev")
    try:
        caller = place_call(server, made["1002"][0], "1000", "call_answered.xml", tmp_path / "caller")
        assert caller.returncode == 0, caller.describe()
        device.wait(10)
    finally:
        device.stop()
    reader.join(30)
    states = [d["state"] for k, d in events if k == "presence" and d["account"] == "1000"]
    print("presence of 1000 as Bob's page saw it:", states)
    assert "ringing" in states and "in-use" in states, (states, server.log()[-3000:])
    assert states.index("available") < states.index("ringing") < states.index("in-use")
    assert states[-1] == "available"
