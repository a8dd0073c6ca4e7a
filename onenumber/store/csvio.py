"""CSV import and export of accounts and devices (docs/admin.md, "CSV import and export").

One row per device, the account's columns repeated on each of its rows (an account without
devices has one row with the device columns empty). Secrets are never exported; a device
new to the database gets a generated secret, handed to the phone by a provisioning link.

Import is all-or-nothing: the whole file is parsed and validated with the admin layer's
own checks (`admin.py`, so CSV, CLI and API say the same thing) against the database as it
is inside one write transaction, every problem is reported with its line and column, and
only a file without problems is written, in bulk. A file that matches the database changes
nothing: no row is rewritten and the configuration revision does not move.
"""

from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from onenumber.routing.model import MAX_DEVICES, DeclineMode, DeviceKind, RingMode
from onenumber.store import tables as t
from onenumber.store.admin import (
    MAX_RING_ORDER,
    MAX_STAGE_SECONDS,
    AdminError,
    _auth_username,
    _choice,
    _cli_number,
    _did,
    _display_name,
    _int_range,
    _label,
    _number,
    _position,
    _target,
    _utcnow,
    default_auth_username,
    new_secret,
)
from onenumber.store.repository import notify_config

if TYPE_CHECKING:
    from onenumber.store.repository import Store

ACCOUNT_COLUMNS = (
    "number", "name", "dids", "ring_mode", "stage_seconds", "no_answer_seconds", "forward_unconditional",
    "forward_busy", "forward_no_answer", "decline", "dnd", "selected_device", "cli",
)
DEVICE_COLUMNS = (
    "position", "kind", "label", "order", "enabled", "internet", "call_waiting", "auth_username",
    "credential_expires",
)
COLUMNS = ACCOUNT_COLUMNS + DEVICE_COLUMNS
ALIASES = {"did": "dids", "display_name": "name", "ring_order": "order", "caller_id": "cli",
           "custom_cli": "cli", "credential_expires_at": "credential_expires"}
MAX_REPORTED = 100

# table column of each CSV column
_ACCOUNT_DB = {"name": "display_name", "ring_mode": "ring_mode", "stage_seconds": "stage_seconds",
               "no_answer_seconds": "no_answer_seconds", "forward_unconditional": "fwd_unconditional",
               "forward_busy": "fwd_busy", "forward_no_answer": "fwd_no_answer", "decline": "decline",
               "dnd": "dnd", "selected_device": "selected_device", "cli": "custom_cli"}
_DEVICE_DB = {"kind": "kind", "label": "label", "order": "ring_order", "enabled": "enabled", "internet": "internet",
              "call_waiting": "call_waiting", "auth_username": "auth_username",
              "credential_expires": "credential_expires_at"}
_ACCOUNT_DEFAULTS: dict[str, Any] = {"ring_mode": "ordered", "stage_seconds": 10, "no_answer_seconds": 30,
                                     "fwd_unconditional": None, "fwd_busy": None, "fwd_no_answer": None,
                                     "decline": "everywhere", "dnd": False, "selected_device": None,
                                     "custom_cli": None}
_DEVICE_DEFAULTS: dict[str, Any] = {"ring_order": 1, "enabled": True, "label": "", "internet": False,
                                    "call_waiting": True, "credential_expires_at": None}
_TRUE = {"yes", "y", "true", "1", "on"}
_FALSE = {"no", "n", "false", "0", "off"}


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"

    def view(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}


