"""Admin operations on accounts, DIDs, devices, settings and trunks, with validation.

Used by the CLI now and the REST API later. Every operation validates its input and
raises `AdminError` (one line: what is wrong and what to do; subclasses say whether it is
not found / a conflict / invalid input, for HTTP status codes) and writes in a single
transaction that also bumps the configuration revision, so nothing is half-written.
Depends on the Store and the value types; no CLI or HTTP code here.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import replace
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from onenumber.routing.model import MAX_DEVICES, VOICEMAIL, Account, DeclineMode, Device, DeviceKind, RingMode
from onenumber.settings import SETTING_KEYS, TRUNK_TRANSPORTS, Settings, Trunk, is_host, validate_setting
from onenumber.store import tables as t
from onenumber.store.repository import load_accounts, load_devices, load_settings, load_trunks

if TYPE_CHECKING:
    from onenumber.store.repository import Store


class AdminError(Exception):
    """Bad admin input; `str(error)` is one line saying what is wrong and what to do.
    `field` names the input in the REST API's terms (e.g. `ring_mode`), when there is one."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(AdminError):
    status = 404


class ConflictError(AdminError):
    status = 409


class _Unchanged(Enum):
    UNCHANGED = 0


UNCHANGED = _Unchanged.UNCHANGED  # "leave this field as it is" for fields where None means "clear"

SECRET_BYTES = 16  # 128 bits; token_urlsafe(16) is 22 characters
NUMBER_RE = re.compile(r"^[0-9]{1,20}$")
DID_RE = re.compile(r"^\+?[0-9]{2,20}$")
TARGET_RE = re.compile(r"^\+?[0-9*#]{1,32}$")
AUTH_USERNAME_RE = re.compile(r"^[A-Za-z0-9._~+-]{1,64}$")
TRUNK_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
PREFIX_RE = re.compile(r"^[0-9*#+]{0,32}$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
# what a message calls a value -> the field's name in the REST API (api/schemas.py)
FIELDS = {
    "ring mode": "ring_mode", "decline mode": "decline", "device kind": "kind", "stage seconds": "stage_seconds",
    "no-answer seconds": "no_answer_seconds", "ring order": "order", "trunk port": "port",
    "unconditional forward": "forward_unconditional", "busy forward": "forward_busy",
    "no-answer forward": "forward_no_answer",
}
MAX_STAGE_SECONDS = 3600
MAX_RING_ORDER = 99
MAX_OVERLAP_HOURS = 720
MAX_EXPIRY_DAYS = 36500


def default_auth_username(number: str, position: int) -> str:
    """`1000` for the main device (position 0), `1000_2` for position 1, and so on."""
    return number if position == 0 else f"{number}_{position + 1}"


def new_secret() -> str:
    """A generated device secret (never chosen by an admin)."""
    while True:
        secret = secrets.token_urlsafe(SECRET_BYTES)
        # some phones and test tools (SIPp -ap) read a password starting with 0x as hex bytes
        if not secret.lower().startswith("0x"):
            return secret


def rotation_values(device: Device, now: float, overlap_hours: float) -> dict[str, Any]:
    """The column values of a rotation: a new secret, the current one kept as the previous
    secret until the overlap window ends (none with a zero window: revoked at once)."""
    overlap = overlap_hours > 0
    return {
        "secret": new_secret(),
        "previous_secret": device.secret if overlap else None,
        "previous_secret_until": now + overlap_hours * 3600 if overlap else None,
        "secret_rotated_at": now,
    }


def hash_password(password: str) -> str:
    """scrypt hash for portal passwords, as `scrypt$n$r$p$salt$hash` (hex)."""
    salt = secrets.token_bytes(16)
    n, r, p = 2**14, 8, 1
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=len(digest) // 2
        )
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


