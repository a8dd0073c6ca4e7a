"""CPU cost of whole SIP exchanges through the sans-IO core (pytest-benchmark, no sockets).

    .venv/bin/python -m pytest bench/bench_core.py --benchmark-only

- an authenticated registration: REGISTER → 401 → REGISTER with digest → 200, through the
  real stack, application and location service;
- a forked call: INVITE from a trunk → 100, two branches → 180 ×2 → one 200 → CANCEL of the
  other → 200/487/ACK → ACK relayed → BYE relayed → 200.

What is left once these are subtracted from the SIPp figures is socket I/O and the event loop.
Simulated time advances 2 ms per exchange (500/s) so transactions expire as they would in
the server, and the collector is tuned as `onenumber serve` tunes it.
"""

from __future__ import annotations

import gc
import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from onenumber.routing.model import Device
from onenumber.settings import Trunk
from onenumber.sip.auth import authorize
from onenumber.sip.message import Request, Response
from onenumber.sip.stack import Send, Source
from onenumber.transport.gcpace import THRESHOLDS as GC_THRESHOLDS
from tests.services.sipnet import (
    SERVER,
    TRUNK,
    Net,
    answer_auth,
    invite,
    make_account,
    reply,
    requests_to,
    responses_to,
)
from tests.services.test_registrar_app import register

ACCOUNTS = 1000
STEP = 0.002  # simulated seconds per exchange


def _tick(net: Net) -> None:
    net.now += STEP
    net.stack.handle_timer(net.now)


def _net() -> tuple[Net, list]:
    accounts, devices = [], []
    for i in range(ACCOUNTS):
        a, d = make_account(str(10000 + i), f"User {i}", 2)
        accounts.append(a)
        devices += d
    net = Net(accounts, devices, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),), record_events=False,
              presence=os.environ.get("ONENUMBER_BENCH_PRESENCE") == "1")
    if os.environ.get("ONENUMBER_BENCH_HISTORY") == "1":  # the history subscriber, as `serve` runs it
        from onenumber.services.events import CallEnded, CallFailed
        from onenumber.services.history import HistoryWriter

        writer = HistoryWriter(None, net.core.events, net.directory)
        # no store here: drop the rows now and then; subscribed to the events history itself
        # follows only (a subscriber to every event would make the core build them all)
        net.core.events.subscribe(lambda event: writer.pending.clear() if len(writer.pending) > 1000 else None,
                                  CallEnded, CallFailed)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)  # as onenumber.main does
    return net, devices


def test_authenticated_registration(benchmark) -> None:
    net, devices = _net()
    src = ("127.0.0.1", 33000)
    source = Source("udp", src, SERVER)
    challenge = responses_to(net.send(register("10000"), src), src[1])[0].headers.get("www-authenticate") or ""
    counter = itertools.count(1)
    n_dev = len(devices)
    prepared = []
    # count_core.py asks for fewer (the same number with N and with 0: set-up cancels out)
    for i in range(int(os.environ.get("ONENUMBER_BENCH_PREPARED", "20000"))):
        dev = devices[i % n_dev]
        contact = f"sip:{dev.auth_username}@127.0.0.1:{40000 + i % n_dev}"
        auth = authorize(challenge, method="REGISTER", uri="sip:127.0.0.1:25060", username=dev.auth_username,
                         password=dev.secret, cnonce="bench", nc=i + 1)
        prepared.append((register(dev.account, call_id=f"r{i}", contact=contact),
                         register(dev.account, call_id=f"r{i}", cseq=2, auth=auth, contact=contact)))
    stack = net.stack

    def one() -> None:
        first, second = prepared[next(counter) % len(prepared)]
        stack.receive(first, source, net.now)
        stack.receive(second, source, net.now)
        stack.outbox.clear()
        net.core.events.dispatch()  # as the driver does after each input
        _tick(net)

    benchmark(one)


D0, D1 = 31000, 31002  # every account's two devices are bound here
CALLER = ("127.0.0.1", 33000)  # where the authenticated calls come from
SendFn = Callable[[bytes | Request | Response, tuple[str, int]], list[tuple[Send, Request | Response]]]


