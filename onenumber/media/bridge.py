"""When a call needs the media relay, and what to ask of it: WebRTC (ICE + DTLS-SRTP) ↔ plain RTP.

A browser (SIP over WebSocket) speaks ICE, DTLS-SRTP and `UDP/TLS/RTP/SAVPF`; a deskphone
speaks `RTP/AVP`. When the two legs of a call differ, both SDPs go through rtpengine, which
rewrites each into what the other side speaks; when they are alike, nothing is touched.

The policy functions at the top are pure (no I/O). `MediaBridge` below drives rtpengine
through the ng client for the call engine (called from the call events: offer on the INVITE
sent to a leg of the other kind, answer on its 18x/2xx with SDP, delete on the end of the call).
With no rtpengine configured, a call that needs bridging is refused: 488 with `NO_RELAY_REASON`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .rtpengine import NgClient, NgError

log = logging.getLogger("onenumber.media.bridge")

WEBRTC_TRANSPORTS = frozenset({"ws", "wss"})
NO_RELAY_STATUS = 488
NO_RELAY_REASON = "Not Acceptable Here (WebRTC call needs a media relay: no rtpengine configured)"
RELAY_FAILED_REASON = "Not Acceptable Here (the media relay did not answer)"


class MediaKind(Enum):
    WEBRTC = "webrtc"
    RTP = "rtp"


_M_LINE = re.compile(r"^m=\w+ \d+(?:/\d+)? (\S+)", re.MULTILINE)


def sdp_kind(sdp: str | bytes) -> MediaKind | None:
    """What the SDP speaks: WebRTC (DTLS-SRTP with ICE: `UDP/TLS/RTP/SAVPF` or a fingerprint and
    ICE credentials), plain RTP, or None when there is no SDP (a late offer)."""
    text = sdp.decode("utf-8", "replace") if isinstance(sdp, bytes) else sdp
    protos = _M_LINE.findall(text)
    if not protos:
        return None
    if any("TLS" in p.upper() or "DTLS" in p.upper() for p in protos):
        return MediaKind.WEBRTC
    lowered = text.lower()
    if "a=fingerprint:" in lowered and "a=ice-ufrag:" in lowered:
        return MediaKind.WEBRTC
    return MediaKind.RTP


def transport_kind(transport: str) -> MediaKind:
    """What a device reached over `transport` is expected to speak (browsers come over WebSocket)."""
    return MediaKind.WEBRTC if transport.lower() in WEBRTC_TRANSPORTS else MediaKind.RTP


def leg_kind(transport: str, sdp: str | bytes | None = None) -> MediaKind:
    """A leg's kind: from its SDP when there is one, else from its transport."""
    if sdp:
        kind = sdp_kind(sdp)
        if kind is not None:
            return kind
    return transport_kind(transport)


def needs_bridge(caller_transport: str, caller_sdp: str | bytes | None, callee_transport: str) -> bool:
    """True when the caller's media and the callee's differ (WebRTC ↔ RTP): the relay must sit between."""
    return leg_kind(caller_transport, caller_sdp) is not transport_kind(callee_transport)


# ng parameters for SDP going to each kind of peer --------------------------------------------

_COMMON: dict[str, Any] = {"replace": ["origin", "session-connection"]}


def to_webrtc_params(*, answer: bool = False) -> dict[str, Any]:
    """SDP rewritten for a browser: ICE candidates of the relay, DTLS-SRTP, RTCP multiplexed,
    a=mid on each stream. In an offer the relay says `actpass` and takes the passive role the
    browser's answer leaves it; in an answer to a browser's `actpass` offer the relay is the
    active side: it already began the handshake as soon as ICE was up after the offer (a
    passive answer there leaves Chromium's DTLS stuck in `connecting`, seen with rtpengine 10.5)."""
    return {
        **_COMMON,
        "transport-protocol": "UDP/TLS/RTP/SAVPF",
        "ICE": "force",
        "DTLS": "active" if answer else "passive",
        "rtcp-mux": ["require"],
        "flags": ["generate-mid"],
        "SDES": ["off"],
    }


