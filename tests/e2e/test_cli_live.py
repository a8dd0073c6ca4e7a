"""CLI changes reach a running server with no restart (issue 2: "take effect on the next SIP
request"): rotated secrets, renamed auth usernames, disabled internet access, settings.

Each test changes something with the CLI while the server runs, then checks with real
REGISTERs that the change is in force within a second of the command returning.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .harness import RawUA, Server, SipReply, wait_config

WITHIN = 1.0  # seconds after the CLI returns


def eventually(check: Callable[[], SipReply], want: int, what: str, within: float = WITHIN) -> SipReply:
    """Repeat `check` until it answers `want`; fail if that takes longer than `within`."""
    start = time.monotonic()
    while True:
        reply = check()
        if reply.status == want:
            return reply
        assert time.monotonic() - start < within, f"{what}: still {reply.status} after {within}s\n{reply.raw}"
        time.sleep(0.05)


def test_rotated_secret_applies_at_once(server: Server) -> None:
    (dev,) = server.add_account("1000", "Alice", devices=1)
    wait_config(server)
    with RawUA(server) as ua:
        assert ua.register("1000", auth=(dev.auth_username, dev.secret)).status == 200
        # --at-once: no overlap window (test_provisioning.py covers the window)
        view = server.cli_json("device", "rotate-secret", "1000", "0", "--at-once")
        assert isinstance(view, dict)
        new = str(view["secret"])
        assert new != dev.secret and view["auth_username"] == dev.auth_username
        eventually(lambda: ua.register("1000", auth=(dev.auth_username, new)), 200, "new secret")
        old = ua.register("1000", auth=(dev.auth_username, dev.secret))
        assert old.status == 401, old.raw  # revoked at once: just a wrong password, challenged again


def test_renamed_auth_username_applies_at_once(server: Server) -> None:
    (dev,) = server.add_account("1000", "Alice", devices=1)
    wait_config(server)
    with RawUA(server) as ua:
        assert ua.register("1000", auth=(dev.auth_username, dev.secret)).status == 200
        server.cli("device", "update", "1000", "0", "--auth-username", "alice-desk")
        eventually(lambda: ua.register("1000", auth=("alice-desk", dev.secret)), 200, "new auth username")
        assert ua.register("1000", auth=(dev.auth_username, dev.secret)).status == 401
    rows = server.bindings("1000")
    assert [r["auth_username"] for r in rows] == ["alice-desk"], rows


def test_trusted_networks_and_internet_flag_apply_at_once(server: Server) -> None:
    (dev,) = server.add_account("1000", "Alice", devices=1)
    wait_config(server)
    with RawUA(server, local_ip="127.0.0.2") as ua:
        assert ua.register("1000", auth=(dev.auth_username, dev.secret)).status == 200  # loopback is trusted
        server.cli("settings", "set", "trusted_networks", "127.0.0.1/32")
        refused = eventually(lambda: ua.register("1000", auth=(dev.auth_username, dev.secret)), 403,
                             "trusted_networks change")
        assert refused.reason not in ("", "Forbidden"), refused.raw  # it says why
        server.cli("device", "update", "1000", "0", "--internet")
        eventually(lambda: ua.register("1000", auth=(dev.auth_username, dev.secret)), 200, "--internet")


def test_min_expires_applies_at_once(server: Server) -> None:
    (dev,) = server.add_account("1000", "Alice", devices=1)
    wait_config(server)
    with RawUA(server) as ua:
        assert ua.register("1000", auth=(dev.auth_username, dev.secret), expires=100).status == 200
        server.cli("settings", "set", "min_expires", "120")
        brief = eventually(lambda: ua.register("1000", auth=(dev.auth_username, dev.secret), expires=100), 423,
                           "min_expires change")
        assert brief.get("Min-Expires") == "120", brief.raw
