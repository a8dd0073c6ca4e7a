"""Registrar user stories (issue 2) against a running server, through real peers.

SIPp, baresip and sipsak register like phones do; a bare UDP UA (harness.RawUA) checks the
headers a phone cannot show us (challenges, the 200 OK's Contact list, 423). The CLI's
`bindings --json` is what an admin sees and what every test checks.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from .baresip import Baresip
from .harness import LOOPBACK, Device, RawUA, Server, configure, free_port, run_sipp, wait_config

OUTSIDE = "127.0.0.2"  # "the internet" once trusted_networks is 127.0.0.1/32


# ---------------------------------------------------------------------------- helpers


def sipp_ok(proc: subprocess.CompletedProcess[str] | subprocess.Popen[str], what: str = "sipp") -> None:
    out = proc.stdout if isinstance(proc.stdout, str) else (proc.stdout.read() if proc.stdout else "")
    assert proc.returncode == 0, f"{what} failed ({proc.returncode}):\n{out}\n{getattr(proc, 'stderr', '')}"


def sipp_logged(
    server: Server, scenario: str, tmp: Path, **kwargs: object
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a scenario that writes <log> lines; returns the process and the log text."""
    log = tmp / f"{scenario}-{uuid.uuid4().hex[:6]}.log"
    extra = list(kwargs.pop("extra", None) or [])  # type: ignore[call-overload]
    proc = run_sipp(scenario, server, extra=[*extra, "-trace_logs", "-log_file", str(log)], **kwargs)  # type: ignore[arg-type]
    assert isinstance(proc, subprocess.CompletedProcess)
    return proc, log.read_text() if log.exists() else ""


def add_account(server: Server, number: str, name: str, devices: int = 2) -> list[Device]:
    """Add an account with devices and wait until the running server knows them."""
    out = server.add_account(number, name, devices=devices)
    wait_config(server)
    return out


def set_setting(server: Server, key: str, value: str) -> None:
    configure(server, "settings", "set", key, value)


def api_bindings(server: Server, number: str) -> list[dict]:
    """The live bindings from the server's HTTP API: a fast poll (the CLI takes about a second)."""
    url = f"http://{LOOPBACK}:{server.http_port}/api/accounts/{number}/bindings"
    with urllib.request.urlopen(url, timeout=2) as resp:
        rows = json.load(resp)
    assert isinstance(rows, list)
    return rows


def wait_count(server: Server, number: str, count: int, timeout: float = 3.0) -> float:
    """Poll until the server holds `count` bindings for `number`; returns when it saw that."""
    deadline = time.monotonic() + timeout
    while True:
        rows = api_bindings(server, number)
        seen = time.monotonic()
        if len(rows) == count:
            return seen
        assert seen < deadline, f"expected {count} bindings for {number}, server holds {rows}"
        time.sleep(0.05)


def contacts(reply_contacts: list[str]) -> list[str]:
    """Each contact of a 200 OK's Contact headers (comma-joined or one per header)."""
    out: list[str] = []
    for value in reply_contacts:
        out += [c.strip() for c in re.split(r",(?=\s*<)", value) if c.strip()]
    return out


# ---------------------------------------------------------------------------- SIPp stories


def test_two_sipp_uas_register_with_different_auth_usernames(server: Server) -> None:
    d1, d2 = add_account(server, "1000", "Alice", devices=2)
    assert (d1.auth_username, d2.auth_username) == ("1000", "1000_2")
    ports = []
    for dev in (d1, d2):
        port = free_port()
        ports.append(port)
        sipp_ok(run_sipp("register.xml", server, service="1000", auth=(dev.auth_username, dev.secret),
                         local_port=port))
    rows = server.wait_bindings("1000", 2)
    by_user = {r["auth_username"]: r for r in rows}
    assert set(by_user) == {"1000", "1000_2"}
    for dev, port in zip((d1, d2), ports, strict=True):
        row = by_user[dev.auth_username]
        assert f"@{LOOPBACK}:{port}" in row["contact"]
        assert row["transport"] == "udp"
        assert 250 <= row["expires"] <= 300


