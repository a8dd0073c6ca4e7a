"""RFC 6665 subscriptions, sans-IO: SUBSCRIBE answers, NOTIFY building, refresh, expiry, watchers."""

import itertools
from xml.etree import ElementTree as ET

import pytest

from onenumber.services.subscriptions import (
    Package,
    State,
    SubscriptionPolicy,
    Subscriptions,
    WatchSettings,
    may_subscribe,
    may_watch,
    parse_watch_rule,
)
from onenumber.sip.bodies import DIALOG_NS, MessageSummary, dialog_info, message_summary, parse_message_summary
from onenumber.sip.message import Request, parse

CONTACT = "sip:onenumber@127.0.0.1:25060"


def subscribe(
    event: str = "dialog",
    expires: int | None = 600,
    to_tag: str | None = None,
    cseq: int = 1,
    call_id: str = "sub1@10.0.0.2",
    extra: str = "",
    contact: str = "<sip:1001@10.0.0.2:5080;transport=udp>",
) -> Request:
    lines = [
        "SUBSCRIBE sip:1000@example.com:25060 SIP/2.0",
        "Via: SIP/2.0/UDP 10.0.0.2:5080;branch=z9hG4bKabc;rport",
        "Max-Forwards: 70",
        'From: "Bob" <sip:1001@example.com>;tag=ft1',
        "To: <sip:1000@example.com>" + (f";tag={to_tag}" if to_tag else ""),
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} SUBSCRIBE",
        f"Contact: {contact}",
        f"Event: {event}",
    ]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if extra:
        lines.append(extra)
    return parse(("\r\n".join(lines) + "\r\nContent-Length: 0\r\n\r\n").encode())  # type: ignore[return-value]


def render_dialog(sub) -> bytes:
    return dialog_info(f"sip:{sub.target}@example.com", sub.version, [])


@pytest.fixture
def subs() -> Subscriptions:
    tags = (f"t{i}" for i in itertools.count(1))
    return Subscriptions(SubscriptionPolicy(min_expires=60, max_expires=3600), lambda: next(tags), CONTACT)


def test_new_subscription_answers_200_and_notifies(subs):
    ans = subs.on_subscribe(subscribe(), "1001", "1000", render_dialog, now=100.0)
    assert (ans.status, ans.reason) == (200, "OK")
    assert ("Expires", "600") in ans.headers
    assert ("Contact", f"<{CONTACT}>") in ans.headers
    sub = ans.subscription
    assert sub.dialog.local_tag == "t1" and sub.dialog.remote_tag == "ft1"
    assert sub.dialog.remote_target == "sip:1001@10.0.0.2:5080;transport=udp"
    assert len(subs) == 1 and list(subs.for_target(Package.DIALOG, "1000")) == [sub]
    resp = ans.response(subscribe())
    assert resp.status == 200 and resp.to.tag == "t1" and resp.headers.get("expires") == "600"
    assert subs.on_subscribe(subscribe(event="x"), "1001", "1000", render_dialog, 100.0).response(
        subscribe()).to.tag is None
    n = ans.notify
    assert n.method == "NOTIFY"
    assert n.uri == "sip:1001@10.0.0.2:5080;transport=udp"
    assert n.headers.get("from") == "<sip:1000@example.com>;tag=t1"
    assert n.headers.get("to") == "<sip:1001@example.com>;tag=ft1"
    assert n.call_id == "sub1@10.0.0.2"
    assert str(n.cseq) == "1 NOTIFY"
    assert n.headers.get("event") == "dialog"
    assert n.headers.get("subscription-state") == "active;expires=600"
    assert n.headers.get("content-type") == "application/dialog-info+xml"
    assert n.headers.get("contact") == f"<{CONTACT}>"
    assert "route" not in n.headers and "via" not in n.headers
    assert ET.fromstring(n.body).get("version") == "0"
    # the NOTIFY survives a trip through the parser (with a Via the stack adds)
    n.headers.prepend("Via", "SIP/2.0/UDP 127.0.0.1:25060;branch=z9hG4bKn1")
    again = parse(bytes(n))
    assert again.body == n.body and again.headers.get("content-length") == str(len(n.body))


