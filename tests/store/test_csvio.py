"""CSV import/export: round trip, all-or-nothing with line numbers, re-import is a no-op."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.store import Store
from onenumber.store.csvio import COLUMNS, CsvImportError, export_csv, import_csv, parse_csv

HEADER = ",".join(COLUMNS)


async def seed(store: Store) -> None:
    admin = store.admin
    await admin.add_account("1000", "Alice", ["+3225550100"])
    await admin.add_device("1000", "deskphone", label="Yealink T54W")
    await admin.add_device("1000", "mobile", ring_order=2, internet=True, expires_days=30)
    await admin.update_account("1000", ring_mode="exclusive", selected_device=1, forward_busy="voicemail",
                               custom_cli="+3225550199", dnd=True)
    await admin.add_account("1001", "Bob, the builder")  # a comma: quoted in the file
    await admin.add_account("1002", "Carol")
    await admin.add_device("1002", "softphone", auth_username="carol-soft", call_waiting=False)
    await admin.update_device("1002", 0, enabled=False)


async def test_export_then_reimport_is_a_noop(store: Store) -> None:
    await seed(store)
    text = await export_csv(store)
    lines = text.splitlines()
    assert lines[0] == HEADER and len(lines) == 1 + 2 + 1 + 1
    assert "secret" not in text.lower()
    before_secrets = {d.auth_username: d.secret for d in (await store.snapshot()).devices}
    revision = await store.revision()
    report = await import_csv(store, text)
    assert not report.changed
    assert report.accounts["unchanged"] == 3 and report.devices["unchanged"] == 3
    assert await store.revision() == revision  # nothing written, nothing reloaded
    assert await export_csv(store) == text
    assert {d.auth_username: d.secret for d in (await store.snapshot()).devices} == before_secrets


async def test_round_trip_into_an_empty_database(store: Store, tmp_path: object, db_url: str) -> None:
    await seed(store)
    text = await export_csv(store)
    other = await Store.open(db_url.replace("onenumber.sqlite3", "other.sqlite3")) if db_url.startswith(
        "sqlite") else None
    if other is None:
        pytest.skip("the round trip into a second database runs on SQLite")
    try:
        report = await import_csv(other, text)
        assert report.changed and report.accounts["created"] == 3 and report.devices["created"] == 3
        assert {(d["account"], d["position"], d["auth_username"]) for d in report.new_devices} == {
            ("1000", 0, "1000"), ("1000", 1, "1000_2"), ("1002", 0, "carol-soft")}
        assert await export_csv(other) == text
        snap = await other.snapshot()
        assert all(len(d.secret) >= 22 for d in snap.devices)  # generated, 128 bits or more
        account = next(a for a in snap.accounts if a.number == "1000")
        assert account.selected_device == 1 and account.dids == ("+3225550100",) and account.dnd
    finally:
        await other.close()


async def test_a_broken_line_reports_its_number_and_changes_nothing(store: Store) -> None:
    await seed(store)
    text = await export_csv(store)
    revision = await store.revision()
    broken = text.splitlines()
    broken.append(broken[1].replace("1000", "1003", 1).replace("deskphone", "fax-machine"))  # line 6
    broken.append("1004,Dave,,,,,,,,,,,,0,softphone,,1,yes,no,yes,,")  # fine on its own (line 7)
    with pytest.raises(CsvImportError) as caught:
        await import_csv(store, "\n".join(broken) + "\n")
    (error,) = caught.value.errors
    assert (error.line, error.column) == (6, "kind") and "fax-machine" in error.message
    assert "line 6, column kind" in str(caught.value)
    assert await store.revision() == revision
    assert await export_csv(store) == text  # neither 1003 nor 1004 was created


async def test_errors_found_against_the_database_have_lines_too(store: Store) -> None:
    await seed(store)
    text = (f"{HEADER}\n"
            "2000,Eve,+3225550100,,,,,,,,,,,,,,,,,,,\n"  # a DID of 1000
            "2001,Frank,,,,,,,,,,,,0,deskphone,,,,,,1000,\n"  # 1000's auth username
            "2002,,,,,,,,,,,,,,,,,,,,,\n")  # a new account needs a name
    with pytest.raises(CsvImportError) as caught:
        await import_csv(store, text)
    found = {(e.line, e.column) for e in caught.value.errors}
    assert found == {(2, "dids"), (3, "auth_username"), (4, "name")}


def test_parse_errors_name_line_and_column() -> None:
    bad = parse_csv("number,name,colour\n")
    assert [str(e) for e in bad.errors] == [
        f"line 1, column colour: unknown column; the columns are {', '.join(COLUMNS)}"]
    bad = parse_csv("number,name,position,kind,order\n1000,A,0,deskphone,x\n\n1000,A,0,mobile,1\n1001,B,9,mobile,1\n")
    assert [(e.line, e.column) for e in bad.errors] == [(2, "order"), (4, "position"), (5, "position")]
    assert parse_csv("").errors[0].line == 1


async def test_partial_columns_update_only_what_is_given(store: Store) -> None:
    await seed(store)
    report = await import_csv(store, "number;name;position;order\n1000;Alice A.;1;5\n")  # a ';' spreadsheet
    assert report.changed and report.accounts["updated"] == 1 and report.devices["updated"] == 1
    account = await store.admin.get_account("1000")
    assert account.display_name == "Alice A." and account.forwarding.busy == "voicemail"  # untouched
    assert (await store.admin.get_device("1000", 1)).ring_order == 5


async def test_prune_removes_what_the_file_does_not_list(store: Store) -> None:
    await seed(store)
    revision = await store.revision()
    report = await import_csv(store, "number,name,position,kind\n1000,Alice,0,deskphone\n", dry_run=True, prune=True)
    assert report.changed and report.accounts["removed"] == 2 and report.devices["removed"] == 1
    assert await store.revision() == revision  # a dry run writes nothing
    await import_csv(store, "number,name,position,kind\n1000,Alice,0,deskphone\n", prune=True)
    snap = await store.snapshot()
    assert [a.number for a in snap.accounts] == ["1000"] and [d.position for d in snap.devices] == [0]
    assert snap.accounts[0].selected_device is None  # its device went


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_parse_never_crashes_on_any_text(text: str) -> None:
    parsed = parse_csv(HEADER + "\n" + text)
    for error in parsed.errors:
        assert error.line >= 1 and error.message