def test_wrong_password_gets_401_then_403_and_blocks_that_username_not_the_office(
    server: Server, tmp_path: Path
) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    (bob,) = add_account(server, "1001", "Bob", devices=1)
    set_setting(server, "auth_max_failures", "3")
    proc, log = sipp_logged(server, "reg_wrong_password.xml", tmp_path, service="1000",
                            auth=(dev.auth_username, "not-the-password"))
    sipp_ok(proc, "wrong-password loop")
    challenges = int(float(re.search(r"401s: ([\d.]+)", log).group(1)))  # type: ignore[union-attr]
    # the first 401 asks for credentials; each wrong answer counts, the 3rd one is refused
    assert 2 <= challenges <= 3, log
    assert re.search(r"SIP/2.0 403 .*too many failed attempts", log), log
    # while blocked, even the right password from the same address is refused
    proc, log = sipp_logged(server, "reg_refused.xml", tmp_path, service="1000",
                            auth=(dev.auth_username, dev.secret))
    sipp_ok(proc, "correct password while blocked")
    assert "too many failed attempts" in log
    assert api_bindings(server, "1000") == []
    # another device behind the same address (an office NAT) with its own right credentials goes on
    proc = run_sipp("register.xml", server, service="1001", auth=(bob.auth_username, bob.secret))
    sipp_ok(proc, "1001 registering from the attacker's address")
    assert len(api_bindings(server, "1001")) == 1


def test_device_credentials_cannot_register_another_account(server: Server, tmp_path: Path) -> None:
    _, alice2 = add_account(server, "1000", "Alice", devices=2)
    add_account(server, "1001", "Bob", devices=0)
    proc, log = sipp_logged(server, "reg_refused.xml", tmp_path, service="1001",
                            auth=(alice2.auth_username, alice2.secret))
    sipp_ok(proc, "1000_2 registering 1001")
    assert "SIP/2.0 403" in log
    assert api_bindings(server, "1001") == []


def test_same_instance_replaces_the_binding(server: Server) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    instance = str(uuid.uuid4())
    first, second = free_port(), free_port()
    for port in (first, second):
        sipp_ok(run_sipp("reg_instance.xml", server, service="1000", auth=(dev.auth_username, dev.secret),
                         local_port=port, extra=["-key", "instance", instance]))
    rows = server.wait_bindings("1000", 1)
    assert f":{second}" in rows[0]["contact"], rows
    assert rows[0]["instance"] and instance in rows[0]["instance"], rows
    assert str(rows[0]["reg_id"]) == "1"


def test_tcp_binding_is_removed_when_the_connection_closes(server: Server) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    proc = run_sipp("reg_hold.xml", server, service="1000", auth=(dev.auth_username, dev.secret),
                    transport="t1", background=True)
    assert isinstance(proc, subprocess.Popen)
    try:
        wait_count(server, "1000", 1)
        rows = api_bindings(server, "1000")  # while SIPp holds the connection (2 s): HTTP, not a ~1 s CLI start
        assert rows[0]["transport"] == "tcp", rows
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, out
    closed = time.monotonic()
    gone = wait_count(server, "1000", 0, timeout=3)
    assert gone - closed < 1.0, f"TCP binding still there {gone - closed:.2f}s after the connection closed"
    assert server.bindings("1000") == []


def test_untrusted_address_is_refused_unless_the_device_has_internet(server: Server, tmp_path: Path) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    set_setting(server, "trusted_networks", "127.0.0.1/32")
    proc, log = sipp_logged(server, "reg_refused.xml", tmp_path, service="1000",
                            auth=(dev.auth_username, dev.secret), extra=["-i", OUTSIDE])
    sipp_ok(proc, "non-internet device from outside")
    status = re.search(r"SIP/2.0 403 (.*)", log)
    assert status and status.group(1).strip() not in ("", "Forbidden"), log  # a reason phrase that says why
    assert api_bindings(server, "1000") == []
    # from inside it is fine
    sipp_ok(run_sipp("register.xml", server, service="1000", auth=(dev.auth_username, dev.secret)))
    wait_count(server, "1000", 1)
    configure(server, "device", "update", "1000", "0", "--internet")
    sipp_ok(run_sipp("register.xml", server, service="1000", auth=(dev.auth_username, dev.secret),
                     extra=["-i", OUTSIDE]))
    rows = server.wait_bindings("1000", 2)
    assert any(OUTSIDE in r["contact"] for r in rows), rows