class Admin:
    """Validating admin operations on a Store (see module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- accounts -----------------------------------------------------------------------------------

    async def list_accounts(self) -> list[Account]:
        async with self.store.read() as conn:
            return await load_accounts(conn)

    async def get_account(self, number: str) -> Account:
        async with self.store.read() as conn:
            return await _account(conn, number)

    async def add_account(self, number: str, name: str, dids: tuple[str, ...] | list[str] = ()) -> Account:
        number = _number(number)
        name = _display_name(name)
        dids = [_did(d) for d in dids]
        if len(set(dids)) != len(dids):
            raise AdminError("the same DID is given twice; give each --did once")
        async with self._write() as conn:
            if await _exists(conn, t.accounts.c.number, number):
                raise ConflictError(
                    f"account {number} already exists; choose another number or use 'onenumber account update'"
                )
            owner = await conn.scalar(select(t.dids.c.account).where(t.dids.c.did == number))
            if owner is not None:
                raise ConflictError(f"{number} is a DID of account {owner}; choose another number")
            now = _utcnow()
            await conn.execute(
                insert(t.accounts).values(number=number, display_name=name, created_at=now, updated_at=now)
            )
            for did in dids:
                await _check_did_free(conn, did, number)
                await conn.execute(insert(t.dids).values(did=did, account=number))
            return await _account(conn, number)

    async def update_account(
        self,
        number: str,
        *,
        name: str | None = None,
        add_dids: tuple[str, ...] | list[str] = (),
        remove_dids: tuple[str, ...] | list[str] = (),
        ring_mode: str | None = None,
        stage_seconds: int | None = None,
        no_answer_seconds: int | None = None,
        forward_unconditional: str | _Unchanged | None = UNCHANGED,
        forward_busy: str | _Unchanged | None = UNCHANGED,
        forward_no_answer: str | _Unchanged | None = UNCHANGED,
        decline: str | None = None,
        dnd: bool | None = None,
        selected_device: int | _Unchanged | None = UNCHANGED,
        custom_cli: str | _Unchanged | None = UNCHANGED,
        voicemail_pin: str | _Unchanged | None = UNCHANGED,
    ) -> Account:
        """Change the given fields; `None` leaves a field as is, except for the fields whose
        default is `UNCHANGED`, where `None` (or "") clears the value."""
        values: dict[str, Any] = {}
        if name is not None:
            values["display_name"] = _display_name(name)
        if ring_mode is not None:
            values["ring_mode"] = _choice("ring mode", ring_mode, RingMode)
        if stage_seconds is not None:
            values["stage_seconds"] = _int_range("stage seconds", stage_seconds, 1, MAX_STAGE_SECONDS)
        if no_answer_seconds is not None:
            values["no_answer_seconds"] = _int_range("no-answer seconds", no_answer_seconds, 1, MAX_STAGE_SECONDS)
        if decline is not None:
            values["decline"] = _choice("decline mode", decline, DeclineMode)
        if dnd is not None:
            values["dnd"] = bool(dnd)
        for column, label, given in (
            ("fwd_unconditional", "unconditional forward", forward_unconditional),
            ("fwd_busy", "busy forward", forward_busy),
            ("fwd_no_answer", "no-answer forward", forward_no_answer),
        ):
            if given is not UNCHANGED:
                values[column] = _target(label, given)
        if custom_cli is not UNCHANGED:
            values["custom_cli"] = _cli_number(str(custom_cli)) if _optional(custom_cli) else None
        if voicemail_pin is not UNCHANGED:
            values["voicemail_pin"] = _voicemail_pin(str(voicemail_pin)) if _optional(voicemail_pin) else None
        add = [_did(d) for d in add_dids]
        remove = [d.strip() for d in remove_dids]
        async with self._write() as conn:
            account = await _account(conn, number)
            own = {account.number, *account.dids}
            for column in ("fwd_unconditional", "fwd_busy", "fwd_no_answer"):
                if values.get(column) in own:
                    raise AdminError(
                        f"account {number} cannot forward to its own number {values[column]}; "
                        "give another number or 'voicemail'"
                    )
            if selected_device is not UNCHANGED:
                values["selected_device"] = await _selected(conn, number, selected_device)
            for did in remove:
                if did not in account.dids:
                    raise NotFoundError(
                        f"{did} is not a DID of account {number}; its DIDs: {', '.join(account.dids) or 'none'}"
                    )
                await conn.execute(delete(t.dids).where(t.dids.c.did == did))
            for did in add:
                await _check_did_free(conn, did, number)
                await conn.execute(insert(t.dids).values(did=did, account=number))
            values["updated_at"] = _utcnow()
            await conn.execute(update(t.accounts).where(t.accounts.c.number == number).values(**values))
            return await _account(conn, number)

    async def remove_account(self, number: str) -> Account:
        async with self._write() as conn:
            account = await _account(conn, number)
            # dids and devices go by ON DELETE CASCADE; bindings have no foreign key
            await conn.execute(delete(t.dids).where(t.dids.c.account == number))
            await conn.execute(delete(t.devices).where(t.devices.c.account == number))
            await conn.execute(delete(t.bindings).where(t.bindings.c.account == number))
            await conn.execute(delete(t.accounts).where(t.accounts.c.number == number))
            return account

    async def set_portal_password(self, number: str, password: str | None) -> None:
        """Set (or with None, remove) the account's portal login password."""
        if password is not None and len(password) < 8:
            raise AdminError("the portal password is too short; use at least 8 characters")
        async with self._write() as conn:
            await _account(conn, number)
            await conn.execute(
                update(t.accounts)
                .where(t.accounts.c.number == number)
                .values(password_hash=hash_password(password) if password else None, updated_at=_utcnow())
            )

    async def check_portal_password(self, number: str, password: str) -> bool:
        async with self.store.read() as conn:
            stored = await conn.scalar(select(t.accounts.c.password_hash).where(t.accounts.c.number == number))
        return verify_password(password, stored)

    # --- devices ------------------------------------------------------------------------------------

    async def list_devices(self, number: str) -> list[Device]:
        async with self.store.read() as conn:
            await _account(conn, number)
            return await load_devices(conn, number)

    async def get_device(self, number: str, position: int) -> Device:
        async with self.store.read() as conn:
            return await _device(conn, number, position)

    async def find_device(self, auth_username: str) -> Device | None:
        async with self.store.read() as conn:
            row = (await conn.execute(select(t.devices).where(t.devices.c.auth_username == auth_username))).first()
        if row is None:
            return None
        from onenumber.store.repository import device_from_row

        return device_from_row(row)

    async def add_device(
        self,
        number: str,
        kind: str,
        *,
        position: int | None = None,
        ring_order: int = 1,
        label: str = "",
        auth_username: str | None = None,
        internet: bool = False,
        call_waiting: bool = True,
        expires_days: float | None = None,
        now: float | None = None,
    ) -> Device:
        """Add a device with a generated secret; the returned Device carries the secret."""
        kind = _choice("device kind", kind, DeviceKind)
        ring_order = _int_range("ring order", ring_order, 0, MAX_RING_ORDER)
        label = _label(label)
        if position is not None:
            position = _position(position)
        if auth_username is not None:
            auth_username = _auth_username(auth_username)
        expires_at = _expiry(expires_days, now)
        async with self._write() as conn:
            await _account(conn, number)
            taken = set((await conn.scalars(select(t.devices.c.position).where(t.devices.c.account == number))).all())
            if len(taken) >= MAX_DEVICES:
                raise ConflictError(
                    f"account {number} already has {MAX_DEVICES} devices, the most allowed; "
                    "remove one first with 'onenumber device remove'"
                )
            if position is None:
                position = min(set(range(MAX_DEVICES)) - taken)
            elif position in taken:
                free = ", ".join(str(p) for p in sorted(set(range(MAX_DEVICES)) - taken))
                raise ConflictError(
                    f"position {position} of account {number} is taken; choose a free one ({free}) "
                    "or leave --position out"
                )
            username = auth_username or default_auth_username(number, position)
            await _check_username_free(conn, username)
            await conn.execute(
                insert(t.devices).values(
                    account=number,
                    position=position,
                    kind=kind,
                    ring_order=ring_order,
                    label=label,
                    auth_username=username,
                    secret=new_secret(),
                    internet=internet,
                    call_waiting=call_waiting,
                    credential_expires_at=expires_at,
                    created_at=_utcnow(),
                    secret_rotated_at=time.time() if now is None else now,
                )
            )
            return await _device(conn, number, position)

    async def update_device(
        self,
        number: str,
        position: int,
        *,
        new_position: int | None = None,
        kind: str | None = None,
        ring_order: int | None = None,
        enabled: bool | None = None,
        label: str | None = None,
        auth_username: str | None = None,
        internet: bool | None = None,
        call_waiting: bool | None = None,
        expires_days: float | None = None,
        now: float | None = None,
    ) -> Device:
        """Change the given fields (None = leave as is). `expires_days=0` removes the expiry."""
        values: dict[str, Any] = {}
        if kind is not None:
            values["kind"] = _choice("device kind", kind, DeviceKind)
        if ring_order is not None:
            values["ring_order"] = _int_range("ring order", ring_order, 0, MAX_RING_ORDER)
        if enabled is not None:
            values["enabled"] = enabled
        if label is not None:
            values["label"] = _label(label)
        if internet is not None:
            values["internet"] = internet
        if call_waiting is not None:
            values["call_waiting"] = call_waiting
        if expires_days is not None:
            values["credential_expires_at"] = _expiry(expires_days, now)
        async with self._write() as conn:
            device = await _device(conn, number, position)
            if auth_username is not None and auth_username != device.auth_username:
                values["auth_username"] = _auth_username(auth_username)
                await _check_username_free(conn, values["auth_username"])
                await conn.execute(delete(t.bindings).where(t.bindings.c.auth_username == device.auth_username))
            target = position
            if new_position is not None and new_position != position:
                target = _position(new_position)
                if await _exists(conn, t.devices.c.position, target, t.devices.c.account == number):
                    raise ConflictError(
                        f"position {target} of account {number} is taken; move that device first or pick another"
                    )
                values["position"] = target
                await conn.execute(
                    update(t.accounts)
                    .where(t.accounts.c.number == number, t.accounts.c.selected_device == position)
                    .values(selected_device=target)
                )
            if values:
                await conn.execute(
                    update(t.devices)
                    .where(t.devices.c.account == number, t.devices.c.position == position)
                    .values(**values)
                )
            return await _device(conn, number, target)

    async def reorder_devices(self, number: str, positions: list[int] | tuple[int, ...]) -> list[Device]:
        """Ring the devices in this order: `positions` names every device of the account once; each
        gets ring order 1, 2, 3… in that order (a device at order 0, "never rings", stays 0)."""
        async with self._write() as conn:
            await _account(conn, number)
            devices = {d.position: d for d in await load_devices(conn, number)}
            if sorted(positions) != sorted(devices):
                have = ", ".join(str(p) for p in sorted(devices)) or "none"
                raise AdminError(f"positions must list every device of account {number} once (its devices: {have})",
                                 field="positions")
            rank = 0
            for position in positions:
                if devices[position].ring_order == 0:
                    continue
                rank += 1
                await conn.execute(
                    update(t.devices)
                    .where(t.devices.c.account == number, t.devices.c.position == position)
                    .values(ring_order=rank)
                )
            return await load_devices(conn, number)

    async def remove_device(self, number: str, position: int) -> Device:
        async with self._write() as conn:
            device = await _device(conn, number, position)
            await conn.execute(delete(t.devices).where(t.devices.c.account == number, t.devices.c.position == position))
            await conn.execute(delete(t.bindings).where(t.bindings.c.auth_username == device.auth_username))
            await conn.execute(
                update(t.accounts)
                .where(t.accounts.c.number == number, t.accounts.c.selected_device == position)
                .values(selected_device=None)
            )
            return device

    async def rotate_secret(
        self,
        number: str,
        position: int,
        *,
        expires_days: float | None = None,
        now: float | None = None,
        overlap_hours: float | None = None,
    ) -> Device:
        """A new generated secret; the old one keeps working for `overlap_hours` (default: the
        `credential_overlap_hours` setting; 0 revokes it at once). Returns the device."""
        now = time.time() if now is None else now
        if overlap_hours is not None and not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
            raise AdminError(f"overlap hours must be between 0 and {MAX_OVERLAP_HOURS} (got {overlap_hours:g})")
        async with self._write() as conn:
            device = await _device(conn, number, position)
            if overlap_hours is None:
                overlap_hours = (await load_settings(conn)).credential_overlap_hours
            values = rotation_values(device, now, overlap_hours)
            if expires_days is not None:
                values["credential_expires_at"] = _expiry(expires_days, now)
            await conn.execute(
                update(t.devices)
                .where(t.devices.c.account == number, t.devices.c.position == position)
                .values(**values)
            )
            return await _device(conn, number, position)

    async def rotate_due(self, now: float | None = None) -> list[Device]:
        """Scheduled rotation: every device whose secret is older than `credential_max_age_days`
        gets a new one (with the overlap window). Writes (and bumps the revision) only when
        something is due."""
        now = time.time() if now is None else now
        async with self.store.read() as conn:
            if not await _due(conn, await load_settings(conn), now):
                return []
        rotated: list[Device] = []
        async with self._write() as conn:
            settings = await load_settings(conn)
            for device_id, device in await _due(conn, settings, now):
                values = rotation_values(device, now, settings.credential_overlap_hours)
                await conn.execute(update(t.devices).where(t.devices.c.id == device_id).values(**values))
                rotated.append(replace(device, **values))
        return rotated

    # --- settings -----------------------------------------------------------------------------------

    async def get_settings(self) -> Settings:
        async with self.store.read() as conn:
            return await load_settings(conn)

    async def set_setting(self, key: str, value: str) -> Settings:
        """Validate and store one setting; returns the settings after the change."""
        key = key.strip().lower().replace("-", "_")
        try:
            stored = validate_setting(key, value)
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        async with self._write() as conn:
            rows = {k: v for k, v in await conn.execute(select(t.settings.c.key, t.settings.c.value))}
            rows[key] = stored
            new = Settings.from_rows(rows)
            try:
                new.check()
            except ValueError as exc:
                raise AdminError(str(exc)) from None
            await conn.execute(delete(t.settings).where(t.settings.c.key == key))
            await conn.execute(insert(t.settings).values(key=key, value=stored))
            return new

    async def reset_setting(self, key: str) -> Settings:
        """Back to the default value."""
        if key not in SETTING_KEYS:
            raise AdminError(f"unknown setting {key!r}; known settings: {', '.join(SETTING_KEYS)}")
        async with self._write() as conn:
            await conn.execute(delete(t.settings).where(t.settings.c.key == key))
            new = await load_settings(conn)
            try:
                new.check()
            except ValueError as exc:
                raise AdminError(str(exc)) from None
            return new

    # --- trunks -------------------------------------------------------------------------------------

    async def list_trunks(self) -> list[Trunk]:
        async with self.store.read() as conn:
            return await load_trunks(conn)

    async def add_trunk(
        self, name: str, host: str, *, port: int = 5060, transport: str = "udp", prefix: str = ""
    ) -> Trunk:
        name = name.strip()
        if not TRUNK_NAME_RE.match(name):
            raise AdminError(f"trunk name {name!r} is not valid; use letters, digits, '.', '_' or '-'", field="name")
        host = host.strip()
        if not is_host(host):
            raise AdminError(f"trunk host {host!r} is not a host name or IP address", field="host")
        port = _int_range("trunk port", port, 1, 65535)
        transport = transport.strip().lower()
        if transport not in TRUNK_TRANSPORTS:
            raise AdminError(f"trunk transport {transport!r} is not known; use one of {', '.join(TRUNK_TRANSPORTS)}",
                             field="transport")
        prefix = prefix.strip()
        if not PREFIX_RE.match(prefix):
            raise AdminError(f"trunk prefix {prefix!r} is not valid; use digits, '*', '#' or '+'", field="prefix")
        async with self._write() as conn:
            if await _exists(conn, t.trunks.c.name, name):
                raise ConflictError(f"trunk {name} already exists; remove it first or choose another name")
            await conn.execute(
                insert(t.trunks).values(name=name, host=host, port=port, transport=transport, prefix=prefix)
            )
        return Trunk(name, host, port, transport, prefix)

    async def remove_trunk(self, name: str) -> None:
        async with self._write() as conn:
            result = await conn.execute(delete(t.trunks).where(t.trunks.c.name == name))
            if not result.rowcount:
                known = ", ".join(tr.name for tr in await load_trunks(conn)) or "none"
                raise NotFoundError(f"no trunk named {name!r}; existing trunks: {known}")

    # --- helpers ------------------------------------------------------------------------------------

    def _write(self) -> Any:
        return _TranslatingWrite(self.store)


