"""Our own rtpengine process: started beside `onenumber serve` when `rtpengine` is `auto`.

Userspace forwarding only (`--table=-1`, no kernel module), on the given interface, with an ng
control port and a media port range picked free at start. Stopped by its PID (SIGTERM, then
SIGKILL), never by name. Depends on the ng client only (to see it answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from .rtpengine import wait_until_up

log = logging.getLogger("onenumber.media.process")

BINARY = "rtpengine"


def find_binary() -> str | None:
    """The rtpengine program, or None when it is not installed (package `rtpengine-daemon`)."""
    return shutil.which(BINARY) or (f"/usr/bin/{BINARY}" if Path(f"/usr/bin/{BINARY}").exists() else None)


def free_udp_port(host: str) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in (5060, 5061):
            return port
    raise RuntimeError("no free UDP port")


def free_port_range(host: str, size: int = 200, low: int = 30000, high: int = 60000) -> tuple[int, int]:
    """A block of `size` UDP ports of which a sample binds (rtpengine takes ports as calls come)."""
    for _ in range(50):
        start = random.randrange(low, high - size) & ~1
        ok = True
        for port in (start, start + 1, start + size // 2, start + size - 1):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((host, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return start, start + size - 1
    raise RuntimeError("no free UDP port range for rtpengine")


@dataclass
class RtpengineProcess:
    """A running rtpengine of ours: its ng address, its media ports and its PID."""

    proc: asyncio.subprocess.Process
    host: str
    ng_port: int
    port_min: int
    port_max: int
    log_path: Path | None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.ng_port

    async def stop(self, timeout: float = 5.0) -> None:
        if self.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


def command_line(binary: str, host: str, ng_port: int, port_min: int, port_max: int) -> list[str]:
    return [
        binary, "--config-file=none", "--table=-1", f"--interface={host}", f"--listen-ng={host}:{ng_port}",
        f"--port-min={port_min}", f"--port-max={port_max}", "--foreground", "--log-stderr", "--log-level=5",
        "--delete-delay=0", "--timeout=60", "--silent-timeout=3600",
    ]


async def start_rtpengine(
    host: str = "127.0.0.1", *, binary: str | None = None, log_path: Path | None = None, ports: int = 200
) -> RtpengineProcess:
    """Start rtpengine on free ports and wait until it answers a ping (raises RuntimeError if not)."""
    binary = binary or find_binary()
    if binary is None:
        raise RuntimeError("rtpengine is not installed (Debian package rtpengine-daemon)")
    ng_port = free_udp_port(host)
    port_min, port_max = free_port_range(host, ports)
    out = open(log_path, "ab") if log_path else asyncio.subprocess.DEVNULL  # noqa: SIM115 - the child keeps it
    # setpriv (util-linux) asks the kernel to stop rtpengine when we die, kill -9 included: a
    # crashed server must not leave a relay holding its ports (no preexec_fn: we have threads)
    guard = [setpriv, "--pdeathsig", "TERM", "--"] if (setpriv := shutil.which("setpriv")) else []
    try:
        proc = await asyncio.create_subprocess_exec(
            *guard, *command_line(binary, host, ng_port, port_min, port_max),
            stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
        )
    finally:
        if log_path and not isinstance(out, int):
            out.close()
    engine = RtpengineProcess(proc, host, ng_port, port_min, port_max, log_path)
    try:
        up = await wait_until_up(host, ng_port, 5.0)
    except asyncio.CancelledError:
        await engine.stop()
        raise
    if not up:
        await engine.stop()
        raise RuntimeError(f"rtpengine did not answer on {host}:{ng_port} within 5 s"
                           + (f"; see {log_path}" if log_path else ""))
    log.info("rtpengine %d started: ng %s:%d, media ports %d-%d", proc.pid, host, ng_port, port_min, port_max)
    return engine
