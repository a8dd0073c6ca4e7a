"""Against a real rtpengine (started by onenumber.media.process on free ports, stopped by PID):
ping, an RTP -> WebRTC offer comes back with a fingerprint and ICE candidates, the browser's
answer comes back as plain RTP, query, delete; and the bridge class over the same engine."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from onenumber.media.bridge import MediaBridge, ng_params
from onenumber.media.process import RtpengineProcess, find_binary, start_rtpengine
from onenumber.media.rtpengine import NgClient, NgError, NgTimeout

from .sdp import RTP_OFFER, WEBRTC_SDP

pytestmark = pytest.mark.skipif(find_binary() is None and not os.environ.get("CI"),
                                reason="rtpengine not installed (scripts/install-peers.sh installs it)")


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[RtpengineProcess]:
    eng = await start_rtpengine("127.0.0.1", log_path=tmp_path / "rtpengine.log")
    try:
        yield eng
    finally:
        await eng.stop()
        assert eng.proc.returncode is not None


@pytest.fixture
async def client(engine: RtpengineProcess) -> AsyncIterator[NgClient]:
    c = await NgClient(*engine.address, timeout=1.0, retries=2).open()
    try:
        yield c
    finally:
        c.close()


async def test_ping(client: NgClient, engine: RtpengineProcess) -> None:
    assert await client.ping()
    assert engine.port_min < engine.port_max


async def test_rtp_to_webrtc_offer_answer_query_delete(client: NgClient) -> None:
    call_id, from_tag, to_tag = uuid.uuid4().hex, "caller1", "browser1"
    params = ng_params(True)
    assert (params["ICE"], params["DTLS"], params["transport-protocol"]) == ("force", "passive", "UDP/TLS/RTP/SAVPF")
    offer = await client.offer(call_id, from_tag, RTP_OFFER.format(port=40100), params)
    assert "UDP/TLS/RTP/SAVPF" in offer, offer
    assert "a=fingerprint:" in offer, offer
    assert "a=candidate:" in offer and "127.0.0.1" in offer, offer
    assert "a=ice-ufrag:" in offer and "a=setup:" in offer and "a=rtcp-mux" in offer, offer
    assert "a=crypto:" not in offer, offer  # DTLS-SRTP only: browsers refuse SDES next to it
    assert "a=mid:" in offer, offer
    answer = await client.answer(call_id, from_tag, to_tag, WEBRTC_SDP.format(port=40200, setup="active"),
                                 ng_params(False))
    assert "RTP/AVP" in answer and "SAVPF" not in answer, answer
    assert "a=fingerprint:" not in answer and "a=candidate:" not in answer, answer
    info = await client.query(call_id)
    assert info.get("result") == "ok", info
    assert from_tag in str(info.get("tags", {})), info
    deleted = await client.delete(call_id)
    assert deleted.get("result") == "ok", deleted
    with pytest.raises(NgError):
        await client.query(call_id)


async def test_media_bridge_both_ways(client: NgClient) -> None:
    bridge = MediaBridge(client)
    # a browser calls a deskphone: the offer goes out as RTP, the answer comes back as WebRTC
    call_id = uuid.uuid4().hex
    offer = (await bridge.offer(call_id, "b1", WEBRTC_SDP.format(port=40300, setup="actpass"), False)).decode()
    assert "RTP/AVP" in offer and "a=fingerprint:" not in offer, offer
    answer = (await bridge.answer(call_id, "b1", "d1", RTP_OFFER.format(port=40400), True)).decode()
    assert "UDP/TLS/RTP/SAVPF" in answer and "a=fingerprint:" in answer and "a=candidate:" in answer, answer
    assert await bridge.delete(call_id)
    assert not await bridge.delete(call_id)  # only once


async def test_no_answer_times_out_after_retries() -> None:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a port that swallows datagrams
        s.bind(("127.0.0.1", 0))
        c = NgClient(*s.getsockname(), timeout=0.1, retries=2)
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(NgTimeout):
            await c.ping()
        assert 0.25 <= loop.time() - start < 1.0
        c.close()
        received = 0
        s.setblocking(False)
        while True:
            try:
                s.recv(2048)
                received += 1
            except BlockingIOError:
                break
        assert received == 3  # the first try and two retries, same cookie
