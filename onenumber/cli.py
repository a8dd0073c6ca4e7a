"""The `onenumber` command: run the server and administer accounts, devices, settings, trunks.

Scripts rely on these command forms and on the `--json` shapes (see docs/admin.md), so
keep them stable. Every command takes `--db URL`; bad input exits 1 (usage errors 2) with
one line on stderr. Heavy modules (SQLAlchemy, the server) are imported inside commands
so `onenumber --help` starts fast. Talks to the store's admin layer, never to transports.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from onenumber.routing.model import Device
    from onenumber.store import Store

T = TypeVar("T")

app = typer.Typer(
    name="onenumber",
    help="OneNumber: one person, one number, every device. A SIP registrar and forking proxy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
account_app = typer.Typer(help="Accounts: a person with one number, DIDs and up to 8 devices.", no_args_is_help=True)
device_app = typer.Typer(help="Devices of an account: phones with their own SIP credentials.", no_args_is_help=True)
settings_app = typer.Typer(
    help="Server-wide settings (domain, trusted networks, digest, expiry).", no_args_is_help=True
)
trunk_app = typer.Typer(help="Trunks: SIP gateways that external numbers are sent to.", no_args_is_help=True)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(device_app, name="device")
app.add_typer(settings_app, name="settings")
app.add_typer(trunk_app, name="trunk")
app.add_typer(db_app, name="db")


@app.callback()
def _global_options(
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL for every command (same as a command's --db).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (same as a command's --data-dir).")
    ] = None,
) -> None:
    """OneNumber: one person, one number, every device. A SIP registrar and forking proxy."""
    # `onenumber --db URL account list` works as well as `onenumber account list --db URL`:
    # the defaults every command falls back to are read from these variables.
    if db:
        os.environ["ONENUMBER_DB"] = db
    if data_dir:
        os.environ["ONENUMBER_DATA_DIR"] = str(data_dir)


DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL: sqlite:///FILE or postgresql://user@host:port/db "
        "(default: $ONENUMBER_DB, else DATA_DIR/onenumber.sqlite3).",
        show_default=False,
    ),
]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: $ONENUMBER_DATA_DIR, else ./data).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


# --- plumbing -----------------------------------------------------------------------------------------


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"onenumber: {message}", err=True)
    raise typer.Exit(code)


def _resolve(db: str | None, data_dir: Path | None) -> str:
    from onenumber.store.db import resolve_url

    try:
        return resolve_url(db, data_dir)
    except ValueError as exc:
        _fail(str(exc), 2)


def _with_store(
    db: str | None, data_dir: Path | None, action: Callable[[Store], Awaitable[T]], *, migrate: bool = True
) -> T:
    """Open (and migrate) the database, run `action`, close; turn known errors into one line."""
    from sqlalchemy.exc import SQLAlchemyError

    from onenumber.store import AdminError, Store

    url = _resolve(db, data_dir)

    async def run() -> T:
        store = await Store.open(url, migrate=migrate)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except AdminError as exc:
        _fail(str(exc))
    except (SQLAlchemyError, OSError) as exc:
        _fail(_db_error(url, exc))


def _db_error(url: str, exc: BaseException) -> str:
    from onenumber.store.db import display_url

    detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = detail[0] if detail else type(exc).__name__
    return f"cannot use the database {display_url(url)}: {reason}; check --db / ONENUMBER_DB"


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _opt_text(value: str | None) -> str:
    return value if value else "-"


# --- serve --------------------------------------------------------------------------------------------


@app.command()
def serve(
    bind: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    sip_port: Annotated[int, typer.Option(help="SIP port (UDP and TCP).")] = 5060,
    http_port: Annotated[int, typer.Option(help="HTTP port (health and API).")] = 8080,
    domain: Annotated[
        str | None, typer.Option(help="SIP domain (default: the stored setting, else the address).")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to enable SIP over TLS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    tls_port: Annotated[int | None, typer.Option(help="SIP TLS port (default: SIP port + 1).")] = None,
    data_dir: DataDirOpt = None,
    db: DbOpt = None,
    demo: Annotated[bool, typer.Option("--demo", help="Create demo accounts 1000 and 1001 if there are none.")] = False,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    history: Annotated[
        bool, typer.Option("--history/--no-history", help="Write the call history (on by default).")
    ] = True,
    presence: Annotated[
        bool, typer.Option("--presence/--no-presence", help="Serve presence, BLF and message waiting (on by default).")
    ] = True,
    keepalive: Annotated[
        bool, typer.Option("--keepalive/--no-keepalive",
                           help="Ping UDP phones with OPTIONS and drop those that stop answering (on by default; "
                                "settings keepalive_interval, keepalive_max_misses).")
    ] = True,
    log_format: Annotated[
        str, typer.Option(help="text, or json: one JSON object per line (with the Call-ID when there is one).")
    ] = "text",
    workers: Annotated[
        int, typer.Option(help="Worker processes sharing the SIP ports, one event loop each (0: one per core). "
                               "More than 1 needs --redis; HTTP, WebSocket and /metrics are served by worker 0. "
                               "See docs/scaling.md.")
    ] = 1,
    redis: Annotated[
        str | None, typer.Option(help="Redis URL (redis://host:6379/0) where workers share bindings, failed "
                                      "logins and configuration changes.")
    ] = None,
    worker_port_base: Annotated[
        int | None, typer.Option(hidden=True, help="Tests: worker N also listens on this port + N.")
    ] = None,
) -> None:
    """Run the SIP server (and its HTTP side) in the foreground; Ctrl-C stops it."""
    from onenumber.settings import validate_setting
    from onenumber.store.db import data_dir as resolve_data_dir

    if (tls_cert is None) != (tls_key is None):
        _fail("--tls-cert and --tls-key go together; give both or neither", 2)
    for name, port in (("--sip-port", sip_port), ("--http-port", http_port), ("--tls-port", tls_port)):
        if port is not None and not 0 < port < 65536:
            _fail(f"{name} {port} is not a port; use 1 to 65535", 2)
    if log_level.lower() not in ("debug", "info", "warning", "error"):
        _fail(f"--log-level {log_level!r} is not known; use debug, info, warning or error", 2)
    if log_format.lower() not in ("text", "json"):
        _fail(f"--log-format {log_format!r} is not known; use text or json", 2)
    if workers == 0:
        workers = os.cpu_count() or 1
    if not 1 <= workers <= 64:
        _fail(f"--workers {workers} is out of range; use 1 to 64 (0: one per core)", 2)
    if workers > 1 and not redis:
        _fail(f"--workers {workers} needs --redis URL: the workers share their bindings there", 2)
    if redis is not None and not redis.startswith(("redis://", "rediss://", "unix://")):
        _fail(f"--redis {redis!r} is not a Redis URL; use redis://host:port/db", 2)
    if domain is not None:
        try:
            domain = validate_setting("domain", domain) or None
        except ValueError as exc:
            _fail(str(exc), 2)
    directory = resolve_data_dir(data_dir)
    directory.mkdir(parents=True, exist_ok=True)
    url = _resolve(db, directory)

    from onenumber.config import ServerConfig
    from onenumber.main import run

    config = ServerConfig(
        bind=bind,
        sip_port=sip_port,
        http_port=http_port,
        domain=domain,
        db_url=url,
        data_dir=directory,
        tls_cert=tls_cert,
        tls_key=tls_key,
        tls_port=tls_port,
        log_level=log_level.lower(),
        demo=demo,
        history=history,
        presence=presence,
        keepalive=keepalive,
        log_format=log_format.lower(),
        workers=workers,
        redis_url=redis,
        worker_port_base=worker_port_base,
    )
    from sqlalchemy.exc import SQLAlchemyError

    try:
        if workers > 1:
            from onenumber.main import run_workers

            run_workers(config)
        else:
            run(config)
    except SQLAlchemyError as exc:
        _fail(_db_error(url, exc))


# --- accounts -----------------------------------------------------------------------------------------


@account_app.command("add")
def account_add(
    number: Annotated[str, typer.Argument(help="The account's number, e.g. 1000.")],
    name: Annotated[str, typer.Option("--name", help="Display name shown to callees.")],
    did: Annotated[list[str] | None, typer.Option("--did", help="An external number (repeatable).")] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an account."""
    from onenumber.store.views import account_view

    account = _with_store(db, data_dir, lambda s: s.admin.add_account(number, name, did or []))
    if json_:
        _print_json(account_view(account, []))
    else:
        dids = f" with DIDs {', '.join(account.dids)}" if account.dids else ""
        typer.echo(f"account {account.number} ({account.display_name}) added{dids}")
        typer.echo(f"next: onenumber device add {account.number} --kind deskphone")


