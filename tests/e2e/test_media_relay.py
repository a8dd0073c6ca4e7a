"""End-to-end: `onenumber serve` starts its own rtpengine (setting rtpengine=auto) and stops it by
PID; with rtpengine=off it says at start-up that WebRTC <-> RTP calls will be refused."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from onenumber.media.process import find_binary

from .harness import Server


def _wait_log(srv: Server, pattern: str, timeout: float = 8.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, srv.log())
        if m:
            return m
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in the log:\n{srv.log()[-3000:]}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.skipif(find_binary() is None, reason="rtpengine not installed")
def test_serve_starts_and_stops_its_own_rtpengine(tmp_path: Path) -> None:
    srv = Server(tmp_path / "server")
    srv.start()
    try:
        m = _wait_log(srv, r"our rtpengine \(pid (\d+)\) on ng 127\.0\.0\.1:(\d+)")
        pid = int(m.group(1))
        assert _alive(pid)
        assert "rtpengine" in Path(f"/proc/{pid}/cmdline").read_text()
    finally:
        srv.stop()
    assert not _alive(pid), "rtpengine still running after the server stopped"
    assert f"rtpengine {pid} stopped" in srv.log()


def test_relay_off_is_said_at_start_up(tmp_path: Path) -> None:
    srv = Server(tmp_path / "server")
    srv.cli("settings", "set", "rtpengine", "off")
    srv.start()
    try:
        _wait_log(srv, r"media relay off .*refused with 488")
    finally:
        srv.stop()


def test_rtpengine_setting_is_validated(tmp_path: Path) -> None:
    srv = Server(tmp_path / "server")
    bad = srv.cli("settings", "set", "rtpengine", "nowhere", check=False)
    assert bad.returncode != 0 and "host:port" in (bad.stderr + bad.stdout)
    srv.cli("settings", "set", "rtpengine", "127.0.0.1:2223")
