"""The media relay's glue: answers the core's `MediaRequest`s with rtpengine, tears sessions down.

Subscribes to the call events: a `MediaRequest` becomes an asyncio task that asks the relay
(`media.bridge.MediaBridge`) and hands the rewritten SDP back to the core (`MediaSeam.done`),
then lets the driver send what the call does next; `CallFailed` and `CallEnded` delete the
relay's session (BYE, CANCEL, failure, Timer C). The call path never waits on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from ..media.bridge import BridgeUnavailable, MediaBridge
from .events import CallEnded, CallFailed, Event, EventBus, MediaRequest
from .media import MediaSeam

log = logging.getLogger("onenumber.media")


class MediaGlue:
    def __init__(self, bridge: MediaBridge, seam: MediaSeam, events: EventBus, pump: Callable[[], None],
                 *, clock: Callable[[], float] = time.time) -> None:
        self.bridge = bridge
        self.seam = seam
        self.pump = pump
        self.clock = clock
        self.tasks: set[asyncio.Task[Any]] = set()
        seam.relay_ready = lambda: bridge.available
        events.subscribe(self.on_event, MediaRequest, CallFailed, CallEnded)

    def on_event(self, event: Event) -> None:
        if isinstance(event, MediaRequest):
            self._spawn(self._rewrite(event))
        elif isinstance(event, CallFailed | CallEnded) and event.call_id in self.bridge.calls:
            self._spawn(self.bridge.delete(event.call_id))

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _rewrite(self, req: MediaRequest) -> None:
        sdp: bytes | None
        try:
            if req.to_tag is None:
                sdp = await self.bridge.offer(req.call_id, req.from_tag, req.sdp, req.to_webrtc)
            else:
                sdp = await self.bridge.answer(req.call_id, req.from_tag, req.to_tag, req.sdp, req.to_webrtc)
        except BridgeUnavailable as exc:
            log.warning("call %s: %s", req.call_id, exc.reason)
            sdp = None
        except Exception:
            log.exception("call %s: the media relay failed", req.call_id)
            sdp = None
        self.seam.done(req.token, sdp, self.clock())
        self.pump()
