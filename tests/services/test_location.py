"""Location's counters follow its bindings (services/location.py; /metrics reads them)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.model import Binding
from onenumber.services.location import Location

TRANSPORTS = ("udp", "tcp", "tls", "ws", "wss")

# one step: (operation, account, contact number, transport, expiry)
STEP = st.tuples(st.sampled_from(["up", "remove", "drop_flow", "drop_device", "expire", "remote_up",
                                  "remote_remove"]),
                 st.sampled_from(["1000", "1001"]), st.integers(0, 3), st.sampled_from(TRANSPORTS),
                 st.integers(1, 50))


def binding(account: str, n: int, transport: str, expires: int) -> Binding:
    reliable = transport != "udp"
    return Binding(account, f"{account}-{n % 2}", f"sip:{account}-{n}@127.0.0.1:{6000 + n}", float(expires),
                   transport, ("127.0.0.1", 6000 + n), flow=f"flow-{n}" if reliable else None)


@settings(max_examples=200, deadline=None)
@given(st.lists(STEP, max_size=40))
def test_counts_by_transport_match_the_bindings(steps: list[tuple[str, str, int, str, int]]) -> None:
    loc = Location(None)
    now = 0.0
    for op, account, n, transport, expires in steps:
        b = binding(account, n, transport, expires)
        if op == "up":
            loc.apply([b], [])
        elif op == "remove":
            loc.remove(account, b.key, "keepalive")
        elif op == "drop_flow":
            loc.drop_flow(f"flow-{n}")
        elif op == "drop_device":
            loc.drop_device(account, b.auth_username)
        elif op == "expire":
            now = max(now, float(expires))
            loc.expire(now)
        elif op == "remote_up":
            loc.apply_remote([b], [])
        else:
            loc.apply_remote([], [(account, b.key)])
        walked = Counter(x.transport for x in loc.all())
        assert loc.count_by_transport() == dict(walked)
        assert loc.count() == sum(walked.values())


def _woken(loc: Location) -> bool:
    woken = loc._wake.is_set()
    loc._wake.clear()
    return woken


def test_a_plain_refresh_waits_for_the_periodic_write_while_the_stored_expiry_is_far_ahead() -> None:
    loc = Location(None, refresh_interval=30.0)
    now = 1000.0
    b = replace(binding("1000", 1, "udp", 0), expires_at=now + 3600, cseq=1, call_id="c1")
    loc.apply([b], [], now)
    assert _woken(loc)  # a new binding: written within flush_interval
    refreshed = replace(b, expires_at=now + 3604, cseq=2, call_id="c2")  # SIPp: a new Call-ID each time
    loc.apply([refreshed], [], now + 4)
    assert not _woken(loc) and loc._pending_up[("1000", b.key)] is refreshed  # queued for the periodic flush
    assert loc.lookup("1000", b.key) is refreshed  # served from memory at once
    for changed in (replace(refreshed, user_agent="other"), replace(refreshed, path=("<sip:edge;lr>",)),
                    replace(refreshed, source=("127.0.0.1", 7000)), replace(refreshed, q=0.5)):
        loc.apply([changed], [], now + 5)
        assert _woken(loc), changed  # anything but the expiry and CSeq: written at once
    loc.apply([replace(refreshed, expires_at=now + 3700)], [])
    assert _woken(loc)  # no clock given: nothing waits


def test_a_refresh_close_to_the_stored_expiry_is_written_at_once() -> None:
    loc = Location(None, refresh_interval=30.0)
    now = 1000.0
    b = replace(binding("1000", 1, "udp", 0), expires_at=now + 60)
    loc.apply([b], [], now)
    _woken(loc)
    # a kill -9 before a periodic write could leave a stored expiry that passes before a restart
    loc.apply([replace(b, expires_at=now + 120, cseq=2)], [], now + 1)  # 59 s left: under 2 × 30 s
    assert _woken(loc)
    loc.apply([replace(b, expires_at=now + 180, cseq=3)], [], now + 2)  # the stored 120 s: 118 s ahead
    assert not _woken(loc)
