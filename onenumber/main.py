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
import shutil
import signal
import socket
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

from .config import ServerConfig
from .media.greeting import DEFAULT_PATH as DEFAULT_GREETING
from .media.greeting import speak as greeting_speak
from .services.core import SipCore, build_core
from .services.credentials import rotation_loop
from .services.directory import Directory
from .services.history import HistoryWriter
from .services.location import Location
from .services.media_glue import MediaGlue
from .services.voicemail.deposit import DepositSettings
from .services.voicemail.service import Prompts, StandaloneVoicemail, VoicemailService
from .services.voicemail.store import DatabaseMessageStore, DirectoryMessageStore, MessageStore
from .settings import Settings
from .sip import sip_core
from .sip.bodies import MessageSummary
from .sip.stack import Stack, Target
from .store import Store
from .transport.driver import Driver, listen_stream, listen_udp
from .transport.gcpace import THRESHOLDS as GC_THRESHOLDS

log = logging.getLogger("onenumber")

def run(config: ServerConfig) -> None:
    worker = f" w{config.worker}" if config.workers > 1 else ""  # which worker process said it
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format=f"%(asctime)s %(levelname)s %(name)s{worker}: %(message)s",
        force=config.workers > 1,  # a forked worker: not the supervisor's handlers
    )
    if config.log_format == "json":  # one JSON object per line (services/eventlog.py)
        from .services.eventlog import JsonFormatter

        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
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


@dataclass
class Voicemail:
    transport: asyncio.DatagramTransport
    service: VoicemailService
    app: StandaloneVoicemail
    messages: MessageStore
    changed: Callable[[str], Awaitable[None]]  # tell a box's devices (and web pages) its new counts


def voicemail_dir(config: ServerConfig, settings: Settings) -> Path:
    """Where recordings go: the `voicemail_dir` setting, else <data dir>/voicemail."""
    return Path(settings.voicemail_dir) if settings.voicemail_dir else config.data_dir / "voicemail"


def box_pins(directory: Directory) -> Callable[[str], str | None]:
    """Each box's own voicemail PIN, from the account as the directory has it now (reloads
    included); None when it has none (the server-wide `voicemail_pin` then)."""

    def box_pin(box: str) -> str | None:
        account = directory.accounts.get(box)
        return account.voicemail_pin if account is not None else None

    return box_pin


