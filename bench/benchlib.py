"""Shared pieces of the load benchmarks: processes, provisioning, SIPp runs and their figures.

The server runs pinned to core 0 and SIPp to core 1 (`taskset`), everything on 127.0.0.1,
never port 5060. Every SIPp run is bounded by `-m`, `-timeout` and an outer timeout; every
process is stopped by its PID. Depends on the onenumber package (store, admin helpers)
and on the `sipp` and `taskset` programs; no test code.
"""

from __future__ import annotations

import asyncio
import csv
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# one free-port rule for the tests and the benchmarks
from tests.e2e.harness import free_port

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
LOOPBACK = "127.0.0.1"
ONENUMBER = str(Path(sys.executable).parent / "onenumber")
SERVER_CORE = "0"
SIPP_CORE = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ---------------------------------------------------------------------------------------- ports


def options_ping(port: int, timeout: float = 0.5) -> float | None:
    """Round trip of one OPTIONS in seconds, or None when nothing answered."""
    if port in (5060, 5061):
        raise ValueError("benchmarks never use port 5060")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        s.settimeout(timeout)
        me = s.getsockname()[1]
        cid = uuid.uuid4().hex
        msg = (
            f"OPTIONS sip:{LOOPBACK}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOOPBACK}:{me};branch=z9hG4bK{cid[:12]};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{LOOPBACK}:{me}>;tag={cid[:8]}\r\nTo: <sip:{LOOPBACK}:{port}>\r\n"
            f"Call-ID: {cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        start = time.monotonic()
        s.sendto(msg, (LOOPBACK, port))
        deadline = start + timeout
        while time.monotonic() < deadline:
            try:
                data, _ = s.recvfrom(65535)
            except OSError:
                return None
            if data.startswith(b"SIP/2.0 ") and cid.encode() in data:
                return time.monotonic() - start
    return None


def wait_idle(port: int, limit: float = 60.0) -> None:
    """Wait until the server answers an OPTIONS quickly again (its backlog is drained)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        rtt = options_ping(port, 1.0)
        if rtt is not None and rtt < 0.02:
            return
        time.sleep(0.5)


# ---------------------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its waited-for children, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # after the ')' : state is fields[0]; utime and stime are fields 14 and 15 of stat (1-based) → 11 and 12 here
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid: int) -> list[int]:
    """Direct children of a process (the worker processes of `serve --workers N`)."""
    found = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def redis_pid() -> int | None:
    """The local Redis server's PID (a system service here: read, never stopped)."""
    try:
        out = subprocess.run(["redis-cli", "info", "server"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in out.splitlines():
        if line.startswith("process_id:"):
            return int(line.split(":", 1)[1])
    return None


WORKERS_REDIS_DB = 9  # the benchmark's own Redis database, flushed before a run with workers


def workers_args(workers: int) -> tuple[tuple[str, ...], Callable[[OneNumberServer], list[int]]]:
    """`serve` arguments for N worker processes sharing Redis db 9 (flushed first, unless it holds
    keys that are not OneNumber's), and which PIDs to count: the supervisor, its workers and, with
    more than one worker, Redis itself (its CPU is part of the cost of sharing)."""
    if workers <= 1:
        return (), lambda s: [s.pid]
    import redis

    client = redis.Redis(host=LOOPBACK, port=6379, db=WORKERS_REDIS_DB)
    strangers = [k for k in client.scan_iter(count=1000) if not k.startswith(b"onenumber:")]
    if strangers:  # a database someone else uses: never flushed
        raise SystemExit(f"Redis db {WORKERS_REDIS_DB} holds keys that are not OneNumber's ({strangers[:3]}): "
                         "run with --workers 0, or empty that database")
    client.flushdb()
    client.close()
    rpid = redis_pid()
    return (("--workers", str(workers), "--redis", f"redis://{LOOPBACK}:6379/{WORKERS_REDIS_DB}"),
            lambda s: [s.pid, *children(s.pid), *([rpid] if rpid else [])])


def wait_workers(server: OneNumberServer, workers: int) -> None:
    """Until every worker process of `serve --workers N` is up and listening, not only the first
    to answer OPTIONS."""
    if workers <= 1:
        return
    deadline = time.monotonic() + 30
    while len(children(server.pid)) < workers and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(3.0)


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            pass
    return total


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------------------- processes


def stop_pid(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; only this one PID."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _no_keepalive() -> list[str]:
    """SIPp UAS stand for thousands of phones and do not answer OPTIONS: keepalive off, as before
    issue 11 (an older checkout run through PYTHONPATH has no such option)."""
    global _KEEPALIVE_OPT
    if _KEEPALIVE_OPT is None:
        out = subprocess.run([ONENUMBER, "serve", "--help"], capture_output=True, text=True).stdout
        _KEEPALIVE_OPT = ["--no-keepalive"] if "--no-keepalive" in out else []
    return _KEEPALIVE_OPT


_KEEPALIVE_OPT: list[str] | None = None


@dataclass
class OneNumberServer:
    """`onenumber serve` pinned to core 0, with its own SQLite database and free ports."""

    workdir: Path
    sip_port: int = 0
    proc: subprocess.Popen | None = None
    db: str = ""
    extra: tuple[str, ...] = ()  # more serve options (e.g. --workers 2 --redis URL)
    http_port: int = 0

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.db = self.db or f"sqlite:///{self.workdir / 'onenumber.sqlite3'}"
        self.sip_port = self.sip_port or free_port()
        self.http_port = self.http_port or free_port()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, wrapper: Sequence[str] = ()) -> OneNumberServer:
        log = open(self.workdir / "server.log", "ab")  # noqa: SIM115 - the child keeps it
        env = dict(os.environ)
        env.pop("ONENUMBER_DB", None)
        args = [
            "taskset", "-c", SERVER_CORE, *wrapper, ONENUMBER, "serve", "--bind", LOOPBACK,
            "--sip-port", str(self.sip_port), "--http-port", str(self.http_port),
            "--data-dir", str(self.workdir), "--db", self.db, "--log-level", "warning",
            *_no_keepalive(),
            *os.environ.get("ONENUMBER_BENCH_SERVE_ARGS", "").split(),  # e.g. --no-history (bench/compare.py)
            *self.extra,
        ]
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.workdir / 'server.log'}")
            if options_ping(self.sip_port, 0.2) is not None:
                return self
            time.sleep(0.1)
        stop_pid(self.proc)
        raise RuntimeError("server did not answer OPTIONS within 30 s")

    def stop(self) -> None:
        if self.proc is not None:
            stop_pid(self.proc)
        self.proc = None

    def kill(self) -> None:
        """kill -9 of the server's process (its workers follow it: PR_SET_PDEATHSIG)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def pids(self) -> list[int]:
        """The server's processes: the `onenumber serve` process (taskset execs into it) and its workers."""
        return [self.pid, *children(self.pid)] if self.proc is not None else []

    def rss(self) -> int:
        """Resident memory of all of the server's processes, in bytes."""
        total = 0
        for pid in self.pids():
            try:
                total += rss_bytes(pid)
            except OSError:
                pass
        return total

    def metrics(self, timeout: float = 5.0) -> dict[str, float]:
        """`/metrics` as {'name{labels}': value} (loopback needs no token)."""
        return scrape_metrics(self.http_port, timeout)


def scrape_metrics(http_port: int, timeout: float = 5.0) -> dict[str, float]:
    import urllib.request

    with urllib.request.urlopen(f"http://{LOOPBACK}:{http_port}/metrics", timeout=timeout) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def metric_sum(metrics: dict[str, float], name: str) -> float:
    """The sum of a metric over its labels (`onenumber_transactions` = server + client)."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


# ---------------------------------------------------------------------------------------- provisioning


@dataclass(frozen=True, slots=True)
class Dev:
    account: str
    position: int
    auth_username: str
    secret: str


async def _provision(db: str, accounts: int, devices: int, first: int) -> list[Dev]:
    """Bulk-insert accounts and devices in one transaction (the admin API's rows and helpers,
    without 3,000 separate validated transactions)."""
    from sqlalchemy import insert

    from onenumber.store import Store
    from onenumber.store import tables as t
    from onenumber.store.admin import default_auth_username, new_secret

    store = await Store.open(db)
    try:
        await store.admin.get_settings()  # the admin API is importable and the schema is current
        now = datetime.now(UTC)
        acc_rows, dev_rows, out = [], [], []
        for i in range(accounts):
            number = str(first + i)
            acc_rows.append({"number": number, "display_name": f"Bench {number}", "created_at": now,
                             "updated_at": now})
            for pos in range(devices):
                dev = Dev(number, pos, default_auth_username(number, pos), _sipp_safe(new_secret))
                out.append(dev)
                dev_rows.append({
                    "account": number, "position": pos, "kind": "softphone", "ring_order": 1,
                    "label": "", "auth_username": dev.auth_username, "secret": dev.secret,
                    "internet": False, "call_waiting": True, "created_at": now,
                })
        async with store.write() as conn:
            await conn.execute(insert(t.accounts), acc_rows)
            await conn.execute(insert(t.devices), dev_rows)
        return out
    finally:
        await store.close()


def _sipp_safe(make: Callable[[], str]) -> str:
    """A secret SIPp hashes as text: SIPp reads a password starting with "0x" as hex bytes
    (and sends a wrong digest), which a token_urlsafe secret does once in 4,096."""
    secret = make()
    while secret[:2].lower() == "0x":
        secret = make()
    return secret


def provision(db: str, accounts: int, devices: int, first: int = 200000) -> list[Dev]:
    return asyncio.run(_provision(db, accounts, devices, first))


async def _count_bindings(db: str) -> int:
    from sqlalchemy import func, select

    from onenumber.store import Store
    from onenumber.store import tables as t

    store = await Store.open(db, migrate=False)
    try:
        async with store.read() as conn:
            return int(await conn.scalar(select(func.count()).select_from(t.bindings)) or 0)
    finally:
        await store.close()


def count_bindings(db: str) -> int:
    """Bindings persisted by the server's write-behind (what `location.flush` wrote)."""
    return asyncio.run(_count_bindings(db))


async def _registered_contacts(db: str) -> set[tuple[str, str]]:
    from sqlalchemy import select

    from onenumber.store import Store
    from onenumber.store import tables as t

    store = await Store.open(db, migrate=False)
    try:
        async with store.read() as conn:
            rows = (await conn.execute(select(t.bindings.c.account, t.bindings.c.contact))).all()
    finally:
        await store.close()
    # the benchmark's contacts are sip:USER@127.0.0.1:PORT;transport=udp
    return {(str(account), str(contact).removeprefix("sip:").split("@", 1)[0]) for account, contact in rows}


def registered_contacts(db: str) -> set[tuple[str, str]]:
    """(account, contact user) of every binding the server has persisted (its write-behind
    flushes within 50 ms)."""
    return asyncio.run(_registered_contacts(db))


def auth_keyword(dev: Dev) -> str:
    """SIPp 3.6 does not expand [fieldN] inside [authentication …], but it does expand a whole
    `[authentication username=U password=P]` keyword given as an injection field value."""
    return f"[authentication username={dev.auth_username} password={dev.secret}]"


def write_csv(path: Path, rows: Sequence[Sequence[str]]) -> Path:
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for row in rows:
            f.write(";".join(row) + "\n")
    return path


# ---------------------------------------------------------------------------------------- SIPp


@dataclass
class SippResult:
    scenario: str
    rate: float
    calls: int
    successful: int = 0
    failed: int = 0
    elapsed: float = 0.0  # seconds from SIPp start to its last completed call
    latencies_ms: list[float] = field(default_factory=list)
    sipp_cpu: float = 0.0
    returncode: int = 0
    errors: str = ""

    @property
    def failure_pct(self) -> float:
        done = self.successful + self.failed
        missing = max(self.calls - done, 0)  # never completed within the bounds: a failure too
        return 100.0 * (self.failed + missing) / self.calls if self.calls else 0.0

    @property
    def achieved(self) -> float:
        return self.successful / self.elapsed if self.elapsed > 0 else 0.0

    def pct(self, q: float) -> float | None:
        return percentile(self.latencies_ms, q)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, round(q / 100.0 * (len(s) - 1))))
    return s[k]


