"""The bridge policy (pure): which calls need rtpengine and what each direction asks of it."""

from __future__ import annotations

import asyncio

import pytest

from onenumber.media.bridge import (
    NO_RELAY_REASON,
    NO_RELAY_STATUS,
    BridgeUnavailable,
    MediaBridge,
    MediaKind,
    leg_kind,
    needs_bridge,
    ng_params,
    plan_branch,
    sdp_kind,
    transport_kind,
)

from .sdp import RTP_OFFER, WEBRTC_SDP

RTP = RTP_OFFER.format(port=4000)
WEBRTC = WEBRTC_SDP.format(port=5000, setup="actpass")


def test_sdp_kind() -> None:
    assert sdp_kind(RTP) is MediaKind.RTP
    assert sdp_kind(WEBRTC) is MediaKind.WEBRTC
    assert sdp_kind(WEBRTC.encode()) is MediaKind.WEBRTC
    assert sdp_kind("") is None
    # SAVPF without the TLS proto but with ICE and a fingerprint is still a browser's
    assert sdp_kind(WEBRTC.replace("UDP/TLS/RTP/SAVPF", "RTP/SAVPF")) is MediaKind.WEBRTC
    assert sdp_kind(RTP.replace("RTP/AVP", "RTP/SAVP")) is MediaKind.RTP  # SDES-SRTP deskphone


def test_transport_and_leg_kind() -> None:
    assert transport_kind("ws") is MediaKind.WEBRTC
    assert transport_kind("WSS") is MediaKind.WEBRTC
    for t in ("udp", "tcp", "tls"):
        assert transport_kind(t) is MediaKind.RTP
    assert leg_kind("ws", None) is MediaKind.WEBRTC  # late offer: by transport
    assert leg_kind("udp", WEBRTC) is MediaKind.WEBRTC  # the SDP wins when there is one


@pytest.mark.parametrize(
    ("caller_tp", "caller_sdp", "callee_tp", "expected"),
    [
        ("udp", RTP, "udp", False),
        ("udp", RTP, "tcp", False),
        ("tls", RTP, "udp", False),
        ("ws", WEBRTC, "wss", False),
        ("wss", WEBRTC, "ws", False),
        ("udp", RTP, "ws", True),
        ("tcp", RTP, "wss", True),
        ("ws", WEBRTC, "udp", True),
        ("wss", WEBRTC, "tls", True),
        ("ws", None, "udp", True),
        ("udp", None, "ws", True),
    ],
)
def test_needs_bridge(caller_tp: str, caller_sdp: str | None, callee_tp: str, expected: bool) -> None:
    assert needs_bridge(caller_tp, caller_sdp, callee_tp) is expected


def test_plan_directions() -> None:
    p = plan_branch("udp", RTP, "ws")
    assert (p.bridge, p.offer_to_webrtc, p.answer_to_webrtc) == (True, True, False)
    p = plan_branch("ws", WEBRTC, "udp")
    assert (p.bridge, p.offer_to_webrtc, p.answer_to_webrtc) == (True, False, True)
    assert not plan_branch("udp", RTP, "udp").bridge


def test_ng_params_each_direction() -> None:
    web = ng_params(True)
    assert web["transport-protocol"] == "UDP/TLS/RTP/SAVPF"
    assert web["ICE"] == "force" and web["DTLS"] == "passive"
    assert "require" in web["rtcp-mux"]
    rtp = ng_params(False)
    assert rtp["transport-protocol"] == "RTP/AVP"
    assert rtp["ICE"] == "remove" and rtp["DTLS"] == "off"
    assert web is not ng_params(True)  # a fresh dict each time: callers may add to it
    # answering a browser's actpass offer, the relay takes the active DTLS role (see to_webrtc_params)
    assert ng_params(True, answer=True)["DTLS"] == "active"
    assert ng_params(False, answer=True) == rtp


def test_no_relay_configured_is_488_with_a_reason() -> None:
    bridge = MediaBridge(None)
    assert not bridge.available
    with pytest.raises(BridgeUnavailable) as info:
        asyncio.run(bridge.offer("c1", "t1", RTP, True))
    assert info.value.status == NO_RELAY_STATUS == 488
    assert info.value.reason == NO_RELAY_REASON
    assert "rtpengine" in info.value.reason
    assert asyncio.run(bridge.delete("c1")) is False