async def start_voicemail(
    config: ServerConfig, core: SipCore, driver: Driver, store: Store | None = None,
    on_change: Callable[[str, MessageSummary], None] | None = None,
) -> Voicemail:
    """The voicemail box as a local user agent on its own loopback UDP port, which the proxy
    rings like a device (a forward to `voicemail`, the access number). Messages are rows of
    the `voicemail_messages` table (with `store`; JSON side-cars without), message waiting
    goes out through the core's presence service to every device of the box, and the
    settings (directory, maximum length, access number, PIN) apply on every reload."""
    directory = core.proxy.directory
    settings = directory.settings
    app = StandaloneVoicemail(access_number=settings.voicemail_access)
    stack = Stack(app)
    vm_driver = Driver(stack)
    transport = await listen_udp(vm_driver, "127.0.0.1", 0, 1 << 20)  # an ephemeral port, never 5060
    port = transport.get_extra_info("sockname")[1]
    stack.local = {"udp": ("127.0.0.1", port)}
    recordings = voicemail_dir(config, settings)
    messages: MessageStore
    if store is not None:
        messages = DatabaseMessageStore(store)
        imported = 0
        if config.workers == 1:  # several workers: the supervisor did it
            imported = await messages.import_directory(DirectoryMessageStore(recordings))
        if imported:
            log.info("voicemail: %d message record(s) moved from side-car files into the database", imported)
    else:
        messages = DirectoryMessageStore(recordings)
    # with several workers the supervisor recovers before any starts: a restarted worker must not
    # "complete" a message another worker is recording
    recovered = await messages.recover() if config.workers == 1 else []
    if recovered:
        log.info("voicemail: %d message(s) cut short by a stop were completed", len(recovered))
    # the greeting `make greeting` speaks with espeak-ng (in the data directory or the working one)
    greeting = next((p for p in (config.data_dir / DEFAULT_GREETING.name, DEFAULT_GREETING) if p.exists()), None)
    speak = greeting_speak if shutil.which("espeak-ng") else None

    shown: dict[str, MessageSummary] = {}  # the counts last sent per box

    async def changed(box: str) -> None:
        shown[box] = counts = await app.summary(box)
        if core.presence is not None:
            core.presence.set_mailbox(box, counts)
            driver.pump()
        if on_change is not None:
            on_change(box, counts)

    async def refresh() -> None:
        """A configuration reload (the CLI deleted a message, say): boxes whose counts moved."""
        for box in sorted(set(await messages.boxes()) | set(shown)):
            if await app.summary(box) != shown.get(box):
                await changed(box)

    service = VoicemailService(
        stack, messages, recordings=recordings, prompts=Prompts(greeting, speak=speak),
        pump=vm_driver.pump, contact=f"sip:voicemail@127.0.0.1:{port}", on_change=changed,
        deposit_settings=DepositSettings(max_seconds=float(settings.voicemail_max_seconds)),
    )
    app.service = service

    def configure(d: Directory) -> None:
        s = d.settings
        app.access_number = s.voicemail_access
        app.menu = replace(app.menu, pin=s.voicemail_pin or None)
        service.recordings = voicemail_dir(config, s)
        service.deposit_settings = replace(service.deposit_settings, max_seconds=float(s.voicemail_max_seconds))

    app.box_pin = box_pins(directory)
    configure(directory)
    directory.listeners.append(configure)

    def reloaded(_d: Directory) -> None:
        service.spawn(refresh())

    directory.listeners.append(reloaded)
    core.proxy.voicemail = Target("udp", "127.0.0.1", port)
    for box in await messages.boxes():
        await changed(box)
    return Voicemail(transport, service, app, messages, changed)


async def serve(config: ServerConfig) -> None:
    store = await Store.open(config.db_url)
    try:
        await _serve(config, store)
    finally:
        await store.close()


