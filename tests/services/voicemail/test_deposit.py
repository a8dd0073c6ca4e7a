"""Leaving a message, sans-IO: answer, greeting, record, save, goodbye, BYE — and the ways it ends."""

from onenumber.media import sdp
from onenumber.services.voicemail.actions import (
    CloseMedia,
    DiscardMessage,
    Finished,
    Play,
    Reply,
    SaveMessage,
    SendRequest,
    StartMedia,
    StartRecording,
    StopPlayback,
    StopRecording,
)
from onenumber.services.voicemail.deposit import (
    CANCELLED,
    LEFT_MESSAGE,
    NO_MESSAGE,
    REJECTED,
    DepositCall,
    DepositSettings,
)
from onenumber.services.voicemail.ua import CallPhase, UaSettings
from onenumber.sip.message import Request, parse

# baresip 1.0.0's offer (as in tests/media/test_sdp.py)
BARESIP_OFFER = (
    "v=0\r\no=- 2549764597 2025632226 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "a=tool:baresip 1.0.0\r\nm=audio 32476 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n"
    "a=sendrecv\r\na=label:1\r\na=rtcp-rsize\r\na=ssrc:2276228783 cname:sip:1000@127.0.0.1:35519\r\n"
    "a=minptime:20\r\na=ptime:20\r\n"
)

INVITE = (
    "INVITE sip:1000@127.0.0.1:25060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKinv;rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Bob Caller" <sip:1001@127.0.0.1:25060>;tag=ft\r\n'
    "To: <sip:1000@127.0.0.1:25060>\r\n"
    "Call-ID: call-1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:1001@127.0.0.1:5080>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: {length}\r\n\r\n{body}"
)


def invite(body: str = BARESIP_OFFER) -> Request:
    return parse(INVITE.format(length=len(body), body=body).encode())  # type: ignore[return-value]


