"""End-to-end overload control (issue 11): with the bound on requests in progress set to one,
a call ringing at a device keeps the server "full": new INVITEs from a SIPp caller at a bounded
rate get 503 + Retry-After, while a call set up before is ended by BYE through the proxy."""

from __future__ import annotations

import subprocess
import time

from .harness import Server, SippPeer, configure, free_port, run_sipp, sipp_trace_args
from .test_calls import Peers, accounts, expect_ok, peers  # noqa: F401  # fixtures

CALLS = 5


def test_new_invites_get_503_with_retry_after_and_an_established_call_ends_normally(
    server: Server, accounts: dict, peers: Peers,  # noqa: F811
) -> None:
    alice, bob, carol = accounts["alice"][0], accounts["bob"][0], accounts["carol"][0]
    configure(server, "settings", "set", "overload_max_transactions", "1")
    configure(server, "settings", "set", "overload_retry_after", "7")
    answers = peers.device(server, alice, "dev_answer.xml", name="alice")
    holds = peers.device(server, carol, "dev_ring_hold.xml", name="carol", timeout=30)
    # a call set up before the overload; its caller hangs up 3 s after the answer
    long_call = peers.call(server, bob, "1000", "call_answered_long.xml", from_user="1001", background=True,
                           name="long")
    deadline = time.monotonic() + 10
    while not long_call.received(200) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert long_call.received(200), peers.report(server)
    # a burst: the first call rings Carol for 6 s (one request in progress), the others are refused
    trace = peers.workdir / "burst.trace"
    port = free_port()
    proc = run_sipp("call_overload.xml", server, service="1002", auth=(bob.auth_username, bob.secret),
                    local_port=port, calls=CALLS, rate=2, timeout=30, workdir=peers.workdir, background=True,
                    extra=["-key", "from_user", "1001", *sipp_trace_args(trace, "burst")])
    assert isinstance(proc, subprocess.Popen)
    burst = SippPeer("burst", proc, trace, port)
    peers.all.append(burst)
    rc = burst.wait(30)
    expect_ok(peers, server, long_call, answers)
    assert rc == 0, peers.report(server)
    refused = burst.received(503)
    assert len(refused) == CALLS - 1, peers.report(server)
    for r in refused:
        assert 7 <= int(r.header("Retry-After") or "0") <= 14, r.text
    assert len(holds.received("INVITE")) == 1  # only the accepted call rang
    # the established call: its BYE went through the proxy while the server was refusing new calls
    assert answers.received("BYE") and len(long_call.received(200)) >= 2
    assert "Traceback" not in server.log()
