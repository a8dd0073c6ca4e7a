"""The CLI of issue 9's operations: import/export, device rotate / rotate-due, device provision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def test_import_export_round_trip_and_errors(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("number,name,dids,position,kind,label,order\n"
                      "1000,Alice,+3225550100,0,deskphone,T54W,1\n"
                      "1000,Alice,+3225550100,1,mobile,,2\n"
                      "1001,Bob,,,,,\n")
    out = cli.ok("import", str(source))
    assert "accounts: 2 created" in out and "devices: 2 created" in out
    assert "onenumber device provision 1000 0" in out and "onenumber device provision 1000 1" in out
    exported = tmp_path / "out.csv"
    cli.ok("export", str(exported))
    text = exported.read_text()
    assert text.splitlines()[0].startswith("number,name,dids,ring_mode") and len(text.splitlines()) == 4
    assert cli.ok("export") == text  # standard output by default
    again = cli.json("import", str(exported))
    assert again["ok"] and again["changed"] is False
    rows = json.loads(cli.ok("export", "--json"))
    assert [r["auth_username"] for r in rows] == ["1000", "1000_2", None]

    broken = tmp_path / "broken.csv"
    broken.write_text(text + "1002,Carol,,ordered,10,30,,,,everywhere,no,,,0,deskphone,,x,yes,no,yes,,\n")
    result = cli.run("import", str(broken))
    assert result.returncode == 1
    assert "nothing was changed" in result.stderr and "line 5, column order" in result.stderr
    failed = json.loads(cli.run("import", str(broken), "--json").stdout)
    assert failed["ok"] is False and failed["errors"][0]["line"] == 5
    assert cli.ok("export") == text
    assert "cannot read" in cli.fails("import", str(tmp_path / "missing.csv"))

    extra = tmp_path / "extra.csv"
    extra.write_text("number,name,position,kind\n1003,Dan,0,deskphone\n")
    out = cli.ok("import", str(extra), "--links", "--base-url", "https://pbx.example.com")
    assert "1003 0 1003  https://pbx.example.com/provision/" in out


def test_rotate_and_provision(cli: Cli) -> None:
    cli.ok("account", "add", "1000", "--name", "Alice")
    added = cli.json("device", "add", "1000", "--kind", "deskphone")
    out = cli.ok("device", "rotate", "1000", "0")
    assert "old secret keeps working until" in out and added["secret"] not in out
    assert "onenumber device provision 1000 0" in out
    rotated = cli.json("device", "rotate", "1000", "--at-once", "--show-secret")
    assert rotated["previous_secret_valid_until"] is None and rotated["secret"] != added["secret"]
    assert "no device secret is due" in cli.ok("device", "rotate-due")
    link = cli.json("device", "provision", "1000", "0", "--base-url", "https://pbx.example.com:8443/")
    assert link["url"].startswith("https://pbx.example.com:8443/provision/") and len(link["url"]) > 60
    out = cli.ok("device", "provision", "1000", "--qr")  # by auth username
    assert "/provision/" in out and "█" in out
    assert "--base-url" in cli.fails("device", "provision", "1000", "0", "--base-url", "nope", code=2)