class _TranslatingWrite:
    """`store.write()` that turns a constraint violation from a concurrent writer into AdminError."""

    def __init__(self, store: Store) -> None:
        self._cm = store.write()

    async def __aenter__(self) -> AsyncConnection:
        return await self._cm.__aenter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        try:
            result = await self._cm.__aexit__(exc_type, exc, tb)
        except IntegrityError as error:
            raise _conflict(error) from None
        if isinstance(exc, IntegrityError):
            raise _conflict(exc) from None
        return result


def _conflict(error: IntegrityError) -> ConflictError:
    return ConflictError(f"the change conflicts with existing data ({_first_line(error.orig)}); check and retry")


def _first_line(error: Any) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


async def _due(conn: AsyncConnection, settings: Settings, now: float) -> list[tuple[int, Device]]:
    """(id, device) of the devices whose secret is older than credential_max_age_days."""
    from onenumber.store.repository import device_from_row

    if settings.credential_max_age_days <= 0:
        return []
    cutoff = now - settings.credential_max_age_days * 86400
    rows = await conn.execute(
        select(t.devices).where(func.coalesce(t.devices.c.secret_rotated_at, 0) <= cutoff).order_by(t.devices.c.id)
    )
    return [(row.id, device_from_row(row)) for row in rows]


async def _exists(conn: AsyncConnection, column: Any, value: Any, *where: Any) -> bool:
    count = await conn.scalar(select(func.count()).where(column == value, *where))
    return bool(count)