def test_expired_credentials_are_refused(server: Server, tmp_path: Path) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    configure(server, "device", "update", "1000", "0", "--expires-days", "0.00001")  # under a second
    time.sleep(1.0)
    proc, log = sipp_logged(server, "reg_refused.xml", tmp_path, service="1000",
                            auth=(dev.auth_username, dev.secret))
    sipp_ok(proc, "expired credentials")
    assert "SIP/2.0 403 Credentials expired" in log
    assert api_bindings(server, "1000") == []


# ---------------------------------------------------------------------------- RFC 3261 §10 details


def test_unknown_user_gets_the_same_challenge_as_a_known_one(server: Server) -> None:
    add_account(server, "1000", "Alice", devices=1)
    with RawUA(server) as ua:
        known = ua.register("1000")
        unknown = ua.register("1999")
        nobody = ua.register("nobody")
    assert known.status == unknown.status == nobody.status == 401

    def shape(reply: object) -> list[tuple[str, str]]:
        out = []
        for k, v in reply.headers:  # type: ignore[attr-defined]
            if k.lower() in ("via", "from", "to", "call-id", "cseq", "date"):
                continue
            out.append((k.lower(), re.sub(r'nonce="[^"]*"', 'nonce="N"', v)))
        return out

    assert shape(known) == shape(unknown) == shape(nobody)
    assert known.reason == unknown.reason
    algos = [re.search(r"algorithm=([\w-]+)", c).group(1) for c in known.get_all("WWW-Authenticate")]  # type: ignore[union-attr]
    assert algos == ["MD5", "SHA-256"]  # the default order: SIPp and many phones read only the first
    assert all('qop="auth"' in c or "qop=auth" in c for c in known.get_all("WWW-Authenticate"))


def test_contacts_fetch_expires_and_removal(server: Server) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    auth = (dev.auth_username, dev.secret)
    with RawUA(server) as ua:
        one = ua.contact("a")
        two = f"<sip:b@{LOOPBACK}:{ua.port};transport=udp>"
        r = ua.register("1000", auth=auth, contact=one, expires=300)
        assert r.status == 200, r.raw
        r = ua.register("1000", auth=auth, contact=two, expires=600)
        assert r.status == 200, r.raw
        listed = contacts(r.get_all("Contact"))
        assert len(listed) == 2, r.raw
        assert all(re.search(r";expires=\d+", c) for c in listed), r.raw
        wait_count(server, "1000", 2)
        # a fetch (no Contact) returns the current bindings and changes nothing
        r = ua.register("1000", auth=auth, contact=None, expires=None)
        assert r.status == 200 and len(contacts(r.get_all("Contact"))) == 2, r.raw
        # too short: 423 with Min-Expires
        r = ua.register("1000", auth=auth, contact=one, expires=5)
        assert r.status == 423 and r.get("Min-Expires") == "60", r.raw
        # Expires: 0 removes that contact only
        r = ua.register("1000", auth=auth, contact=one, expires=0)
        assert r.status == 200, r.raw
        wait_count(server, "1000", 1)
        rows = api_bindings(server, "1000")
        assert "sip:b@" in rows[0]["contact"]
        assert len(contacts(r.get_all("Contact"))) == 1, r.raw
        # a contact's own ;expires= wins over the Expires header
        r = ua.register("1000", auth=auth, contact=one + ";expires=120", expires=3000)
        assert r.status == 200, r.raw
        rows = {row["contact"]: row for row in server.wait_bindings("1000", 2)}
        assert any(row["expires"] <= 120 for c, row in rows.items() if "sip:a@" in c), rows


def test_star_removes_only_this_devices_bindings(server: Server) -> None:
    d1, d2 = add_account(server, "1000", "Alice", devices=2)
    with RawUA(server) as ua1, RawUA(server) as ua2:
        assert ua1.register("1000", auth=(d1.auth_username, d1.secret)).status == 200
        assert ua1.register("1000", auth=(d1.auth_username, d1.secret), contact=ua1.contact("x")).status == 200
        assert ua2.register("1000", auth=(d2.auth_username, d2.secret)).status == 200
        wait_count(server, "1000", 3)
        # `*` needs Expires: 0
        bad = ua1.register("1000", auth=(d1.auth_username, d1.secret), contact="*", expires=60)
        assert bad.status == 400, bad.raw
        r = ua1.register("1000", auth=(d1.auth_username, d1.secret), contact="*", expires=0)
        assert r.status == 200, r.raw
        rows = server.wait_bindings("1000", 1)
        assert rows[0]["auth_username"] == d2.auth_username


