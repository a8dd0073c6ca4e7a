"""Demo data for `make run` / `onenumber serve --demo`, and the "how to register a phone" text.

`seed_demo` creates accounts 1000 (Alice) and 1001 (Bob) with a deskphone and a softphone
each when the database has no accounts yet. `sip_settings_text` is the block that
`onenumber device add` and the demo print for an admin to type into a phone.
Depends on the store's admin layer; no server code.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from onenumber.routing.model import Device

if TYPE_CHECKING:
    from onenumber.store import Store

DEMO_ACCOUNTS = (("1000", "Alice"), ("1001", "Bob"))
DEMO_DEVICES = (("deskphone", 0, "demo deskphone"), ("softphone", 1, "demo softphone"))


async def seed_demo(store: Store) -> list[Device] | None:
    """Create the demo accounts and devices when there are no accounts; None otherwise."""
    admin = store.admin
    if await admin.list_accounts():
        return None
    created: list[Device] = []
    for number, name in DEMO_ACCOUNTS:
        await admin.add_account(number, name)
        for kind, position, label in DEMO_DEVICES:
            created.append(await admin.add_device(number, kind, position=position, ring_order=1, label=label))
    return created


def primary_address() -> str:
    """The host's main IPv4 address (the one a default route uses), else 127.0.0.1."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 9))  # connect() on UDP sends nothing: it only picks a route
        return str(s.getsockname()[0])
    return "127.0.0.1"


def server_address(bind: str) -> str:
    return primary_address() if bind in ("", "0.0.0.0", "::") else bind


def sip_settings_text(
    devices: Sequence[Device],
    *,
    domain: str,
    server: str,
    sip_port: int = 5060,
    tls_port: int | None = None,
    names: dict[str, str] | None = None,
) -> str:
    """What to type into each phone: user, auth username, password, domain, proxy, transports."""
    transports = f"UDP or TCP port {sip_port}"
    if tls_port:
        transports += f", TLS port {tls_port}"
    lines = [
        f"SIP domain: {domain}   server (outbound proxy): {server}   transports: {transports}",
    ]
    for d in devices:
        who = f" ({names[d.account]})" if names and d.account in names else ""
        label = f", {d.label}" if d.label else ""
        lines.append(
            f"  account {d.account}{who}, {d.kind}{label} (position {d.position}): "
            f"user {d.account}  auth username {d.auth_username}  password {d.secret}"
        )
    lines.append(
        f"  In the phone: SIP user/number = the account number, authentication user = the auth username, "
        f"domain/registrar = {domain}, proxy = {server}:{sip_port}."
    )
    return "\n".join(lines)


def format_demo(devices: Sequence[Device], config: Any) -> str:
    """The banner `make run` prints: the demo credentials and where to point the phones.

    `config` is an `onenumber.config.ServerConfig` (bind, sip_port, domain, tls_*)."""
    server = server_address(getattr(config, "bind", "0.0.0.0"))
    domain = getattr(config, "domain", None) or server
    tls_port = None
    if getattr(config, "tls_cert", None):
        tls_port = getattr(config, "tls_port", None) or getattr(config, "sip_port", 5060) + 1
    body = sip_settings_text(
        devices,
        domain=domain,
        server=server,
        sip_port=getattr(config, "sip_port", 5060),
        tls_port=tls_port,
        names=dict(DEMO_ACCOUNTS),
    )
    return "Demo accounts created (the passwords are shown only now):\n" + body


DEMO_ADMIN = "admin"


async def seed_logins(store: Store) -> dict[str, str]:
    """On a new database: an admin, and login passwords for the demo accounts that have none.
    Returns {username: password} of what was created (empty when there was nothing to do)."""
    import secrets

    from onenumber.store import logins

    created: dict[str, str] = {}
    if not await logins.list_admins(store):
        password = secrets.token_urlsafe(12)
        await logins.create_admin(store, DEMO_ADMIN, password)
        created[DEMO_ADMIN] = password
    existing = {a.number for a in await store.admin.list_accounts()}
    for number, _name in DEMO_ACCOUNTS:
        if number in existing and await logins.password_hash(store, "user", number) is None:
            password = secrets.token_urlsafe(9)
            await logins.set_account_password(store, number, password)
            created[number] = password
    return created


def format_logins(created: dict[str, str], http_url: str) -> str:
    """The login banner: the admin's and the demo users' web logins, shown once."""
    lines = [f"Web logins (shown only now; portal {http_url}/, web phone {http_url}/phone, "
             f"API docs {http_url}/api/docs):"]
    for username, password in created.items():
        who = "admin" if not username.isdigit() else f"account {username} ({dict(DEMO_ACCOUNTS).get(username, '')})"
        lines.append(f"  {who}: username {username}  password {password}")
    return "\n".join(lines)