async def _account(conn: AsyncConnection, number: str) -> Account:
    found = await load_accounts(conn, number)
    if not found:
        raise NotFoundError(
            f"no account {number}; see 'onenumber account list' or create it with 'onenumber account add'"
        )
    return found[0]


async def _device(conn: AsyncConnection, number: str, position: int) -> Device:
    await _account(conn, number)
    for device in await load_devices(conn, number):
        if device.position == position:
            return device
    raise NotFoundError(f"account {number} has no device at position {position}; see 'onenumber device list {number}'")


async def _check_did_free(conn: AsyncConnection, did: str, number: str) -> None:
    if await _exists(conn, t.accounts.c.number, did):
        raise ConflictError(f"{did} is already an account number; a DID must not be an account's number")
    owner = await conn.scalar(select(t.dids.c.account).where(t.dids.c.did == did))
    if owner is not None:
        where = "this account" if owner == number else f"account {owner}"
        raise ConflictError(f"DID {did} already belongs to {where}; remove it there first")


async def _check_username_free(conn: AsyncConnection, username: str) -> None:
    owner = (
        await conn.execute(
            select(t.devices.c.account, t.devices.c.position).where(t.devices.c.auth_username == username)
        )
    ).first()
    if owner is not None:
        raise ConflictError(
            f"auth username {username} is already used by account {owner.account} position {owner.position}; "
            "give another with --auth-username"
        )