def in_dialog(method: str, cseq: int, body: str = "") -> Request:
    text = (
        f"{method} sip:vm@127.0.0.1:25060 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKx;rport\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Bob Caller" <sip:1001@127.0.0.1:25060>;tag=ft\r\n'
        "To: <sip:1000@127.0.0.1:25060>;tag=vmtag\r\n"
        "Call-ID: call-1\r\n"
        f"CSeq: {cseq} {method}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    return parse(text.encode())  # type: ignore[return-value]


def call(t1: float = 0.5, t2: float = 4.0, **kw) -> DepositCall:
    return DepositCall("1000", "m1", "/vm/1000/m1.wav", local_tag="vmtag", media_port=40000, session_id=5,
                       received_at=1_700_000_000.0, settings=DepositSettings(**kw), ua=UaSettings(t1=t1, t2=t2))


def kinds(actions) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_the_whole_message():
    c = call()
    out = c.on_invite(invite(), 0.0)
    assert kinds(out) == ["Reply", "StartMedia", "Play"]
    ok = out[0].response
    assert ok.status == 200 and ok.to.tag == "vmtag"
    assert ok.headers.get("content-type") == "application/sdp"
    assert sdp.parse(ok.body).media[0].port == 40000
    assert out[1] == StartMedia(sdp.AudioPlan(("127.0.0.1", 32476), 0, 101, "sendrecv", 20, False))
    assert out[2] == Play("greeting")
    assert c.message.caller == "1001" and c.message.caller_name == "Bob Caller"
    assert c.on_ack(in_dialog("ACK", 1), 0.1) == []
    assert c.next_timer() is None
    rec = c.on_play_done(Play("greeting"), 5.0)
    assert kinds(rec) == ["SaveMessage", "StartRecording"]
    assert rec[0].new and not rec[0].message.complete  # the record exists before the first sample
    assert rec[1] == StartRecording("/vm/1000/m1.wav", 120.0, 5.0)
    assert c.on_digit("5", 6.0) == []
    assert c.on_digit("#", 20.0) == [StopRecording("dtmf")]
    saved = c.on_recording_stopped(14.2, 20.1)
    assert kinds(saved) == ["SaveMessage", "Play"]
    assert saved[0].message.duration == 14.2 and saved[0].message.complete and not saved[0].new
    assert saved[1] == Play("goodbye")
    bye = c.on_play_done(Play("goodbye"), 22.0)
    assert kinds(bye) == ["StopPlayback", "SendRequest"]
    req = bye[1].request
    assert req.method == "BYE" and req.uri == "sip:1001@127.0.0.1:5080"
    assert req.headers.get("from") == "<sip:1000@127.0.0.1:25060>;tag=vmtag"
    assert c.on_bye_answered(200, 22.1) == [CloseMedia(), Finished(LEFT_MESSAGE)]
    assert c.phase is CallPhase.DONE


def test_caller_hangs_up_while_recording():
    c = call()
    c.on_invite(invite(), 0)
    c.on_ack(in_dialog("ACK", 1), 0)
    c.on_play_done(Play("greeting"), 5)
    out = c.on_bye(in_dialog("BYE", 2), 15)
    assert isinstance(out[0], Reply) and out[0].response.status == 200
    assert out[1] == StopRecording("hangup")
    assert c.on_bye(in_dialog("BYE", 2), 15.1)[0].response.status == 200  # retransmitted BYE
    end = c.on_recording_stopped(10.0, 15.2)
    assert kinds(end) == ["SaveMessage", "StopPlayback", "CloseMedia", "Finished"]
    assert end[-1] == Finished(LEFT_MESSAGE)


def test_hang_up_during_greeting_or_at_the_beep_leaves_nothing():
    c = call()
    c.on_invite(invite(), 0)
    out = c.on_bye(in_dialog("BYE", 2), 3)
    assert kinds(out) == ["Reply", "StopPlayback", "CloseMedia", "Finished"]
    assert out[-1] == Finished(NO_MESSAGE)
    c2 = call(min_seconds=1.0)
    c2.on_invite(invite(), 0)
    c2.on_play_done(Play("greeting"), 5)
    c2.on_bye(in_dialog("BYE", 2), 5.5)
    end = c2.on_recording_stopped(0.4, 5.6)
    assert isinstance(end[0], DiscardMessage) and end[-1] == Finished(NO_MESSAGE)


def test_recorder_ends_by_itself_and_hash_skips_greeting():
    c = call()
    c.on_invite(invite(), 0)
    skip = c.on_digit("#", 1)
    assert skip[0] == StopPlayback() and isinstance(skip[-1], StartRecording)
    assert c.on_play_done(Play("greeting"), 2) == []  # a late report of the cut greeting is ignored
    out = c.on_recording_stopped(120.0, 121)  # max length reached
    assert kinds(out) == ["SaveMessage", "Play"]


def test_rejections_and_cancel():
    c = call()
    out = c.on_invite(invite(BARESIP_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 9")), 0)
    assert out[0].response.status == 488 and out[1] == Finished(REJECTED)
    c = call()
    bad = invite("hello")
    assert c.on_invite(bad, 0)[0].response.status == 400
    c = call()
    no_contact = parse(bytes(invite()).replace(b"Contact: <sip:1001@127.0.0.1:5080>\r\n", b""))
    assert c.on_invite(no_contact, 0)[0].response.status == 400
    c = call()
    c.invite = invite()  # received, not answered yet (the glue may wait for media)
    out = c.on_cancel(0.5)
    assert out[0].response.status == 487 and out[1] == Finished(CANCELLED)
    answered = call()
    answered.on_invite(invite(), 0)
    assert answered.on_cancel(0.1) == []


def test_late_offer():
    c = call()
    out = c.on_invite(invite(""), 0)
    assert kinds(out) == ["Reply"]
    offer = sdp.parse(out[0].response.body)
    assert [x.name for x in offer.media[0].codecs] == ["PCMU", "PCMA", "telephone-event"]
    answer = BARESIP_OFFER.replace("RTP/AVP 0 8 101", "RTP/AVP 8 101").replace("a=rtpmap:0 PCMU/8000\r\n", "")
    started = c.on_ack(in_dialog("ACK", 1, answer), 0.1)
    assert kinds(started) == ["StartMedia", "Play"] and started[0].plan.payload_type == 8
    c2 = call()
    c2.on_invite(invite(""), 0)
    assert kinds(c2.on_ack(in_dialog("ACK", 1, "garbage"), 0.1)) == ["StopPlayback", "SendRequest"]


def test_200_retransmitted_until_ack_then_bye():
    c = call(t1=0.5, t2=4.0)
    c.on_invite(invite(), 0)
    times = []
    now = 0.0
    while (t := c.next_timer()) is not None and t < 32:
        now = t
        out = c.on_timer(now)
        if out and isinstance(out[0], Reply):
            times.append(now)
            assert out[0].response.status == 200
    assert times[:5] == [0.5, 1.5, 3.5, 7.5, 11.5]  # T1, doubling, capped at T2
    out = c.on_timer(32.0)  # 64*T1 without an ACK: hang up
    assert kinds(out) == ["StopPlayback", "SendRequest"]
    assert c.next_timer() is None
    assert isinstance(out[1], SendRequest) and isinstance(out[0], StopPlayback)
    assert SaveMessage not in map(type, out)