def sipp_args(
    scenario: str, port: int, *, local_port: int, workdir: Path, calls: int, rate: float | None,
    inf: Path | None = None, timeout: float = 30.0, extra: Sequence[str] = (),
) -> list[str]:
    if port in (5060, 5061) or local_port in (5060, 5061):
        raise ValueError("benchmarks never use port 5060")
    args = [
        "taskset", "-c", SIPP_CORE, "sipp", f"{LOOPBACK}:{port}", "-sf", str(SCENARIOS / scenario),
        "-i", LOOPBACK, "-p", str(local_port), "-m", str(calls), "-mp", str(free_port(span=4)),
        "-buff_size", "8388608", "-timeout", f"{max(1, int(timeout))}s", "-nostdin",
        "-max_recv_loops", "10000", "-max_sched_loops", "10000", "-recv_timeout", "5000",
        "-trace_err", "-trace_stat", "-fd", "1", "-trace_rtt", "-rtt_freq", "1",
    ]
    if inf is not None:
        args += ["-inf", str(inf)]
    if rate:
        args += ["-r", str(rate), "-l", str(max(100, int(rate * 10)))]
    return [*args, *extra]


def run_sipp(
    scenario: str, port: int, *, workdir: Path, calls: int, rate: float | None, inf: Path | None = None,
    timeout: float = 30.0, local_port: int | None = None, extra: Sequence[str] = (),
) -> SippResult:
    """Run a SIPp UAC to completion (bounded) and read its statistics and RTD samples."""
    workdir.mkdir(parents=True, exist_ok=True)
    run_dir = workdir / f"sipp-{scenario.removesuffix('.xml')}-{int(rate or 0)}-{uuid.uuid4().hex[:6]}"
    run_dir.mkdir()
    args = sipp_args(scenario, port, local_port=local_port or free_port(), workdir=run_dir, calls=calls,
                     rate=rate, inf=inf, timeout=timeout, extra=extra)
    before = children_cpu()
    try:
        proc = subprocess.run(args, cwd=run_dir, capture_output=True, text=True, timeout=timeout + 20)
        rc, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:  # run() killed it by PID
        rc, out = -9, str(exc)
    res = SippResult(scenario, rate or 0.0, calls, returncode=rc, sipp_cpu=children_cpu() - before)
    _read_stats(run_dir, res)
    _read_rtt(run_dir, res)
    if rc not in (0, 1) and not res.successful:
        res.errors = out[-2000:]
    errs = list(run_dir.glob("*_errors.log"))
    if errs:
        res.errors = (res.errors + errs[0].read_text(errors="replace")[:1500]).strip()
    return res


