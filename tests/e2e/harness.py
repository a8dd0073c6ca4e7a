"""Drive a real OneNumber server and real peers (SIPp, sipsak, baresip) on 127.0.0.1.

Every address carries an explicit free port: nothing here ever sends to 5060.
Processes started here are stopped by their PID.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios"
BIN = Path(sys.executable).parent
ONENUMBER = str(BIN / "onenumber")
LOOPBACK = "127.0.0.1"


def free_port(*, pair: bool = False, span: int = 1) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (and port+1 too with pair=True, the next
    `span` ports with span=N); never 5060."""
    span = max(span, 2 if pair else 1)
    for _ in range(200):
        # below the kernel's ephemeral range (32768+): an outgoing connection (Redis, an HTTP poll
        # connecting to itself) can never take the port between this check and the server's bind
        port = random.randrange(20000, 30000 - span)
        if 5060 in range(port, port + span) or 5061 in range(port, port + span):
            continue
        ok = True
        for p in range(port, port + span):
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    try:
                        s.bind((LOOPBACK, p))
                    except OSError:
                        ok = False
        if ok:
            return port
    raise RuntimeError("no free port")


def check_port(port: int) -> int:
    if port in (5060, 5061):
        raise ValueError("tests never use port 5060/5061")
    return port


def cli(db: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [ONENUMBER, *args, "--db", db], capture_output=True, text=True, timeout=60
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"onenumber {' '.join(args)} failed ({proc.returncode}): {proc.stderr}{proc.stdout}")
    return proc


def cli_json(db: str, *args: str) -> object:
    return json.loads(cli(db, *args, "--json").stdout)


# The tests' servers shed load only when really swamped: a busy test machine (CI's two cores
# running Chromium, SIPp and several servers) makes the event loop late now and then, and a
# functional test must not get 503 for it. test_overload.py sets its own bounds.
TEST_OVERLOAD_SETTINGS = {"overload_max_lag_ms": "2000", "overload_max_queue_ms": "5000"}


