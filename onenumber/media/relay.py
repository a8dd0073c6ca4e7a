"""The media relay as `onenumber serve` runs it, from the `rtpengine` setting.

`auto`: start our own rtpengine when the binary is installed (in the background, so SIP is up
at once; the bridge is usable as soon as it answers a ping), none otherwise. `off`: none.
`host:port`: use that rtpengine's ng socket. With none, `MediaBridge` refuses calls that need
bridging (488, `NO_RELAY_REASON`) and `describe()` says why at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..settings import rtpengine_address
from .bridge import MediaBridge
from .process import RtpengineProcess, find_binary, start_rtpengine
from .rtpengine import NgClient

log = logging.getLogger("onenumber.media")


@dataclass
class MediaRelay:
    setting: str
    bridge: MediaBridge = field(default_factory=lambda: MediaBridge(None))
    process: RtpengineProcess | None = None
    status: str = ""
    _task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, setting: str, host: str, log_path: Path | None = None) -> MediaRelay:
        """Begin from the setting's value; an own rtpengine comes up in the background."""
        relay = cls(setting)
        address = rtpengine_address(setting)
        if setting == "off":
            relay.status = "media relay off (setting rtpengine=off): WebRTC <-> RTP calls will be refused with 488"
        elif address is not None:
            relay.bridge.client = NgClient(*address)
            relay.status = f"media relay: rtpengine at {address[0]}:{address[1]}"
        elif find_binary() is None:
            relay.status = ("media relay: none (rtpengine is not installed; package rtpengine-daemon): "
                            "WebRTC <-> RTP calls will be refused with 488")
        else:
            relay.status = "media relay: starting our own rtpengine"
            relay._task = asyncio.get_running_loop().create_task(relay._run_own(host, log_path))
        return relay

    async def _run_own(self, host: str, log_path: Path | None) -> None:
        try:
            self.process = await start_rtpengine(host, log_path=log_path)
        except (RuntimeError, OSError) as exc:
            self.status = f"media relay: none ({exc}): WebRTC <-> RTP calls will be refused with 488"
            log.warning("%s", self.status)
            return
        self.bridge.client = await NgClient(*self.process.address).open()
        self.status = (f"media relay: our rtpengine (pid {self.process.pid}) on ng "
                       f"{self.process.host}:{self.process.ng_port}, media ports "
                       f"{self.process.port_min}-{self.process.port_max}")
        log.info("%s", self.status)

    async def ready(self, timeout: float = 6.0) -> bool:
        """Wait for an own rtpengine to come up; True when the bridge has a relay."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
        return self.bridge.available

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.bridge.client is not None:
            self.bridge.client.close()
            self.bridge.client = None
        if self.process is not None:
            await self.process.stop()
            log.info("rtpengine %d stopped", self.process.pid)
            self.process = None
