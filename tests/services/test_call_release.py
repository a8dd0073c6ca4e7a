"""A finished call's context is freed once its transactions are done (Timer M/D, 32 s), not
when its cancelled Timer C would have come up (180 s): memory follows the live calls."""

from __future__ import annotations

import gc
import weakref

from onenumber.services.proxy import TIMER_C, CallContext

from .sipnet import reply, requests_to, responses_to
from .test_calls import D0, D1, TRUNK, two_devices


def _context_of(net, call_id: str) -> weakref.ref[CallContext]:
    (txn,) = [t for t in net.stack.server_txns.values() if t.request is not None and t.request.call_id == call_id]
    assert isinstance(txn.context, CallContext)
    return weakref.ref(txn.context)


def test_answered_call_context_is_freed_after_its_transactions_not_after_timer_c() -> None:
    from .sipnet import invite

    net, _ = two_devices()
    req = invite("1000", TRUNK)
    out = net.send(req, TRUNK)
    ref = _context_of(net, req.call_id)
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    out = net.send(reply(inv0, 200, "OK", tag="d0", contact="sip:1000@127.0.0.1:31000"), ("127.0.0.1", D0))
    assert [r.status for r in responses_to(out, TRUNK[1])] == [200]
    (cancel,) = requests_to(out, D1, "CANCEL")
    net.send(reply(cancel, 200, "OK"), ("127.0.0.1", D1))
    net.send(reply(inv1, 487, "Request Terminated", tag="d1"), ("127.0.0.1", D1))
    net.advance(40.0)  # Timer M (2xx) and Timer D (487) are over
    assert TIMER_C > 40.0
    gc.collect()
    assert ref() is None
    assert net.stack.timer_entries < 10  # no cancelled Timer C / no-answer entries are kept for this call


def test_failed_call_context_is_freed_after_its_transactions() -> None:
    from .sipnet import invite

    net, _ = two_devices()
    req = invite("1000", TRUNK)
    out = net.send(req, TRUNK)
    ref = _context_of(net, req.call_id)
    for inv, port in ((requests_to(out, D0, "INVITE")[0], D0), (requests_to(out, D1, "INVITE")[0], D1)):
        net.send(reply(inv, 486, "Busy Here", tag=f"b{port}"), ("127.0.0.1", port))
    net.advance(40.0)
    gc.collect()
    assert ref() is None


def test_decided_call_keeps_no_plan_nor_the_cancelled_branch_request() -> None:
    """While its transactions wait out Timer M/D the context holds what a late answer needs,
    not the ring plan nor the request of a branch whose final (487) came in: fewer objects for
    every young collection to scan."""
    from .sipnet import invite

    net, _ = two_devices()
    req = invite("1000", TRUNK)
    out = net.send(req, TRUNK)
    ctx = _context_of(net, req.call_id)()
    assert ctx is not None and ctx.plan is not None
    inv0, inv1 = requests_to(out, D0, "INVITE")[0], requests_to(out, D1, "INVITE")[0]
    net.send(reply(inv1, 180, "Ringing", tag="d1"), ("127.0.0.1", D1))
    out = net.send(reply(inv0, 200, "OK", tag="d0", contact="sip:1000@127.0.0.1:31000"), ("127.0.0.1", D0))
    assert ctx.plan is None
    cancelled = [b for b in ctx.branches.values() if b.request is not None]
    assert len(cancelled) == 1  # still ringing: a late 200 would need its request to be hung up
    (cancel,) = requests_to(out, D1, "CANCEL")
    net.send(reply(cancel, 200, "OK"), ("127.0.0.1", D1))
    net.send(reply(inv1, 487, "Request Terminated", tag="d1"), ("127.0.0.1", D1))
    assert all(b.request is None for b in ctx.branches.values())