def admin_token(db: str) -> str:
    """A new admin API token in the database (migrating it first, as the server would), and the
    tests' overload bounds (TEST_OVERLOAD_SETTINGS). In a thread of its own: a test's thread
    may be running an event loop (Playwright's sync API)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from onenumber.store import Store
    from onenumber.store.logins import create_api_token

    async def run() -> str:
        store = await Store.open(db)
        try:
            token, _ = await create_api_token(store, "e2e-harness", "admin", now=time.time())
            for key, value in TEST_OVERLOAD_SETTINGS.items():
                await store.admin.set_setting(key, value)
            return token
        finally:
            await store.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(run())).result(timeout=60)


def options_ping(port: int, timeout: float = 0.5, host: str = LOOPBACK) -> bool:
    """OPTIONS to host:port from the same host; True on a 200."""
    check_port(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        s.settimeout(timeout)
        me = s.getsockname()[1]
        call_id = uuid.uuid4().hex
        msg = (
            f"OPTIONS sip:{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {host}:{me};branch=z9hG4bK{call_id[:10]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{host}:{me}>;tag=probe\r\n"
            f"To: <sip:{host}:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        s.sendto(msg, (host, port))
        try:
            data, _ = s.recvfrom(65535)
        except OSError:
            return False
        return data.startswith(b"SIP/2.0 200")


@dataclass
class Device:
    account: str
    position: int
    auth_username: str
    secret: str


@dataclass
class Server:
    """One `onenumber serve` process with its own database and ports."""

    workdir: Path
    db: str = ""
    sip_port: int = 0
    http_port: int = 0
    extra: list[str] = field(default_factory=list)
    keepalive: bool = False  # OPTIONS keepalive of UDP bindings: off unless a test asks (SIPp UAS ignore OPTIONS)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    api_token: str = ""  # an admin API token, created at the first start (see http_json)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not self.db:
            self.db = f"sqlite:///{self.workdir / 'onenumber.sqlite3'}"
        self.sip_port = self.sip_port or free_port(pair=True)
        self.http_port = self.http_port or free_port()
        check_port(self.sip_port)

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    def start(self) -> Server:
        self.log_path = self.workdir / "server.log"
        if not self.api_token:  # the HTTP API needs a login: the tests use an admin token
            self.api_token = admin_token(self.db)
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        env = dict(os.environ)
        env.pop("ONENUMBER_DB", None)
        self.proc = subprocess.Popen(
            [
                ONENUMBER, "serve", "--bind", LOOPBACK, "--sip-port", str(self.sip_port),
                "--http-port", str(self.http_port), "--data-dir", str(self.workdir), "--db", self.db,
                *([] if self.keepalive else ["--no-keepalive"]), *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.log()}")
            if options_ping(self.sip_port, 0.2):
                return self
            time.sleep(0.1)
        raise AssertionError(f"server did not answer OPTIONS:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path and self.log_path.exists() else ""

    def http_json(self, path: str, *, timeout: float = 2.0) -> Any:
        """GET an API path as the harness's admin (bearer token); the parsed JSON."""
        import urllib.request

        req = urllib.request.Request(f"http://{LOOPBACK}:{self.http_port}{path}",
                                     headers={"Authorization": f"Bearer {self.api_token}"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())

    # ---------------------------------------------------------------- administration
    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return cli(self.db, *args, check=check)

    def cli_json(self, *args: str) -> object:
        return cli_json(self.db, *args)

    def add_account(self, number: str, name: str, devices: int = 2, **device_opts: str) -> list[Device]:
        self.cli("account", "add", number, "--name", name)
        out = []
        for i in range(devices):
            kind = "deskphone" if i == 0 else "softphone"
            args = ["device", "add", number, "--kind", kind]
            for k, v in device_opts.items():
                args += [f"--{k.replace('_', '-')}", v]
            d = self.cli_json(*args)
            assert isinstance(d, dict)
            out.append(Device(number, int(d["position"]), str(d["auth_username"]), str(d["secret"])))
        if self.proc is not None:
            wait_config(self)  # the running server must know the devices before they register
        return out

    def bindings(self, number: str) -> list[dict]:
        rows = self.cli_json("bindings", number)
        assert isinstance(rows, list)
        return rows

    def wait_bindings(self, number: str, count: int, timeout: float = 5.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        rows: list[dict] = []
        while time.monotonic() < deadline:
            rows = self.bindings(number)
            if len(rows) == count:
                return rows
            time.sleep(0.1)
        raise AssertionError(f"expected {count} bindings for {number}, got {rows}")


# -------------------------------------------------------------------- SIPp


def sipp_available() -> bool:
    return shutil.which("sipp") is not None


def run_sipp(
    scenario: str | Path,
    server: Server,
    *,
    local_port: int | None = None,
    service: str | None = None,
    auth: tuple[str, str] | None = None,
    transport: str = "u1",
    calls: int = 1,
    rate: float | None = None,
    timeout: float = 20,
    extra: list[str] | None = None,
    background: bool = False,
    workdir: Path | None = None,
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """Run one SIPp scenario file against the server (UAC) or as a UAS when `service` is None."""
    path = Path(scenario)
    if not path.is_absolute():
        path = SCENARIOS / path
    local_port = check_port(local_port or free_port())
    args = [
        "sipp", server.address, "-sf", str(path), "-i", LOOPBACK, "-p", str(local_port),
        # SIPp binds its media port, +1 and +2 (video): all must be free
        "-m", str(calls), "-t", transport, "-mp", str(free_port(span=4)), "-buff_size", "4194304",
        "-timeout", f"{int(timeout)}s", "-timeout_error", "-nostdin", "-max_recv_loops", "1000",
        "-trace_err",
    ]
    if service:
        args += ["-s", service]
    if auth:
        args += ["-au", auth[0], "-ap", auth[1]]
    if rate:
        args += ["-r", str(rate)]
    args += extra or []
    cwd = str(workdir or server.workdir)
    if background:
        return subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for _ in range(3):
        done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout + 15)
        # another process took a port between free_port() and SIPp's bind: the run never
        # started, so it is safe to run it again on a fresh media port
        if done.returncode == 0 or "Unable to bind" not in done.stderr:
            break
        args[args.index("-mp") + 1] = str(free_port(span=4))
    return done


# -------------------------------------------------------------------- a bare SIP UA (registrar tests)


@dataclass
class SipReply:
    """One SIP response as text: status, reason and headers in order (names as sent)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    raw: str

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def get(self, name: str) -> str | None:
        values = self.get_all(name)
        return values[0] if values else None


def parse_reply(data: bytes) -> SipReply:
    text = data.decode(errors="replace")
    head = text.split("\r\n\r\n", 1)[0]
    lines = head.split("\r\n")
    _, code, *reason = lines[0].split(" ", 2)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            headers[-1] = (headers[-1][0], headers[-1][1] + " " + line.strip())
        elif ":" in line:
            k, v = line.split(":", 1)
            headers.append((k.strip(), v.strip()))
    return SipReply(int(code), reason[0] if reason else "", headers, text)


def digest_params(challenge: str) -> dict[str, str]:
    """The parameters of one `Digest k=v, k="v"` challenge (lower-case keys)."""
    import re as _re

    body = challenge.split(" ", 1)[1] if challenge.lower().startswith("digest") else challenge
    return {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _re.finditer(r'([\w-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))', body)
    }


def digest_authorization(challenge: str, method: str, uri: str, user: str, password: str) -> str:
    """An MD5 qop=auth Authorization value answering `challenge` (what most phones send)."""
    import hashlib

    p = digest_params(challenge)

    def h(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    cnonce, nc = uuid.uuid4().hex[:16], "00000001"
    ha1, ha2 = h(f"{user}:{p['realm']}:{password}"), h(f"{method}:{uri}")
    if "qop" in p:
        resp = h(f"{ha1}:{p['nonce']}:{nc}:{cnonce}:auth:{ha2}")
        extra = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
    else:
        resp, extra = h(f"{ha1}:{p['nonce']}:{ha2}"), ""
    opaque = f', opaque="{p["opaque"]}"' if "opaque" in p else ""
    return (
        f'Digest username="{user}", realm="{p["realm"]}", nonce="{p["nonce"]}", uri="{uri}", '
        f'response="{resp}", algorithm=MD5{extra}{opaque}'
    )


class RawUA:
    """A bare SIP UA on one UDP socket for precise registrar checks (headers a phone would send).

    One Call-ID per UA with a growing CSeq, as RFC 3261 §10.2 asks of a registering UA.
    """

    def __init__(self, server: Server, *, local_ip: str = LOOPBACK, port: int = 0) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((local_ip, check_port(port) if port else 0))
        self.local_ip, self.port = self.sock.getsockname()
        self.call_id = uuid.uuid4().hex
        self.cseq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawUA:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def contact(self, user: str = "ua", params: str = "") -> str:
        return f"<sip:{user}@{self.local_ip}:{self.port}{params}>"

    def send(self, method: str, ruri: str, headers: list[tuple[str, str]], timeout: float = 2.0) -> SipReply:
        """Send one request (retransmitted every 0.5 s) and return its final response."""
        self.cseq += 1
        branch = "z9hG4bK" + uuid.uuid4().hex[:16]
        lines = [
            f"{method} {ruri} SIP/2.0",
            f"Via: SIP/2.0/UDP {self.local_ip}:{self.port};branch={branch};rport",
            "Max-Forwards: 70",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} {method}",
            *(f"{k}: {v}" for k, v in headers),
            "Content-Length: 0",
        ]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        deadline = time.monotonic() + timeout
        target = (LOOPBACK, check_port(self.server.sip_port))
        self.sock.sendto(data, target)
        resend = time.monotonic() + 0.5
        while True:
            now = time.monotonic()
            if now >= deadline:
                raise AssertionError(f"no final response to {method} within {timeout}s")
            self.sock.settimeout(max(0.01, min(deadline, resend) - now))
            try:
                raw, _ = self.sock.recvfrom(65535)
            except TimeoutError:
                if time.monotonic() >= resend:
                    self.sock.sendto(data, target)
                    resend = time.monotonic() + 0.5
                continue
            reply = parse_reply(raw)
            if branch in (reply.get("Via") or "") and reply.status >= 200:
                return reply

    def register(
        self,
        user: str,
        *,
        auth: tuple[str, str] | None = None,
        contact: str | None = "",
        expires: int | None = 300,
        headers: list[tuple[str, str]] | None = None,
    ) -> SipReply:
        """REGISTER sip:USER@server; answers a 401 with `auth` (MD5). contact="" means this socket,
        None means no Contact (a binding fetch)."""
        aor = f"sip:{user}@{self.server.address}"
        ruri = f"sip:{self.server.address}"
        hdrs = [("From", f"<{aor}>;tag={self.call_id[:8]}"), ("To", f"<{aor}>")]
        if contact is not None:
            hdrs.append(("Contact", contact or self.contact(user)))
        if expires is not None:
            hdrs.append(("Expires", str(expires)))
        hdrs += headers or []
        reply = self.send("REGISTER", ruri, hdrs)
        if reply.status == 401 and auth is not None:
            challenge = next(
                (c for c in reply.get_all("WWW-Authenticate") if "MD5" in c.upper() or "algorithm" not in c),
                reply.get_all("WWW-Authenticate")[0],
            )
            value = digest_authorization(challenge, "REGISTER", ruri, auth[0], auth[1])
            reply = self.send("REGISTER", ruri, [*hdrs, ("Authorization", value)])
        return reply


# -------------------------------------------------------------------- calls (forking proxy)
# SIPp devices and callers for the call tests: each peer keeps its own message trace so a
# test can assert on what every device saw (INVITE or not, when, From/PAI/Reason/Diversion).

TRACE_SEPARATOR = "-" * 47 + " "


def wait_config(server: Server, timeout: float = 5.0) -> None:
    """Block until the running server has loaded the latest configuration written by the CLI."""
    import re
    import sqlite3

    path = server.db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT revision FROM meta WHERE id = 1").fetchone()
    want = int(row[0]) if row else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = [int(m) for m in re.findall(r"configuration reloaded \(revision (\d+)\)", server.log())]
        if seen and max(seen) >= want:
            return
        time.sleep(0.05)
    raise AssertionError(f"server did not load configuration revision {want}:\n{server.log()[-2000:]}")


def configure(server: Server, *args: str) -> None:
    """One CLI configuration change, applied by the running server before returning."""
    server.cli(*args)
    wait_config(server)


@dataclass(frozen=True, slots=True)
class Traced:
    """One SIP message from a SIPp -message_file trace."""

    at: float  # epoch seconds, SIPp's clock
    sent: bool
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str | None:
        return None if self.first_line.startswith("SIP/2.0") else self.first_line.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        parts = self.first_line.split(" ", 2)
        return int(parts[1]) if parts[0] == "SIP/2.0" else None

    @property
    def reason_phrase(self) -> str:
        parts = self.first_line.split(" ", 2)
        return parts[2] if parts[0] == "SIP/2.0" and len(parts) > 2 else ""

    def headers(self, name: str) -> list[str]:
        head = self.text.split("\n\n", 1)[0]
        want = name.lower()
        out = []
        for line in head.split("\n")[1:]:
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() == want:
                out.append(value.strip())
        return out

    def header(self, name: str) -> str | None:
        values = self.headers(name)
        return values[0] if values else None


def read_trace(path: Path) -> list[Traced]:
    """Parse a SIPp `-trace_msg` file: a dashed line with the time, a direction line, the message."""
    from datetime import datetime

    if not path.exists():
        return []
    out: list[Traced] = []
    for chunk in path.read_text(errors="replace").split(TRACE_SEPARATOR)[1:]:
        lines = chunk.replace("\r\n", "\n").split("\n")
        stamp = lines[0].strip().replace("\t", " ")
        try:
            at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        if len(lines) < 3 or "message" not in lines[1]:
            continue
        sent = " sent" in lines[1]
        body = "\n".join(lines[2:]).strip("\n")
        if body:
            out.append(Traced(at, sent, body + "\n"))
    return out


@dataclass
class SippPeer:
    """A SIPp process (device UAS or caller UAC) with its message trace."""

    name: str
    proc: subprocess.Popen[str] | None
    trace: Path
    port: int
    returncode: int | None = None
    output: str = ""

    def wait(self, timeout: float = 15.0) -> int:
        """Wait for the scenario to end; a peer still running after `timeout` is killed (rc -9)."""
        if self.proc is None:
            return self.returncode if self.returncode is not None else -1
        try:
            self.output, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.output, _ = self.proc.communicate()
        self.returncode = self.proc.returncode
        self.proc = None
        return self.returncode

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.wait(5)

    def messages(self) -> list[Traced]:
        return read_trace(self.trace)

    def received(self, what: str | int) -> list[Traced]:
        """Messages received: requests by method ("INVITE") or responses by status (180)."""
        return [m for m in self.messages() if not m.sent and (m.method == what or m.status == what)]

    def errors(self) -> str:
        """SIPp's own error log for this peer (what went wrong in the scenario)."""
        return "\n".join(p.read_text(errors="replace") for p in self.trace.parent.glob(f"{self.name}.err*"))

    def describe(self) -> str:
        flow = "\n".join(f"  {'>>' if m.sent else '<<'} {m.first_line}" for m in self.messages())
        return f"[{self.name} rc={self.returncode}]\n{flow}\n{self.errors()}\n{self.output[-1500:]}"


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return True
        return False


def register(server: Server, device: Device, port: int, transport: str = "u1", workdir: Path | None = None) -> None:
    """REGISTER `device` (digest) from local port `port` so calls to its account reach that socket."""
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    proc = run_sipp(
        "register.xml", server, service=device.account, auth=(device.auth_username, device.secret),
        local_port=port, transport=transport, timeout=10, workdir=workdir,
    )
    assert isinstance(proc, subprocess.CompletedProcess)
    assert proc.returncode == 0, (
        f"REGISTER of {device.auth_username} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-1500:]}")


def sipp_trace_args(trace: Path, name: str) -> list[str]:
    return [
        "-trace_msg", "-message_file", str(trace),
        "-error_file", str(trace.parent / f"{name}.err"),
    ]


def start_device(
    server: Server,
    device: Device,
    scenario: str,
    workdir: Path,
    *,
    name: str | None = None,
    transport: str = "u1",
    timeout: float = 20,
    registered: bool = True,
    port: int | None = None,
) -> SippPeer:
    """Register `device` from `port` (a fresh one by default; not with registered=False), then serve
    `scenario` there."""
    workdir.mkdir(parents=True, exist_ok=True)
    name = name or f"dev-{device.auth_username}"
    port = port or free_port()
    if registered:
        register(server, device, port, transport, workdir)
    trace = workdir / f"{name}.trace"
    proc = run_sipp(
        scenario, server, local_port=port, transport=transport, background=True, timeout=timeout,
        workdir=workdir, extra=sipp_trace_args(trace, name),
    )
    assert isinstance(proc, subprocess.Popen)
    deadline = time.monotonic() + 5
    while not _port_taken(port) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.05)
    return SippPeer(name, proc, trace, port)


def place_call(
    server: Server,
    device: Device,
    number: str,
    scenario: str,
    workdir: Path,
    *,
    from_user: str | None = None,
    name: str = "caller",
    transport: str = "u1",
    timeout: float = 20,
    background: bool = False,
    local_port: int | None = None,
) -> SippPeer:
    """Call `number` from `device` with a call_*.xml scenario (407 answered with its credentials)."""
    workdir.mkdir(parents=True, exist_ok=True)
    trace = workdir / f"{name}.trace"
    port = local_port or free_port()
    proc = run_sipp(
        scenario, server, service=number, auth=(device.auth_username, device.secret), local_port=port,
        transport=transport, timeout=timeout, workdir=workdir, background=background,
        extra=["-key", "from_user", from_user or device.auth_username, *sipp_trace_args(trace, name)],
    )
    if isinstance(proc, subprocess.Popen):
        return SippPeer(name, proc, trace, port)
    return SippPeer(name, None, trace, port, proc.returncode, proc.stdout)



_store_loop: Any = None


def run_store_work(coro: Any, timeout: float = 60.0) -> Any:
    """Run `coro` (database work of the test process) on one long-lived event loop in its own
    thread, bounded in time. A fresh asyncio.run() per call once froze for good: aiosqlite's
    worker thread of the new connection had stopped and its future never resolved. One loop
    for all store work avoids mixing loops; on a hang, every task's stack goes to stderr."""
    import asyncio
    import threading

    global _store_loop
    if _store_loop is None:
        _store_loop = asyncio.new_event_loop()
        threading.Thread(target=_store_loop.run_forever, name="test-store-loop", daemon=True).start()

    async def bounded() -> Any:
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            for task in asyncio.all_tasks():
                task.print_stack(file=sys.stderr)
            raise

    return asyncio.run_coroutine_threadsafe(bounded(), _store_loop).result(timeout + 10)


def add_accounts(server: Server, specs: list[tuple[str, str, int]]) -> dict[str, list[Device]]:
    """Several accounts (number, name, device count) in one database session, then wait until the
    server has them: the same as `Server.add_account` per account, without a ~1 s CLI start each."""

    from onenumber.store import Store

    async def run() -> dict[str, list[Device]]:
        store = await Store.open(server.db, migrate=True)
        try:
            out: dict[str, list[Device]] = {}
            for number, name, count in specs:
                await store.admin.add_account(number, name, [])
                out[number] = []
                for i in range(count):
                    d = await store.admin.add_device(number, "deskphone" if i == 0 else "softphone")
                    out[number].append(Device(number, d.position, d.auth_username, d.secret))
            return out
        finally:
            await store.close()

    result = run_store_work(run())
    wait_config(server)
    return result


def admin(server: Server, action: object) -> object:
    """Run `action(store.admin)` (an async function) in one database session, then wait until the
    running server has loaded the change. Faster than several CLI commands (~1 s each)."""

    from onenumber.store import Store

    async def run() -> object:
        store = await Store.open(server.db, migrate=True)
        try:
            return await action(store.admin)  # type: ignore[operator]
        finally:
            await store.close()

    result = run_store_work(run())
    wait_config(server)
    return result


def history(server: Server, number: str, count: int, timeout: float = 8.0, *args: str) -> list[dict]:
    """`onenumber history NUMBER --json` once `count` calls are there and all have ended (the
    writer batches every second; an answered call's row is rewritten when it ends)."""
    deadline = time.monotonic() + timeout
    rows: list[dict] = []
    while time.monotonic() < deadline:
        data = server.cli_json("history", number, *args)
        assert isinstance(data, dict)
        rows = data["calls"]
        if len(rows) >= count and all(r["ended_at"] for r in rows):
            return rows
        time.sleep(0.2)
    raise AssertionError(f"expected {count} ended calls in {number}'s history, got {rows}")


def one_call(rows: list[dict]) -> dict:
    assert len(rows) == 1, rows
    return rows[0]


def tls_server(workdir: Path) -> tuple[Server, int, object]:
    """A started server with SIP over TLS on its own port, a certificate from a test CA (trustme),
    and a client SSLContext that trusts it."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    workdir.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = workdir / "cert.pem", workdir / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_path)
    cert.private_key_pem.write_to_path(key_path)
    tls_port = free_port()
    srv = Server(workdir / "server", extra=["--tls-cert", str(cert_path), "--tls-key", str(key_path),
                                            "--tls-port", str(tls_port)])
    srv.start()
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return srv, tls_port, ctx
