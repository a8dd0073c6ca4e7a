"""Composition root: config → store → services → transports + HTTP, on one event loop.

`run(config)` is what `onenumber serve` calls. Everything a component needs is built here
and passed down; nothing below keeps module-level state.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import ssl
import sys
import time
from pathlib import Path

from .config import ServerConfig
from .services.core import build_core
from .services.directory import Directory
from .services.history import HistoryWriter
from .services.location import Location
from .store import Store
from .transport.driver import Driver, listen_stream, listen_udp

log = logging.getLogger("onenumber")


def run(config: ServerConfig) -> None:
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"onenumber: cannot start: {exc}. Is another server using the port? Try --sip-port.", file=sys.stderr)
        raise SystemExit(1) from None


def load_secret(path: Path) -> bytes:
    """The nonce secret: kept in the data directory so nonces survive a restart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return path.read_bytes()
    secret = os.urandom(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret


def advertised_host(bind: str) -> str:
    """The address to put in Via/Record-Route: the bind address, or the host's primary one."""
    if bind not in ("0.0.0.0", "::", ""):
        return bind
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 9))  # no packet is sent: this only picks a route
        return s.getsockname()[0]
    return "127.0.0.1"


def local_hosts(config: ServerConfig, advertised: str) -> set[str]:
    hosts = {advertised, "localhost", "127.0.0.1", "::1"}
    if config.bind not in ("0.0.0.0", "::", ""):
        hosts.add(config.bind)
    else:
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(socket.gethostname(), None):
                hosts.add(str(info[4][0]))
    if config.domain:
        hosts.add(config.domain)
    return hosts


async def serve(config: ServerConfig) -> None:
    store = await Store.open(config.db_url)
    try:
        await _serve(config, store)
    finally:
        await store.close()


async def _serve(config: ServerConfig, store: Store) -> None:
    loop = asyncio.get_running_loop()
    if config.demo:
        from .demo import format_demo, seed_demo

        created = await seed_demo(store)
        if created:
            print(format_demo(created, config), flush=True)
    snapshot = await store.snapshot()
    directory = Directory(snapshot)
    location = Location(store, flush_interval=config.flush_interval)
    now = time.time()
    location.load(await store.load_bindings(now))
    # Long-lived start-up state (configuration, restored bindings) is frozen out of the
    # collector, and collections run far less often: a call or a registration leaves no cyclic
    # garbage (bench/bench_core.py exercises them with the collector off; refcounting frees
    # everything), while scans of the tens of thousands of transactions waiting out their
    # timers were the main source of latency spikes (p99 at 500 calls/s: 60 ms → 24 ms).
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)
    host = advertised_host(config.bind)
    realm = config.domain or directory.settings.domain or "onenumber"
    core = build_core(
        directory,
        location,
        secret=load_secret(config.secret_file or config.data_dir / "nonce.secret"),
        realm=realm,
        local_hosts=local_hosts(config, host),
    )
    stack = core.stack
    history = HistoryWriter(store, core.events, directory) if config.history else None
    driver = Driver(stack, max_message=config.max_stream_message)
    driver.on_flow_closed = core.router.on_flow_closed
    driver.events = core.events

    servers: list[asyncio.AbstractServer] = []
    await listen_udp(driver, config.bind, config.sip_port, config.udp_buffer)
    servers.append(await listen_stream(driver, config.bind, config.sip_port))
    stack.local = {"udp": (host, config.sip_port), "tcp": (host, config.sip_port)}
    tls_port = config.effective_tls_port
    if tls_port and config.tls_cert and config.tls_key:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key))
        servers.append(await listen_stream(driver, config.bind, tls_port, ctx))
        stack.local["tls"] = (host, tls_port)

    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.time()
            location.expire(now)
            core.proxy.forget_stale_calls(now)
            driver.pump()

    tasks = [
        loop.create_task(location.run_flusher()),
        loop.create_task(directory.watch(store, config.reload_interval)),
        loop.create_task(sweep()),
    ]
    if history is not None:
        tasks.append(loop.create_task(history.run()))
    http = None
    if config.http_port:
        from .api.app import create_app, start_http

        http = await start_http(create_app(store=store, directory=directory, location=location), config)
        tasks.append(http.task)
    transports = "UDP+TCP" + (f", TLS on {tls_port}" if tls_port else "")
    log.info(
        "OneNumber listening: SIP %s:%d (%s), HTTP %s:%d, realm %s, %d binding(s) restored",
        config.bind, config.sip_port, transports, config.bind, config.http_port, realm, location.count(),
    )
    print(f"OneNumber is running: SIP on {config.bind}:{config.sip_port} ({transports}), "
          f"HTTP on http://{'localhost' if config.bind == '0.0.0.0' else config.bind}:{config.http_port}. "
          "Ctrl-C stops it.", flush=True)
    await stop.wait()
    log.info("stopping")
    for s in servers:
        s.close()
    driver.close()
    if http is not None:
        await http.stop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await location.flush()
    if history is not None:
        await history.flush()
    log.info("stopped; bindings and history saved")