def _read_stats(run_dir: Path, res: SippResult) -> None:
    files = [p for p in run_dir.glob("*_.csv")]
    if not files:
        return
    with open(files[0], newline="") as f:
        rows = list(csv.reader(f, delimiter=";"))
    if len(rows) < 2:
        return
    head, last = rows[0], rows[-1]
    col = {name: i for i, name in enumerate(head)}
    res.successful = int(last[col["SuccessfulCall(C)"]])
    res.failed = int(last[col["FailedCall(C)"]])


def _read_rtt(run_dir: Path, res: SippResult) -> None:
    files = list(run_dir.glob("*_rtt.csv"))
    if not files:
        return
    last = 0.0
    with open(files[0]) as f:
        next(f, None)
        for line in f:
            parts = line.strip().split(";")
            if len(parts) < 3 or parts[2] != "1":
                continue
            last = max(last, float(parts[0]))
            res.latencies_ms.append(float(parts[1]))
    res.elapsed = last / 1000.0


def start_sipp_uas(
    scenario: str, local_port: int, *, workdir: Path, timeout: float, remote_port: int,
) -> subprocess.Popen:
    """A SIPp UAS standing for many devices (their bindings all point at its socket)."""
    run_dir = workdir / f"uas-{scenario.removesuffix('.xml')}-{local_port}"
    run_dir.mkdir(parents=True, exist_ok=True)
    args = [
        "taskset", "-c", SIPP_CORE, "sipp", f"{LOOPBACK}:{remote_port}", "-sf", str(SCENARIOS / scenario),
        "-i", LOOPBACK, "-p", str(local_port), "-mp", str(free_port(span=4)), "-buff_size", "8388608",
        "-timeout", f"{int(timeout)}s", "-nostdin", "-max_recv_loops", "10000", "-m", "10000000",
        "-trace_err",
    ]
    log = open(run_dir / "uas.log", "wb")  # noqa: SIM115 - the child keeps it
    return subprocess.Popen(args, cwd=run_dir, stdout=log, stderr=subprocess.STDOUT)