def test_path_is_stored_and_outbound_honoured(server: Server) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    edge = "<sip:edge.example.net:5070;lr>"
    with RawUA(server) as ua:
        contact = ua.contact("ob", ";ob") + f';+sip.instance="<urn:uuid:{uuid.uuid4()}>";reg-id=1'
        r = ua.register("1000", auth=(dev.auth_username, dev.secret), contact=contact,
                        headers=[("Supported", "path, outbound"), ("Path", edge)])
        assert r.status == 200, r.raw
        assert r.get("Require") == "outbound", r.raw  # RFC 5626 §6: the registrar did use the flow
        assert r.get_all("Path") == [edge], r.raw  # RFC 3327 §5.3: the stored Path comes back
    rows = server.bindings("1000")
    assert rows[0]["path"] == [edge] and rows[0]["outbound"] is True, rows


def test_expired_bindings_are_removed_on_time(server: Server) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    set_setting(server, "min_expires", "1")
    with RawUA(server) as ua:
        r = ua.register("1000", auth=(dev.auth_username, dev.secret), expires=2)
        assert r.status == 200, r.raw
        assert "expires=2" in (r.get("Contact") or ""), r.raw
    registered = time.monotonic()
    assert len(api_bindings(server, "1000")) == 1
    deadline = registered + 3.0  # expiry at 2 s, plus a second of slack
    while api_bindings(server, "1000"):
        assert time.monotonic() < deadline, "binding not removed within a second of expiring"
        time.sleep(0.1)
    assert time.monotonic() - registered >= 1.5  # not early either
    assert server.bindings("1000") == []


def test_restart_keeps_bindings_and_routing(server: Server) -> None:
    d1, d2 = add_account(server, "1000", "Alice", devices=2)
    with RawUA(server) as ua:
        assert ua.register("1000", auth=(d1.auth_username, d1.secret)).status == 200
    sipp_ok(run_sipp("register.xml", server, service="1000", auth=(d2.auth_username, d2.secret)))
    wait_count(server, "1000", 2)
    before = sorted(r["contact"] for r in api_bindings(server, "1000"))
    server.restart()
    after = server.bindings("1000")
    assert sorted(r["contact"] for r in after) == before
    plan = server.cli_json("ring-plan", "1000")
    assert isinstance(plan, dict)
    ringing = [c["contact"] for stage in plan["stages"] for c in stage["contacts"]]
    assert sorted(ringing) == before, plan


# ---------------------------------------------------------------------------- baresip, sipsak


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers(server: Server, tmp_path: Path, transport: str) -> None:
    # default settings: baresip 1.0 (libre 1.1) gives up on a 401 that offers any algorithm
    # but MD5; the server challenges it with MD5 only (setting md5_only_user_agents)
    _, dev = add_account(server, "1000", "Alice", devices=2)
    with Baresip(tmp_path / "phone", server, "1000", dev.auth_username, dev.secret, transport) as phone:
        phone.wait_registered()
        rows = server.wait_bindings("1000", 1)
        assert rows[0]["transport"] == transport
        assert rows[0]["auth_username"] == dev.auth_username
        assert phone.contact_host in rows[0]["contact"]
    wait_count(server, "1000", 0)  # quitting un-registers


def sipsak(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sipsak", *args], capture_output=True, text=True, timeout=15)


def test_sipsak_options(server: Server) -> None:
    proc = sipsak("-vv", "-s", f"sip:ping@{server.address}")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "SIP/2.0 200" in out
    for header in ("Allow:", "Accept:", "Supported:"):
        assert header in out, out


def test_sipsak_register_with_digest(server: Server) -> None:
    (dev,) = add_account(server, "1000", "Alice", devices=1)
    port = free_port()
    proc = sipsak("-U", "-C", f"sip:1000@{LOOPBACK}:{port}", "-s", f"sip:1000@{server.address}",
                  "-a", dev.secret, "-u", dev.auth_username, "-x", "120", "-l", str(port), "-vv")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    rows = server.wait_bindings("1000", 1)
    assert f":{port}" in rows[0]["contact"]
