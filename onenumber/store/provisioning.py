"""One-time, expiring provisioning links: a device's SIP settings handed out once.

A link is `<base URL>/provision/<token>`: the token (256 random bits) is its own
authorization, so only its SHA-256 is stored. Creating a link replaces any earlier link of
the same device and rotates nothing unless asked; using it hands out the device's *current*
secret, once. A second use, or one after expiry, is `LinkGoneError` (HTTP 410).
Depends on the Store and the admin layer; no HTTP here (api/provision.py serves it).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, insert, select, update

from onenumber.routing.model import Account, Device
from onenumber.store import tables as t
from onenumber.store.admin import AdminError, NotFoundError, _device, rotation_values
from onenumber.store.repository import device_from_row, load_accounts, load_settings

if TYPE_CHECKING:
    from onenumber.store.repository import Store

TOKEN_BYTES = 32
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,100}$")
MAX_LINK_HOURS = 720.0


class LinkGoneError(AdminError):
    """The link existed but was used already or has expired."""

    status = 410


@dataclass(frozen=True, slots=True)
class NewLink:
    token: str
    device: Device
    expires_at: float
    rotated: bool

    def url(self, base_url: str) -> str:
        return link_url(base_url, self.token)


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/provision/{token}"


@dataclass(frozen=True, slots=True)
class Provisioned:
    """What a used link hands out: the device (with its current secret) and its account."""

    device: Device
    account: Account


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_link(
    store: Store,
    number: str,
    position: int,
    *,
    hours: float | None = None,
    rotate: bool = False,
    now: float | None = None,
) -> NewLink:
    """A new one-time link for a device (earlier links of the device stop working).
    `hours` defaults to the `provisioning_link_hours` setting; `rotate` also gives the
    device a new secret first (with the usual overlap window)."""
    now = time.time() if now is None else now
    if hours is not None and not 0 < hours <= MAX_LINK_HOURS:
        raise AdminError(f"link hours must be more than 0 and at most {MAX_LINK_HOURS:g} (got {hours:g})")
    token = secrets.token_urlsafe(TOKEN_BYTES)
    # a rotation is a configuration change (the server must learn the new secret)
    async with (store.admin._write() if rotate else store.write(config=False)) as conn:
        device = await _device(conn, number, position)
        settings = await load_settings(conn)
        device_id = await conn.scalar(
            select(t.devices.c.id).where(t.devices.c.account == number, t.devices.c.position == position)
        )
        if rotate:
            values = rotation_values(device, now, settings.credential_overlap_hours)
            await conn.execute(update(t.devices).where(t.devices.c.id == device_id).values(**values))
            device = await _device(conn, number, position)
        expires_at = now + (settings.provisioning_link_hours if hours is None else hours) * 3600
        await conn.execute(delete(t.provisioning_links).where(t.provisioning_links.c.device_id == device_id))
        await conn.execute(
            insert(t.provisioning_links).values(
                token_hash=hash_token(token), device_id=device_id, created_at=now, expires_at=expires_at
            )
        )
    return NewLink(token, device, expires_at, rotate)


async def use_link(store: Store, token: str, now: float | None = None) -> Provisioned:
    """Spend a link: the device's settings once. NotFoundError for an unknown token,
    LinkGoneError when it was used already or has expired (nothing is handed out)."""
    now = time.time() if now is None else now
    unknown = NotFoundError("this provisioning link is not known; ask your administrator for a new one")
    if not TOKEN_RE.match(token):
        raise unknown
    key = hash_token(token)
    links = t.provisioning_links
    async with store.write(config=False) as conn:
        # the conditional update is the one-time check: of two concurrent uses, one wins
        spent = await conn.execute(
            update(links)
            .where(links.c.token_hash == key, links.c.used_at.is_(None), links.c.expires_at > now)
            .values(used_at=now)
        )
        row = (await conn.execute(select(links).where(links.c.token_hash == key))).first()
        if row is None:
            raise unknown
        if not spent.rowcount:
            if row.used_at is not None:
                when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(row.used_at))
                raise LinkGoneError(
                    f"this provisioning link was already used ({when}); each link works once, "
                    "ask your administrator for a new one"
                )
            raise LinkGoneError("this provisioning link has expired; ask your administrator for a new one")
        device_row = (await conn.execute(select(t.devices).where(t.devices.c.id == row.device_id))).first()
        if device_row is None:  # cannot happen with the foreign key; be clear if it does
            raise LinkGoneError("the device of this provisioning link was removed")
        device = device_from_row(device_row)
        (account,) = await load_accounts(conn, device.account)
    return Provisioned(device, account)


async def link_state(store: Store, token: str, now: float | None = None) -> str:
    """"ok", "used", "expired" or "unknown", without spending the link (for HEAD)."""
    now = time.time() if now is None else now
    if not TOKEN_RE.match(token):
        return "unknown"
    async with store.read() as conn:
        row = (await conn.execute(select(t.provisioning_links).where(
            t.provisioning_links.c.token_hash == hash_token(token)))).first()
    if row is None:
        return "unknown"
    if row.used_at is not None:
        return "used"
    return "expired" if row.expires_at <= now else "ok"
