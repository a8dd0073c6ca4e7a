"""OPTIONS keepalive of UDP bindings (sans-IO): a phone that stops answering is dropped after
the set number of misses, evented and no longer rung; one that answers or re-registers stays."""

from __future__ import annotations

from dataclasses import replace

from onenumber.services.events import BindingChanged
from onenumber.services.keepalive import Keepalive
from onenumber.settings import Settings, Trunk

from .sipnet import Net, invite, make_account, reply, requests_to
from .test_calls import D0, D1, TRUNK


def setup(**settings: int) -> tuple[Net, Keepalive]:
    alice, devs = make_account("1000", "Alice", 2)
    net = Net([alice], devs, settings=replace(Settings(), **settings),  # type: ignore[arg-type]
              trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),))
    net.bind(devs[0], D0)
    net.bind(devs[1], D1)
    ka = Keepalive(net.stack, net.location, net.directory, net.core.events, clock=lambda: net.now,
                   rand=lambda: 0.0)
    ka.start(net.now)
    return net, ka


def pings(out, port: int) -> list:  # type: ignore[no-untyped-def]
    return requests_to(out, port, "OPTIONS")


def test_a_phone_that_stops_answering_is_dropped_evented_and_not_rung() -> None:
    net, ka = setup()  # 30 s, 2 misses
    dead_at = net.now
    out = net.advance(1.0)
    (p0,), (p1,) = pings(out, D0), pings(out, D1)
    assert p0.uri.startswith("sip:1000@127.0.0.1:") and p0.headers.get("to") == f"<{p0.uri}>"
    net.send(reply(p0, 200, "OK"), ("127.0.0.1", D0))  # D1 is silent from now on
    seen = {p1.call_id}
    for _ in range(2):
        out = net.advance(30.0)
        seen |= {p.call_id for p in pings(out, D1)}
        for p in pings(out, D0):
            net.send(reply(p, 200, "OK"), ("127.0.0.1", D0))
    assert [b.auth_username for b in net.location.get("1000")] == ["1000"]
    assert net.now - dead_at <= 90.0  # the default: gone within 90 s
    removed = [e for e in net.take_events() if isinstance(e, BindingChanged) and e.change == "removed"]
    assert [(e.auth_username, e.reason) for e in removed] == [("1000_2", "keepalive")]
    assert ka.stats["dropped"] == 1 and ka.stats["answers"] == 3
    out = net.send(invite("1000", TRUNK), TRUNK)
    assert requests_to(out, D0, "INVITE") and not requests_to(out, D1, "INVITE")
    out = net.advance(60.0)
    assert {p.call_id for p in pings(out, D1)} <= seen  # retransmissions only: no new ping


def test_any_answer_or_a_new_registration_keeps_the_binding() -> None:
    net, _ = setup(keepalive_interval=10, keepalive_max_misses=1)
    for i in range(4):
        out = net.advance(10.0 if i else 1.0)
        for p in pings(out, D0):
            net.send(reply(p, 405, "Method Not Allowed"), ("127.0.0.1", D0))  # still an answer
        if i < 3:  # D1 never answers but registers again before each ping
            (b1,) = [b for b in net.location.get("1000") if b.auth_username == "1000_2"]
            net.location.apply([replace(b1, expires_at=b1.expires_at + 10)], [])
    assert len(net.location.get("1000")) == 2
    net.advance(10.0)  # D1 stopped registering too: one miss is enough here
    assert [b.auth_username for b in net.location.get("1000")] == ["1000"]


def test_stream_bindings_are_never_pinged_and_zero_switches_pings_off() -> None:
    alice, devs = make_account("1000", "Alice", 1)
    net = Net([alice], devs)
    net.bind(devs[0], D0, transport="tcp", flow="tcp-1")
    ka = Keepalive(net.stack, net.location, net.directory, net.core.events, clock=lambda: net.now)
    ka.start(net.now)
    assert not pings(net.advance(100.0), D0)
    net2, _ = setup(keepalive_interval=0)
    assert not pings(net2.advance(200.0), D0) and len(net2.location.get("1000")) == 2