def forked_call(send: SendFn, n: int, target: str, prefix: str = "bench",
                caller: tuple[Device, tuple[str, int]] | None = None) -> None:
    """One forked call to `target` (devices bound at D0 and D1): INVITE from the trunk → both
    ring (180) → D0 answers → D1 is cancelled (200, 487) → ACK → BYE → 200. `send` feeds one
    message into the core and returns what the core sent, parsed (`Net.send`, or bench_blf's,
    which answers NOTIFYs on the way). With `caller` (a device and its address) the call comes
    from that device as SIPp's caller places it (bench_calls.py): INVITE → 407 → ACK → INVITE
    with digest credentials, then the same."""
    src = TRUNK
    if caller is None:
        out = send(invite(target, TRUNK, call_id=f"{prefix}-{n}"), TRUNK)
    else:
        device, src = caller
        first = invite(target, src, from_user=device.auth_username, call_id=f"{prefix}-{n}")
        (challenge,) = responses_to(send(first, src), src[1])
        send(_ack_for(first, challenge), src)
        auth = answer_auth(challenge, first, device.auth_username, device.secret)
        out = send(invite(target, src, from_user=device.auth_username, call_id=f"{prefix}-{n}", auth=auth, cseq=2),
                   src)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    send(reply(inv0, 180, "Ringing", tag="a"), ("127.0.0.1", D0))
    send(reply(inv1, 180, "Ringing", tag="b"), ("127.0.0.1", D1))
    out = send(reply(inv0, 200, "OK", tag="a", contact=f"sip:a@127.0.0.1:{D0}"), ("127.0.0.1", D0))
    ok = responses_to(out, src[1])[-1]
    (cancel,) = requests_to(out, D1, "CANCEL")
    send(reply(cancel, 200, "OK", tag="b"), ("127.0.0.1", D1))
    send(reply(inv1, 487, "Request Terminated", tag="b"), ("127.0.0.1", D1))
    route = ok.headers.get("record-route")
    for method, cseq in (("ACK", 1), ("BYE", 2)):
        msg = (
            f"{method} sip:a@127.0.0.1:{D0} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bK{method}{n};rport\r\n"
            f"Route: {route}\r\nMax-Forwards: 70\r\nFrom: {ok.headers.get('from')}\r\n"
            f"To: {ok.headers.get('to')}\r\nCall-ID: {ok.call_id}\r\nCSeq: {cseq} {method}\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        out = send(msg.encode(), src)
    (bye,) = [m for _, m in out if isinstance(m, Request) and m.method == "BYE"]
    send(reply(bye, 200, "OK"), ("127.0.0.1", D0))


def _ack_for(invite_req: Request, resp: Response) -> bytes:
    """The caller's ACK for a non-2xx final response (§17.1.1.3)."""
    h = invite_req.headers
    return (
        f"ACK {invite_req.uri} SIP/2.0\r\nVia: {h.get('via')}\r\nMax-Forwards: 70\r\nFrom: {h.get('from')}\r\n"
        f"To: {resp.headers.get('to')}\r\nCall-ID: {invite_req.call_id}\r\nCSeq: {invite_req.cseq.number} ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _bound_net() -> tuple[Net, list]:
    """The test bed with every account's two devices registered (first at D0, second at D1)."""
    net, devices = _net()
    for i, dev in enumerate(devices):
        net.bind(dev, D0 + (i % 2) * 2)
    return net, devices


def test_authenticated_forked_call(benchmark) -> None:
    """The forked call of `test_forked_call` placed by a device, digest-authenticated (407)."""
    net, devices = _bound_net()
    counter = itertools.count(1)

    def one() -> None:
        n = next(counter)
        caller = devices[2 * ((n + ACCOUNTS // 2) % ACCOUNTS) + 1]  # another account's second device
        forked_call(net.send, n, str(10000 + n % ACCOUNTS), "auth", (caller, CALLER))
        _tick(net)
        net.stack.outbox.clear()

    benchmark(one)


def test_forked_call(benchmark) -> None:
    net, _ = _bound_net()
    counter = itertools.count(1)

    def one() -> None:
        n = next(counter)
        forked_call(net.send, n, str(10000 + n % ACCOUNTS))
        _tick(net)
        net.stack.outbox.clear()

    benchmark(one)
