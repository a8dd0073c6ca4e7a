"""The `onenumber` command: run the server and administer accounts, devices, settings, trunks.

Scripts rely on these command forms and on the `--json` shapes (see docs/admin.md), so
keep them stable. Every command takes `--db URL`; bad input exits 1 (usage errors 2) with
one line on stderr. Heavy modules (SQLAlchemy, the server) are imported inside commands
so `onenumber --help` starts fast. Talks to the store's admin layer, never to transports.
"""

from __future__ import annotations

import asyncio
import contextlib
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
admin_app = typer.Typer(help="Admins: who may log in to the portal and the REST API as admin.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens for integrations (Authorization: Bearer ...).", no_args_is_help=True)
app.add_typer(account_app, name="account")
app.add_typer(device_app, name="device")
app.add_typer(settings_app, name="settings")
app.add_typer(trunk_app, name="trunk")
app.add_typer(db_app, name="db")
app.add_typer(admin_app, name="admin")
app.add_typer(token_app, name="token")
voicemail_app = typer.Typer(help="Voicemail messages: list them, delete one, find its WAV.", no_args_is_help=True)
app.add_typer(voicemail_app, name="voicemail")


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
        str | None, typer.Option(help="Redis URL (redis://host:6379/0) where workers and nodes share bindings, "
                                      "failed logins, configuration changes and node heartbeats.")
    ] = None,
    worker_port_base: Annotated[
        int | None, typer.Option(hidden=True, help="Tests: worker N also listens on this port + N.")
    ] = None,
    node_uri: Annotated[
        str | None, typer.Option(help="Several nodes sharing --redis and the database: how the other nodes reach "
                                      "this one (sip:HOST:PORT, ;transport=tcp optional; default: the bind "
                                      "address and SIP port). Calls to phones connected here go through it. "
                                      "See docs/scaling.md.")
    ] = None,
    secret_file: Annotated[
        Path | None, typer.Option(envvar="ONENUMBER_SECRET_FILE",
                                  help="The secret signing nonces, Record-Routes and flow tokens (default: "
                                       "nonce.secret in the data directory). Several nodes must use the same one.")
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
    if node_uri is not None:
        if not redis:
            _fail("--node-uri needs --redis URL: the nodes share their bindings there", 2)
        from onenumber.sip.nodes import parse_node_uri

        try:
            node_port = parse_node_uri(node_uri).port
        except ValueError as exc:
            _fail(f"--node-uri: {exc}", 2)
        if node_port != sip_port:  # the node recognises its own Path entries by host and SIP port
            _fail(f"--node-uri port {node_port} must be the --sip-port ({sip_port})", 2)
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
        node_uri=node_uri,
        secret_file=secret_file,
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
    from onenumber.api.schemas import account_out

    account = _with_store(db, data_dir, lambda s: s.admin.add_account(number, name, did or []))
    if json_:
        _print_json(account_out(account, []).model_dump())
    else:
        dids = f" with DIDs {', '.join(account.dids)}" if account.dids else ""
        typer.echo(f"account {account.number} ({account.display_name}) added{dids}")
        typer.echo(f"next: onenumber device add {account.number} --kind deskphone")


@account_app.command("list")
def account_list(json_: JsonOpt = False, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """List accounts."""
    from onenumber.api.schemas import account_out

    snapshot = _with_store(db, data_dir, lambda s: s.snapshot())
    by_account: dict[str, list[Device]] = {}
    for device in snapshot.devices:
        by_account.setdefault(device.account, []).append(device)
    if json_:
        _print_json([account_out(a, by_account.get(a.number, [])).model_dump() for a in snapshot.accounts])
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
    from onenumber.api.schemas import account_out

    async def load(store: Store) -> tuple[Any, list[Device]]:
        return await store.admin.get_account(number), await store.admin.list_devices(number)

    account, devices = _with_store(db, data_dir, load)
    view = account_out(account, devices).model_dump()
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
        ("voicemail PIN", "own" if account.voicemail_pin else "- (the server-wide one)"),
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
    voicemail_pin: Annotated[
        str | None,
        typer.Option("--voicemail-pin", help='The box\'s own voicemail PIN (4-12 digits); "": the server-wide one.'),
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Change an account's name, DIDs, ring mode, forwarding, DND, selected device, caller ID or
    voicemail PIN."""
    from onenumber.api.schemas import account_out
    from onenumber.store.admin import UNCHANGED

    def given(value: str | None) -> Any:
        return UNCHANGED if value is None else value

    changes = [name, add_did, remove_did, ring_mode, stage_seconds, no_answer_seconds, forward_unconditional]
    changes += [forward_busy, forward_no_answer, decline, dnd, selected_device, cli, voicemail_pin]
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
            voicemail_pin=given(voicemail_pin),
        ),
    )
    if json_:
        _print_json(account_out(account).model_dump())
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


def _read_password(stdin: bool, what: str) -> str:
    """A password from stdin (one line) or asked twice at the terminal."""
    if stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"new password for {what}", hide_input=True, confirmation_prompt=True)
    from onenumber.store.logins import MIN_PASSWORD

    if len(password) < MIN_PASSWORD:
        _fail(f"the password is too short; use at least {MIN_PASSWORD} characters")
    return password


PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line) instead.")
]


@account_app.command("set-password")
def account_set_password(
    number: Annotated[str, typer.Argument(help="The account's number.")],
    password_stdin: PasswordStdinOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set the account's login password (web phone and portal; the number is the username)."""
    from onenumber.store.logins import delete_sessions_of, set_account_password

    password = _read_password(password_stdin, f"account {number}")

    async def run(store: Store) -> int:
        await set_account_password(store, number, password)
        # logged-in browsers keep going only with the new password: the servers reload on the
        # announced change and revoke those sessions' web phone credentials at once
        return len(await delete_sessions_of(store, "user", number, announce=True))

    ended = _with_store(db, data_dir, run)
    typer.echo(f"password of account {number} set" + (f"; {ended} session(s) logged out" if ended else ""))


@admin_app.command("create")
def admin_create(
    username: Annotated[str, typer.Argument(help="The admin's username (starts with a letter), e.g. admin.")],
    password_stdin: PasswordStdinOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an admin. Without --password-stdin a password is generated and printed once."""
    import secrets as _secrets

    from onenumber.store.logins import create_admin

    password = _read_password(True, username) if password_stdin else _secrets.token_urlsafe(15)
    name = _with_store(db, data_dir, lambda s: create_admin(s, username, password))
    if password_stdin:
        typer.echo(f"admin {name} created")
    else:
        typer.echo(f"admin {name} created; password (shown only now): {password}")


@admin_app.command("list")
def admin_list(db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """List the admins' usernames."""
    from onenumber.store.logins import list_admins

    for name in _with_store(db, data_dir, list_admins):
        typer.echo(name)


@admin_app.command("set-password")
def admin_set_password(
    username: Annotated[str, typer.Argument(help="The admin's username.")],
    password_stdin: PasswordStdinOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Set an admin's password (their sessions are logged out)."""
    from onenumber.store.logins import delete_sessions_of, set_admin_password

    password = _read_password(password_stdin, f"admin {username}")

    async def run(store: Store) -> None:
        await set_admin_password(store, username, password)
        await delete_sessions_of(store, "admin", username, announce=True)

    _with_store(db, data_dir, run)
    typer.echo(f"password of admin {username} set")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="What the token is for, e.g. billing-sync.")],
    role: Annotated[str, typer.Option("--role", help="admin (everything) or user (one account's /api/me).")] = "admin",
    account: Annotated[
        str | None, typer.Option("--account", help="The account a user token acts for.", show_default=False)
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an API token; it is printed once (only its hash is stored)."""
    from onenumber.api.schemas import token_out
    from onenumber.store.logins import create_api_token

    if role not in ("admin", "user"):
        _fail(f"role {role!r} is not known; use admin or user")
    token, record = _with_store(
        db, data_dir, lambda s: create_api_token(s, name, role, account, now=time.time())  # type: ignore[arg-type]
    )
    if json_:
        _print_json(token_out(record).model_dump() | {"token": token})
    else:
        typer.echo(f"API token {record.id} ({record.name}, {record.role}) created; shown only now:")
        typer.echo(token)
        typer.echo("use it as: Authorization: Bearer <token>")


@token_app.command("list")
def token_list(json_: JsonOpt = False, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """List API tokens (never the tokens themselves)."""
    from onenumber.api.schemas import token_out
    from onenumber.store.logins import list_api_tokens

    tokens = [token_out(t) for t in _with_store(db, data_dir, list_api_tokens)]
    if json_:
        _print_json([t.model_dump() for t in tokens])
        return
    rows = [(t.id, t.name, t.role, _opt_text(t.account), "revoked" if t.revoked_at else "active") for t in tokens]
    typer.echo(_table(["ID", "NAME", "ROLE", "ACCOUNT", "STATE"], rows))


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (see 'onenumber token list').")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke an API token: it stops working at once."""
    from onenumber.store.logins import revoke_api_token

    record = _with_store(db, data_dir, lambda s: revoke_api_token(s, token_id, now=time.time()))
    typer.echo(f"API token {record.id} ({record.name}) revoked")


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
    from onenumber.api.schemas import device_out
    from onenumber.demo import primary_address

    settings = await store.admin.get_settings()
    server = primary_address()
    view = device_out(device).model_dump() | {"secret": device.secret}
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
    from onenumber.api.schemas import device_out

    devices = _with_store(db, data_dir, lambda s: s.admin.list_devices(number))
    if json_:
        _print_json([device_out(d).model_dump() for d in devices])
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
    from onenumber.api.schemas import device_out

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
        _print_json(device_out(device).model_dump())
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


OverlapOpt = Annotated[
    float | None,
    typer.Option("--overlap-hours", min=0, max=720,
                 help="Hours the old secret keeps working (default: the credential_overlap_hours setting)."),
]


def _rotate(
    target: str, position: int | None, overlap_hours: float | None, at_once: bool, expires_days: float | None,
    db: str | None, data_dir: Path | None,
) -> Device:
    if at_once and overlap_hours:
        _fail("--at-once and --overlap-hours go against each other; give one", 2)

    async def rotate(store: Store) -> Device:
        device = await _find(store, target, position)
        return await store.admin.rotate_secret(
            device.account, device.position, expires_days=expires_days, overlap_hours=0 if at_once else overlap_hours
        )

    return _with_store(db, data_dir, rotate)


@device_app.command("rotate")
def device_rotate(
    target: TargetArg,
    position: PositionArg = None,
    overlap_hours: OverlapOpt = None,
    at_once: Annotated[
        bool, typer.Option("--at-once", help="Refuse the old secret at once (a lost or stolen phone).")
    ] = False,
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="New credentials expire after N days; 0: never.")
    ] = None,
    show_secret: Annotated[bool, typer.Option("--show-secret", help="Also print the new secret.")] = False,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Give a device a new generated secret; the old one works for the overlap window.

    The overlap window (the credential_overlap_hours setting, or --overlap-hours) lets the phone
    be re-provisioned without dropping out; --at-once refuses the old secret now."""
    from onenumber.store.views import device_view

    device = _rotate(target, position, overlap_hours, at_once, expires_days, db, data_dir)
    until = device.previous_secret_until
    if json_:
        view = device_view(device, secret=show_secret)
        view["previous_secret_valid_until"] = until
        _print_json(view)
        return
    typer.echo(f"device {device.auth_username} (account {device.account} position {device.position}) has a new secret")
    if until is None:
        typer.echo("the old secret is refused from now on")
    else:
        typer.echo(f"the old secret keeps working until {_when_text(until)}")
    if show_secret:
        typer.echo(f"new password: {device.secret}")
    typer.echo(f"give the phone its new settings with: onenumber device provision {device.account} {device.position}")


@device_app.command("rotate-secret", hidden=True)
def device_rotate_secret(
    target: TargetArg,
    position: PositionArg = None,
    overlap_hours: OverlapOpt = None,
    at_once: Annotated[bool, typer.Option("--at-once", help="Refuse the old secret at once.")] = False,
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="New credentials expire after N days; 0: never.")
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Older form of 'device rotate --show-secret': prints the new password with the SIP settings."""
    device = _rotate(target, position, overlap_hours, at_once, expires_days, db, data_dir)
    _print_provisioning(_with_store(db, data_dir, lambda s: _provisioning(s, device)), json_, "new password")


@device_app.command("rotate-due")
def device_rotate_due(json_: JsonOpt = False, db: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Scheduled rotation, once: new secrets for devices older than credential_max_age_days.

    The running server does the same check every hour; each old secret keeps working for the
    overlap window."""
    from onenumber.store.views import device_view

    rotated = _with_store(db, data_dir, lambda s: s.admin.rotate_due())
    if json_:
        _print_json([{**device_view(d), "previous_secret_valid_until": d.previous_secret_until} for d in rotated])
        return
    if not rotated:
        typer.echo("no device secret is due for rotation (see the credential_max_age_days setting)")
        return
    for d in rotated:
        typer.echo(f"rotated {d.auth_username} (account {d.account} position {d.position}); the old secret works "
                   f"until {_when_text(d.previous_secret_until)}")
    typer.echo("give each phone its new settings with: onenumber device provision NUMBER POSITION")


def _when_text(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(ts))


def _base_url_option(base_url: str | None) -> str | None:
    from onenumber.settings import validate_setting

    if base_url is None:
        return None
    try:
        return validate_setting("provisioning_base_url", base_url) or None
    except ValueError as exc:
        _fail(f"--base-url: {exc}", 2)


async def _link_base(store: Store, base_url: str | None) -> str:
    """--base-url, else the provisioning_base_url setting, else this host on the default HTTP port."""
    from onenumber.config import DEFAULT_HTTP_PORT
    from onenumber.demo import primary_address

    base = base_url or (await store.admin.get_settings()).provisioning_base_url
    return base or f"http://{primary_address()}:{DEFAULT_HTTP_PORT}"


@device_app.command("provision")
def device_provision(
    target: TargetArg,
    position: PositionArg = None,
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="Start of the link, e.g. https://pbx.example.com:8443 (default: the "
                     "provisioning_base_url setting, else http://THIS-HOST:8080)."),
    ] = None,
    hours: Annotated[
        float | None, typer.Option("--hours", help="Hours the link stays usable (default: provisioning_link_hours).")
    ] = None,
    rotate: Annotated[bool, typer.Option("--rotate", help="Give the device a new secret first.")] = False,
    qr: Annotated[bool, typer.Option("--qr", help="Also draw the link as a QR code in the terminal.")] = False,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print a one-time, expiring provisioning link (and QR code) with a device's SIP settings.

    Opened once (by the phone, or a person), it gives the device's SIP settings with its current
    secret, as JSON or a form; then it answers 410. A new link replaces the device's earlier one."""
    from onenumber.store.provisioning import NewLink, create_link
    from onenumber.store.views import device_view

    base_url = _base_url_option(base_url)

    async def make(store: Store) -> tuple[NewLink, str]:
        device = await _find(store, target, position)
        link = await create_link(store, device.account, device.position, hours=hours, rotate=rotate)
        return link, await _link_base(store, base_url)

    link, base = _with_store(db, data_dir, make)
    url = link.url(base)
    if json_:
        _print_json({"url": url, "expires_at": link.expires_at, "rotated": link.rotated,
                     "device": device_view(link.device)})
        return
    d = link.device
    typer.echo(f"provisioning link for {d.auth_username} (account {d.account} position {d.position}), "
               f"works once until {_when_text(link.expires_at)}:")
    typer.echo(url)
    if qr:
        from onenumber.api.qr import qr_terminal

        typer.echo(qr_terminal(url), nl=False)
    if rotate:
        typer.echo("the device has a new secret; the old one keeps working for the overlap window")


# --- CSV import and export ----------------------------------------------------------------------------


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The CSV file ('-' reads standard input); see docs/admin.md.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report, change nothing.")] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Also remove the accounts, and devices of listed accounts, not in the file.")
    ] = False,
    links: Annotated[
        bool, typer.Option("--links", help="Make a one-time provisioning link for each new device and print them.")
    ] = False,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Start of those links (as for 'device provision').")
    ] = None,
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create or update accounts and devices from a CSV file, all or nothing.

    Problems are listed by line and column and then nothing is changed; importing an export
    changes nothing. The columns are described in docs/admin.md."""
    from onenumber.store.csvio import CsvImportError, ImportReport, import_csv
    from onenumber.store.provisioning import link_url

    base_url = _base_url_option(base_url)
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")

    async def run(store: Store) -> tuple[ImportReport | CsvImportError, str]:
        try:
            report = await import_csv(store, text, dry_run=dry_run, prune=prune, links=links)
        except CsvImportError as exc:
            return exc, ""
        return report, await _link_base(store, base_url)

    result, base = _with_store(db, data_dir, run)
    if isinstance(result, CsvImportError):
        if json_:
            _print_json({"ok": False, "detail": str(result), "errors": [e.view() for e in result.errors]})
        else:
            typer.echo(f"onenumber: import of {file} failed, nothing was changed:", err=True)
            for error in result.errors:
                typer.echo(f"  {error}", err=True)
        raise typer.Exit(1)
    for new in result.new_devices:
        if "token" in new:
            new["url"] = link_url(base, new.pop("token"))
    if json_:
        _print_json({"ok": True, **result.view()})
        return
    a, d = result.accounts, result.devices
    prefix = "dry run, nothing changed; would have: " if dry_run else ""
    typer.echo(f"{prefix}accounts: {a['created']} created, {a['updated']} updated, {a['unchanged']} unchanged, "
               f"{a['removed']} removed; devices: {d['created']} created, {d['updated']} updated, "
               f"{d['unchanged']} unchanged, {d['removed']} removed")
    if not result.changed:
        typer.echo("the database already matches the file: nothing was written")
    if links and result.new_devices and not dry_run:
        typer.echo(f"{len(result.new_devices)} new device(s) got generated secrets; their one-time provisioning "
                   f"links (usable until {_when_text(result.new_devices[0]['link_expires_at'])}):")
        for new in result.new_devices:
            typer.echo(f"  {new['account']} {new['position']} {new['auth_username']}  {new['url']}")
    elif result.new_devices and not dry_run:
        typer.echo(f"{len(result.new_devices)} new device(s) got generated secrets; give each phone its settings "
                   "with a one-time link (or import with --links):")
        for new in result.new_devices[:10]:
            typer.echo(f"  onenumber device provision {new['account']} {new['position']}")
        if len(result.new_devices) > 10:
            typer.echo(f"  ... and {len(result.new_devices) - 10} more (--json lists them all)")


@app.command("export")
def export(
    file: Annotated[Path | None, typer.Argument(help="Write here (default: standard output).")] = None,
    json_: Annotated[bool, typer.Option("--json", help="JSON rows (the same columns) instead of CSV.")] = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Write every account and device as CSV (secrets are never exported).

    One row per device; the file can be edited and imported back with 'onenumber import'."""
    from onenumber.store.csvio import export_csv, export_rows

    if json_:
        text = json.dumps(_with_store(db, data_dir, export_rows), indent=2) + "\n"
    else:
        text = _with_store(db, data_dir, export_csv)
    if file is None:
        typer.echo(text, nl=False)
        return
    try:
        file.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {file}: {exc}")
    rows = max(0, text.count("\n") - 1)
    typer.echo(f"exported to {file}" + ("" if json_ else f" ({rows} rows)"), err=True)


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
    from onenumber.routing.explain import format_plan
    from onenumber.routing.model import CallState
    from onenumber.routing.plan import plan_call
    from onenumber.store import NotFoundError

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

    from onenumber.api.schemas import ring_plan_out

    _print_json(ring_plan_out(plan, account, now).model_dump())


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


# --- voicemail ------------------------------------------------------------------------------------


@voicemail_app.command("list")
def voicemail_list(
    number: Annotated[str, typer.Argument(help="The account's number (its box).")],
    json_: JsonOpt = False,
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """The box's messages, oldest first (new = not heard yet)."""
    from onenumber.store.voicemail import list_messages

    async def load(store: Store) -> list[dict[str, Any]]:
        account = await store.admin.get_account(number)
        return await list_messages(store, account.number)

    rows = _with_store(db, data_dir, load)
    if json_:
        _print_json(rows)
        return
    if not rows:
        typer.echo(f"account {number} has no voicemail messages")
        return
    table = [
        (
            r["id"],
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["started_at"])),
            f'{r["caller_number"]} {r["caller_name"]}'.strip() or "-",
            f'{r["duration"]:.1f}s' if r["complete"] else "recording",
            "saved" if r["heard"] else "new",
        )
        for r in rows
    ]
    typer.echo(_table(("ID", "RECEIVED", "FROM", "DURATION", "STATE"), table))
    new = sum(1 for r in rows if not r["heard"])
    typer.echo(f"{new} new, {len(rows) - new} saved")


@voicemail_app.command("delete")
def voicemail_delete(
    message_id: Annotated[str, typer.Argument(help="The message id (from 'voicemail list').")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete a message and its WAV; the running server updates message waiting."""
    from onenumber.store.voicemail import mark_deleted

    row = _with_store(db, data_dir, lambda store: mark_deleted(store, message_id, notify=True))
    if row is None:
        _fail(f"no voicemail message {message_id!r}; see 'onenumber voicemail list NUMBER'")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(row["path"])
    typer.echo(f"message {message_id} of {row['account']} deleted")


@voicemail_app.command("play-path")
def voicemail_play_path(
    message_id: Annotated[str, typer.Argument(help="The message id (from 'voicemail list').")],
    db: DbOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print the path of the message's WAV (e.g. `aplay "$(onenumber voicemail play-path ID)"`)."""
    from onenumber.store.voicemail import get_message

    row = _with_store(db, data_dir, lambda store: get_message(store, message_id))
    if row is None:
        _fail(f"no voicemail message {message_id!r}; see 'onenumber voicemail list NUMBER'")
    if not os.path.exists(row["path"]):
        _fail(f"the WAV of message {message_id} is missing: {row['path']}")
    typer.echo(row["path"])


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