class CsvImportError(AdminError):
    """The file has problems; nothing was changed. `errors` lists every one found."""

    status = 422

    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors
        shown = "; ".join(str(e) for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        super().__init__(f"import failed, nothing was changed: {shown}{more}")


_COUNTS = ("created", "updated", "unchanged", "removed")


@dataclass
class ImportReport:
    dry_run: bool = False
    changed: bool = False
    accounts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    devices: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    new_devices: list[dict[str, Any]] = field(default_factory=list)

    def view(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "changed": self.changed, "accounts": self.accounts,
                "devices": self.devices, "new_devices": self.new_devices}


# --- export ----------------------------------------------------------------------------------------


async def export_rows(store: Store) -> list[dict[str, Any]]:
    """Every account and device as typed rows (the CSV columns; `dids` a list)."""
    async with store.read() as conn:
        accounts = (await conn.execute(select(t.accounts).order_by(t.accounts.c.number))).all()
        dids: dict[str, list[str]] = {}
        for account, did in await conn.execute(select(t.dids.c.account, t.dids.c.did)):
            dids.setdefault(str(account), []).append(str(did))
        devices: dict[str, list[Any]] = {}
        for device in await conn.execute(select(t.devices).order_by(t.devices.c.account, t.devices.c.position)):
            devices.setdefault(device.account, []).append(device)
    out: list[dict[str, Any]] = []
    for a in accounts:
        head: dict[str, Any] = {"number": a.number, "name": a.display_name, "dids": sorted(dids.get(a.number, []))}
        head.update({col: a._mapping[db] for col, db in _ACCOUNT_DB.items() if col != "name"})
        head["dnd"] = bool(head["dnd"])
        for d in devices.get(a.number) or [None]:
            row: dict[str, Any] = dict(head)
            if d is None:
                row.update(dict.fromkeys(DEVICE_COLUMNS))
            else:
                row["position"] = d.position
                row.update({col: d._mapping[db] for col, db in _DEVICE_DB.items()})
                for flag in ("enabled", "internet", "call_waiting"):
                    row[flag] = bool(row[flag])
            out.append(row)
    return out


def rows_to_csv(rows: Iterable[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(column, row.get(column)) for column in COLUMNS])
    return buffer.getvalue()


async def export_csv(store: Store) -> str:
    return rows_to_csv(await export_rows(store))


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column == "dids":
        return " ".join(value)
    if column == "credential_expires":
        return datetime.fromtimestamp(float(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


# --- parsing ---------------------------------------------------------------------------------------


@dataclass
class _Account:
    line: int
    number: str
    values: dict[str, Any]  # CSV column -> parsed value, for the columns given
    dids: tuple[str, ...] | None
    lines: dict[str, int] = field(default_factory=dict)  # where each value came from


@dataclass
class _Device:
    line: int
    number: str
    position: int
    values: dict[str, Any]


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise AdminError(f"{text!r} is not yes or no")


def _int(what: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise AdminError(f"{what} must be a whole number between {low} and {high} (got {text!r})") from None
    return _int_range(what, value, low, high)


def _when(text: str) -> float:
    value = text.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise AdminError(f"{value!r} is not a date and time; use ISO 8601 such as 2027-01-31T12:00:00Z") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _dids(text: str) -> tuple[str, ...]:
    items = [_did(d) for d in text.replace(",", " ").replace(";", " ").split()]
    if len(set(items)) != len(items):
        raise AdminError("the same DID is listed twice")
    return tuple(sorted(items))


def _name(text: str) -> str | None:
    return _display_name(text) if text.strip() else None  # empty: keep the stored name


def _optional_int(what: str, low: int, high: int) -> Callable[[str], int | None]:
    return lambda text: _int(what, text, low, high) if text.strip() else None


# CSV column -> parser of a non-empty (or, for nullable columns, possibly empty) cell
_ACCOUNT_PARSERS: dict[str, Callable[[str], Any]] = {
    "name": _name,
    "ring_mode": lambda s: _choice("ring mode", s, RingMode),
    "stage_seconds": lambda s: _int("stage seconds", s, 1, MAX_STAGE_SECONDS),
    "no_answer_seconds": lambda s: _int("no-answer seconds", s, 1, MAX_STAGE_SECONDS),
    "forward_unconditional": lambda s: _target("unconditional forward", s),
    "forward_busy": lambda s: _target("busy forward", s),
    "forward_no_answer": lambda s: _target("no-answer forward", s),
    "decline": lambda s: _choice("decline mode", s, DeclineMode),
    "dnd": _bool,
    "selected_device": _optional_int("selected device", 0, MAX_DEVICES - 1),
    "cli": lambda s: _cli_number(s) if s.strip() else None,
}
_DEVICE_PARSERS: dict[str, Callable[[str], Any]] = {
    "kind": lambda s: _choice("device kind", s, DeviceKind),
    "label": _label,
    "order": lambda s: _int("ring order", s, 0, MAX_RING_ORDER),
    "enabled": _bool,
    "internet": _bool,
    "call_waiting": _bool,
    "auth_username": _auth_username,
    "credential_expires": lambda s: _when(s) if s.strip() else None,
}
# columns where an empty cell means "none" rather than "leave as it is / default"
_NULLABLE = {"forward_unconditional", "forward_busy", "forward_no_answer", "selected_device", "cli",
             "credential_expires", "label"}


class _Parsed:
    def __init__(self) -> None:
        self.columns: list[str] = []
        self.accounts: dict[str, _Account] = {}
        self.devices: dict[tuple[str, int], _Device] = {}
        self.errors: list[RowError] = []

    def error(self, line: int, column: str | None, message: str) -> None:
        self.errors.append(RowError(line, column, message))


def parse_csv(text: str) -> _Parsed:
    parsed = _Parsed()
    text = text.removeprefix("\ufeff")  # a spreadsheet's byte order mark
    first = text.split("\n", 1)[0]
    delimiter = ";" if ";" in first and "," not in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        parsed.error(1, None, f"not readable as CSV ({exc})")
        return parsed
    if not header or not any(h.strip() for h in header):
        parsed.error(1, None, f"the file is empty; the first line names the columns, e.g. {','.join(COLUMNS)}")
        return parsed
    columns = []
    for cell in header:
        name = cell.strip().lower().replace(" ", "_").replace("-", "_")
        name = ALIASES.get(name, name)
        if name not in COLUMNS:
            parsed.error(1, cell.strip(), f"unknown column; the columns are {', '.join(COLUMNS)}")
        elif name in columns:
            parsed.error(1, name, "this column is given twice")
        columns.append(name)
    if "number" not in columns:
        parsed.error(1, None, "the column 'number' is required")
    if parsed.errors:
        return parsed
    parsed.columns = columns
    has_device_columns = any(c in DEVICE_COLUMNS for c in columns)
    line = 1
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            parsed.error(reader.line_num, None, f"not readable as CSV ({exc})")
            break
        line = start
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(columns):
            parsed.error(line, None, f"{len(cells)} values but the first line names {len(columns)} columns")
            continue
        row = dict(zip(columns, cells, strict=False))
        _parse_row(parsed, line, row, has_device_columns)
        if len(parsed.errors) > MAX_REPORTED:
            break
    return parsed


def _parse_row(parsed: _Parsed, line: int, row: dict[str, str], has_device_columns: bool) -> None:
    try:
        number = _number(row.get("number", ""))
    except AdminError as exc:
        parsed.error(line, "number", str(exc))
        return
    values: dict[str, Any] = {}
    dids: tuple[str, ...] | None = None
    for column, text in row.items():
        try:
            if column == "dids":
                dids = _dids(text)
            elif column in _ACCOUNT_PARSERS and (text.strip() or column in _NULLABLE):
                values[column] = _ACCOUNT_PARSERS[column](text)
        except AdminError as exc:
            parsed.error(line, column, str(exc))
    if "name" in values and values["name"] is None:
        del values["name"]
    known = parsed.accounts.get(number)
    if known is None:
        parsed.accounts[number] = _Account(line, number, values, dids)
    else:
        # a later row of the same account may repeat its values or leave them empty
        for column, value in values.items():
            if column not in known.values:
                known.values[column] = value
            elif row[column].strip() and known.values[column] != value:
                parsed.error(line, column, f"differs from line {known.line} for account {number}")
        if dids and known.dids is None:
            known.dids = dids
        elif dids and known.dids is not None and dids != known.dids:
            parsed.error(line, "dids", f"differs from line {known.line} for account {number}")
    if not has_device_columns:
        return
    position_text = row.get("position", "").strip()
    if not position_text:
        filled = [c for c in DEVICE_COLUMNS if row.get(c, "").strip()]
        if filled:
            parsed.error(line, "position", f"a device needs its position (0-{MAX_DEVICES - 1}); "
                         f"leave {', '.join(filled)} empty for an account without devices")
        return
    try:
        position = _position(_int("position", position_text, 0, MAX_DEVICES - 1))
    except AdminError as exc:
        parsed.error(line, "position", str(exc))
        return
    device_values: dict[str, Any] = {}
    for column in DEVICE_COLUMNS[1:]:
        cell = row.get(column)
        if cell is None or not (cell.strip() or column in _NULLABLE):
            continue
        try:
            device_values[column] = _DEVICE_PARSERS[column](cell)
        except AdminError as exc:
            parsed.error(line, column, str(exc))
    key = (number, position)
    if key in parsed.devices:
        parsed.error(line, "position", f"account {number} position {position} is already on line "
                     f"{parsed.devices[key].line}")
        return
    parsed.devices[key] = _Device(line, number, position, device_values)


# --- import ----------------------------------------------------------------------------------------


async def import_csv(
    store: Store,
    text: str,
    *,
    dry_run: bool = False,
    prune: bool = False,
    links: bool = False,
    now: float | None = None,
) -> ImportReport:
    """Apply a CSV file (see the module docstring). `prune` also removes the accounts, and the
    devices of listed accounts, that the file does not list; `links` makes a one-time
    provisioning link for each new device, in the same transaction (its token is in the
    report's `new_devices`). Raises CsvImportError."""
    now = time.time() if now is None else now
    parsed = parse_csv(text)
    if parsed.errors:
        raise CsvImportError(parsed.errors)
    report = ImportReport(dry_run=dry_run)
    async with store.write(config=False) as conn:
        # serialise with other configuration writers (PostgreSQL row lock; SQLite: BEGIN IMMEDIATE)
        await conn.execute(select(t.meta.c.revision).where(t.meta.c.id == 1).with_for_update())
        plan = await _plan(conn, parsed, prune, now, report)
        if plan.errors:
            raise CsvImportError(sorted(plan.errors, key=lambda e: e.line))
        report.changed = plan.changes()
        if report.changed and not dry_run:
            try:
                await plan.apply(conn)
            except IntegrityError as exc:  # e.g. two devices swapping auth usernames in one file
                raise CsvImportError([RowError(1, None, f"the file conflicts with the database ({exc.orig}); "
                                               "split the change in two imports")]) from None
            await conn.execute(update(t.meta).where(t.meta.c.id == 1).values(revision=t.meta.c.revision + 1))
            await notify_config(conn)
            if links and report.new_devices:
                await _links(conn, report.new_devices, now)
    return report


async def _links(conn: AsyncConnection, new_devices: list[dict[str, Any]], now: float) -> None:
    """A provisioning link per new device, inserted in bulk; the tokens go into the report."""
    from onenumber.store.provisioning import TOKEN_BYTES, hash_token
    from onenumber.store.repository import load_settings

    expires_at = now + (await load_settings(conn)).provisioning_link_hours * 3600
    wanted = {(d["account"], d["position"]) for d in new_devices}
    ids = {(a, p): i for i, a, p in await conn.execute(select(t.devices.c.id, t.devices.c.account,
                                                              t.devices.c.position)) if (a, p) in wanted}
    rows = []
    for device in new_devices:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        device.update(token=token, link_expires_at=expires_at)
        rows.append({"token_hash": hash_token(token), "device_id": ids[(device["account"], device["position"])],
                     "created_at": now, "expires_at": expires_at})
    await conn.execute(insert(t.provisioning_links), rows)


@dataclass
class _Plan:
    errors: list[RowError] = field(default_factory=list)
    new_accounts: list[dict[str, Any]] = field(default_factory=list)
    account_updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    remove_accounts: list[str] = field(default_factory=list)
    add_dids: list[dict[str, str]] = field(default_factory=list)
    remove_dids: list[str] = field(default_factory=list)
    new_devices: list[dict[str, Any]] = field(default_factory=list)
    device_updates: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    remove_devices: list[int] = field(default_factory=list)
    drop_bindings: list[str] = field(default_factory=list)  # auth usernames whose bindings go

    def changes(self) -> bool:
        return any((self.new_accounts, self.account_updates, self.remove_accounts, self.add_dids,
                    self.remove_dids, self.new_devices, self.device_updates, self.remove_devices))

    async def apply(self, conn: AsyncConnection) -> None:
        if self.drop_bindings:
            await conn.execute(delete(t.bindings).where(t.bindings.c.auth_username == bindparam("u")),
                               [{"u": u} for u in self.drop_bindings])
        if self.remove_devices:
            await conn.execute(delete(t.devices).where(t.devices.c.id == bindparam("i")),
                               [{"i": i} for i in self.remove_devices])
        if self.remove_dids:
            await conn.execute(delete(t.dids).where(t.dids.c.did == bindparam("d")),
                               [{"d": d} for d in self.remove_dids])
        if self.remove_accounts:
            for table, column in ((t.bindings, t.bindings.c.account), (t.devices, t.devices.c.account),
                                  (t.dids, t.dids.c.account)):
                await conn.execute(delete(table).where(column == bindparam("n")),
                                   [{"n": n} for n in self.remove_accounts])
            await conn.execute(delete(t.accounts).where(t.accounts.c.number == bindparam("n")),
                               [{"n": n} for n in self.remove_accounts])
        if self.new_accounts:
            await conn.execute(insert(t.accounts), self.new_accounts)
        await _grouped_updates(conn, t.accounts, t.accounts.c.number, self.account_updates)
        if self.add_dids:
            await conn.execute(insert(t.dids), self.add_dids)
        await _grouped_updates(conn, t.devices, t.devices.c.id, self.device_updates)
        if self.new_devices:
            await conn.execute(insert(t.devices), self.new_devices)


async def _grouped_updates(conn: AsyncConnection, table: Any, key: Any, updates: list[tuple[Any, dict[str, Any]]]
                           ) -> None:
    """executemany per set of changed columns (bulk, not one statement per row)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for ident, values in updates:
        names = tuple(sorted(values))
        groups.setdefault(names, []).append({"_key": ident, **{f"_v_{n}": v for n, v in values.items()}})
    for names, params in groups.items():
        stmt = update(table).where(key == bindparam("_key")).values({n: bindparam(f"_v_{n}") for n in names})
        await conn.execute(stmt, params)


async def _plan(conn: AsyncConnection, parsed: _Parsed, prune: bool, now: float, report: ImportReport) -> _Plan:
    plan = _Plan()
    row: Any
    spec: Any
    owner: Any
    accounts = {row.number: row for row in await conn.execute(select(t.accounts))}
    did_owner = {str(d): str(a) for d, a in await conn.execute(select(t.dids.c.did, t.dids.c.account))}
    owned: dict[str, set[str]] = {}
    for did, number in did_owner.items():
        owned.setdefault(number, set()).add(did)
    devices = {(row.account, row.position): row for row in await conn.execute(select(t.devices))}
    created_at = _utcnow()

    # accounts: new numbers must not be DIDs (of accounts that keep them); DIDs must be free
    final_dids = dict(did_owner)
    for number, spec in parsed.accounts.items():
        if spec.dids is not None:
            for did in owned.get(number, ()):
                if did not in spec.dids:
                    final_dids.pop(did, None)
    if prune:
        for did, owner in did_owner.items():
            if owner not in parsed.accounts:
                final_dids.pop(did, None)
    final_numbers = set(parsed.accounts) | (set() if prune else set(accounts))
    for number, spec in parsed.accounts.items():
        for did in spec.dids or ():
            owner = final_dids.get(did)
            if owner is not None and owner != number:
                plan.errors.append(RowError(spec.line, "dids", f"DID {did} belongs to account {owner}"))
            elif did in final_numbers:
                plan.errors.append(RowError(spec.line, "dids", f"DID {did} is an account number"))
            else:
                final_dids[did] = number
    for number, spec in parsed.accounts.items():
        if number in final_dids and final_dids[number] != number:
            plan.errors.append(RowError(spec.line, "number", f"{number} is a DID of account {final_dids[number]}"))

    # devices: which exist, which are new, which go; auth usernames unique in the end
    listed_devices = "position" in parsed.columns
    keep = {
        k: r for k, r in devices.items()
        if not (prune and (k[0] not in parsed.accounts or (listed_devices and k not in parsed.devices)))
    }
    removed = [r for k, r in devices.items() if k not in keep]
    final_auth: dict[str, list[tuple[str, int]]] = {}
    for key, row in keep.items():
        if key not in parsed.devices:
            final_auth.setdefault(row.auth_username, []).append(key)
    for key, spec in parsed.devices.items():
        row = keep.get(key)
        username = spec.values.get("auth_username") or (
            row.auth_username if row is not None else default_auth_username(*key))
        final_auth.setdefault(username, []).append(key)
        if row is None and "kind" not in spec.values:
            plan.errors.append(RowError(spec.line, "kind", f"a new device needs a kind ({', '.join(DeviceKind)})"))
    for username, owners in final_auth.items():
        for key in owners:
            if len(owners) > 1 and key in parsed.devices:
                other = next(o for o in owners if o != key)
                plan.errors.append(RowError(parsed.devices[key].line, "auth_username",
                                            f"auth username {username} would also be the one of account {other[0]} "
                                            f"position {other[1]}; each device needs its own"))

    positions: dict[str, set[int]] = {}
    for number, position in [*keep, *parsed.devices]:
        positions.setdefault(number, set()).add(position)

    for number, spec in parsed.accounts.items():
        row = accounts.get(number)
        values = {_ACCOUNT_DB[c]: v for c, v in spec.values.items()}
        chosen = values.get("selected_device", row.selected_device if row is not None else None)
        if chosen is not None and chosen not in positions.get(number, set()):
            if "selected_device" in values:
                plan.errors.append(RowError(spec.line, "selected_device",
                                            f"account {number} has no device at position {chosen}"))
            else:
                values["selected_device"] = None  # its device is pruned
        for did in spec.dids or ():
            if did_owner.get(did) != number:
                plan.add_dids.append({"did": did, "account": number})
        if spec.dids is not None:
            plan.remove_dids += [d for d in owned.get(number, ()) if d not in spec.dids]
        if row is None:
            if "display_name" not in values:
                plan.errors.append(RowError(spec.line, "name", f"account {number} is new: give its name"))
                continue
            plan.new_accounts.append({**_ACCOUNT_DEFAULTS, **values, "number": number, "created_at": created_at,
                                      "updated_at": created_at})
            report.accounts["created"] += 1
            continue
        changed = {k: v for k, v in values.items() if row._mapping[k] != v}
        if changed or (spec.dids is not None and set(spec.dids) != owned.get(number, set())):
            changed["updated_at"] = created_at
            plan.account_updates.append((number, changed))
            report.accounts["updated"] += 1
        else:
            report.accounts["unchanged"] += 1
    if prune:
        plan.remove_accounts = [n for n in accounts if n not in parsed.accounts]
        plan.remove_dids += [d for n in plan.remove_accounts for d in owned.get(n, ())]
        report.accounts["removed"] = len(plan.remove_accounts)

    for (number, position), spec in parsed.devices.items():
        row = keep.get((number, position))
        values = {_DEVICE_DB[c]: v for c, v in spec.values.items()}
        if row is None:
            if "kind" not in values:
                continue  # reported above
            username = values.pop("auth_username", None) or default_auth_username(number, position)
            plan.new_devices.append({**_DEVICE_DEFAULTS, **values, "account": number, "position": position,
                                     "auth_username": username, "secret": new_secret(), "created_at": created_at,
                                     "secret_rotated_at": now})
            report.devices["created"] += 1
            report.new_devices.append({"account": number, "position": position, "auth_username": username})
            continue
        changed = {k: v for k, v in values.items() if not _same(k, row._mapping[k], v)}
        if "auth_username" in changed:
            plan.drop_bindings.append(row.auth_username)
        if changed:
            plan.device_updates.append((row.id, changed))
            report.devices["updated"] += 1
        else:
            report.devices["unchanged"] += 1
    for row in removed:
        plan.remove_devices.append(row.id)
        plan.drop_bindings.append(row.auth_username)
    report.devices["removed"] = len([r for r in removed if r.account not in plan.remove_accounts])
    return plan


def _same(column: str, stored: Any, given: Any) -> bool:
    if column == "credential_expires_at" and stored is not None and given is not None:
        return abs(float(stored) - float(given)) < 1.0  # the file has whole seconds
    if isinstance(given, bool):
        return bool(stored) == given
    return bool(stored == given)