async def _selected(conn: AsyncConnection, number: str, value: int | str | None) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
        return None
    try:
        position = int(value)
    except (TypeError, ValueError):
        raise AdminError(f"selected device {value!r} must be a device position (0-7) or 'none'",
                         field="selected_device") from None
    if not await _exists(conn, t.devices.c.position, position, t.devices.c.account == number):
        raise NotFoundError(
            f"account {number} has no device at position {position}; see 'onenumber device list {number}'",
            field="selected_device",
        )
    return position


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _number(number: str) -> str:
    number = number.strip()
    if not NUMBER_RE.match(number):
        raise AdminError(f"account number {number!r} is not valid; use 1 to 20 digits, e.g. 1000", field="number")
    return number


def _did(did: str) -> str:
    did = did.strip().replace(" ", "")
    if not DID_RE.match(did):
        raise AdminError(f"DID {did!r} is not valid; use digits with an optional leading '+', e.g. +3225550100",
                         field="dids")
    return did


def _display_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise AdminError("the display name is empty; give one with --name", field="name")
    if len(name) > 200 or CONTROL_RE.search(name) or '"' in name or "\\" in name:
        raise AdminError(
            "the display name must be at most 200 characters, without quotes, backslashes or control characters",
            field="name",
        )
    return name


def _label(label: str) -> str:
    label = label.strip()
    if len(label) > 200 or CONTROL_RE.search(label):
        raise AdminError("the label must be at most 200 characters without control characters", field="label")
    return label


