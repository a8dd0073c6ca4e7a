"""The transaction layer glue: Via stamping, retransmission absorption, stateless errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.sip.message import Request, Response, parse
from onenumber.sip.stack import _LIGHT_BRANCH, _LIGHT_CSEQ, _LIGHT_VIA, Source, Stack, Target, light_key

SRC = Source("udp", ("10.0.0.5", 40000), ("127.0.0.1", 25060))


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.responses: list[Response] = []
        self.timeouts = 0
        self.stack: Stack

    def on_request(self, txn, req, now):
        self.requests.append(req)
        self.stack.respond(txn, self.stack.make_response(req, 200, "OK"), now)

    def on_ack(self, req, source, now):
        self.requests.append(req)

    def on_cancel(self, txn, req, now):
        pass

    def on_response(self, txn, resp, now):
        self.responses.append(resp)

    def on_timeout(self, txn, now):
        self.timeouts += 1

    def on_stray_response(self, resp, source, now):
        pass


def make() -> tuple[Stack, Recorder]:
    tu = Recorder()
    stack = Stack(tu)
    tu.stack = stack
    return stack, tu


OPTIONS = (
    b"OPTIONS sip:127.0.0.1:25060 SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.9:5062;branch=z9hG4bKabc;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_response_goes_to_received_and_rport_and_retransmission_is_absorbed() -> None:
    stack, tu = make()
    stack.receive(OPTIONS, SRC, 0.0)
    (sent,) = stack.outbox
    assert sent.remote == ("10.0.0.5", 40000)
    via = parse(sent.data).top_via
    assert via.param("received") == "10.0.0.5" and via.param("rport") == "40000"
    stack.outbox.clear()
    stack.receive(OPTIONS, SRC, 0.1)
    assert len(tu.requests) == 1 and len(stack.outbox) == 1  # the stored 200 again, TU not called


def test_malformed_request_gets_400_and_garbage_is_dropped() -> None:
    stack, tu = make()
    stack.receive(OPTIONS.replace(b"CSeq: 1 OPTIONS", b"CSeq: 1 INVITE"), SRC, 0.0)
    (sent,) = stack.outbox
    assert parse(sent.data).status == 400  # type: ignore[union-attr]
    stack.outbox.clear()
    stack.receive(b"\xff\xfe not sip at all", SRC, 0.0)
    assert stack.outbox == [] and tu.requests == []


def test_client_transaction_retransmits_and_times_out() -> None:
    stack, tu = make()
    req = parse(OPTIONS.replace(b"z9hG4bKabc", b"z9hG4bKout1"))
    assert isinstance(req, Request)
    stack.send_request(req, Target("udp", "127.0.0.1", 40002), 0.0)
    assert len(stack.outbox) == 1
    now = 0.0
    while (t := stack.next_timer()) is not None and t <= 40:
        now = t
        stack.handle_timer(now)
    assert tu.timeouts == 1
    assert len(stack.outbox) > 5  # E retransmissions until F


def test_sip_core_is_sans_io() -> None:
    import ast
    from pathlib import Path

    root = Path(__file__).parents[2] / "onenumber"
    for package in ("sip", "routing"):
        for path in (root / package).glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for name in names:
                    assert name.split(".")[0] not in {"asyncio", "socket", "time", "sqlalchemy"}, (path, name)


def test_add_via_remembers_what_parsing_would_give() -> None:
    stack, _ = make()
    req = Request("NOTIFY", "sip:w@10.0.0.5:40000")
    req.headers.add("Via", "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKold")
    branch = stack.add_via(req, "udp", "127.0.0.1", 25060)
    assert req.headers.get_all("via")[1] == "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKold"
    remembered = req.top_via
    from onenumber.sip.headers import Via

    assert remembered == Via.parse(req.headers.get("via") or "")
    assert remembered.branch == branch and remembered.param("rport") == ""
    req.headers.replace_first("via", "SIP/2.0/TCP 127.0.0.2:5070;branch=z9hG4bKother")
    assert req.top_via.transport == "TCP"  # a change to the Via drops what was remembered


NOTIFY = (
    b"NOTIFY sip:b@10.0.0.5:40000 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:25060;branch=%b;rport\r\n"
    b"Max-Forwards: 70\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: n1\r\nCSeq: 7 NOTIFY\r\n"
    b"Event: dialog\r\nSubscription-State: active;expires=60\r\nContent-Length: 0\r\n\r\n"
)


def _answer(branch: bytes, status: bytes = b"200 OK", via: bytes | None = None) -> bytes:
    via = via if via is not None else b"Via: SIP/2.0/UDP 127.0.0.1:25060;branch=" + branch + b";rport=25060"
    return (b"SIP/2.0 " + status + b"\r\n" + via + b"\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\n"
            b"Call-ID: n1\r\nCSeq: 7 NOTIFY\r\nContent-Length: 0\r\n\r\n")


def test_prepared_request_is_sent_and_its_answer_matched_from_the_bytes() -> None:
    stack, tu = make()
    branch = stack.new_branch()
    data = NOTIFY % branch.encode()
    txn = stack.send_prepared(data, branch, "NOTIFY", Target("udp", "10.0.0.5", 40000), 0.0)
    assert [s.data for s in stack.outbox] == [data] and txn.light and txn.method == "NOTIFY"
    stack.outbox.clear()
    stack.receive(_answer(branch.encode(), b"481 Subscription Does Not Exist"), SRC, 0.1)
    (resp,) = tu.responses
    assert (resp.status, resp.reason) == (481, "Subscription Does Not Exist")
    assert resp.call_id == "n1" and resp.body == b""  # the rest parsed when read
    assert stack.outbox == []  # no ACK for a non-INVITE
    assert stack.client_txns == {} and stack._light == 0  # a final ends it: no Timer K
    stack.receive(_answer(branch.encode()), SRC, 0.2)  # a late retransmission: stray, dropped
    assert len(tu.responses) == 1 and stack.outbox == []
    stack.handle_timer(40.0)  # its Timer E/F entries come up: nothing fires
    assert stack.outbox == [] and tu.timeouts == 0


def test_prepared_request_retransmits_and_times_out() -> None:
    stack, tu = make()
    branch = stack.new_branch()
    stack.send_prepared(NOTIFY % branch.encode(), branch, "NOTIFY", Target("udp", "10.0.0.5", 40000), 0.0)
    now = 0.0
    while stack.next_timer() is not None and now < 40:
        now = stack.next_timer()  # type: ignore[assignment]
        stack.handle_timer(now)
    assert tu.timeouts == 1 and len(stack.outbox) > 3 and stack.client_txns == {}


def _send_times(stack: Stack, until: float) -> list[float]:
    """When the stack (re)sends, stepping its timers as the driver does."""
    times = [0.0] * len(stack.outbox)
    stack.outbox.clear()
    while (at := stack.next_timer()) is not None and at <= until:
        stack.handle_timer(at)
        times += [at] * len(stack.outbox)
        stack.outbox.clear()
    return times


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_prepared_requests_retransmit_as_the_general_transaction_does(transport: str) -> None:
    """The queue of first deadlines (UDP) gives the schedule of RFC 3261 §17.1.2.2, as the
    table-driven transaction: Timer E from T1 doubling to T2, Timer F at 64·T1."""
    light, tu = make()
    light.send_prepared(NOTIFY % b"z9hG4bKl1", "z9hG4bKl1", "NOTIFY", Target(transport, "10.0.0.5", 40000), 0.0)
    general, tu2 = make()
    req = parse(NOTIFY % b"z9hG4bKg1")
    assert isinstance(req, Request)
    general.send_request(req, Target(transport, "10.0.0.5", 40000), 0.0)
    assert _send_times(light, 40.0) == _send_times(general, 40.0)
    assert tu.timeouts == tu2.timeouts == 1 and light.client_txns == {} and light.timer_entries == 0


def test_answered_prepared_requests_leave_no_timer_to_arm() -> None:
    """Answered NOTIFYs are dropped from the head of the queue by next_timer: the driver arms
    nothing for them, and their transactions are freed at once."""
    stack, tu = make()
    target = Target("udp", "10.0.0.5", 40000)
    branches = [stack.new_branch() for _ in range(3)]
    for i, branch in enumerate(branches):
        stack.send_prepared(NOTIFY % branch.encode(), branch, "NOTIFY", target, 0.01 * i)
    assert stack.next_timer() == 0.5
    for branch in branches[:2]:
        stack.receive(_answer(branch.encode()), SRC, 0.1)
    assert stack.next_timer() == 0.52 and stack.timer_entries == 1  # the third, unanswered
    stack.outbox.clear()
    stack.handle_timer(0.52)  # its Timer E: retransmitted, the next deadline in the heap
    assert [s.data for s in stack.outbox] == [NOTIFY % branches[2].encode()] and stack.next_timer() == 1.52
    stack.receive(_answer(branches[2].encode()), SRC, 0.6)
    assert stack.gc_paced() == stack.stats["received"] - 3 == 0  # the three light answers
    assert stack.client_txns == {} and tu.timeouts == 0
    stack.handle_timer(40.0)
    assert stack.next_timer() is None and tu.timeouts == 0


def test_prepared_request_sent_after_the_clock_went_back_keeps_its_deadline() -> None:
    """A first deadline earlier than the queue's last goes to the heap (the queue stays in order)."""
    stack, _tu = make()
    target = Target("udp", "10.0.0.5", 40000)
    stack.send_prepared(NOTIFY % b"z9hG4bKa", "z9hG4bKa", "NOTIFY", target, 10.0)
    stack.send_prepared(NOTIFY % b"z9hG4bKb", "z9hG4bKb", "NOTIFY", target, 5.0)  # the clock stepped back
    stack.outbox.clear()
    assert stack.next_timer() == 5.5
    stack.handle_timer(5.5)
    assert [s.data for s in stack.outbox] == [NOTIFY % b"z9hG4bKb"]
    stack.outbox.clear()
    stack.handle_timer(10.5)
    assert NOTIFY % b"z9hG4bKa" in [s.data for s in stack.outbox]


