"""A small driver for baresip 1.0 as a scriptable real phone in end-to-end tests.

Each instance gets its own config directory (config + accounts + an 8 kHz WAV it plays)
in a work directory, listens on 127.0.0.1 only and is controlled over ctrl_tcp: netstring
framed JSON commands, with responses and events pushed on the same socket. Everything has a
timeout; the process is stopped by its PID; its log stays in the work directory so a
failing test can show it (`Baresip.log()`).

Typical use (events seen with baresip 1.0: CALL_INCOMING, CALL_RINGING, CALL_ESTABLISHED,
CALL_CLOSED with "param" giving the reason, plus REGISTER_OK/UNREGISTERING, CALL_RTPESTAB ...)::

    with Baresip(tmp / "a", server, "1000", dev.auth_username, dev.secret, "udp", record=True) as a:
        a.wait_registered()
        a.wait_event("CALL_INCOMING", 5); a.accept(); a.wait_event("CALL_ESTABLISHED", 5)
        a.hangup(); a.wait_event("CALL_CLOSED", 5); assert wav_peak(a.recording_path()) > 1000

baresip 1.0 (libre 1.1) only knows MD5 digest and gives up on a 401 that also offers
SHA-256; the server challenges it with MD5 only (setting md5_only_user_agents). Its audio
file ending hangs up the call, so the tone lasts `tone_seconds` (10 s by default).

Depends on the standard library and tests/e2e/harness.py (free ports) only.
"""

from __future__ import annotations

import array
import json
import math
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import LOOPBACK, check_port, free_port

MODULES = Path("/usr/lib/baresip/modules")
Event = dict[str, Any]