def _auth_username(name: str) -> str:
    name = name.strip()
    if not AUTH_USERNAME_RE.match(name):
        raise AdminError(f"auth username {name!r} is not valid; use 1 to 64 letters, digits or . _ ~ + -",
                         field="auth_username")
    return name


def _position(position: int) -> int:
    if not 0 <= position < MAX_DEVICES:
        raise AdminError(f"position {position} is out of range; use 0 to {MAX_DEVICES - 1} (0 is the main device)",
                         field="position")
    return position


def _int_range(what: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        raise AdminError(f"{what} must be between {low} and {high} (got {value})", field=FIELDS.get(what))
    return value


def _choice(what: str, value: str, kind: type[Enum]) -> str:
    options = [str(member.value) for member in kind]
    value = str(value).strip().lower()
    if value not in options:
        raise AdminError(f"{what} {value!r} is not known; use one of {', '.join(options)}", field=FIELDS.get(what))
    return value


def _optional(value: Any) -> bool:
    return value is not None and str(value).strip() != ""


def _target(what: str, value: str | None) -> str | None:
    if not _optional(value):
        return None
    value = str(value).strip()
    if value.lower() == VOICEMAIL:
        return VOICEMAIL  # the account's own box (services/proxy.py rings the voicemail service)
    if not TARGET_RE.match(value):
        raise AdminError(f"{what} {value!r} is not valid; give a number, 'voicemail', or \"\" to turn it off",
                         field=FIELDS.get(what))
    return value


def _cli_number(value: str) -> str:
    value = value.strip()
    if not DID_RE.match(value):
        raise AdminError(f"caller ID {value!r} is not valid; use digits with an optional leading '+', or \"\" to clear",
                         field="cli")
    return value


def _voicemail_pin(value: str) -> str:
    value = value.strip()
    if not (value.isascii() and value.isdigit() and 4 <= len(value) <= 12):
        raise AdminError("the voicemail PIN must be 4-12 digits, or \"\" to use the server-wide one",
                         field="voicemail_pin")
    return value


def _expiry(days: float | None, now: float | None) -> float | None:
    if days is None or days == 0:
        return None
    if not 0 <= days <= MAX_EXPIRY_DAYS:  # also refuses nan
        raise AdminError(f"expiry days must be positive (at most {MAX_EXPIRY_DAYS}), or 0 for no expiry (got {days})",
                         field="expires_days")
    return (time.time() if now is None else now) + days * 86400