async def _serve(config: ServerConfig, store: Store) -> None:
    loop = asyncio.get_running_loop()
    if config.demo and config.worker == 0:
        from .demo import format_demo, format_logins, seed_demo, seed_logins

        created = await seed_demo(store)
        if created:
            print(format_demo(created, config), flush=True)
        made = await seed_logins(store)
        if made:
            host = "localhost" if config.bind in ("0.0.0.0", "::", "") else config.bind
            print(format_logins(made, f"http://{host}:{config.http_port}"), flush=True)
    snapshot = await store.snapshot()
    directory = Directory(snapshot)
    location = Location(store, flush_interval=config.flush_interval)
    now = time.time()
    location.load(await store.load_bindings(now))
    # Long-lived start-up state (configuration, restored bindings) is frozen out of the
    # collector, and collections run far less often: a call or a registration leaves no cyclic
    # garbage (bench/bench_core.py exercises them with the collector off; refcounting frees
    # everything), while scans of the tens of thousands of transactions waiting out their
    # timers were the main source of latency spikes (p99 at 500 calls/s: 60 ms → 24 ms). Under
    # load the young collections are paced by the messages handled (transport/gcpace.py).
    # Each paced collection counts towards the old generation's threshold: at 50 the next
    # automatic collection (a burst of allocations: a configuration reload, a CSV import)
    # would scan the whole heap (the one at exit after an overload run takes over a second).
    # A full one came only after 2,500 young ones before the pacing (never, in practice): so
    # it stays, and the pacer runs one at a quiet moment instead (transport/gcpace.py), which
    # unfreezes this state first: the full collection scans it too.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    host = advertised_host(config.bind)
    realm = config.domain or directory.settings.domain or "onenumber"
    secret = load_secret(config.secret_file or config.data_dir / "nonce.secret")
    node = None
    if config.redis_url:  # several nodes may share this Redis: this one's address (sip/nodes.py)
        from .sip.nodes import NodeAddress, parse_node_uri

        node = parse_node_uri(config.node_uri) if config.node_uri else NodeAddress(host, config.sip_port)
    hosts = local_hosts(config, host)
    if node is not None:
        hosts.add(node.host)
    core = build_core(
        directory,
        location,
        secret=secret,
        realm=realm,
        local_hosts=hosts,
        presence=config.presence,
    )
    stack = core.stack
    if config.workers > 1:
        stack.set_worker(config.worker)  # our branches name this worker (transport/workers.py)
    from .services.callstats import CallStats
    from .services.eventlog import EventLog

    calls = CallStats(core.events)  # for /metrics
    EventLog(core.events)  # one log line per call event, with its Call-ID (at log level info)
    history = HistoryWriter(store, core.events, directory) if config.history else None
    driver = Driver(stack, max_message=config.max_stream_message)
    driver.on_flow_closed = core.router.on_flow_closed
    driver.events = core.events
    cluster = None
    node_watch = None
    if config.redis_url and node is not None:  # worker processes and nodes: bindings, logins, configuration
        import hashlib

        from .services.replication import flow_prefix
        from .sip.nodes import Flow, node_path
        from .sip.registrar import RegisterOrigin
        from .transport.cluster import Cluster
        from .transport.nodes import NodeWatch

        # the worker's number, this life's PID and the node: a restarted worker's connections
        # never take the ids of its previous life's, nor one node's those of another
        node_tag = hashlib.blake2s(node.node_id.encode(), digest_size=3).hexdigest()
        driver.id_prefix = f"{flow_prefix(config.worker)}{os.getpid():x}n{node_tag}."
        cluster = Cluster(config.redis_url, index=config.worker, location=location, gate=core.gate,
                          directory=directory, store=store, pump=driver.pump, node=node.node_id)
        node_watch = NodeWatch(cluster.redis, cluster.prefix, node.node_id, location,
                               watcher=config.worker == 0, bindings_key=cluster.bindings_key)
        try:
            shared = await cluster.start(watch_config=config.worker == 0, now=time.time())
            await node_watch.start()
        except Exception as exc:  # redis-py's errors are not OSErrors
            print(f"onenumber: cannot use Redis at {config.redis_url}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        own_node = node

        def own_path(origin: RegisterOrigin) -> str:  # this node, first in the Path of what registers here
            return node_path(own_node, secret, Flow(origin.transport, origin.source[0], origin.source[1],
                                                    origin.flow))

        core.router.registrar.node_path = own_path
        core.proxy.reach.node_alive = node_watch.alive
        log.info("redis %s: %d shared binding(s) loaded; node %s", config.redis_url, shared, node.node_id)

    from .api.presence_voicemail import PresenceHub, PresenceVoicemail

    hub = PresenceHub(directory, core.presence)  # presence and message counts to the browsers
    voicemail = await start_voicemail(config, core, driver, store,
                                      on_change=lambda box, s: hub.mailbox_changed(box, s.new, s.old))
    from .services.keepalive import Keepalive

    keepalive = None
    if config.keepalive:  # dead UDP phones are dropped (settings keepalive_*)
        keepalive = Keepalive(stack, location, directory, core.events, clock=time.time)
        keepalive.start(time.time())

    servers: list[asyncio.AbstractServer] = []
    many = config.workers > 1  # the workers share the ports (SO_REUSEPORT)
    udp = await listen_udp(driver, config.bind, config.sip_port, config.udp_buffer, reuse_port=many)
    servers.append(await listen_stream(driver, config.bind, config.sip_port, reuse_port=many))
    extra_udp = None
    if config.worker_port_base:  # tests: reach this very worker
        extra_port = config.worker_port_base + config.worker
        extra_udp = await listen_udp(driver, config.bind, extra_port, config.udp_buffer)
        servers.append(await listen_stream(driver, config.bind, extra_port))
    link = None
    if many:
        from .transport.workers import WorkerLink

        link = WorkerLink(driver, bind=config.bind, port=config.sip_port, index=config.worker, count=config.workers)
    stack.local = {"udp": (host, config.sip_port), "tcp": (host, config.sip_port)}
    tls_port = config.effective_tls_port
    if tls_port and config.tls_cert and config.tls_key:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(config.tls_cert), str(config.tls_key))
        servers.append(await listen_stream(driver, config.bind, tls_port, ctx, reuse_port=many))
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

    from .media.relay import MediaRelay

    # the WebRTC <-> RTP relay; `media.bridge` is what the call engine drives (offer/answer/delete)
    from .settings import rtpengine_address

    relay_setting = directory.settings.rtpengine
    if config.worker > 0 and rtpengine_address(relay_setting) is None:
        relay_setting = "off"  # one own rtpengine, in worker 0 (which serves the WebSocket phones)
    media = MediaRelay.start(relay_setting, host if host != "0.0.0.0" else "127.0.0.1",
                             config.data_dir / "rtpengine.log")
    log.info("%s", media.status)
    MediaGlue(media.bridge, core.media, core.events, driver.pump)
    tasks = [
        loop.create_task(location.run_flusher()),
        loop.create_task(sweep()),
    ]
    if cluster is None or config.worker == 0:  # the other workers are told by worker 0 (Redis)
        tasks.append(loop.create_task(directory.watch(store, config.reload_interval)))
    from .transport.loadwatch import LoadWatch, udp_queue_bytes

    load_watch = None
    if core.overload is not None:  # overload control: the edge samples loop lag and the UDP queue
        load_watch = LoadWatch(core.overload, lambda: udp_queue_bytes(udp), handled=lambda: stack.stats["received"])
        tasks.append(loop.create_task(load_watch.run()))
    from .transport.gcpace import GcPacer, malloc_trim

    # young collections every 1,000 messages: short pauses, not a scan of every live transaction
    # minutes apart (a 140-280 ms stall at half the capacity, and 503s); free pages of the
    # database threads' malloc arenas handed back every 30 s
    tasks.append(loop.create_task(GcPacer(stack.gc_paced, trim=malloc_trim()).run()))
    if history is not None:
        tasks.append(loop.create_task(history.run()))
    tasks.append(loop.create_task(rotation_loop(store)))  # credential_max_age_days
    from .api.metrics import MetricsSource, OneNumberCollector

    max_lag = load_watch.take_max_lag if load_watch is not None else None
    shared_metrics = None
    if many:  # every worker's numbers reach worker 0's /metrics (api/metrics_shared.py)
        from .api.metrics_shared import RecentMax, SharedMetrics, metrics_dir

        max_lag = RecentMax(max_lag) if max_lag is not None else None
    metrics_source = MetricsSource(stack, location, calls, core.gate, core.overload, max_lag, keepalive,
                                   dialogs=lambda: len(core.dialogs.calls))
    if many:  # the bindings (a copy of the same set in every worker) are counted by worker 0 at the scrape
        periodic = OneNumberCollector(replace(metrics_source, location=None))
        shared_metrics = SharedMetrics(periodic, metrics_dir(config.data_dir))
        tasks.append(loop.create_task(shared_metrics.run()))
    http = None
    if config.http_port and config.worker == 0:  # one HTTP server, in worker 0 (docs/scaling.md)
        from .api.app import create_app, start_http
        from .api.provision import SipEndpoint
        from .services.logins import LoginService
        from .services.webcreds import SessionCredentials
        from .store.logins import live_sessions
        from .transport.websocket import sip_websocket_endpoint

        credentials = SessionCredentials(core.gate.secret)
        core.gate.session_credentials = credentials  # web phone session passwords
        logins = LoginService(store)

        def login_limits(d: Directory) -> None:  # the SIP login limits apply to web logins too
            s = d.settings
            logins.configure(s.auth_max_failures, s.auth_max_usernames, max(1, s.auth_block_seconds))

        login_limits(directory)
        directory.listeners.append(login_limits)
        # a reload may come from the CLI's set-password, which ended sessions in the database:
        # their web phone credentials go now, not at the next periodic sweep
        directory.listeners.append(lambda _d: logins.sweep_soon())
        ws_transport = "wss" if config.tls_cert and config.tls_key else "ws"
        endpoint = SipEndpoint(
            server=host, sip_port=config.sip_port, tls_port=stack.local.get("tls", (None, None))[1],
            http_port=config.http_port, websocket=ws_transport, ws_path="/sip", realm=realm, domain=config.domain,
        )
        app = create_app(store=store, directory=directory, location=location, logins=logins,
                         credentials=credentials, realm=realm, pump=driver.pump,
                         secure_cookies=bool(config.tls_cert and config.tls_key), sip=endpoint,
                         presence_voicemail=PresenceVoicemail(hub, voicemail.messages, voicemail.changed))
        app.state.ctx.webphone.restore(await live_sessions(store, time.time()))
        from .api.metrics import metrics_router

        if shared_metrics is not None:
            from .api.metrics_shared import MergedCollector

        app.include_router(metrics_router(
            metrics_source if shared_metrics is None
            else MergedCollector(shared_metrics, OneNumberCollector(metrics_source)),
            token=os.environ.get("ONENUMBER_METRICS_TOKEN") or None,
        ))
        tasks.append(loop.create_task(logins.run_sweeper()))
        app.router.add_websocket_route("/sip", sip_websocket_endpoint(driver, ws_transport))
        from .web.pages import built, mount_phone

        mount_phone(app)
        if not built():
            log.info("the web phone page is not built (make web): /phone will say so")
        stack.local[ws_transport] = (host, config.http_port)
        http = await start_http(app, config, ws_ping_seconds=directory.settings.ws_ping_seconds)
        tasks.append(http.task)
    transports = "UDP+TCP" + (f", TLS on {tls_port}" if tls_port else "")
    if config.http_port:
        transports += f", {'WSS' if tls_port else 'WS'} on {config.http_port}/sip"
    log.info(
        "OneNumber listening: SIP %s:%d (%s), HTTP %s:%d, realm %s, %d binding(s) restored; SIP core %s",
        config.bind, config.sip_port, transports, config.bind, config.http_port, realm, location.count(),
        sip_core(),  # "compiled" (mypyc, `make compiled`) or "pure": docs/compiled.md
    )
    if config.worker == 0:
        print(f"OneNumber is running: SIP on {config.bind}:{config.sip_port} ({transports}), "
              f"HTTP on http://{'localhost' if config.bind == '0.0.0.0' else config.bind}:{config.http_port}"
              f"{f', {config.workers} workers' if config.workers > 1 else ''}. Ctrl-C stops it.", flush=True)
    await stop.wait()
    log.info("stopping")
    if link is not None:
        link.close()
    if extra_udp is not None:
        extra_udp.close()
    for s in servers:
        s.close()
    driver.close()
    if http is not None:
        await http.stop()
    await media.stop()
    voicemail.transport.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if shared_metrics is not None:  # the last numbers of this life count in the totals
        with contextlib.suppress(Exception):
            shared_metrics.export()
        shared_metrics.close()
    await location.flush()
    if node_watch is not None:
        await node_watch.stop(last=config.worker == 0)
    if cluster is not None:
        await cluster.stop()
    if history is not None:
        await history.flush()
    log.info("stopped; bindings and history saved")


