"""Issue 9's device credentials against a running server, with SIPp registering like a phone:
rotation with an overlap window, and one-time provisioning links."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from onenumber.routing.model import Device as RoutingDevice

from .harness import LOOPBACK, Device, RawUA, Server, admin, configure, free_port, register, run_sipp, wait_config

WINDOW_HOURS = 0.006  # 21.6 s: long enough to register twice on a loaded machine, short enough to wait out


def sipp_register(server: Server, device: Device, workdir: Path) -> subprocess.CompletedProcess[str]:
    proc = run_sipp("register.xml", server, service=device.account, auth=(device.auth_username, device.secret),
                    local_port=free_port(), timeout=6, workdir=workdir)
    assert isinstance(proc, subprocess.CompletedProcess)
    return proc


def test_rotation_old_secret_works_inside_the_window_only(server: Server, tmp_path: Path) -> None:
    (old,) = server.add_account("1000", "Alice", devices=1)
    configure(server, "settings", "set", "credential_overlap_hours", str(WINDOW_HOURS))
    register(server, old, free_port(), workdir=tmp_path)  # the phone as provisioned

    # in-process rather than the CLI (test_cli_ops.py runs `device rotate`): a CLI start can take
    # seconds on a loaded machine, and the registrations below must fit in the window
    rotated = admin(server, lambda a: a.rotate_secret("1000", 0))  # the setting's window
    assert isinstance(rotated, RoutingDevice) and rotated.previous_secret_until is not None
    until = rotated.previous_secret_until
    assert abs(until - time.time() - WINDOW_HOURS * 3600) < 5
    new = Device("1000", 0, old.auth_username, rotated.secret)
    assert new.secret != old.secret

    # inside the window: the phone not yet re-provisioned keeps registering, the new secret works too
    register(server, old, free_port(), workdir=tmp_path)
    register(server, new, free_port(), workdir=tmp_path)
    assert time.time() < until, "the registrations took longer than the window; the test needs a longer one"

    time.sleep(max(0.0, until - time.time()) + 0.5)
    refused = sipp_register(server, old, tmp_path)
    assert refused.returncode != 0, "the old secret still registered after the overlap window"
    with RawUA(server) as ua:  # the exact answer: a refusal the phone stops on
        reply = ua.register("1000", auth=(old.auth_username, old.secret))
        assert (reply.status, reply.reason) == (403, "Credentials expired (rotated)")
        assert ua.register("1000", auth=(new.auth_username, new.secret)).status == 200
    register(server, new, free_port(), workdir=tmp_path)
    assert len(server.bindings("1000")) >= 1


def test_a_device_registers_with_what_its_link_returned(server: Server, tmp_path: Path) -> None:
    server.cli("account", "add", "1000", "--name", "Alice")
    server.cli("device", "add", "1000", "--kind", "deskphone")
    server.cli("device", "add", "1000", "--kind", "softphone", "--label", "Laptop")
    wait_config(server)
    base = f"http://{LOOPBACK}:{server.http_port}"
    link = server.cli_json("device", "provision", "1000", "1", "--base-url", base)
    assert isinstance(link, dict) and link["url"].startswith(f"{base}/provision/")

    request = urllib.request.Request(link["url"], headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert resp.headers["Cache-Control"] == "no-store"
        settings = json.load(resp)
    assert (settings["server"], settings["ports"]["udp"]) == (LOOPBACK, server.sip_port)
    assert settings["number"] == "1000" and settings["auth_username"] == "1000_2"
    assert settings["websocket"]["url"] == f"ws://{LOOPBACK}:{server.http_port}/sip"

    # SIPp registers with exactly what the link gave (server, port, number, auth user, secret)
    device = Device(settings["number"], settings["device"]["position"], settings["auth_username"],
                    settings["secret"])
    register(server, device, free_port(), workdir=tmp_path)
    rows = server.wait_bindings("1000", 1)
    assert rows[0]["auth_username"] == "1000_2"

    for accept in ("application/json", "text/html"):  # the second use, in either form
        try:
            urllib.request.urlopen(urllib.request.Request(link["url"], headers={"Accept": accept}), timeout=5)
            raise AssertionError("a provisioning link worked twice")
        except urllib.error.HTTPError as gone:
            assert gone.code == 410
            assert "already used" in gone.read().decode()
