"""Drive a real OneNumber server and real peers (SIPp, sipsak, baresip) on 127.0.0.1.

Every address carries an explicit free port: nothing here ever sends to 5060.
Processes started here are stopped by their PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios"
BIN = Path(sys.executable).parent
ONENUMBER = str(BIN / "onenumber")
LOOPBACK = "127.0.0.1"


def free_port(*, pair: bool = False) -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (and port+1 too with pair=True); never 5060."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind((LOOPBACK, 0))
            port = u.getsockname()[1]
        if port in (5060, 5061) or port > 65000:
            continue
        ok = True
        for p in (port, port + 1) if pair else (port,):
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


def options_ping(port: int, timeout: float = 0.5) -> bool:
    check_port(port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        s.settimeout(timeout)
        me = s.getsockname()[1]
        call_id = uuid.uuid4().hex
        msg = (
            f"OPTIONS sip:{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{me};branch=z9hG4bK{call_id[:10]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{LOOPBACK}:{me}>;tag=probe\r\n"
            f"To: <sip:{LOOPBACK}:{port}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        s.sendto(msg, (LOOPBACK, port))
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
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

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
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        env = dict(os.environ)
        env.pop("ONENUMBER_DB", None)
        self.proc = subprocess.Popen(
            [
                ONENUMBER, "serve", "--bind", LOOPBACK, "--sip-port", str(self.sip_port),
                "--http-port", str(self.http_port), "--data-dir", str(self.workdir), "--db", self.db,
                *self.extra,
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
        "-m", str(calls), "-t", transport, "-mp", str(free_port()), "-buff_size", "4194304",
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
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout + 15)