# ---------------------------------------------------------------------------------------- set-up registrations


@dataclass
class Registration:
    """How the set-up registrations of a test bed went (not a measured figure)."""

    rows: int
    first_ok: int  # registered by the first burst
    registered: int = 0  # registered in the end
    rounds: int = 1  # SIPp runs, the first one included
    retried: int = 0  # registrations sent again (refused with 503 while the server shed load, or lost)
    errors: str = ""

    @property
    def complete(self) -> bool:
        return self.registered == self.rows

    def summary(self) -> dict:
        return {"of": self.rows, "first_ok": self.first_ok, "registered": self.registered,
                "rounds": self.rounds, "retried": self.retried}


def register_rows(
    port: int, rows: Sequence[Sequence[str]], *, db: str, workdir: Path, local_port: int, rate: float = 500.0,
    limit: float = 90.0, first: SippResult | None = None, name: str = "devices",
) -> Registration:
    """Set-up registrations (not the measured load): every row (account; contact user; auth
    keyword) registers with `register.xml` from `local_port`, and the ones that did not make it
    register again until all are registered or `limit` seconds have passed.

    A burst of REGISTERs at a server that has just started (or is still busy with the previous
    load) may be refused with 503 by its overload control, and SIPp does not retry. So: wait
    until the server answers an OPTIONS promptly, register, read back from the database which
    bindings the server holds (its write-behind flushes within 50 ms), and register the missing
    ones again after a pause, at half the rate each round. The pause is a second, not the 503's
    Retry-After (5–10 s, meant to spread thousands of real phones): the test bed asks the server
    itself whether it is ready (`wait_idle`). `first`: a SIPp run of these rows already made by
    the caller (a measured load); only what it left unregistered is done here."""
    deadline = time.monotonic() + limit
    inf = workdir / f"{name}.csv"
    if first is None:
        wait_idle(port, 10.0)
        first = run_sipp("register.xml", port, workdir=workdir, calls=len(rows), rate=min(rate, len(rows)),
                         inf=write_csv(inf, rows), timeout=len(rows) / rate + 15, local_port=local_port)
    reg = Registration(len(rows), first.successful, errors=first.errors)
    wanted = {(r[0], r[1]) for r in rows}
    if first.calls == len(rows) and first.successful == len(rows):
        reg.registered = len(rows)  # one call per row, every one answered 200
        return reg
    while True:
        held = _wait_registered(db, wanted, 2.0)
        missing = [r for r in rows if (r[0], r[1]) not in held]
        reg.registered = len(rows) - len(missing)
        if not missing or time.monotonic() >= deadline:
            return reg
        time.sleep(1.0)
        wait_idle(port, max(0.5, min(10.0, deadline - time.monotonic())))
        rate = max(100.0, rate / 2)
        res = run_sipp("register.xml", port, workdir=workdir, calls=len(missing), rate=min(rate, len(missing)),
                       inf=write_csv(workdir / f"{name}-retry-{reg.rounds}.csv", missing),
                       timeout=len(missing) / rate + 15, local_port=local_port)
        reg.rounds += 1
        reg.retried += len(missing)
        reg.errors = res.errors or reg.errors


def _wait_registered(db: str, wanted: set[tuple[str, str]], settle: float) -> set[tuple[str, str]]:
    """The wanted bindings the database holds, once all are there or the count has not moved for
    `settle` seconds (the write-behind may still be writing the last ones)."""
    held = registered_contacts(db) & wanted
    stable_since = time.monotonic()
    while len(held) < len(wanted) and time.monotonic() - stable_since < settle:
        time.sleep(0.25)
        now = registered_contacts(db) & wanted
        if len(now) != len(held):
            stable_since = time.monotonic()
        held = now
    return held


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