def test_each_notify_counts_cseq_and_version(subs):
    sub = subs.on_subscribe(subscribe(), "1001", "1000", render_dialog, now=0.0).subscription
    n2, = subs.notify_target(Package.DIALOG, "1000", render_dialog, now=10.0)
    n3, = subs.notify_target(Package.DIALOG, "1000", render_dialog, now=20.0)
    assert [str(n.cseq) for n in (n2, n3)] == ["2 NOTIFY", "3 NOTIFY"]
    assert [ET.fromstring(n.body).get("version") for n in (n2, n3)] == ["1", "2"]
    assert n3.headers.get("subscription-state") == "active;expires=580"
    assert sub.notifies == 3
    assert subs.notify_target(Package.DIALOG, "2000", render_dialog, 0.0) == []
    assert subs.notify_target(Package.PRESENCE, "1000", render_dialog, 0.0) == []


def test_route_set_from_record_route(subs):
    req = subscribe(extra="Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>")
    n = subs.on_subscribe(req, "1001", "1000", render_dialog, 0.0).notify
    assert n.headers.get_all("route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert n.uri == "sip:1001@10.0.0.2:5080;transport=udp"


def test_strict_route_set(subs):
    req = subscribe(extra="Record-Route: <sip:strict.example.com>")
    n = subs.on_subscribe(req, "1001", "1000", render_dialog, 0.0).notify
    assert n.uri == "sip:strict.example.com"
    assert n.headers.get_all("route") == ["<sip:1001@10.0.0.2:5080;transport=udp>"]


def test_unknown_package_is_489(subs):
    ans = subs.on_subscribe(subscribe(event="reg"), "1001", "1000", render_dialog, 0.0)
    assert ans.status == 489
    assert dict(ans.headers)["Allow-Events"] == "dialog, message-summary, presence"
    assert subs.on_subscribe(subscribe(event="dialog;id=;;"), "1001", "1000", render_dialog, 0.0).status == 489
    assert len(subs) == 0


def test_missing_event_and_contact(subs):
    req = subscribe()
    req.headers.remove("Event")
    assert subs.on_subscribe(req, "1001", "1000", render_dialog, 0.0).status == 400
    req = subscribe()
    req.headers.remove("Contact")
    assert subs.on_subscribe(req, "1001", "1000", render_dialog, 0.0).status == 400


def test_accept_must_allow_the_body(subs):
    ans = subs.on_subscribe(subscribe(extra="Accept: application/pidf+xml"), "1001", "1000", render_dialog, 0.0)
    assert ans.status == 406
    ok = subs.on_subscribe(
        subscribe(extra="Accept: application/pidf+xml, application/dialog-info+xml"), "1001", "1000",
        render_dialog, 0.0,
    )
    assert ok.status == 200


def test_expires_rules(subs):
    assert subs.on_subscribe(subscribe(expires=30), "1001", "1000", render_dialog, 0.0).status == 423
    ans = subs.on_subscribe(subscribe(expires=30), "1001", "1000", render_dialog, 0.0)
    assert dict(ans.headers)["Min-Expires"] == "60"
    big = subs.on_subscribe(subscribe(expires=99999, call_id="b"), "1001", "1000", render_dialog, 0.0)
    assert dict(big.headers)["Expires"] == "3600"
    default = subs.on_subscribe(subscribe(expires=None, call_id="c"), "1001", "1000", render_dialog, 0.0)
    assert dict(default.headers)["Expires"] == "3600"


def test_fetch_with_expires_zero(subs):
    ans = subs.on_subscribe(subscribe(expires=0), "1001", "1000", render_dialog, 0.0)
    assert ans.status == 200 and dict(ans.headers)["Expires"] == "0"
    assert ans.notify.headers.get("subscription-state") == "terminated;reason=timeout"
    assert len(subs) == 0


def test_forbidden_watcher(subs):
    ans = subs.on_subscribe(subscribe(), "1001", "1000", render_dialog, 0.0, allowed=False)
    assert ans.status == 403 and ans.notify is None and len(subs) == 0


def test_refresh_and_unsubscribe(subs):
    sub = subs.on_subscribe(subscribe(), "1001", "1000", render_dialog, 0.0).subscription
    ans = subs.on_subscribe(
        subscribe(to_tag="t1", cseq=2, expires=900, contact="<sip:1001@10.0.0.7:5090>"), "1001", "1000",
        render_dialog, 100.0,
    )
    assert ans.status == 200 and ans.subscription is sub
    assert sub.expires_at == 1000.0 and sub.dialog.remote_target == "sip:1001@10.0.0.7:5090"
    assert ans.notify.uri == "sip:1001@10.0.0.7:5090"
    assert ans.notify.headers.get("subscription-state") == "active;expires=900"
    # a refresh that is not newer
    assert subs.on_subscribe(subscribe(to_tag="t1", cseq=2), "1001", "1000", render_dialog, 100.0).status == 500
    # an unknown dialog
    assert subs.on_subscribe(subscribe(to_tag="nope", cseq=3), "1001", "1000", render_dialog, 100.0).status == 481
    # refreshes are not re-judged by the watcher policy, unsubscribe ends it
    bye = subs.on_subscribe(subscribe(to_tag="t1", cseq=3, expires=0), "1001", "1000", render_dialog, 200.0,
                            allowed=False)
    assert bye.status == 200
    assert bye.notify.headers.get("subscription-state") == "terminated;reason=timeout"
    assert str(bye.notify.cseq) == "3 NOTIFY"
    assert len(subs) == 0 and sub.state is State.TERMINATED
    assert subs.next_expiry() is None


def test_expiry_heap(subs):
    a = subs.on_subscribe(subscribe(expires=100, call_id="a"), "1001", "1000", render_dialog, 0.0).subscription
    b = subs.on_subscribe(subscribe(expires=200, call_id="b"), "1002", "1000", render_dialog, 0.0).subscription
    c = subs.on_subscribe(subscribe(expires=300, call_id="c"), "1003", "1000", render_dialog, 0.0).subscription
    assert subs.next_expiry() == 100.0
    # a is refreshed to 400: its old heap entry goes stale
    subs.on_subscribe(subscribe(to_tag=a.dialog.local_tag, cseq=2, expires=400, call_id="a"), "1001", "1000",
                      render_dialog, 0.0)
    assert subs.next_expiry() == 200.0
    assert subs.expire(199.0) == []
    assert subs.expire(300.0) == [b, c]
    assert subs.next_expiry() == 400.0
    final = subs.notify(b, render_dialog, 300.0, reason="timeout")
    assert final.headers.get("subscription-state") == "terminated;reason=timeout"
    assert [s.target for s in subs.for_target(Package.DIALOG, "1000")] == ["1000"]
    assert subs.expire(1000.0) == [a] and len(subs) == 0


def test_notify_failure_ends_subscription(subs):
    sub = subs.on_subscribe(subscribe(), "1001", "1000", render_dialog, 0.0).subscription
    subs.notify_failed(sub, 503)
    assert len(subs) == 1
    subs.notify_failed(sub, 481)
    assert len(subs) == 0 and subs.next_expiry() is None
    sub2 = subs.on_subscribe(subscribe(call_id="x"), "1001", "1000", render_dialog, 0.0).subscription
    subs.notify_failed(sub2, None)
    assert len(subs) == 0


def test_event_id_keeps_subscriptions_apart(subs):
    a = subs.on_subscribe(subscribe(event="dialog;id=1"), "1001", "1000", render_dialog, 0.0)
    b = subs.on_subscribe(subscribe(event="dialog;id=2"), "1001", "1000", render_dialog, 0.0)
    assert a.subscription is not b.subscription and len(subs) == 2
    assert a.notify.headers.get("event") == "dialog;id=1"


def test_message_summary_notify(subs):
    summary = MessageSummary(new=1, old=2, account="sip:*98@example.com")
    ans = subs.on_subscribe(
        subscribe(event="message-summary"), "1000", "1000", lambda s: message_summary(summary), 0.0
    )
    assert ans.notify.headers.get("content-type") == "application/simple-message-summary"
    assert parse_message_summary(ans.notify.body).waiting
    assert ET.fromstring(dialog_info("sip:x@y", 0, [])).tag == f"{{{DIALOG_NS}}}dialog-info"


def test_may_watch():
    everyone = WatchSettings("example.com")
    assert may_watch("1001", "1000", everyone)
    assert may_watch("1001", "1000", everyone, watcher_domain="EXAMPLE.com", target_domain="example.com")
    assert not may_watch("1001", "1000", everyone, watcher_domain="evil.com")
    assert not may_watch("1001", "1000", everyone, target_domain="other.com")
    nobody = parse_watch_rule("nobody")
    assert not may_watch("1001", "1000", nobody) and may_watch("1000", "1000", nobody)
    listed = parse_watch_rule("1001:1000, *:2000, 3000:*")
    assert may_watch("1001", "1000", listed)
    assert not may_watch("1002", "1000", listed)
    assert may_watch("1002", "2000", listed)
    assert may_watch("3000", "1000", listed)
    assert parse_watch_rule("").rule == "everyone" == parse_watch_rule("Everyone").rule
    with pytest.raises(ValueError):
        parse_watch_rule("1001")


def test_message_waiting_is_private():
    everyone = WatchSettings()
    assert may_subscribe(Package.MESSAGE_SUMMARY, "1000", "1000", everyone)
    assert not may_subscribe(Package.MESSAGE_SUMMARY, "1001", "1000", everyone)
    assert may_subscribe(Package.DIALOG, "1001", "1000", everyone)
    assert not may_subscribe(Package.PRESENCE, "1001", "1000", parse_watch_rule("nobody"))
    assert not may_subscribe(Package.MESSAGE_SUMMARY, "1000", "1000", WatchSettings("a.com"),
                             watcher_domain="b.com")


# -- NOTIFYs from a template (notify_data) ------------------------------------------------------


VIA = "SIP/2.0/UDP 127.0.0.1:25060"


def _twins(extra: str = "", contact: str = "<sip:1001@10.0.0.2:5080;transport=udp>", prepare: bool = False):
    """The same subscription in two stores: one NOTIFYs through `notify`, the other `notify_data`
    (its template made from the SUBSCRIBE's NOTIFY with `prepare`, else on the first one)."""
    out = []
    for i in range(2):
        tags = (f"t{i}" for i in itertools.count(1))
        s = Subscriptions(SubscriptionPolicy(), tags.__next__, lambda n: f"sip:{n}@127.0.0.1:25060")
        ans = s.on_subscribe(subscribe(extra=extra, contact=contact), "1001", "1000", render_dialog, now=0.0)
        if prepare and i == 1:
            s.prepare(ans.subscription, VIA, ans.notify)
            assert ans.subscription.prepared is not None
        out.append((s, ans.subscription))
    return out


def _with_via(req: Request, branch: str) -> bytes:
    req.headers.prepend("Via", f"{VIA};branch={branch};rport")
    return bytes(req)


@pytest.mark.parametrize("prepare", [False, True])
@pytest.mark.parametrize("extra", [
    "",
    "Record-Route: <sip:10.0.0.9;lr>, <sip:10.0.0.8;lr>",
    "Record-Route: <sip:10.0.0.9>",  # a strict router: the Request-URI is the route, the target goes last
])
def test_notify_data_is_the_notify_request_serialized(extra, prepare):
    (a, sa), (b, sb) = _twins(extra, contact="<sip:10%2501@10.0.0.2:5080;transport=udp>", prepare=prepare)
    made = sb.prepared
    for now, reason in ((10.0, None), (20.0, None), (30.0, "timeout")):
        req = a.notify(sa, render_dialog, now, reason=reason)
        data, prepared = b.notify_data(sb, render_dialog, now, VIA, f"z9hG4bK{now}", reason=reason)
        assert data == _with_via(req, f"z9hG4bK{now}")
        assert [str(r) for r in prepared.routes] == [str(r) for r in req.routes]
        assert sa.dialog.local_cseq == sb.dialog.local_cseq and sa.version == sb.version
        assert not prepare or sb.prepared is made  # the template made from the first NOTIFY serves on
    assert len(b) == 0 and sb.state is State.TERMINATED
    assert parse(data).headers.get("subscription-state") == "terminated;reason=timeout"


def test_notify_data_template_follows_a_target_refresh_and_the_via():
    (a, sa), (b, sb) = _twins()
    b.notify_data(sb, render_dialog, 1.0, VIA, "z9hG4bK1")
    a.notify(sa, render_dialog, 1.0)
    first = sb.prepared
    for s in (a, b):
        s.on_subscribe(subscribe(to_tag="t1", cseq=2, contact="<sip:1001@10.0.0.7:5090>"), "1001", "1000",
                       render_dialog, now=2.0)
    data, _ = b.notify_data(sb, render_dialog, 3.0, "SIP/2.0/TCP 127.0.0.1:25061", "z9hG4bK2")
    assert sb.prepared is not first
    req = a.notify(sa, render_dialog, 3.0)
    req.headers.prepend("Via", "SIP/2.0/TCP 127.0.0.1:25061;branch=z9hG4bK2;rport")
    assert data == bytes(req) and req.uri == "sip:1001@10.0.0.7:5090"
