"""Message waiting: who gets unsolicited NOTIFYs, and what they look like."""

import itertools

from onenumber.routing.model import Binding
from onenumber.services.subscriptions import SubscriptionPolicy, Subscriptions
from onenumber.services.voicemail.mwi import render_summary, unsolicited_notify, unsolicited_targets
from onenumber.sip.bodies import MessageSummary, parse_message_summary
from onenumber.sip.message import parse


def binding(user: str, contact: str, expires_at: float = 100.0, path: tuple[str, ...] = ()) -> Binding:
    return Binding("1000", user, contact, expires_at, "udp", ("127.0.0.1", 5080), path=path)


SUBSCRIBE = (
    "SUBSCRIBE sip:1000@127.0.0.1:25060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKs\r\n"
    "From: <sip:1000@127.0.0.1:25060>;tag=a\r\nTo: <sip:1000@127.0.0.1:25060>\r\n"
    "Call-ID: s1\r\nCSeq: 1 SUBSCRIBE\r\nContact: <sip:1000@127.0.0.1:5080>\r\n"
    "Event: message-summary\r\nExpires: 600\r\nContent-Length: 0\r\n\r\n"
)


def test_unsolicited_only_to_devices_without_a_subscription():
    tags = (f"t{i}" for i in itertools.count())
    subs = Subscriptions(SubscriptionPolicy(), lambda: next(tags), "sip:vm@127.0.0.1:25060")
    summary = MessageSummary(1, 0)
    ans = subs.on_subscribe(parse(SUBSCRIBE.encode()), "1000", "1000", render_summary(summary), 0.0,
                            device="1000")
    assert parse_message_summary(ans.notify.body).waiting
    bindings = [
        binding("1000", "sip:1000@127.0.0.1:5080"),
        binding("1000_2", "sip:1000_2@127.0.0.1:5090"),
        binding("1000_3", "sip:1000_3@127.0.0.1:5092", expires_at=0.5),  # expired
        Binding("2000", "2000", "sip:2000@127.0.0.1:5094", 100.0, "udp", ("127.0.0.1", 5094)),
    ]
    targets = unsolicited_targets("1000", bindings, subs, now=1.0)
    assert [b.auth_username for b in targets] == ["1000_2"]


def test_unsolicited_notify():
    b = binding("1000_2", "sip:1000_2@10.0.0.5:5090;transport=tcp", path=("<sip:edge.example.com;lr>",))
    req = unsolicited_notify(b, "sip:1000@example.com", MessageSummary(2, 1, account="sip:*98@example.com"),
                             server_uri="sip:voicemail@example.com", call_id="mwi-1", from_tag="f1", cseq=3)
    assert req.method == "NOTIFY" and req.uri == "sip:1000_2@10.0.0.5:5090;transport=tcp"
    assert req.headers.get_all("route") == ["<sip:edge.example.com;lr>"]
    assert req.headers.get("event") == "message-summary"
    assert req.headers.get("subscription-state") == "active"
    assert req.headers.get("content-type") == "application/simple-message-summary"
    assert str(req.cseq) == "3 NOTIFY" and req.to.tag is None
    assert parse_message_summary(req.body) == MessageSummary(2, 1, account="sip:*98@example.com")
    req.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:25060;branch=z9hG4bKm")
    assert parse(bytes(req)).body == req.body