def test_unusual_answers_to_a_prepared_request_take_the_parsing_path() -> None:
    stack, tu = make()
    branch = stack.new_branch()
    stack.send_prepared(NOTIFY % branch.encode(), branch, "NOTIFY", Target("udp", "10.0.0.5", 40000), 0.0)
    folded = _answer(branch.encode(), via=b"v: SIP/2.0/UDP 127.0.0.1:25060\r\n ;branch=" + branch.encode())
    assert not stack._receive_light(folded, SRC, 0.1)
    stack.receive(folded, SRC, 0.1)  # compact and folded: parsed in full, matched all the same
    (resp,) = tu.responses
    assert resp.status == 200 and type(resp) is Response
    other = _answer(b"z9hG4bKsomeoneelse")
    assert not stack._receive_light(other, SRC, 0.2)
    assert not stack._receive_light(_answer(branch.encode(), b"2000 OK"), SRC, 0.2)


def test_an_answer_with_a_body_to_a_prepared_request_is_parsed_in_full() -> None:
    stack, tu = make()
    branch = stack.new_branch()
    stack.send_prepared(NOTIFY % branch.encode(), branch, "NOTIFY", Target("udp", "10.0.0.5", 40000), 0.0)
    answer = _answer(branch.encode()).replace(b"Content-Length: 0\r\n\r\n", b"Content-Length: 2\r\n\r\nhi")
    assert not stack._receive_light(answer, SRC, 0.1)  # a LazyResponse has no body of its own
    stack.receive(answer, SRC, 0.1)
    (resp,) = tu.responses
    assert type(resp) is Response and resp.body == b"hi"