@account_app.command("list")
def account_list(json_: JsonOpt = False, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """List accounts."""
    from onenumber.store.views import account_view

    snapshot = _with_store(db, data_dir, lambda s: s.snapshot())
    by_account: dict[str, list[Device]] = {}
    for device in snapshot.devices:
        by_account.setdefault(device.account, []).append(device)
    if json_:
        _print_json([account_view(a, by_account.get(a.number, [])) for a in snapshot.accounts])
        return
    if not snapshot.accounts:
        typer.echo("no accounts; add one with: onenumber account add NUMBER --name NAME")
        return
    rows = [
        (a.number, a.display_name, ",".join(a.dids) or "-", len(by_account.get(a.number, [])), a.ring_mode)
        for a in snapshot.accounts
    ]
    typer.echo(_table(("NUMBER", "NAME", "DIDS", "DEVICES", "RING MODE"), rows))


@account_app.command("show")
def account_show(
    number: Annotated[str, typer.Argument(help="The account's number.")],
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Show an account with its devices."""
    from onenumber.store.views import account_view

    async def load(store: Store) -> tuple[Any, list[Device]]:
        return await store.admin.get_account(number), await store.admin.list_devices(number)

    account, devices = _with_store(db, data_dir, load)
    view = account_view(account, devices)
    if json_:
        _print_json(view)
        return
    fields = [
        ("number", account.number),
        ("name", account.display_name),
        ("dids", ", ".join(account.dids) or "-"),
        ("ring mode", account.ring_mode),
        ("stage seconds", account.stage_seconds),
        ("no-answer seconds", account.no_answer_seconds),
        ("forward unconditional", _opt_text(account.forwarding.unconditional)),
        ("forward busy", _opt_text(account.forwarding.busy)),
        ("forward no-answer", _opt_text(account.forwarding.no_answer)),
        ("decline", account.decline),
        ("dnd", "on" if account.dnd else "off"),
        ("selected device", "-" if account.selected_device is None else account.selected_device),
        ("caller ID (external)", _opt_text(account.custom_cli)),
    ]
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        typer.echo(f"{key + ':':<{width + 1}} {value}")
    typer.echo("devices:")
    typer.echo(
        _devices_table(devices) if devices else f"  none; add one with: onenumber device add {number} --kind KIND"
    )


@account_app.command("update")
def account_update(
    number: Annotated[str, typer.Argument(help="The account's number.")],
    name: Annotated[str | None, typer.Option("--name", help="New display name.")] = None,
    add_did: Annotated[list[str] | None, typer.Option("--add-did", help="Add a DID (repeatable).")] = None,
    remove_did: Annotated[list[str] | None, typer.Option("--remove-did", help="Remove a DID (repeatable).")] = None,
    ring_mode: Annotated[str | None, typer.Option("--ring-mode", help="ordered or exclusive.")] = None,
    stage_seconds: Annotated[int | None, typer.Option("--stage-seconds", help="Delay between stages.")] = None,
    no_answer_seconds: Annotated[
        int | None, typer.Option("--no-answer-seconds", help="Ringing time before no-answer.")
    ] = None,
    forward_unconditional: Annotated[
        str | None, typer.Option("--forward-unconditional", help='Number or voicemail; "" turns it off.')
    ] = None,
    forward_busy: Annotated[
        str | None, typer.Option("--forward-busy", help='Number or voicemail; "" turns it off.')
    ] = None,
    forward_no_answer: Annotated[
        str | None, typer.Option("--forward-no-answer", help='Number or voicemail; "" turns it off.')
    ] = None,
    decline: Annotated[str | None, typer.Option("--decline", help="everywhere or device.")] = None,
    dnd: Annotated[bool | None, typer.Option("--dnd/--no-dnd", help="Account do-not-disturb.")] = None,
    selected_device: Annotated[
        str | None, typer.Option("--selected-device", help="Position of the selected device; none clears.")
    ] = None,
    cli: Annotated[str | None, typer.Option("--cli", help='Caller ID for external calls; "" clears.')] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change an account's name, DIDs, ring mode, forwarding, DND, selected device or caller ID."""
    from onenumber.store.admin import UNCHANGED
    from onenumber.store.views import account_view

    def given(value: str | None) -> Any:
        return UNCHANGED if value is None else value

    changes = [name, add_did, remove_did, ring_mode, stage_seconds, no_answer_seconds, forward_unconditional]
    changes += [forward_busy, forward_no_answer, decline, dnd, selected_device, cli]
    if all(c is None or c == [] for c in changes):
        _fail("nothing to change; give at least one option (see 'onenumber account update --help')", 2)
    account = _with_store(
        db,
        data_dir,
        lambda s: s.admin.update_account(
            number,
            name=name,
            add_dids=add_did or [],
            remove_dids=remove_did or [],
            ring_mode=ring_mode,
            stage_seconds=stage_seconds,
            no_answer_seconds=no_answer_seconds,
            forward_unconditional=given(forward_unconditional),
            forward_busy=given(forward_busy),
            forward_no_answer=given(forward_no_answer),
            decline=decline,
            dnd=dnd,
            selected_device=given(selected_device),
            custom_cli=given(cli),
        ),
    )
    if json_:
        _print_json(account_view(account))
    else:
        typer.echo(f"account {account.number} updated")


@account_app.command("remove")
def account_remove(
    number: Annotated[str, typer.Argument(help="The account's number.")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove an account with its DIDs, devices and registrations."""
    account = _with_store(db, data_dir, lambda s: s.admin.remove_account(number))
    typer.echo(f"account {account.number} ({account.display_name}) removed")


# --- devices ------------------------------------------------------------------------------------------


def _devices_table(devices: Sequence[Device]) -> str:
    rows = [
        (
            d.position,
            d.kind,
            d.auth_username,
            d.ring_order,
            "yes" if d.enabled else "no",
            "yes" if d.internet else "no",
            "on" if d.call_waiting else "off",
            _expiry_text(d.credential_expires_at),
            d.label or "-",
        )
        for d in devices
    ]
    headers = (
        "POS",
        "KIND",
        "AUTH USERNAME",
        "ORDER",
        "ENABLED",
        "INTERNET",
        "CALL WAITING",
        "EXPIRES",
        "LABEL",
    )
    return _table(headers, rows)


def _expiry_text(expires_at: float | None) -> str:
    if expires_at is None:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(expires_at))


async def _find(store: Store, target: str, position: int | None) -> Device:
    """`NUMBER POSITION`, or an auth username alone."""
    from onenumber.store import NotFoundError

    if position is not None:
        return await store.admin.get_device(target, position)
    device = await store.admin.find_device(target)
    if device is None:
        raise NotFoundError(
            f"no device with auth username {target}; give NUMBER POSITION (see 'onenumber device list NUMBER')"
        )
    return device


async def _provisioning(store: Store, device: Device) -> dict[str, Any]:
    from onenumber.demo import primary_address
    from onenumber.store.views import device_view

    settings = await store.admin.get_settings()
    server = primary_address()
    view = device_view(device, secret=True)
    view.update(domain=settings.domain or server, server=server, transports=["udp", "tcp"])
    return view


def _print_provisioning(view: dict[str, Any], json_: bool, what: str) -> None:
    if json_:
        _print_json(view)
        return
    typer.echo(f"{what}: account {view['account']} position {view['position']} ({view['kind']})")
    typer.echo("SIP settings for the phone (the password is shown only now):")
    for key, value in (
        ("user / number", view["account"]),
        ("auth username", view["auth_username"]),
        ("password", view["secret"]),
        ("domain", view["domain"]),
        (
            "server / proxy",
            f"{view['server']} (port 5060 unless 'onenumber serve --sip-port' says otherwise)",
        ),
        ("transports", ", ".join(t.upper() for t in view["transports"])),
    ):
        typer.echo(f"  {key + ':':<15} {value}")


@device_app.command("add")
def device_add(
    number: Annotated[str, typer.Argument(help="The account's number.")],
    kind: Annotated[str, typer.Option("--kind", help="deskphone, softphone, mobile or webphone.")],
    position: Annotated[int | None, typer.Option("--position", help="0-7; default: the lowest free.")] = None,
    order: Annotated[int, typer.Option("--order", help="Ring order: lower rings first, 0 never rings.")] = 1,
    label: Annotated[str, typer.Option("--label", help="Label or model.")] = "",
    auth_username: Annotated[
        str | None, typer.Option("--auth-username", help="Default: NUMBER, NUMBER_2, ... by position.")
    ] = None,
    internet: Annotated[bool, typer.Option("--internet", help="May register from outside trusted networks.")] = False,
    call_waiting: Annotated[
        bool, typer.Option("--call-waiting/--no-call-waiting", help="Ring while the account is in a call.")
    ] = True,
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="Credentials expire after N days.")
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a device; prints its SIP settings (with the generated password) once."""

    async def add(store: Store) -> dict[str, Any]:
        device = await store.admin.add_device(
            number,
            kind,
            position=position,
            ring_order=order,
            label=label,
            auth_username=auth_username,
            internet=internet,
            call_waiting=call_waiting,
            expires_days=expires_days,
        )
        return await _provisioning(store, device)

    _print_provisioning(_with_store(db, data_dir, add), json_, "device added")


@device_app.command("list")
def device_list(
    number: Annotated[str, typer.Argument(help="The account's number.")],
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List an account's devices (without secrets)."""
    from onenumber.store.views import device_view

    devices = _with_store(db, data_dir, lambda s: s.admin.list_devices(number))
    if json_:
        _print_json([device_view(d) for d in devices])
    elif devices:
        typer.echo(_devices_table(devices))
    else:
        typer.echo(f"account {number} has no devices; add one with: onenumber device add {number} --kind KIND")


PositionArg = Annotated[
    int | None,
    typer.Argument(help="The device's position (0-7); leave out to name the device by auth username."),
]
TargetArg = Annotated[str, typer.Argument(help="The account's number (with POSITION), or a device's auth username.")]


@device_app.command("update")
def device_update(
    target: TargetArg,
    position: PositionArg = None,
    move_to: Annotated[int | None, typer.Option("--move-to", help="Move the device to another position.")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="deskphone, softphone, mobile or webphone.")] = None,
    order: Annotated[int | None, typer.Option("--order", help="Ring order: lower first, 0 never rings.")] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled", help="Disabled devices never ring.")] = None,
    label: Annotated[str | None, typer.Option("--label", help="Label or model.")] = None,
    auth_username: Annotated[str | None, typer.Option("--auth-username", help="New auth username.")] = None,
    internet: Annotated[
        bool | None,
        typer.Option("--internet/--no-internet", help="May register from outside trusted networks."),
    ] = None,
    call_waiting: Annotated[
        bool | None,
        typer.Option("--call-waiting/--no-call-waiting", help="Ring while the account is in a call."),
    ] = None,
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="Credentials expire N days from now; 0: never.")
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change a device: `device update NUMBER POSITION ...` or `device update AUTH_USERNAME ...`."""
    from onenumber.store.views import device_view

    options = (move_to, kind, order, enabled, label, auth_username, internet, call_waiting, expires_days)
    if all(o is None for o in options):
        _fail("nothing to change; give at least one option (see 'onenumber device update --help')", 2)

    async def change(store: Store) -> Device:
        device = await _find(store, target, position)
        return await store.admin.update_device(
            device.account,
            device.position,
            new_position=move_to,
            kind=kind,
            ring_order=order,
            enabled=enabled,
            label=label,
            auth_username=auth_username,
            internet=internet,
            call_waiting=call_waiting,
            expires_days=expires_days,
        )

    device = _with_store(db, data_dir, change)
    if json_:
        _print_json(device_view(device))
    else:
        typer.echo(f"device {device.auth_username} (account {device.account} position {device.position}) updated")


@device_app.command("remove")
def device_remove(
    target: TargetArg, position: PositionArg = None, db: DbOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Remove a device and its registrations."""

    async def remove(store: Store) -> Device:
        device = await _find(store, target, position)
        return await store.admin.remove_device(device.account, device.position)

    device = _with_store(db, data_dir, remove)
    typer.echo(f"device {device.auth_username} (account {device.account} position {device.position}) removed")


@device_app.command("rotate-secret")
def device_rotate_secret(
    target: TargetArg,
    position: PositionArg = None,
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="New credentials expire after N days; 0: never.")
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Generate a new password for a device; prints it once. The old one stops working."""

    async def rotate(store: Store) -> dict[str, Any]:
        device = await _find(store, target, position)
        device = await store.admin.rotate_secret(device.account, device.position, expires_days=expires_days)
        return await _provisioning(store, device)

    _print_provisioning(_with_store(db, data_dir, rotate), json_, "new password")


# --- bindings and ring plan ---------------------------------------------------------------------------


@app.command()
def bindings(
    number: Annotated[str, typer.Argument(help="The account's number.")],
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Show the account's live registrations (as the running server holds them)."""
    from onenumber.store.views import binding_view

    now = time.time()

    async def load(store: Store) -> list[Any]:
        await store.admin.get_account(number)
        return await store.list_bindings(number, now)

    found = _with_store(db, data_dir, load)
    views = [binding_view(b, now) for b in found]
    if json_:
        _print_json(views)
    elif not views:
        typer.echo(f"account {number} has no live registrations")
    else:
        rows = [
            (
                v["auth_username"],
                v["contact"],
                v["transport"],
                v["expires"],
                v["source"],
                v["user_agent"] or "-",
            )
            for v in views
        ]
        typer.echo(_table(("AUTH USERNAME", "CONTACT", "TRANSPORT", "EXPIRES", "SOURCE", "USER AGENT"), rows))


@app.command()
def history(
    number: Annotated[str, typer.Argument(help="The account's number.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=10000, help="How many calls, newest first.")] = 50,
    missed: Annotated[bool, typer.Option("--missed", help="Only missed calls.")] = False,
    mark_seen: Annotated[bool, typer.Option("--mark-seen", help="Mark the missed calls as seen.")] = False,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The account's merged call history (every device), and its unseen missed calls."""
    from onenumber.store.history import mark_seen as mark
    from onenumber.store.history import missed_count, read_history

    async def load(store: Store) -> tuple[list[dict[str, Any]], int, int]:
        account = await store.admin.get_account(number)
        rows = await read_history(store, account.number, limit=limit, missed_only=missed)
        marked = await mark(store, account.number) if mark_seen else 0
        return rows, await missed_count(store, account.number), marked

    rows, unseen, marked = _with_store(db, data_dir, load)
    if json_:
        _print_json({"account": number, "missed_unseen": unseen, "calls": rows})
        return
    if not rows:
        typer.echo(f"account {number} has no calls in its history")
    else:
        def when(ts: float | None) -> str:
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"

        table = [
            (
                when(r["started_at"]),
                "in" if r["direction"] == "in" else "out",
                f'{r["other_number"]} {r["other_name"]}'.strip() or "-",
                r["outcome"] + (f' → {r["forwarded_to"]} ({r["forward_reason"]})' if r["forwarded_to"] else ""),
                f'{int(r["duration"])}s' if r["answered_at"] else "-",
                r["device"] or "-",
            )
            for r in rows
        ]
        typer.echo(_table(("STARTED", "DIR", "OTHER PARTY", "OUTCOME", "DURATION", "DEVICE"), table))
    typer.echo(f"{unseen} missed call(s) not seen" + (f"; {marked} marked as seen" if mark_seen else ""))


@app.command("ring-plan")
def ring_plan(
    number: Annotated[str, typer.Argument(help="The account's number (or one of its DIDs).")],
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Who would ring now: the ring plan of a call arriving now, with the reason for each device."""
    from onenumber.routing.explain import describe_action, explain, format_plan
    from onenumber.routing.model import CallState
    from onenumber.routing.plan import plan_call
    from onenumber.store import NotFoundError
    from onenumber.store.views import binding_view

    now = time.time()

    async def load(store: Store) -> tuple[Any, list[Any]]:
        snapshot = await store.snapshot()
        account = next((a for a in snapshot.accounts if number == a.number or number in a.dids), None)
        if account is None:
            raise NotFoundError(f"no account or DID {number}; see 'onenumber account list'")
        return snapshot, [account, await store.list_bindings(account.number, now)]

    snapshot, (account, live) = _with_store(db, data_dir, load)
    devices = [d for d in snapshot.devices if d.account == account.number]
    plan = plan_call(account, devices, live, CallState(), now)
    if not json_:
        typer.echo(format_plan(plan))
        return

    def action(value: Any) -> dict[str, Any] | None:
        if value is None:
            return None
        return {
            "kind": str(value.kind),
            "status": value.status or None,
            "reason": value.reason,
            "target": value.target,
            "text": describe_action(value),
        }

    _print_json(
        {
            "account": plan.account,
            "ring_mode": str(account.ring_mode),
            "immediate": action(plan.immediate),
            "stages": [
                {
                    "start": stage.start,
                    "positions": list(stage.positions),
                    "contacts": [binding_view(b, now) for b in stage.bindings],
                }
                for stage in plan.stages
            ],
            "devices": explain(plan),
            "no_answer_seconds": plan.no_answer_seconds,
            "decline": str(plan.decline),
            "on_busy": action(plan.on_busy),
            "on_no_answer": action(plan.on_no_answer),
            "on_unavailable": action(plan.on_unavailable),
        }
    )


# --- settings -----------------------------------------------------------------------------------------


@settings_app.command("show")
def settings_show(json_: JsonOpt = False, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Show every server-wide setting (defaults included)."""
    from onenumber.settings import setting_help
    from onenumber.store.views import settings_view

    settings = _with_store(db, data_dir, lambda s: s.admin.get_settings())
    if json_:
        _print_json(settings_view(settings))
        return
    rows = settings.to_rows()
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        typer.echo(f"{key:<{width}}  {value or '-':<30}  # {setting_help(key)}")


@settings_app.command("set")
def settings_set(
    key: Annotated[str, typer.Argument(help="Setting name, see 'onenumber settings show'.")],
    value: Annotated[str, typer.Argument(help="New value; lists are comma-separated.")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change a setting; a running server applies it within a second."""
    settings = _with_store(db, data_dir, lambda s: s.admin.set_setting(key, value))
    name = key.strip().lower().replace("-", "_")
    typer.echo(f"{name} = {settings.to_rows()[name] or '-'}")


@settings_app.command("reset")
def settings_reset(
    key: Annotated[str, typer.Argument(help="Setting name.")], db: DbOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Put a setting back to its default."""
    settings = _with_store(db, data_dir, lambda s: s.admin.reset_setting(key))
    typer.echo(f"{key} = {settings.to_rows()[key] or '-'} (default)")


# --- trunks -------------------------------------------------------------------------------------------


@trunk_app.command("add")
def trunk_add(
    name: Annotated[str, typer.Argument(help="A name for the trunk.")],
    host: Annotated[str, typer.Option("--host", help="Gateway host name or IP address.")],
    port: Annotated[int, typer.Option("--port", help="Gateway SIP port.")] = 5060,
    transport: Annotated[str, typer.Option("--transport", help="udp, tcp or tls.")] = "udp",
    prefix: Annotated[str, typer.Option("--prefix", help="Digits dialled before the number.")] = "",
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Add a trunk for external numbers."""
    trunk = _with_store(
        db, data_dir, lambda s: s.admin.add_trunk(name, host, port=port, transport=transport, prefix=prefix)
    )
    typer.echo(f"trunk {trunk.name} added: {trunk.transport} {trunk.host}:{trunk.port} prefix {trunk.prefix or '-'}")


@trunk_app.command("list")
def trunk_list(json_: JsonOpt = False, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """List trunks."""
    from onenumber.store.views import trunk_view

    trunks = _with_store(db, data_dir, lambda s: s.admin.list_trunks())
    if json_:
        _print_json([trunk_view(t) for t in trunks])
    elif trunks:
        rows = [(t.name, t.host, t.port, t.transport, t.prefix or "-") for t in trunks]
        typer.echo(_table(("NAME", "HOST", "PORT", "TRANSPORT", "PREFIX"), rows))
    else:
        typer.echo("no trunks; external numbers fail until you add one with: onenumber trunk add NAME --host HOST")


@trunk_app.command("remove")
def trunk_remove(
    name: Annotated[str, typer.Argument(help="The trunk's name.")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Remove a trunk."""
    _with_store(db, data_dir, lambda s: s.admin.remove_trunk(name))
    typer.echo(f"trunk {name} removed")


# --- database -----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Create or upgrade the database schema (every command also does this on start)."""
    from onenumber.store.db import display_url
    from onenumber.store.migrate import current_revision

    url = _resolve(db, data_dir)
    before = _with_store(url, None, lambda s: current_revision(s.engine), migrate=False)
    after = _with_store(url, None, lambda s: current_revision(s.engine))
    state = "already up to date" if before == after else f"upgraded from {before or 'an empty database'}"
    typer.echo(f"database {display_url(url)} is at revision {after} ({state})")


# --- entry point --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: usage errors exit 2 with one line, admin errors exit 1."""
    try:
        from typer._click import exceptions as click  # typer >= 0.20 vendors its own click
    except ImportError:  # older typer: the click package
        from click import exceptions as click  # type: ignore[no-redef]  # the same module, older home

    no_args = getattr(click, "NoArgsIsHelpError", ())
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="onenumber", standalone_mode=False)
    except no_args as exc:
        typer.echo(exc.format_message())
        code = 2
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "onenumber"
        message = " ".join(exc.format_message().split())
        typer.echo(f"onenumber: {message} (see '{where} --help')", err=True)
        code = 2
    except click.ClickException as exc:
        typer.echo(f"onenumber: {' '.join(exc.format_message().split())}", err=True)
        code = exc.exit_code
    except typer.Abort:
        typer.echo("onenumber: aborted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