def write_tone(path: Path, seconds: float = 1.0, freq: float = 440.0, rate: int = 8000) -> Path:
    """A mono 16-bit sine WAV: aufile only plays files at the codec's 8 kHz."""
    frames = int(seconds * rate)
    samples = array.array("h", (int(12000 * math.sin(2 * math.pi * freq * i / rate)) for i in range(frames)))
    if sys.byteorder == "big":
        samples.byteswap()
    data = samples.tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def wav_peak(path: Path) -> int:
    """The largest absolute sample of a 16-bit WAV (0 means silence)."""
    with wave.open(str(path), "rb") as w:
        raw = w.readframes(w.getnframes())
        width = w.getsampwidth()
    if width != 2 or not raw:
        return 0
    samples = struct.unpack(f"<{len(raw) // 2}h", raw[: len(raw) // 2 * 2])
    return max((abs(s) for s in samples), default=0)


class BaresipError(AssertionError):
    """A baresip command failed or an expected event did not come (carries the log tail)."""


class Baresip:
    """One baresip process registered as `user` on the server with the device credentials `auth_user`.

    `server` is a harness Server (anything with `.sip_port`) or a port number. The AOR is
    `sip:USER@127.0.0.1:PORT`; `transport` is "udp" or "tcp".
    """

    def __init__(
        self,
        workdir: Path,
        server: Any,
        user: str,
        auth_user: str,
        password: str,
        transport: str = "udp",
        record: bool = False,
        *,
        answermode: str = "manual",
        regint: int = 60,
        account_params: str = "",
        lifetime: int = 120,
        tone_seconds: float = 10.0,
        source_wav: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.source_wav = source_wav  # what the phone says instead of its tone (an 8 kHz WAV)
        self.server_port = check_port(server if isinstance(server, int) else int(server.sip_port))
        self.user = user
        self.auth_user = auth_user
        self.password = password
        self.transport = transport
        self.record = record
        self.answermode = answermode
        self.regint = regint
        self.account_params = account_params
        self.lifetime = lifetime  # baresip -t: it quits by itself even if a test forgets it
        self.tone_seconds = tone_seconds  # baresip hangs up when its audio file ends
        self.sip_port = check_port(free_port(pair=True))  # TLS takes sip_port + 1
        self.ctrl_port = check_port(free_port())
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._cond = threading.Condition()
        self._events: list[Event] = []
        self._consumed: set[int] = set()
        self._responses: dict[str, Event] = {}
        self._token = 0
        self._closed = False

    # ------------------------------------------------------------------ set-up
    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{LOOPBACK}:{self.server_port}"

    @property
    def contact_host(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "baresip.log"

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        tone = self.source_wav or write_tone(self.workdir / "tone.wav", self.tone_seconds)
        lines = [
            f"sip_listen {LOOPBACK}:{self.sip_port}",
            f"net_interface {LOOPBACK}",
            f"audio_source aufile,{tone}",
            "audio_player aubridge,nil",
            "audio_alert aubridge,nil",
            f"module_path {MODULES}",
            "module g711.so",
            "module aufile.so",
            "module aubridge.so",
            *(["module sndfile.so", f"snd_path {self.workdir}"] if self.record else []),
            "module_app account.so",
            "module_app menu.so",  # reginfo, dial, accept, hangup live here
            "module_app ctrl_tcp.so",
            f"ctrl_tcp_listen {LOOPBACK}:{self.ctrl_port}",
            "rtp_ports 20000-60000",
        ]
        (self.workdir / "config").write_text("\n".join(lines) + "\n")
        account = (
            f"<{self.aor};transport={self.transport}>;auth_user={self.auth_user};"
            f"auth_pass={self.password};regint={self.regint};answermode={self.answermode}"
            f"{self.account_params}"
        )
        (self.workdir / "accounts").write_text(account + "\n")

    def start(self, timeout: float = 10.0) -> Baresip:
        self._write_config()
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            ["baresip", "-s", "-f", str(self.workdir), "-t", str(self.lifetime)],
            cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BaresipError(f"baresip exited early ({self.proc.returncode}):\n{self.log()}")
            try:
                self._sock = socket.create_connection((LOOPBACK, self.ctrl_port), timeout=0.5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise BaresipError(f"baresip ctrl_tcp did not open:\n{self.log()}") from None
                time.sleep(0.05)
        self._sock.settimeout(0.2)
        self._reader = threading.Thread(target=self._read_loop, name=f"baresip-{self.ctrl_port}", daemon=True)
        self._reader.start()
        return self

    def stop(self) -> None:
        """Ask politely (quit: it un-registers), then SIGTERM, then SIGKILL; all by PID."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                self._send("quit")
            except OSError:
                pass
            for sig, wait in ((None, 3.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
                if sig is not None:
                    proc.send_signal(sig)
                try:
                    proc.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._closed = True
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._reader is not None:
            self._reader.join(timeout=2)
            self._reader = None

    def kill(self) -> None:
        """Stop at once without un-registering (a phone that vanishes)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self.stop()

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self, tail: int = 200) -> str:
        if not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    # ------------------------------------------------------------------ ctrl_tcp
    def _read_loop(self) -> None:
        buf = b""
        while not self._closed and self._sock is not None:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while True:
                colon = buf.find(b":")
                if colon <= 0 or not buf[:colon].isdigit():
                    break
                size = int(buf[:colon])
                end = colon + 1 + size
                if len(buf) < end + 1:
                    break
                payload, buf = buf[colon + 1 : end], buf[end + 1 :]  # drop the trailing ","
                try:
                    msg = json.loads(payload)
                except ValueError:
                    continue
                with self._cond:
                    if msg.get("response"):
                        self._responses[str(msg.get("token"))] = msg
                    elif msg.get("event"):
                        self._events.append(msg)
                    self._cond.notify_all()

    def _send(self, name: str, params: str = "") -> str:
        if self._sock is None:
            raise BaresipError("baresip is not running")
        self._token += 1
        token = str(self._token)
        body: dict[str, str] = {"command": name, "token": token}
        if params:
            body["params"] = params
        data = json.dumps(body).encode()
        self._sock.sendall(str(len(data)).encode() + b":" + data + b",")
        return token

    def command(self, name: str, params: str = "", timeout: float = 5.0, *, check: bool = True) -> Event:
        """Run one command; returns the response ({"ok": bool, "data": text, ...})."""
        token = self._send(name, params)
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BaresipError(f"no answer to {name} {params} within {timeout}s:\n{self.log()}")
                self._cond.wait(left)
            resp = self._responses.pop(token)
        if check and not resp.get("ok"):
            raise BaresipError(f"baresip {name} {params} failed: {resp.get('data')}\n{self.log()}")
        return resp

    def events(self) -> list[Event]:
        with self._cond:
            return list(self._events)

    def wait_event(self, predicate: Callable[[Event], bool] | str, timeout: float = 5.0) -> Event:
        """The first event not yet returned that matches (a callable, or an event type such as
        "CALL_INCOMING"); events that came before the call count too."""
        match = (lambda e: e.get("type") == predicate) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, ev in enumerate(self._events):
                    if i not in self._consumed and match(ev):
                        self._consumed.add(i)
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BaresipError(
                        f"no matching event within {timeout}s; events: {self._events}\n{self.log()}"
                    )
                self._cond.wait(left)

    # ------------------------------------------------------------------ phone actions
    def reginfo(self) -> str:
        return str(self.command("reginfo").get("data", ""))

    def registered(self) -> bool:
        """True when baresip says its account is registered (reginfo shows OK for the AOR)."""
        for line in self.reginfo().splitlines():
            if self.aor in line:  # "> sip:1000@127.0.0.1:PORT  \x1b[32mOK \x1b[;m OneNumber Expires 60s"
                plain = re.sub(r"\x1b\[[\d;]*m", " ", line.replace(self.aor, ""))
                return re.search(r"\bOK\b", plain) is not None
        return False

    def wait_registered(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.registered():
                return
            if self.proc is None or self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise BaresipError(f"baresip did not register as {self.auth_user}:\n{self.reginfo()}\n{self.log()}")

    def dial(self, uri: str) -> Event:
        if re.search(r":506[01](?!\d)", uri):
            raise ValueError("tests never dial port 5060/5061")
        return self.command("dial", uri)

    def accept(self) -> Event:
        return self.command("accept")

    def hangup(self) -> Event:
        return self.command("hangup")

    def recording_path(self) -> Path | None:
        """The newest WAV sndfile wrote of what this phone heard (decoded audio), if any."""
        files = sorted(self.workdir.glob("dump-*-dec.wav"), key=lambda p: p.stat().st_mtime)
        return files[-1] if files else None
