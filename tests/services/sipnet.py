"""A sans-IO test bed: the real SIP core (`services.core.build_core`), fed with bytes, time stepped by hand.

No sockets: what the server would send is read from `stack.outbox`. Phones are plain
functions that build messages, so a test reads like a ladder diagram.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from onenumber.routing.model import Account, Binding, Device, DeviceKind
from onenumber.services.core import build_core
from onenumber.services.directory import Directory
from onenumber.services.events import Event, MediaRequest
from onenumber.services.location import Location
from onenumber.settings import Settings, Trunk
from onenumber.sip.auth import authorize
from onenumber.sip.message import Request, Response, parse
from onenumber.sip.stack import Send, Source
from onenumber.store import Snapshot

SERVER = ("127.0.0.1", 25060)
TRUNK = ("127.0.0.9", 5099)
_ids = itertools.count(1)


@dataclass
class Net:
    accounts: list[Account]
    devices: list[Device]
    settings: Settings = field(default_factory=Settings)
    trunks: tuple[Trunk, ...] = ()
    now: float = 1_000_000.0
    record_events: bool = True  # keep every call event for take_events() (benchmarks turn it off)
    presence: bool = True  # the presence service (BLF, message waiting) follows the calls

    def __post_init__(self) -> None:
        snap = Snapshot(tuple(self.accounts), tuple(self.devices), self.settings, self.trunks, 1)
        self.directory = Directory(snap)
        self.location = Location(None)
        self.core = build_core(
            self.directory, self.location, secret=b"k" * 32, realm="onenumber", local_hosts={"127.0.0.1"},
            clock=lambda: self.now, presence=self.presence,
        )
        self.stack = self.core.stack
        self.router = self.core.router
        self.stack.local = {"udp": SERVER, "tcp": SERVER}
        self.events: list[Event] = []
        if self.record_events:
            self.core.events.subscribe(self.events.append)

    # ------------------------------------------------------------------ plumbing
    def send(self, data: bytes | Request | Response, src: tuple[str, int], transport: str = "udp",
             conn: str | None = None) -> list[tuple[Send, Request | Response]]:
        raw = data if isinstance(data, bytes) else bytes(data)
        self.stack.receive(raw, Source(transport, src, SERVER, conn), self.now)
        return self.drain()

    def drain(self) -> list[tuple[Send, Request | Response]]:
        out: list[tuple[Send, Request | Response]] = []
        while True:  # as the driver: a subscriber may make the core send more
            out += [(s, parse(s.data, stream=True)) for s in self.stack.outbox]
            self.stack.outbox = []
            if not self.core.events.dispatch() and not self.stack.outbox:
                return out

    def fake_relay(self, *, answer_now: bool = True) -> list[MediaRequest]:
        """Stand in for rtpengine: every MediaRequest gets its SDP back marked with where it went
        (`a=relayed:webrtc` or `a=relayed:rtp`), at once or when the test calls `relay_answer`."""
        asked: list[MediaRequest] = []
        self.core.media.relay_ready = lambda: True

        def on_request(event: Event) -> None:
            assert isinstance(event, MediaRequest)
            asked.append(event)
            if answer_now:
                self.relay_answer(event)

        self.core.events.subscribe(on_request, MediaRequest)
        return asked

    def relay_answer(self, req: MediaRequest, *, fail: bool = False) -> None:
        kind = "webrtc" if req.to_webrtc else "rtp"
        sdp = None if fail else req.sdp + f"a=relayed:{kind}\r\n".encode()
        self.core.media.done(req.token, sdp, self.now)

    def take_events(self) -> list[Event]:
        """The call events emitted since the last call, in order."""
        self.core.events.dispatch()
        out, self.events[:] = list(self.events), []
        return out

    def advance(self, seconds: float) -> list[tuple[Send, Request | Response]]:
        target = self.now + seconds
        while True:
            nxt = self.stack.next_timer()
            if nxt is None or nxt > target:
                break
            self.now = max(self.now, nxt)
            self.stack.handle_timer(self.now)
        self.now = target
        return self.drain()

    def bind(self, device: Device, port: int, *, transport: str = "udp", flow: str | None = None) -> Binding:
        b = Binding(
            account=device.account, auth_username=device.auth_username,
            contact=f"sip:{device.auth_username}@127.0.0.1:{port}",
            expires_at=self.now + 3600, transport=transport, source=("127.0.0.1", port), local=SERVER, flow=flow,
        )
        self.location.apply([b], [])
        return b


def make_account(number: str, name: str, n_devices: int = 2, **kw: object) -> tuple[Account, list[Device]]:
    account = Account(number, name, **kw)  # type: ignore[arg-type]
    devices = [
        Device(number, p, DeviceKind.DESKPHONE if p == 0 else DeviceKind.SOFTPHONE,
               number if p == 0 else f"{number}_{p + 1}", f"secret-{number}-{p}")
        for p in range(n_devices)
    ]
    return account, devices


def invite(to_user: str, src: tuple[str, int], *, from_user: str = "caller", call_id: str | None = None,
           auth: str | None = None, cseq: int = 1) -> Request:
    call_id = call_id or f"call-{next(_ids)}"
    branch = f"z9hG4bKc{next(_ids)}"
    lines = [
        f"INVITE sip:{to_user}@127.0.0.1:{SERVER[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch={branch};rport",
        "Max-Forwards: 70",
        f'From: "Caller" <sip:{from_user}@127.0.0.1>;tag=ft{call_id}',
        f"To: <sip:{to_user}@127.0.0.1:{SERVER[1]}>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} INVITE",
        f"Contact: <sip:{from_user}@{src[0]}:{src[1]}>",
        "Content-Type: application/sdp",
    ]
    if auth:
        lines.append(f"Proxy-Authorization: {auth}")
    body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
    lines.append(f"Content-Length: {len(body)}")
    return parse(("\r\n".join(lines) + "\r\n\r\n").encode() + body)  # type: ignore[return-value]


def answer_auth(challenge_resp: Response, req: Request, user: str, password: str) -> str:
    ch = challenge_resp.headers.get("proxy-authenticate") or challenge_resp.headers.get("www-authenticate") or ""
    return authorize(ch, method=req.method, uri=req.uri, username=user, password=password, cnonce="abc")


def reply(req: Request, status: int, reason: str, *, tag: str | None = None, contact: str | None = None) -> Response:
    """What a phone answers to a request the server sent it."""
    h = req.headers
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in h.get_all("via")]
    for rr in h.get_all("record-route"):
        lines.append(f"Record-Route: {rr}")
    to = h.get("to") or ""
    if tag and ";tag=" not in to:
        to += f";tag={tag}"
    lines += [f"From: {h.get('from')}", f"To: {to}", f"Call-ID: {req.call_id}", f"CSeq: {h.get('cseq')}"]
    if contact:
        lines.append(f"Contact: <{contact}>")
    lines.append("Content-Length: 0")
    return parse(("\r\n".join(lines) + "\r\n\r\n").encode())  # type: ignore[return-value]


def requests_to(out: list[tuple[Send, Request | Response]], port: int, method: str | None = None) -> list[Request]:
    return [
        m for s, m in out
        if isinstance(m, Request) and s.remote[1] == port and (method is None or m.method == method)
    ]


def responses_to(out: list[tuple[Send, Request | Response]], port: int) -> list[Response]:
    return [m for s, m in out if isinstance(m, Response) and s.remote[1] == port]