# ---------------------------------------------------------------------------- worker processes


async def _prepare(config: ServerConfig) -> None:
    """Before the workers start: the nonce secret, the database migrated once, the demo accounts,
    voicemail messages cut short by the last stop completed."""
    load_secret(config.secret_file or config.data_dir / "nonce.secret")  # made once: workers racing would read it empty
    store = await Store.open(config.db_url)
    try:
        # what start_voicemail does in a single process: side-car records into the database,
        # messages cut short completed (here, before any worker records)
        messages = DatabaseMessageStore(store)
        settings = Directory(await store.snapshot()).settings
        await messages.import_directory(DirectoryMessageStore(voicemail_dir(config, settings)))
        recovered = await messages.recover()
        if recovered:
            log.info("voicemail: %d message(s) cut short by a stop were completed", len(recovered))
        if config.demo:
            from .demo import format_demo, seed_demo

            created = await seed_demo(store)
            if created:
                print(format_demo(created, config), flush=True)
    finally:
        await store.close()


def _worker_main(config: ServerConfig) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the supervisor's handlers are not ours
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with contextlib.suppress(Exception):  # Linux: a supervisor killed with -9 takes its workers along
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    run(config)


def run_workers(config: ServerConfig) -> None:
    """`serve --workers N`: a supervisor starting N worker processes (forked, one event loop
    each), restarting one that dies and stopping them all, by PID, on SIGTERM/SIGINT."""
    import dataclasses
    import multiprocessing

    logging.basicConfig(level=getattr(logging, config.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s supervisor: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    asyncio.run(_prepare(config))
    from .api.metrics_shared import metrics_dir, process_dead, reset_dir

    shared_metrics = metrics_dir(config.data_dir)
    reset_dir(shared_metrics)  # /metrics counts this run's workers (api/metrics_shared.py)
    ctx = multiprocessing.get_context("fork")
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: stopping.append(signum))

    def start(i: int) -> multiprocessing.process.BaseProcess:
        p = ctx.Process(target=_worker_main, args=(dataclasses.replace(config, worker=i, demo=False),),
                        name=f"onenumber-w{i}")
        p.start()
        log.info("worker %d started (pid %s)", i, p.pid)
        return p

    procs = {i: start(i) for i in range(config.workers)}
    started = {i: time.monotonic() for i in procs}
    restarts: dict[int, list[float]] = {i: [] for i in procs}
    failed = False
    while not stopping:
        time.sleep(0.2)
        now = time.monotonic()
        for i, p in list(procs.items()):
            if p.is_alive() or stopping:
                continue
            if p.pid is not None:  # its live gauges stop counting at once (again while it waits: a glob)
                process_dead(shared_metrics, p.pid)
            # a first start that failed by itself (a port in use, Redis unreachable): no use retrying
            if not restarts[i] and (p.exitcode or 0) > 0 and now - started[i] < 5.0:
                log.error("worker %d exited at start (code %s): stopping", i, p.exitcode)
                failed = True
                stopping.append(0)
                break
            recent = [t for t in restarts[i] if now - t < 60.0]
            if len(recent) >= 5 and now - recent[-1] < 10.0:  # crashing in a loop: wait, do not spin
                continue
            log.warning("worker %d (pid %s) died (exit code %s): restarting", i, p.pid, p.exitcode)
            restarts[i] = [*recent, now]
            procs[i] = start(i)
            started[i] = now
    log.info("stopping %d worker(s)", len(procs))
    for p in procs.values():
        if p.is_alive() and p.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + 8.0  # within what a service manager waits before its own SIGKILL
    for p in procs.values():
        p.join(max(0.1, deadline - time.monotonic()))
        if p.is_alive() and p.pid is not None:
            log.warning("worker pid %s did not stop: killing it", p.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGKILL)
            p.join(2.0)
    if failed:
        raise SystemExit(1)
