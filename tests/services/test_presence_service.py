"""BLF, presence and message waiting through the real SIP core, sans-IO: a watcher's device
subscribes (digest-authenticated by the gate), calls ring, answer and end, NOTIFYs follow."""

from __future__ import annotations

import itertools
from xml.etree import ElementTree as ET

from onenumber.services.subscriptions import WatchSettings
from onenumber.settings import Trunk
from onenumber.sip.bodies import DIALOG_NS, PIDF_NS, MessageSummary, parse_message_summary
from onenumber.sip.message import Request, parse

from .sipnet import SERVER, TRUNK, Net, answer_auth, invite, make_account, reply, requests_to, responses_to

D0, D1 = 31000, 31002  # 1000's two devices
WATCHER = ("127.0.0.1", 33000)  # 1001's phone
D = f"{{{DIALOG_NS}}}"
_n = itertools.count(1)


def office() -> tuple[Net, list]:
    alice, devs = make_account("1000", "Alice", 2)
    bob, bob_devs = make_account("1001", "Bob", 1)
    net = Net([alice, bob], devs + bob_devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1], prefix=""),))
    net.bind(devs[0], D0)
    net.bind(devs[1], D1)
    return net, devs + bob_devs


def subscribe(target: str, event: str = "dialog", *, user: str = "1001", src=WATCHER, expires: int = 600,
              call_id: str | None = None, cseq: int = 1, auth: str | None = None, to_tag: str | None = None,
              ruri: str | None = None) -> Request:
    call_id = call_id or f"sub-{next(_n)}"
    lines = [
        f"SUBSCRIBE {ruri or f'sip:{target}@127.0.0.1:{SERVER[1]}'} SIP/2.0",
        f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bKs{next(_n)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag=w{call_id}",
        f"To: <sip:{target}@127.0.0.1:{SERVER[1]}>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} SUBSCRIBE",
        f"Contact: <sip:{user}@{src[0]}:{src[1]}>",
        f"Event: {event}",
        f"Expires: {expires}",
    ]
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    lines.append("Content-Length: 0")
    return parse(("\r\n".join(lines) + "\r\n\r\n").encode())  # type: ignore[return-value]


def authed_subscribe(net: Net, secret: str, target: str, event: str = "dialog", user: str = "1001",
                     src=WATCHER, **kw):
    req = subscribe(target, event, user=user, src=src, **kw)
    (challenge,) = responses_to(net.send(req, src), src[1])
    assert challenge.status == 407
    auth = answer_auth(challenge, req, user, secret)
    kw.pop("cseq", None)
    return net.send(subscribe(target, event, user=user, src=src, call_id=req.call_id, cseq=2, auth=auth, **kw), src)


def notifies(out, port: int = WATCHER[1]) -> list[Request]:
    return requests_to(out, port, "NOTIFY")


def dialog_states(notify: Request) -> list[tuple[str, str | None]]:
    root = ET.fromstring(notify.body)
    return [(d.findtext(f"{D}state"), d.get("direction")) for d in root.findall(f"{D}dialog")]


def ack_notify(net: Net, n: Request, status: int = 200):
    return net.send(reply(n, status, "OK" if status == 200 else "Gone"), WATCHER)


def test_blf_follows_a_call_ringing_answered_and_ended() -> None:
    net, devs = office()
    bob = devs[2]
    out = authed_subscribe(net, bob.secret, "1000")
    (ok,) = [r for r in responses_to(out, WATCHER[1]) if r.status >= 200]
    assert ok.status == 200 and ok.headers.get("expires") == "600"
    assert ok.headers.get("contact") == f"<sip:1000@{SERVER[0]}:{SERVER[1]}>"
    (first,) = notifies(out)
    assert first.headers.get("subscription-state") == "active;expires=600"
    assert dialog_states(first) == []  # idle
    root = ET.fromstring(first.body)
    assert root.get("entity") == "sip:1000@127.0.0.1" and root.get("version") == "0"
    ack_notify(net, first)

    # a call from the trunk rings both devices: early (recipient), with the pickup code
    out = net.send(invite("1000", TRUNK, from_user="0612345678"), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv0, 180, "Ringing", tag="d0"), ("127.0.0.1", D0))
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    out = net.advance(0)
    states = [s for n in notifies(out) for s in dialog_states(n)]
    assert ("early", "recipient") in states
    last = notifies(out)[-1]
    el = ET.fromstring(last.body).find(f"{D}dialog")
    assert el.get("call-id") == inv0.call_id
    assert el.findtext(f"{D}remote/{D}identity") == "sip:0612345678@127.0.0.1"
    assert el.find(f"{D}remote/{D}target").get("uri") == "sip:*81000@127.0.0.1"
    for n in notifies(out):
        ack_notify(net, n)

    # answered on the second device: confirmed; the first device's early dialog goes away
    net.send(reply(inv1, 200, "OK", tag="d1", contact=f"sip:1000_2@127.0.0.1:{D1}"), ("127.0.0.1", D1))
    out = net.advance(0)
    final = notifies(out)[-1]
    assert ("confirmed", "recipient") in dialog_states(final)
    assert ("early", "recipient") not in dialog_states(final)
    confirmed = [d for d in ET.fromstring(final.body).findall(f"{D}dialog") if d.findtext(f"{D}state") == "confirmed"]
    assert confirmed[0].get("local-tag") == "d1" and confirmed[0].get("remote-tag")
    for n in notifies(out):
        ack_notify(net, n)

    # the caller hangs up: terminated once, then an idle document
    bye = (
        f"BYE sip:1000_2@127.0.0.1:{D1} SIP/2.0\r\nVia: SIP/2.0/UDP {TRUNK[0]}:{TRUNK[1]};branch=z9hG4bKbye1;rport\r\n"
        f"Max-Forwards: 70\r\n{_route(inv1)}From: {_hdr(inv1, 'from')}\r\nTo: {_hdr(inv1, 'to')};tag=d1\r\n"
        f"Call-ID: {inv1.call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    )
    net.send(bye.encode(), TRUNK)
    out = net.advance(0)
    term = notifies(out)
    assert term, "a NOTIFY for the end of the call"
    assert ("terminated", "recipient") in dialog_states(term[0])
    versions = [int(ET.fromstring(n.body).get("version")) for n in term]
    assert versions == sorted(versions) and versions[0] >= 2
    for n in term:
        ack_notify(net, n)
    assert net.core.presence.legs == {}


def _hdr(req: Request, name: str) -> str:
    return req.headers.get(name) or ""


def _route(inv: Request) -> str:
    return "".join(f"Route: {rr}\r\n" for rr in inv.headers.get_all("record-route"))


def test_presence_pidf_and_forbidden_watcher() -> None:
    net, devs = office()
    bob = devs[2]
    out = authed_subscribe(net, bob.secret, "1000", "presence")
    (n,) = notifies(out)
    assert n.headers.get("content-type") == "application/pidf+xml"
    root = ET.fromstring(n.body)
    assert root.findtext(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}note") == "available"
    ack_notify(net, n)
    # a call placed from 1000's deskphone (to Bob's registered phone): in-use
    net.bind(bob, WATCHER[1])
    net.advance(0)
    phone = ("127.0.0.1", D0)
    req = invite("1001", phone, from_user="1000")
    (challenge,) = responses_to(net.send(req, phone), D0)
    auth = answer_auth(challenge, req, "1000", devs[0].secret)
    net.send(invite("1001", phone, from_user="1000", call_id=req.call_id, auth=auth, cseq=2), phone)
    out = net.advance(0)
    notes = [ET.fromstring(m.body).findtext(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}note") for m in notifies(out)]
    assert notes == ["in-use"]
    # nobody may watch others: 403, and message waiting is only for the box's own devices
    net.core.presence.watch = WatchSettings(rule="nobody")
    out = authed_subscribe(net, bob.secret, "1000", "dialog", src=("127.0.0.1", 33002))
    assert [r.status for r in responses_to(out, 33002) if r.status >= 200] == [403]
    net.core.presence.watch = WatchSettings()
    out = authed_subscribe(net, bob.secret, "1000", "message-summary", src=("127.0.0.1", 33004))
    assert [r.status for r in responses_to(out, 33004) if r.status >= 200] == [403]
    out = authed_subscribe(net, bob.secret, "1000", "reg", src=("127.0.0.1", 33006))
    (bad,) = [r for r in responses_to(out, 33006) if r.status >= 200]
    assert bad.status == 489 and "dialog" in (bad.headers.get("allow-events") or "")


def test_message_waiting_refresh_and_expiry() -> None:
    net, devs = office()
    box = ("127.0.0.1", D0)
    out = authed_subscribe(net, devs[0].secret, "1000", "message-summary", user="1000", src=box, expires=120)
    (ok,) = [r for r in responses_to(out, D0) if r.status >= 200]
    (n,) = notifies(out, D0)
    assert not parse_message_summary(n.body).waiting
    net.send(reply(n, 200, "OK"), box)
    presence = net.core.presence
    presence.set_mailbox("1000", MessageSummary(1, 0, account="sip:*98@127.0.0.1"))
    (n2,) = notifies(net.drain(), D0)
    assert parse_message_summary(n2.body) == MessageSummary(1, 0, account="sip:*98@127.0.0.1")
    net.send(reply(n2, 200, "OK"), box)
    # refresh inside the dialog: the Request-URI is our Contact (the account), To carries our tag
    tag = ok.to.tag
    refresh = subscribe("1000", "message-summary", user="1000", src=box, expires=300, call_id=n.call_id,
                        cseq=3, to_tag=tag, ruri=f"sip:1000@{SERVER[0]}:{SERVER[1]}")
    (challenge,) = responses_to(net.send(refresh, box), D0)
    auth = answer_auth(challenge, refresh, "1000", devs[0].secret)
    out = net.send(subscribe("1000", "message-summary", user="1000", src=box, expires=300, call_id=n.call_id,
                             cseq=4, to_tag=tag, auth=auth, ruri=f"sip:1000@{SERVER[0]}:{SERVER[1]}"), box)
    (ok2,) = [r for r in responses_to(out, D0) if r.status >= 200]
    assert ok2.status == 200 and ok2.headers.get("expires") == "300" and ok2.to.tag == tag
    (n3,) = notifies(out, D0)
    assert n3.headers.get("subscription-state") == "active;expires=300"
    net.send(reply(n3, 200, "OK"), box)
    # no refresh: it expires with a final NOTIFY
    out = net.advance(301)
    finals = notifies(out, D0)  # the final NOTIFY (and its UDP retransmissions, unanswered here)
    assert len({str(m.cseq) for m in finals}) == 1
    last = finals[0]
    assert last.headers.get("subscription-state") == "terminated;reason=timeout"
    assert len(presence.subscriptions) == 0


def test_a_481_to_a_notify_ends_the_subscription() -> None:
    net, devs = office()
    out = authed_subscribe(net, devs[2].secret, "1000")
    (n,) = notifies(out)
    net.send(reply(n, 481, "Gone"), WATCHER)
    assert len(net.core.presence.subscriptions) == 0


def test_exclusive_web_phone_selected_deskphone_call_still_in_use() -> None:
    """XiVO's rule: the web phone is selected, yet a call placed from the deskphone shows in-use
    (PIDF) and in the BLF document (an initiator dialog); a ring on the deskphone does not."""
    from onenumber.routing.model import Account, Device, DeviceKind, RingMode

    alice = Account("1000", "Alice", ring_mode=RingMode.EXCLUSIVE, selected_device=1)
    desk = Device("1000", 0, DeviceKind.DESKPHONE, "1000", "s-desk")
    web = Device("1000", 1, DeviceKind.WEBPHONE, "1000_2", "s-web")
    bob = Device("1001", 0, DeviceKind.DESKPHONE, "1001", "s-bob")
    net = Net([alice, Account("1001", "Bob")], [desk, web, bob])
    net.bind(desk, D0)
    net.bind(web, D1)
    net.bind(bob, WATCHER[1])
    out = authed_subscribe(net, bob.secret, "1000", "presence")
    (n,) = notifies(out)
    ack_notify(net, n)
    out = authed_subscribe(net, bob.secret, "1000", "dialog", src=("127.0.0.1", 33010))
    (d,) = notifies(out, 33010)
    net.send(reply(d, 200, "OK"), ("127.0.0.1", 33010))
    phone = ("127.0.0.1", D0)
    req = invite("1001", phone, from_user="1000")
    (challenge,) = responses_to(net.send(req, phone), D0)
    auth = answer_auth(challenge, req, "1000", desk.secret)
    net.send(invite("1001", phone, from_user="1000", call_id=req.call_id, auth=auth, cseq=2), phone)
    out = net.advance(0)
    (pidf_n,) = notifies(out)
    assert ET.fromstring(pidf_n.body).findtext(f"{{{PIDF_NS}}}tuple/{{{PIDF_NS}}}note") == "in-use"
    (blf_n,) = notifies(out, 33010)
    assert ("trying", "initiator") in dialog_states(blf_n)
    assert net.core.presence.state("1000", net.now)[0].value == "in-use"


def test_unsolicited_message_waiting_to_devices_without_subscription() -> None:
    net, devs = office()
    box = ("127.0.0.1", D0)
    out = authed_subscribe(net, devs[0].secret, "1000", "message-summary", user="1000", src=box)
    (n,) = notifies(out, D0)
    net.send(reply(n, 200, "OK"), box)
    presence = net.core.presence
    presence.set_mailbox("1000", MessageSummary(2, 0))
    assert notifies(net.drain(), D1) == []  # off by default
    presence.unsolicited_mwi = True
    presence.mailbox_uri = lambda box: f"sip:*98@{SERVER[0]}"
    presence.set_mailbox("1000", MessageSummary(3, 0))
    out = net.drain()
    (sub_n,) = notifies(out, D0)  # the subscribed device: in its dialog
    (unsol,) = notifies(out, D1)  # the other device: out of dialog
    assert unsol.to.tag is None and unsol.uri == f"sip:1000_2@127.0.0.1:{D1}"
    assert parse_message_summary(unsol.body) == MessageSummary(3, 0, account=f"sip:*98@{SERVER[0]}")
    assert sub_n.to.tag is not None
    net.send(reply(unsol, 200, "OK"), ("127.0.0.1", D1))  # the answer is absorbed


def test_a_ringing_device_answering_180_causes_no_flush() -> None:
    """The devices' 180s move their legs within 'ringing' (trying → proceeding → early): the
    call shows early before and after, so no flush runs and no NOTIFY goes out."""
    net, devs = office()
    out = authed_subscribe(net, devs[2].secret, "1000")
    for n in notifies(out):
        ack_notify(net, n)
    out = net.send(invite("1000", TRUNK, from_user="0612345678"), TRUNK)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    out = net.advance(0)
    (early,) = notifies(out)
    assert dialog_states(early) == [("early", "recipient")]
    ack_notify(net, early)
    presence = net.core.presence
    assert presence is not None
    for inv, port, tag in ((inv0, D0, "d0"), (inv1, D1, "d1")):
        net.send(reply(inv, 180, "Ringing", tag=tag), ("127.0.0.1", port))
        assert not presence.dirty and presence._flush_timer is None
        assert notifies(net.advance(0)) == []
    assert [leg.dialog.state for leg in presence.legs["1000"].values()] == ["early", "early"]
    net.send(reply(inv0, 200, "OK", tag="d0", contact=f"sip:1000@127.0.0.1:{D0}"), ("127.0.0.1", D0))
    (confirmed,) = notifies(net.advance(0))
    assert dialog_states(confirmed) == [("confirmed", "recipient")]


def _without_version(body: bytes) -> bytes:
    root = ET.fromstring(body)
    root.set("version", "")
    return ET.tostring(root)


def test_a_watcher_added_later_gets_the_current_document_and_the_via_follows_our_address() -> None:
    """The dialog-info body is rendered once per change for all watchers, a watcher's DialogInfo
    once per state, its Via once per address: none of it may go stale."""
    net, devs = office()
    first = ("127.0.0.1", 33010)
    for n in notifies(authed_subscribe(net, devs[2].secret, "1000", src=first), first[1]):
        net.send(reply(n, 200, "OK"), first)
    out = net.send(invite("1000", TRUNK, from_user="0612345678"), TRUNK)
    inv0 = requests_to(out, D0, "INVITE")[0]
    (early,) = notifies(net.advance(0), first[1])
    net.send(reply(early, 200, "OK"), first)
    # a second watcher subscribing while it rings: the same document, its own version 0
    later = ("127.0.0.1", 33012)
    (initial,) = notifies(authed_subscribe(net, devs[2].secret, "1000", src=later), later[1])
    assert ET.fromstring(initial.body).get("version") == "0"
    assert _without_version(initial.body) == _without_version(early.body)
    assert dialog_states(initial) == [("early", "recipient")]
    net.send(reply(initial, 200, "OK"), later)
    # our address changes: the next NOTIFYs say so in their Via; the answer shows to both, tags in
    net.stack.local["udp"] = ("127.0.0.1", SERVER[1] + 1)
    net.send(reply(inv0, 200, "OK", tag="d0", contact=f"sip:1000@127.0.0.1:{D0}"), ("127.0.0.1", D0))
    out = net.advance(0)
    (a,), (b,) = notifies(out, first[1]), notifies(out, later[1])
    for n in (a, b):
        assert dialog_states(n) == [("confirmed", "recipient")]
        assert n.top_via.port == SERVER[1] + 1
        el = ET.fromstring(n.body).find(f"{D}dialog")
        assert el is not None and el.get("local-tag") == "d0" and el.get("remote-tag")
    assert _without_version(a.body) == _without_version(b.body)
    assert [ET.fromstring(n.body).get("version") for n in (a, b)] == ["2", "1"]