def test_a_lazy_response_reads_as_the_parsed_one() -> None:
    from onenumber.sip.message import LazyResponse

    data = _answer(b"z9hG4bKlazy", b"481 Gone")
    lazy, full = LazyResponse(481, "Gone", data), parse(data)
    assert bytes(lazy) == bytes(full)  # bytes: the fields are loaded first
    lazy = LazyResponse(481, "Gone", data)
    assert "cseq" in lazy.headers and len(lazy.headers) == len(full.headers)
    assert lazy.call_id == "n1" and lazy.cseq.method == "NOTIFY" and lazy.top_via.branch == "z9hG4bKlazy"
    assert list(LazyResponse(481, "Gone", data).headers) == list(full.headers)
    assert LazyResponse(481, "Gone", data).headers == full.headers == LazyResponse(481, "Gone", data).headers
    keys = frozenset({"cseq", "require"})
    assert LazyResponse(481, "Gone", data).headers.has_any(keys) and full.headers.has_any(keys)
    assert not LazyResponse(481, "Gone", data).headers.has_any(frozenset({"require"}))
    broken = LazyResponse(200, "OK", b"SIP/2.0 200 OK\r\nCSeq: nonsense\r\n\r\n")
    assert len(broken.headers) == 0 and broken.body == b""  # malformed: no header fields


