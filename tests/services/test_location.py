"""Location's counters follow its bindings (services/location.py; /metrics reads them)."""

from __future__ import annotations

from collections import Counter

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
