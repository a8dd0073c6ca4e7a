"""The media seam: calls that need the WebRTC ↔ RTP relay wait for it without blocking anything.

When the proxy (or the in-dialog relay) meets an SDP that must be rewritten by the media relay,
it asks here: a `MediaRequest` action leaves on the event bus with a token, and the call goes on
when the glue (which talks to rtpengine, see `main.py` and `media/bridge.py`) answers with
`done(token, new_sdp, now)`. Sans-IO: no sockets, no clock; what to bridge is decided by the
pure policy in `media/bridge.py`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from ..media.bridge import WEBRTC_TRANSPORTS, BridgePlan, plan_branch
from .events import EventBus, MediaRequest

Continuation = Callable[[bytes | None, float], None]


def may_need_bridge(caller_transport: str, sdp: bytes, callee_transport: str) -> bool:
    """A cheap first look (most calls are RTP on both sides): False means surely no bridge."""
    return (caller_transport in WEBRTC_TRANSPORTS or callee_transport in WEBRTC_TRANSPORTS
            or b"SAVPF" in sdp or b"fingerprint" in sdp)


class MediaSeam:
    def __init__(self, events: EventBus) -> None:
        self.events = events
        self.waits: dict[int, Continuation] = {}
        self._tokens = itertools.count(1)
        self.relay_ready: Callable[[], bool] = lambda: False  # set by main.py: is the relay answering?

    def plan(self, caller_transport: str, sdp: bytes | None, callee_transport: str) -> BridgePlan | None:
        """The bridge a branch needs, or None when its two sides speak alike (or there is no SDP)."""
        if not sdp or not may_need_bridge(caller_transport, sdp, callee_transport):
            return None
        plan = plan_branch(caller_transport, sdp, callee_transport)
        return plan if plan.bridge else None

    def request(self, call_id: str, from_tag: str, to_tag: str | None, sdp: bytes, to_webrtc: bool,
                then: Continuation) -> None:
        token = next(self._tokens)
        self.waits[token] = then
        self.events.emit(MediaRequest(token, call_id, from_tag, to_tag, sdp, to_webrtc))

    def done(self, token: int, sdp: bytes | None, now: float) -> None:
        """The relay answered (`sdp`), or failed (`None`): the waiting call goes on."""
        then = self.waits.pop(token, None)
        if then is not None:
            then(sdp, now)
