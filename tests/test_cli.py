"""The real `onenumber` command in a subprocess against a temporary SQLite file:
command forms, --json shapes, exit codes and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.db = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ONENUMBER_")}
        self.env["ONENUMBER_DATA_DIR"] = str(tmp_path / "data")
        self.cwd = tmp_path

    def run(self, *args: str, db: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "onenumber.cli", *args, *(["--db", self.db] if db else [])]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, cwd=self.cwd, timeout=60)

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def fails(self, *args: str, code: int = 1, db: bool = True) -> str:
        """Runs a failing command; returns its single stderr line."""
        result = self.run(*args, db=db)
        assert result.returncode == code, (args, result.returncode, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr  # one line, no traceback
        assert "Traceback" not in result.stderr
        return lines[0]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_accounts(cli: Cli) -> None:
    assert "no accounts" in cli.ok("account", "list")
    assert cli.json("account", "list") == []
    out = cli.ok("account", "add", "1000", "--name", "Alice", "--did", "+3225550100", "--did", "025550101")
    assert "account 1000 (Alice) added" in out
    bob = cli.json("account", "add", "1001", "--name", "Bob")
    assert bob["number"] == "1001" and bob["name"] == "Bob" and bob["devices"] == []

    listed = cli.json("account", "list")
    assert [a["number"] for a in listed] == ["1000", "1001"]
    assert listed[0]["dids"] == ["+3225550100", "025550101"]
    text = cli.ok("account", "list")
    assert "1000" in text and "Alice" in text and "+3225550100" in text

    cli.ok(
        "account",
        "update",
        "1000",
        "--name",
        "Alice Smith",
        "--remove-did",
        "025550101",
        "--add-did",
        "025550102",
        "--ring-mode",
        "exclusive",
        "--stage-seconds",
        "5",
        "--no-answer-seconds",
        "25",
        "--forward-busy",
        "2000",
        "--forward-no-answer",
        "1001",
        "--decline",
        "device",
        "--dnd",
        "--cli",
        "+3225550199",
    )
    shown = cli.json("account", "show", "1000")
    assert shown["name"] == "Alice Smith"
    assert shown["dids"] == ["+3225550100", "025550102"]
    assert (shown["ring_mode"], shown["stage_seconds"], shown["no_answer_seconds"]) == ("exclusive", 5, 25)
    assert (shown["forward_busy"], shown["forward_no_answer"], shown["forward_unconditional"]) == (
        "2000",
        "1001",
        None,
    )
    assert (shown["decline"], shown["dnd"], shown["cli"]) == ("device", True, "+3225550199")
    cli.ok("account", "update", "1000", "--forward-busy", "", "--no-dnd", "--cli", "")
    shown = cli.json("account", "show", "1000")
    assert (shown["forward_busy"], shown["dnd"], shown["cli"]) == (None, False, None)
    assert shown["voicemail_pin_set"] is False and "the server-wide one" in cli.ok("account", "show", "1000")
    updated = cli.json("account", "update", "1000", "--voicemail-pin", "97531")
    assert updated["voicemail_pin_set"] is True and "97531" not in str(updated)  # never shown
    assert "voicemail PIN:" in cli.ok("account", "show", "1000") and "97531" not in cli.ok("account", "show", "1000")
    assert "4-12 digits" in cli.fails("account", "update", "1000", "--voicemail-pin", "12")
    cli.ok("account", "update", "1000", "--voicemail-pin", "")
    assert cli.json("account", "show", "1000")["voicemail_pin_set"] is False
    assert "forward no-answer:" in cli.ok("account", "show", "1000")

    assert "account 1001 (Bob) removed" in cli.ok("account", "remove", "1001")
    assert [a["number"] for a in cli.json("account", "list")] == ["1000"]


def test_account_errors(cli: Cli) -> None:
    cli.ok("account", "add", "1000", "--name", "Alice", "--did", "555")
    line = cli.fails("account", "add", "1000", "--name", "Again")
    assert line == ("onenumber: account 1000 already exists; choose another number or use 'onenumber account update'")
    assert "is a DID of account 1000" in cli.fails("account", "add", "555", "--name", "X")
    assert "no account 4242" in cli.fails("account", "show", "4242")
    assert "no account 4242" in cli.fails("account", "remove", "4242")
    assert "ring mode 'loud' is not known" in cli.fails("account", "update", "1000", "--ring-mode", "loud")
    assert "nothing to change" in cli.fails("account", "update", "1000", code=2)
    assert "Missing option '--name'" in cli.fails("account", "add", "1002", code=2)
    assert "No such option: --bogus" in cli.fails("account", "list", "--bogus", code=2)


def test_devices(cli: Cli) -> None:
    cli.ok("account", "add", "1000", "--name", "Alice")
    out = cli.ok("device", "add", "1000", "--kind", "deskphone", "--label", "Yealink T54W")
    assert "auth username:  1000" in out and "password:" in out and "domain:" in out
    soft = cli.json("device", "add", "1000", "--kind", "softphone", "--order", "2")
    assert {"auth_username", "secret", "position", "domain", "account", "kind"} <= soft.keys()
    assert (soft["auth_username"], soft["position"], soft["account"], soft["kind"]) == (
        "1000_2",
        1,
        "1000",
        "softphone",
    )
    assert len(soft["secret"]) >= 16
    web = cli.json(
        "device",
        "add",
        "1000",
        "--kind",
        "webphone",
        "--position",
        "5",
        "--auth-username",
        "alice-web",
        "--internet",
        "--expires-days",
        "30",
    )
    assert (web["position"], web["auth_username"], web["internet"]) == (5, "alice-web", True)
    assert web["credential_expires_at"] is not None

    listed = cli.json("device", "list", "1000")
    assert [(d["position"], d["auth_username"], d["order"]) for d in listed] == [
        (0, "1000", 1),
        (1, "1000_2", 2),
        (5, "alice-web", 1),
    ]
    assert all("secret" not in d for d in listed)  # listings never show secrets
    assert soft["secret"] not in cli.ok("device", "list", "1000")
    assert soft["secret"] not in cli.ok("account", "show", "1000", "--json")

    # by NUMBER POSITION or by auth username
    cli.ok("device", "update", "1000", "1", "--order", "0", "--disabled", "--no-call-waiting", "--label", "laptop")
    cli.ok("device", "update", "alice-web", "--move-to", "2", "--no-internet")
    listed = {d["position"]: d for d in cli.json("device", "list", "1000")}
    assert (listed[1]["order"], listed[1]["enabled"], listed[1]["call_waiting"], listed[1]["label"]) == (
        0,
        False,
        False,
        "laptop",
    )
    assert listed[2]["auth_username"] == "alice-web" and listed[2]["internet"] is False

    rotated = cli.json("device", "rotate-secret", "1000", "1")
    assert rotated["secret"] != soft["secret"] and rotated["auth_username"] == "1000_2"
    assert "password:" in cli.ok("device", "rotate-secret", "1000_2")

    assert "removed" in cli.ok("device", "remove", "1000", "2")
    assert "removed" in cli.ok("device", "remove", "1000_2")
    assert [d["position"] for d in cli.json("device", "list", "1000")] == [0]


def test_device_errors(cli: Cli) -> None:
    cli.ok("account", "add", "1000", "--name", "Alice")
    assert "no account 1001" in cli.fails("device", "add", "1001", "--kind", "deskphone")
    assert "device kind 'fax' is not known" in cli.fails("device", "add", "1000", "--kind", "fax")
    cli.ok("device", "add", "1000", "--kind", "deskphone")
    assert "position 0 of account 1000 is taken" in cli.fails(
        "device", "add", "1000", "--kind", "softphone", "--position", "0"
    )
    assert "auth username 1000 is already used" in cli.fails(
        "device", "add", "1000", "--kind", "softphone", "--auth-username", "1000"
    )
    for _ in range(7):
        cli.ok("device", "add", "1000", "--kind", "softphone")
    line = cli.fails("device", "add", "1000", "--kind", "softphone")
    assert "already has 8 devices" in line and "remove one first" in line
    assert "has no device at position 9" in cli.fails("device", "update", "1000", "9", "--order", "1")
    assert "no device with auth username nobody" in cli.fails("device", "remove", "nobody")
    assert "Invalid value for '--position'" in cli.fails(
        "device", "add", "1000", "--kind", "mobile", "--position", "x", code=2
    )


def test_bindings_and_ring_plan(cli: Cli, tmp_path: Path) -> None:
    import asyncio
    import time

    from onenumber.routing.model import Binding
    from onenumber.store import Store

    cli.ok("account", "add", "1000", "--name", "Alice", "--did", "+3225550100")
    cli.ok("device", "add", "1000", "--kind", "deskphone")
    cli.ok("device", "add", "1000", "--kind", "softphone", "--order", "2")
    assert cli.json("bindings", "1000") == []
    assert "no live registrations" in cli.ok("bindings", "1000")

    async def register() -> None:  # what the server's write-through does
        store = await Store.open(cli.db)
        now = time.time()
        try:
            await store.write_bindings(
                [
                    Binding(
                        "1000",
                        "1000",
                        "sip:1000@10.0.0.5:5060",
                        now + 300,
                        "udp",
                        ("10.0.0.5", 5060),
                        user_agent="Yealink",
                    ),
                    Binding(
                        "1000",
                        "1000_2",
                        "sip:x@10.0.0.6:5070;transport=tcp",
                        now + 600,
                        "tcp",
                        ("10.0.0.6", 41000),
                        instance="<urn:uuid:1>",
                        reg_id=1,
                        flow="c1",
                    ),
                ],
                [],
            )
        finally:
            await store.close()

    asyncio.run(register())
    found = cli.json("bindings", "1000")
    assert [b["auth_username"] for b in found] == ["1000", "1000_2"]
    first = found[0]
    assert {"auth_username", "contact", "transport", "expires", "source", "instance", "user_agent"} <= first.keys()
    assert first["contact"] == "sip:1000@10.0.0.5:5060" and first["transport"] == "udp"
    assert 250 < first["expires"] <= 300 and first["source"] == "10.0.0.5:5060" and first["user_agent"] == "Yealink"
    assert found[1]["instance"] == "<urn:uuid:1>"
    assert "sip:1000@10.0.0.5:5060" in cli.ok("bindings", "1000")
    assert "no account 1001" in cli.fails("bindings", "1001")

    plan = cli.json("ring-plan", "1000")
    assert plan["account"] == "1000"
    assert [s["positions"] for s in plan["stages"]] == [[0], [1]]
    assert [d["rings"] for d in plan["devices"]] == [True, True]
    assert plan["stages"][0]["contacts"][0]["contact"] == "sip:1000@10.0.0.5:5060"
    assert cli.json("ring-plan", "+3225550100")["account"] == "1000"  # a DID finds its account
    text = cli.ok("ring-plan", "1000")
    assert "Ring plan for 1000" in text and "1000_2" in text
    assert "no account or DID 999" in cli.fails("ring-plan", "999")


def test_settings_and_trunks(cli: Cli) -> None:
    shown = cli.json("settings", "show")
    assert shown["domain"] is None and "10.0.0.0/8" in shown["trusted_networks"]
    assert "trusted_networks" in cli.ok("settings", "show")
    assert "127.0.0.1/32,10.0.0.0/8" in cli.ok("settings", "set", "trusted_networks", "127.0.0.1/32,10.0.0.0/8")
    cli.ok("settings", "set", "domain", "pbx.example.com")
    shown = cli.json("settings", "show")
    assert shown["trusted_networks"] == ["127.0.0.1/32", "10.0.0.0/8"] and shown["domain"] == "pbx.example.com"
    assert "is not a network" in cli.fails("settings", "set", "trusted_networks", "everyone")
    assert "unknown setting 'colour'" in cli.fails("settings", "set", "colour", "blue")
    cli.ok("settings", "reset", "domain")
    assert cli.json("settings", "show")["domain"] is None

    # the domain setting shows up in what device add prints
    cli.ok("settings", "set", "domain", "pbx.example.com")
    cli.ok("account", "add", "1000", "--name", "Alice")
    assert cli.json("device", "add", "1000", "--kind", "deskphone")["domain"] == "pbx.example.com"

    assert cli.json("trunk", "list") == []
    assert "trunk gw added" in cli.ok("trunk", "add", "gw", "--host", "192.0.2.10", "--prefix", "0")
    cli.ok("trunk", "add", "carrier", "--host", "sip.example.net", "--port", "5080", "--transport", "tcp")
    assert cli.json("trunk", "list") == [
        {"name": "carrier", "host": "sip.example.net", "port": 5080, "transport": "tcp", "prefix": ""},
        {"name": "gw", "host": "192.0.2.10", "port": 5060, "transport": "udp", "prefix": "0"},
    ]
    assert "trunk gw already exists" in cli.fails("trunk", "add", "gw", "--host", "192.0.2.11")
    assert "trunk transport 'sctp' is not known" in cli.fails("trunk", "add", "t", "--host", "h", "--transport", "sctp")
    cli.ok("trunk", "remove", "gw")
    assert "no trunk named 'gw'" in cli.fails("trunk", "remove", "gw")


def test_db_upgrade_default_location_and_bad_urls(cli: Cli, tmp_path: Path) -> None:
    first = cli.run("db", "upgrade", db=False)
    assert first.returncode == 0, first.stderr
    assert "upgraded from an empty database" in first.stdout
    assert (tmp_path / "data" / "onenumber.sqlite3").exists()  # $ONENUMBER_DATA_DIR/onenumber.sqlite3
    again = cli.run("db", "upgrade", db=False)
    assert "already up to date" in again.stdout
    # --db before the command works too
    result = subprocess.run(
        [sys.executable, "-m", "onenumber.cli", "--db", cli.db, "account", "list", "--json"],
        capture_output=True,
        text=True,
        env=cli.env,
        cwd=cli.cwd,
        timeout=60,
    )
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert "unsupported database 'mysql'" in cli.fails("account", "list", "--db", "mysql://x/y", db=False, code=2)
    line = cli.fails("account", "list", "--db", "postgresql://nobody@127.0.0.1:1/none", db=False)
    assert line.startswith("onenumber: cannot use the database postgresql+asyncpg://nobody@127.0.0.1:1/none")


def test_serve_usage_errors(cli: Cli, tmp_path: Path) -> None:
    assert "--tls-cert and --tls-key go together" in cli.fails(
        "serve", "--tls-cert", str(tmp_path / "c.pem"), "--sip-port", "15060", code=2
    )
    assert "is not a port" in cli.fails("serve", "--sip-port", "70000", code=2)
    assert "not a host name" in cli.fails("serve", "--domain", "bad domain!", code=2)
    assert "use text or json" in cli.fails("serve", "--log-format", "xml", code=2)
    assert "needs --redis URL" in cli.fails("serve", "--workers", "2", code=2)
    assert "out of range" in cli.fails("serve", "--workers", "-1", code=2)
    assert "is not a Redis URL" in cli.fails("serve", "--redis", "localhost:6379", code=2)
    assert "--node-uri needs --redis" in cli.fails("serve", "--node-uri", "sip:127.0.0.2:5070", code=2)
    assert "no user part" in cli.fails("serve", "--node-uri", "sip:a@b", "--redis", "redis://127.0.0.1/13", code=2)
    assert "must be the --sip-port" in cli.fails("serve", "--node-uri", "sip:10.0.0.2:5070", "--sip-port", "15070",
                                                 "--redis", "redis://127.0.0.1/13", code=2)


def test_serve_help_tells_about_nodes(cli: Cli) -> None:
    out = cli.run("serve", "--help", db=False).stdout
    for option in ("--node-uri", "--secret-file", "--redis", "--workers"):
        assert option in out


def test_help_lists_the_commands(cli: Cli) -> None:
    out = cli.run("--help", db=False).stdout
    for command in ("serve", "account", "device", "bindings", "ring-plan", "settings", "trunk", "db"):
        assert command in out


def test_voicemail_list_play_path_delete(cli: Cli, tmp_path: Path) -> None:
    import asyncio

    from onenumber.services.voicemail.store import DatabaseMessageStore, VoicemailMessage
    from onenumber.store import Store

    cli.ok("account", "add", "1000", "--name", "Alice")
    wav = tmp_path / "m1.wav"
    wav.write_bytes(b"RIFF")

    async def seed() -> None:
        store = await Store.open(cli.db)
        try:
            db = DatabaseMessageStore(store)
            await db.add(VoicemailMessage("m1", "1000", "1002", "Carol", 1000.0, str(wav), 3.2, complete=True))
            await db.add(VoicemailMessage("m2", "1000", "", "", 2000.0, str(tmp_path / "m2.wav"), 1.0,
                                          heard=True, complete=True))
        finally:
            await store.close()

    asyncio.run(seed())
    out = cli.ok("voicemail", "list", "1000")
    assert "m1" in out and "1002 Carol" in out and "3.2s" in out and "1 new, 1 saved" in out
    assert [r["id"] for r in cli.json("voicemail", "list", "1000")] == ["m1", "m2"]
    assert cli.ok("voicemail", "play-path", "m1").strip() == str(wav)
    assert "missing" in cli.fails("voicemail", "play-path", "m2")
    assert "m1 of 1000 deleted" in cli.ok("voicemail", "delete", "m1")
    assert not wav.exists()
    assert "no voicemail message 'm1'" in cli.fails("voicemail", "delete", "m1")
    assert [r["id"] for r in cli.json("voicemail", "list", "1000")] == ["m2"]
    assert "1999" in cli.fails("voicemail", "list", "1999")


def test_presence_and_voicemail_settings(cli: Cli) -> None:
    cli.ok("settings", "set", "presence_watch", "all")
    cli.ok("settings", "set", "voicemail_access", "*97")
    cli.ok("settings", "set", "voicemail_pin", "4321")
    cli.ok("settings", "set", "mwi_unsolicited", "yes")
    values = cli.json("settings", "show")
    assert values["presence_watch"] == "everyone" and values["mwi_unsolicited"] is True
    assert values["voicemail_access"] == "*97" and values["voicemail_pin"] == "4321"
    assert "voicemail_pin" in cli.fails("settings", "set", "voicemail_pin", "12")
    assert "pickup" in cli.fails("settings", "set", "voicemail_access", "*81")
    assert "presence_watch" in cli.fails("settings", "set", "presence_watch", "1001-1000")
    assert "voicemail_dir" in cli.fails("settings", "set", "voicemail_dir", "relative/dir")
    assert "voicemail_max_seconds" in cli.fails("settings", "set", "voicemail_max_seconds", "2")


def test_logins_admins_and_tokens(cli: Cli) -> None:
    import asyncio

    from onenumber.store import Store
    from onenumber.store.logins import check_password, find_api_token, password_hash

    cli.ok("account", "add", "1000", "--name", "Alice")
    out = cli.ok("admin", "create", "root")
    assert "admin root created; password (shown only now): " in out
    generated = out.strip().rsplit(" ", 1)[1]
    piped = subprocess.run(
        [sys.executable, "-m", "onenumber.cli", "admin", "create", "ops", "--password-stdin", "--db", cli.db],
        input="ops-password\n", capture_output=True, text=True, env=cli.env, cwd=cli.cwd, timeout=60,
    )
    assert piped.returncode == 0 and "admin ops created" in piped.stdout
    assert cli.ok("admin", "list").split() == ["ops", "root"]
    assert "already exists" in cli.fails("admin", "create", "root")
    assert "username" in cli.fails("admin", "create", "1234")

    def set_password(number: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "onenumber.cli", "account", "set-password", number, "--password-stdin",
             "--db", cli.db], input=password + "\n", capture_output=True, text=True, env=cli.env, cwd=cli.cwd,
            timeout=60,
        )

    short = set_password("1000", "short")
    assert short.returncode == 1 and "too short" in short.stderr and len(short.stderr.strip().splitlines()) == 1
    assert set_password("9999", "long-enough").returncode == 1
    assert set_password("1000", "alice-password").returncode == 0

    made = cli.json("token", "create", "billing")
    assert made["role"] == "admin" and made["token"].startswith("on_")
    user = cli.json("token", "create", "script", "--role", "user", "--account", "1000")
    assert user["account"] == "1000"
    listed = cli.json("token", "list")
    assert [t["name"] for t in listed] == ["billing", "script"] and all("token" not in t for t in listed)
    assert "revoked" in cli.ok("token", "revoke", str(made["id"]))
    assert "role" in cli.fails("token", "create", "x", "--role", "root")
    assert "no API token" in cli.fails("token", "revoke", "99")

    async def check() -> tuple[bool, bool, bool]:
        store = await Store.open(cli.db)
        try:
            return (
                check_password(generated, await password_hash(store, "admin", "root")),
                check_password("alice-password", await password_hash(store, "user", "1000")),
                await find_api_token(store, made["token"]) is None and await find_api_token(store, user["token"])
                is not None,
            )
        finally:
            await store.close()

    assert asyncio.run(check()) == (True, True, True)