class CancelRecorder(Recorder):
    """Leaves INVITEs unanswered (so a CANCEL reaches the TU) and keeps what on_cancel is given."""

    def __init__(self) -> None:
        super().__init__()
        self.cancels: list[Request] = []

    def on_request(self, txn, req, now):
        if req.method != "INVITE":
            super().on_request(txn, req, now)

    def on_cancel(self, txn, req, now):
        self.cancels.append(req)


def test_the_tu_is_handed_the_cancel_request() -> None:
    tu = CancelRecorder()
    stack = Stack(tu)
    tu.stack = stack
    invite = OPTIONS.replace(b"OPTIONS", b"INVITE")
    stack.receive(invite, SRC, 0.0)
    stack.receive(invite.replace(b"INVITE", b"CANCEL"), SRC, 0.1)
    (cancel,) = tu.cancels  # was None: answering the CANCEL released its transaction's request
    assert cancel.method == "CANCEL" and cancel.call_id == "c1"
    assert [parse(s.data).status for s in stack.outbox] == [200]  # the CANCEL's 200 (no 100 for it)


def _regex_key(data: bytes, end: int) -> tuple[bytes, bytes] | None:
    """How the light path matched an answer before `light_key` (the general regexes alone)."""
    via, cseq = _LIGHT_VIA.search(data, 0, end), _LIGHT_CSEQ.search(data, 0, end)
    if via is None or cseq is None:
        return None
    value = via.group(1)
    if b'"' in value or b"," in value:
        return None
    branch = _LIGHT_BRANCH.search(value)
    return None if branch is None else (branch.group(1), cseq.group(1))


def test_light_key_of_the_usual_answer_and_of_odd_ones() -> None:
    data = _answer(b"z9hG4bKab1")
    assert light_key(data, data.find(b"\r\n\r\n")) == (b"z9hG4bKab1", b"NOTIFY")
    odd = (b"SIP/2.0 200 OK\r\nv :\tSIP/2.0/UDP h ; BRANCH = z9hG4bKx ;rport\r\nVia: SIP/2.0/UDP g;branch=y\r\n"
           b"cseq:7\t\tnotify\r\nCSeq: 8 NOTIFY\r\n\r\n")
    end = odd.find(b"\r\n\r\n")
    assert light_key(odd, end) == (b"z9hG4bKx", b"notify") == _regex_key(odd, end)


_NAMES = st.sampled_from(["Via", "via", "v", "Vx", "Viax", "CSeq", "cseq", "CSeqx", "Call-ID", "From", "To"])
_SEPS = st.sampled_from([": ", ":", " : ", "\t:\t", ":  ", ": \t"])
_BITS = st.lists(st.sampled_from(["SIP/2.0/UDP h:5060", ";branch=", ";BRANCH = ", ";branch= ", "z9hG4bK1", ";rport",
                                  " ", "\t", '"', ",", ";", "1", "12", " NOTIFY", "\tNOTIFY", "NOT1FY", "x", "\r",
                                  "\n"]), max_size=6).map("".join)
_LINES = st.lists(st.tuples(_NAMES, _SEPS, _BITS).map("".join), max_size=3)
# the usual top Via, and small departures from it
_VIA = st.tuples(st.sampled_from(["Via: "] * 4 + ["via: ", "VIA:", "v: ", "Via : ", "Via:\t"]), st.sampled_from([
    *["SIP/2.0/UDP h:5060;branch=z9hG4bK7;rport", "SIP/2.0/UDP h;branch=z9hG4bK7"] * 4, "SIP/2.0/UDP h;rport;branch=b",
    "SIP/2.0/UDP h;BRANCH=b;rport", "SIP/2.0/UDP h ;branch=x", "SIP/2.0/UDP h;branch=", "SIP/2.0/UDP h;branch=a b",
    "SIP/2.0/UDP h;branch=a\tb", "SIP/2.0/UDP h;branch=;branch=c", 'SIP/2.0/UDP "h";branch=x',
    " SIP/2.0/UDP h;branch=y", "SIP/2.0/UDP h;branch=x, SIP/2.0/UDP g;branch=y", "SIP/2.0/UDP h;branch=x\ry",
    "SIP/2.0/UDP h;branch=x;a\nb",
    "SIP/2.0/UDP h", ""])).map("".join)
