"""The HTTP side (FastAPI), served by uvicorn on the same event loop as SIP.

For now: health, and what the running server holds (live bindings, the ring plan of an
account). The portal, the web phone and the admin REST API grow here in later issues.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import asdict, dataclass
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request

from ..config import ServerConfig
from ..services.directory import Directory
from ..services.location import Location
from ..store import Store
from .ops import build_ops_router
from .provision import SipEndpoint, build_provision_router


def local_only(request: Request) -> None:
    """Until the portal brings logins, what the server holds is shown to this machine only:
    contacts and addresses of phones are not for anyone who can reach the HTTP port."""
    host = request.client.host if request.client else ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise HTTPException(403, detail="this API answers on the server itself only (use the CLI, or http://127.0.0.1)")


def create_app(
    *, store: Store, directory: Directory, location: Location, sip: SipEndpoint | None = None
) -> FastAPI:
    app = FastAPI(title="OneNumber", version="0.1.0")
    # what the routers of other modules read (api/ops.py, api/provision.py)
    app.state.store = store
    app.state.directory = directory
    app.state.sip = sip or SipEndpoint(server="127.0.0.1")
    app.include_router(build_provision_router())
    # the admin operations; `local_only` stands in for the admin login until it exists
    app.include_router(build_ops_router(local_only))

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "bindings": location.count(), "revision": directory.revision}

    @app.get("/api/accounts/{number}/bindings", dependencies=[Depends(local_only)])
    async def bindings(number: str) -> list[dict[str, Any]]:
        if number not in directory.accounts:
            raise HTTPException(404, detail=f"no account {number}")
        now = time.time()
        out = []
        for b in location.get(number):
            row = asdict(b)
            row["expires"] = max(0, int(b.expires_at - now))
            out.append(row)
        return out

    @app.get("/api/accounts/{number}/ring-plan", dependencies=[Depends(local_only)])
    async def ring_plan(number: str) -> list[dict[str, Any]]:
        from ..routing.explain import explain
        from ..routing.plan import plan_call

        account = directory.accounts.get(number)
        if account is None:
            raise HTTPException(404, detail=f"no account {number}")
        plan = plan_call(account, directory.devices(number), location.get(number), now=time.time())
        return explain(plan)

    return app


@dataclass
class HttpServer:
    server: Any
    task: asyncio.Task

    async def stop(self) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=3)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()


async def start_http(app: FastAPI, config: ServerConfig, *, ws_ping_seconds: float = 20.0) -> HttpServer:
    """Serve `app` on the HTTP port (HTTPS, and so WSS for the web phone, when a certificate is
    configured). WebSocket pings go out every half of `ws_ping_seconds`, each given the other
    half to be answered: a silent socket is closed within `ws_ping_seconds`."""
    import uvicorn

    tls: dict[str, Any] = {}
    if config.tls_cert and config.tls_key:
        tls = {"ssl_certfile": str(config.tls_cert), "ssl_keyfile": str(config.tls_key)}
    ucfg = uvicorn.Config(
        app, host=config.bind, port=config.http_port, log_level="warning", lifespan="off", loop="none",
        ws_ping_interval=ws_ping_seconds / 2, ws_ping_timeout=ws_ping_seconds / 2, **tls,
    )
    server = uvicorn.Server(ucfg)
    # uvicorn's own signal handlers would take Ctrl-C from ours
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # not in uvicorn's stubs
    task = asyncio.get_running_loop().create_task(server.serve())
    return HttpServer(server, task)
