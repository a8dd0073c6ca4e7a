"""SDP offer/answer with the SDPs real peers send (captured from baresip 1.0 and SIPp 3.6)."""

import pytest

from onenumber.media import sdp

# baresip 1.0.0 (Debian 12) INVITE body, captured on this machine
BARESIP_OFFER = (
    "v=0\r\n"
    "o=- 2549764597 2025632226 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "a=tool:baresip 1.0.0\r\n"
    "m=audio 32476 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"
    "a=label:1\r\n"
    "a=rtcp-rsize\r\n"
    "a=ssrc:2276228783 cname:sip:1000@127.0.0.1:35519\r\n"
    "a=minptime:20\r\n"
    "a=ptime:20\r\n"
)

# SIPp 3.6.1 built-in scenarios (`sipp -sd uac`, `sipp -sd uac_pcap`) with the fields filled in
SIPP_UAC_OFFER = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
SIPP_PCAP_OFFER = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-11,16\r\n"
)


def test_parse_baresip_offer():
    s = sdp.parse(BARESIP_OFFER.encode())
    (m,) = s.media
    assert (m.kind, m.port, m.proto, m.formats, m.address) == ("audio", 32476, "RTP/AVP", ("0", "8", "101"),
                                                               "127.0.0.1")
    assert [c.name for c in m.codecs] == ["PCMU", "PCMA", "telephone-event"]
    assert m.codec(101).fmtp == "0-15"
    assert m.ptime == 20 and m.direction == "sendrecv"


def test_answer_baresip():
    body, plan = sdp.answer(sdp.parse(BARESIP_OFFER), "127.0.0.1", 40000, session_id=7)
    assert plan == sdp.AudioPlan(("127.0.0.1", 32476), 0, 101, "sendrecv", 20, False)
    text = body.decode()
    assert "m=audio 40000 RTP/AVP 0 101\r\n" in text
    assert "a=rtpmap:0 PCMU/8000\r\n" in text and "a=rtpmap:101 telephone-event/8000\r\n" in text
    assert text.startswith("v=0\r\no=OneNumber 7 1 IN IP4 127.0.0.1\r\n")
    again = sdp.parse(body)  # our answer parses, and agrees with itself
    assert sdp.plan_from_answer(again).payload_type == 0


def test_answer_sipp_offers():
    _, plan = sdp.answer(sdp.parse(SIPP_UAC_OFFER), "127.0.0.1", 40000, session_id=1)
    assert (plan.remote, plan.payload_type, plan.dtmf_payload_type) == (("127.0.0.1", 6000), 0, None)
    body, plan = sdp.answer(sdp.parse(SIPP_PCAP_OFFER), "127.0.0.1", 40000, session_id=1)
    assert (plan.remote, plan.payload_type, plan.dtmf_payload_type) == (("127.0.0.1", 6002), 8, 101)
    assert b"m=audio 40000 RTP/AVP 8 101\r\n" in body


def test_answer_prefers_the_offerers_order_and_refuses_other_streams():
    offer = (
        "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
        "m=video 5000 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
        "m=audio 5002 RTP/AVP 9 96 8 0 97\r\nc=IN IP4 10.0.0.2\r\na=rtpmap:96 opus/48000/2\r\n"
        "a=rtpmap:97 telephone-event/48000\r\na=sendonly\r\n"
        "m=audio 5004 RTP/AVP 0\r\n"
    )
    body, plan = sdp.answer(sdp.parse(offer), "127.0.0.1", 41000, session_id=1)
    assert plan.remote == ("10.0.0.2", 5002) and plan.payload_type == 8
    assert plan.dtmf_payload_type is None  # only a 48 kHz telephone-event was offered
    assert plan.direction == "recvonly" and plan.held
    lines = body.decode().split("\r\n")
    media = [line for line in lines if line.startswith("m=")]
    assert media == ["m=video 0 RTP/AVP 96", "m=audio 41000 RTP/AVP 8", "m=audio 0 RTP/AVP 0"]


def test_no_common_codec_is_488():
    offer = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 9 18\r\n"
    with pytest.raises(sdp.NoCommonCodec):
        sdp.answer(sdp.parse(offer), "127.0.0.1", 40000, session_id=1)
    rejected = offer.replace("5000 RTP/AVP 9 18", "0 RTP/AVP 0")
    with pytest.raises(sdp.NoCommonCodec):
        sdp.answer(sdp.parse(rejected), "127.0.0.1", 40000, session_id=1)


def test_hold_address_and_ipv6():
    offer = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
    body, plan = sdp.answer(sdp.parse(offer), "::1", 40000, session_id=1)
    assert plan.remote == ("::1", 5000) and b"c=IN IP6 ::1" in body
    held = offer.replace("c=IN IP6 ::1\r\nt", "c=IN IP4 0.0.0.0\r\nt")
    assert sdp.answer(sdp.parse(held), "127.0.0.1", 40000, session_id=1)[1].held


def test_our_offer_and_the_answer_to_it():
    body = sdp.offer("127.0.0.1", 42000, session_id=3, version=2)
    s = sdp.parse(body)
    assert [c.name for c in s.media[0].codecs] == ["PCMU", "PCMA", "telephone-event"]
    # baresip answering our offer
    answer = BARESIP_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 101").replace("a=rtpmap:0 PCMU/8000\r\n", "")
    plan = sdp.plan_from_answer(sdp.parse(answer))
    assert (plan.payload_type, plan.dtmf_payload_type, plan.remote) == (8, 101, ("127.0.0.1", 32476))


@pytest.mark.parametrize("bad", ["", "hello", "v=0\r\nc=IN\r\n", "v=0\r\nm=audio x RTP/AVP 0\r\n", "x"])
def test_garbage(bad):
    with pytest.raises(sdp.SdpError):
        sdp.parse(bad)