_CSEQ = st.sampled_from(["CSeq: 1 NOTIFY", "CSeq: 1 NOTIFY", "cseq: 12 INVITE", "CSeq:1\tNOTIFY", "CSeq: x NOTIFY"])


@settings(max_examples=1000, deadline=None)
@given(_VIA, _LINES, st.none() | _CSEQ, _LINES, st.booleans())
def test_light_key_finds_what_the_general_regexes_find(via: str, a: list[str], cseq: str | None, b: list[str],
                                                       via_later: bool) -> None:
    lines = [*a, *([cseq] if cseq is not None else []), *b]
    lines.insert(len(lines) if via_later else 0, via)
    data = ("SIP/2.0 200 OK\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()
    end = data.find(b"\r\n\r\n")
    assert light_key(data, end) == _regex_key(data, end)
    no_via = data.replace(via.encode() + b"\r\n", b"", 1)
    assert light_key(no_via, no_via.find(b"\r\n\r\n")) == _regex_key(no_via, no_via.find(b"\r\n\r\n"))


VIA_SHAPES = [
    "SIP/2.0/UDP 192.168.1.9:5062;branch=z9hG4bKabc;rport",
    "SIP/2.0/UDP 192.168.1.9;branch=z9hG4bKabc;rport",
    "SIP/2.0/TCP host.example.com:5060 ; branch = z9hG4bKx ; rport ; x=\"a b\"",
    "SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bKv6;rport;received=10.9.9.9",
    "SIP/2.0/UDP 10.0.0.5:40000;branch=z9hG4bKsame;rport",
    "sip/2.0/udp 192.168.1.9:5062;rport;branch=z9hG4bKlower;maddr=1.2.3.4;ttl=1",
]


def test_stamped_via_remembered_is_what_parsing_it_gives() -> None:
    """_stamp_via caches the Via it built under its text: the same as parsing that text."""
    from onenumber.sip import headers

    for shape in VIA_SHAPES:
        for source in (SRC, Source("udp", ("2001:db8::1", 5070), ("127.0.0.1", 25060))):
            raw = OPTIONS.replace(b"SIP/2.0/UDP 192.168.1.9:5062;branch=z9hG4bKabc;rport", shape.encode())
            req = parse(raw)
            stack, _ = make()
            via = stack._stamp_via(req, source)
            value = req.headers.get("via") or ""
            assert headers.Via._parse(value) == via


@pytest.mark.parametrize(("host", "params", "source", "stamped"), [
    ("10.0.0.1", (("branch", "z9hG4bK1"),), "10.0.0.1", None),  # nothing to add
    ("10.0.0.1", (("branch", "z9hG4bK1"), ("rport", None)), "10.0.0.1",
     (("branch", "z9hG4bK1"), ("rport", "5070"), ("received", "10.0.0.1"))),
    ("pbx.example", (("branch", "z9hG4bK1"),), "10.0.0.2", (("branch", "z9hG4bK1"), ("received", "10.0.0.2"))),
    # a received= naming another address is dropped (every one of them), ours is written
    ("10.0.0.1", (("Received", "10.9.9.9"), ("received", "10.0.0.2"), ("RPORT", None)), "10.0.0.2",
     (("rport", "5070"), ("received", "10.0.0.2"))),
    # a received= naming the source already stays; an rport with a value is not ours to fill
    ("pbx.example", (("received", "[::1]"), ("rport", "5060"), ("rport", None)), "::1",
     (("received", "[::1]"), ("rport", "5060"), ("rport", "5070"))),
])
def test_stamped_via_params(host: str, params: tuple, source: str, stamped: tuple | None) -> None:
    from onenumber.sip.headers import Via
    from onenumber.sip.stack import _stamped_params

    assert _stamped_params(Via("UDP", host, 5060, params), source, 5070) == stamped