def to_rtp_params() -> dict[str, Any]:
    """SDP rewritten for a deskphone: plain RTP/AVP, no ICE, no DTLS, RTCP on its own port."""
    return {
        **_COMMON,
        "transport-protocol": "RTP/AVP",
        "ICE": "remove",
        "DTLS": "off",
        "rtcp-mux": ["demux"],
    }


def ng_params(to_webrtc: bool, *, answer: bool = False) -> dict[str, Any]:
    """The ng parameters of an offer (or, with `answer`, an answer) whose SDP goes to a WebRTC
    peer (or a plain RTP one)."""
    return to_webrtc_params(answer=answer) if to_webrtc else to_rtp_params()


@dataclass(frozen=True, slots=True)
class BridgePlan:
    """For one branch of a call: bridge or not, and which way each SDP is rewritten."""

    bridge: bool
    offer_to_webrtc: bool  # the offer goes to the callee: is the callee a browser?
    answer_to_webrtc: bool  # the answer goes back to the caller: is the caller a browser?


def plan_branch(caller_transport: str, caller_sdp: str | bytes | None, callee_transport: str) -> BridgePlan:
    caller = leg_kind(caller_transport, caller_sdp)
    callee = transport_kind(callee_transport)
    return BridgePlan(caller is not callee, callee is MediaKind.WEBRTC, caller is MediaKind.WEBRTC)


# the relay itself ----------------------------------------------------------------------------


class BridgeUnavailable(Exception):
    """A call needs bridging but there is no relay (or it failed): answer `status` `reason`."""

    def __init__(self, reason: str = NO_RELAY_REASON, status: int = NO_RELAY_STATUS) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class MediaBridge:
    """Offer/answer/delete through rtpengine for the calls that need it; `client` None = no relay."""

    def __init__(self, client: NgClient | None) -> None:
        self.client = client
        self.calls: set[str] = set()

    @property
    def available(self) -> bool:
        return self.client is not None

    def _need(self) -> NgClient:
        if self.client is None:
            raise BridgeUnavailable()
        return self.client

    async def offer(self, call_id: str, from_tag: str, sdp: str | bytes, to_webrtc: bool) -> bytes:
        """The offer rewritten for the callee (a browser when `to_webrtc`). Raises BridgeUnavailable."""
        client = self._need()
        text = sdp.decode("utf-8", "replace") if isinstance(sdp, bytes) else sdp
        try:
            out = await client.offer(call_id, from_tag, text, ng_params(to_webrtc))
        except NgError as exc:
            log.warning("rtpengine offer for %s failed: %s", call_id, exc)
            raise BridgeUnavailable(RELAY_FAILED_REASON) from exc
        self.calls.add(call_id)
        return out.encode()

    async def answer(self, call_id: str, from_tag: str, to_tag: str, sdp: str | bytes, to_webrtc: bool) -> bytes:
        """The answer rewritten for the caller (a browser when `to_webrtc`). Raises BridgeUnavailable."""
        client = self._need()
        text = sdp.decode("utf-8", "replace") if isinstance(sdp, bytes) else sdp
        try:
            out = await client.answer(call_id, from_tag, to_tag, text, ng_params(to_webrtc, answer=True))
        except NgError as exc:
            log.warning("rtpengine answer for %s failed: %s", call_id, exc)
            raise BridgeUnavailable(RELAY_FAILED_REASON) from exc
        return out.encode()

    async def delete(self, call_id: str) -> bool:
        """Tear the relay session down (BYE, CANCEL, failure, Timer C). False if there was none."""
        if self.client is None or call_id not in self.calls:
            return False
        self.calls.discard(call_id)
        try:
            await self.client.delete(call_id)
        except NgError as exc:
            log.info("rtpengine delete for %s: %s", call_id, exc)
            return False
        return True
