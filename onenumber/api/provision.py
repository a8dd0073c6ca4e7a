"""The public provisioning endpoint: `GET /provision/<token>` hands a device its SIP settings once.

The token is its own authorization (256 random bits, stored hashed, one use, expiring:
store/provisioning.py). The answer is JSON (`Accept: application/json` or `?format=json`)
for phones and apps, or a plain HTML form with labelled, read-only fields for a person who
types the settings into a phone. A used or expired link gets a clear 410 in the same form;
HEAD says the same without spending the link (link previews must not use it up).
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..settings import Settings
from ..store import AdminError, Store
from ..store.provisioning import Provisioned, link_state, use_link

# the answer carries a password: never cached, never sent on as a referrer, never indexed
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


@dataclass(frozen=True, slots=True)
class SipEndpoint:
    """Where phones reach this server's SIP side (what a provisioning link tells them)."""

    server: str  # address (or name) phones send SIP to
    sip_port: int = 5060  # UDP and TCP
    tls_port: int | None = None
    http_port: int | None = None  # SIP over WebSocket rides on the HTTP port
    websocket: str | None = "ws"  # "ws", "wss", or None when not served
    ws_path: str = "/sip"
    realm: str = "onenumber"
    domain: str | None = None  # `serve --domain`, which overrides the stored setting


def sip_settings(found: Provisioned, endpoint: SipEndpoint, settings: Settings) -> dict[str, Any]:
    """The device's SIP settings as a phone needs them (the JSON a link returns)."""
    device, account = found.device, found.account
    domain = endpoint.domain or settings.domain or endpoint.server
    ports: dict[str, int] = {"udp": endpoint.sip_port, "tcp": endpoint.sip_port}
    if endpoint.tls_port:
        ports["tls"] = endpoint.tls_port
    websocket = None
    if endpoint.websocket and endpoint.http_port:
        ports[endpoint.websocket] = endpoint.http_port
        host = f"[{endpoint.server}]" if ":" in endpoint.server else endpoint.server
        websocket = {"path": endpoint.ws_path,
                     "url": f"{endpoint.websocket}://{host}:{endpoint.http_port}{endpoint.ws_path}"}
    return {
        "number": account.number,
        "display_name": account.display_name,
        "aor": f"sip:{account.number}@{domain}",
        "auth_username": device.auth_username,
        "secret": device.secret,
        "domain": domain,
        "realm": endpoint.realm,
        "server": endpoint.server,
        "ports": ports,
        "transports": list(ports),
        "websocket": websocket,
        "device": {"position": device.position, "kind": str(device.kind), "label": device.label},
        "credential_expires_at": device.credential_expires_at,
    }


def _wants_json(request: Request) -> bool:
    fmt = request.query_params.get("format", "").lower()
    if fmt:
        return fmt == "json"
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"robots\" content=\"noindex\">"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:1rem auto;padding:0 1rem;"
        "line-height:1.4}label{display:block;font-weight:600;margin-top:.8rem}"
        "input{width:100%;font:1rem ui-monospace,monospace;padding:.3rem;box-sizing:border-box}"
        ".note{color:#444}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>\n"
    )


def settings_form(values: dict[str, Any]) -> str:
    """The settings as a plain read-only form: one labelled field each, easy to copy."""
    ports = values["ports"]
    fields = [
        ("number", "User / number", values["number"]),
        ("display_name", "Display name", values["display_name"]),
        ("auth_username", "Authentication user", values["auth_username"]),
        ("secret", "Password", values["secret"]),
        ("domain", "SIP domain / registrar", values["domain"]),
        ("realm", "Realm", values["realm"]),
        ("server", "SIP server / outbound proxy", values["server"]),
    ]
    fields += [(f"port_{name}", f"{name.upper()} port", port) for name, port in ports.items()]
    if values["websocket"]:
        fields.append(("websocket", "WebSocket URL (web and app phones)", values["websocket"]["url"]))
    inputs = "".join(
        f'<label for="{key}">{html.escape(label)}</label>'
        f'<input id="{key}" name="{key}" value="{html.escape(str(value))}" readonly>'
        for key, label, value in fields
    )
    note = ("<p class=\"note\">Enter these in the phone, then close this page: the link worked once and "
            "will not show them again. Every device of the number registers to the same address "
            f"({html.escape(values['aor'])}) with its own authentication user.</p>")
    device = values["device"]
    what = f"{device['kind']}{', ' + device['label'] if device['label'] else ''}"
    intro = f"<p>Device {device['position']} ({html.escape(what)}) of {html.escape(values['display_name'])}.</p>"
    return _page(f"SIP settings for {values['number']}", intro + f"<form>{inputs}</form>" + note)


def build_provision_router() -> APIRouter:
    """`/provision/{token}`; reads `app.state.store`, `.sip` (a SipEndpoint) and `.directory`."""
    router = APIRouter()

    @router.api_route(
        "/provision/{token}",
        methods=["GET"],
        summary="A device's SIP settings, once (the token is the authorization)",
        responses={200: {"content": {"text/html": {}, "application/json": {}}},
                   404: {"description": "unknown link"}, 410: {"description": "used or expired link"}},
        tags=["provisioning"],
    )
    async def provision(token: str, request: Request) -> Response:
        store: Store = request.app.state.store
        as_json = _wants_json(request)
        now = time.time()
        try:
            if request.method == "HEAD":
                state = await link_state(store, token, now)
                return Response(status_code={"ok": 200, "unknown": 404}.get(state, 410), headers=PRIVATE_HEADERS)
            found = await use_link(store, token, now)
        except AdminError as exc:
            if as_json:
                return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=PRIVATE_HEADERS)
            title = "Link already used or expired" if exc.status == 410 else "Unknown link"
            return HTMLResponse(_page(title, f"<p>{html.escape(str(exc))}.</p>"), status_code=exc.status,
                                headers=PRIVATE_HEADERS)
        endpoint: SipEndpoint = request.app.state.sip
        values = sip_settings(found, endpoint, request.app.state.directory.settings)
        if as_json:
            return JSONResponse(values, headers=PRIVATE_HEADERS)
        return HTMLResponse(settings_form(values), headers=PRIVATE_HEADERS)

    # HEAD (does the link still work?) uses nothing up; kept out of the schema, where it would
    # repeat GET's operation id
    router.add_api_route("/provision/{token}", provision, methods=["HEAD"], include_in_schema=False)
    return router
