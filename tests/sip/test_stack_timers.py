"""Application timers in the stack's heap: a cancelled timer frees what its callback held at
once, fires never, and cancelled entries never dominate the heap for long."""

from __future__ import annotations

import gc
import weakref

from onenumber.sip.stack import COMPACT_MIN, Stack

from .test_stack import make


class Context:
    """Stands for a call's context: what a Timer C closure keeps alive."""


def test_cancelled_timer_releases_its_closure_at_once() -> None:
    stack, _ = make()
    ctx = Context()
    ref = weakref.ref(ctx)
    fired: list[float] = []

    def timer_c(now: float, ctx: Context = ctx) -> None:  # holds ctx, as the proxy's lambda does
        fired.append(now)

    timer = stack.call_at(1_000_180.0, timer_c)
    del ctx, timer_c
    gc.collect()
    assert ref() is not None  # scheduled: the heap holds it
    timer.cancel()
    assert timer.cancelled
    gc.collect()
    assert ref() is None  # freed at cancel, not 180 s later
    stack.handle_timer(1_000_200.0)
    assert fired == [] and stack.next_timer() is None


def test_fired_timer_drops_its_callback_and_a_late_cancel_is_harmless() -> None:
    stack, _ = make()
    fired: list[float] = []
    timer = stack.call_at(10.0, fired.append)
    stack.handle_timer(9.0)
    assert fired == [] and not timer.cancelled
    stack.handle_timer(10.0)
    assert fired == [10.0] and timer.cancelled and timer.callback is None
    timer.cancel()
    timer.cancel()
    assert stack._cancelled == 0


def test_heap_is_compacted_when_cancelled_entries_dominate() -> None:
    stack, _ = make()
    n = 4 * COMPACT_MIN
    timers = [stack.call_at(100.0 + i, lambda now: None) for i in range(n)]
    keep = timers[::10]
    for t in timers:
        if t not in keep:
            t.cancel()
    # never more than about half the heap is dead entries
    assert stack.timer_entries <= 2 * len(keep) + COMPACT_MIN + 1
    fired: list[float] = []
    late = stack.call_at(50.0, fired.append)
    stack.handle_timer(100.0 + n)
    assert fired == [100.0 + n] and late.cancelled
    assert stack.next_timer() is None and stack.timer_entries == 0


def test_cancel_inside_a_callback_that_compacts_the_heap_keeps_order() -> None:
    stack: Stack
    stack, _ = make()
    order: list[float] = []
    victims = [stack.call_at(500.0 + i, lambda now: order.append(-1)) for i in range(3 * COMPACT_MIN)]

    def cancel_all(now: float) -> None:
        order.append(now)
        for v in victims:
            v.cancel()  # compacts the heap while handle_timer walks it

    stack.call_at(1.0, cancel_all)
    stack.call_at(2.0, order.append)
    stack.call_at(600.0 + 3 * COMPACT_MIN, order.append)
    stack.handle_timer(10_000.0)
    assert order == [10_000.0, 10_000.0, 10_000.0]
    assert stack.timer_entries == 0 and stack._cancelled == 0


def test_timers_and_transaction_deadlines_fire_in_deadline_order() -> None:
    from .test_stack import OPTIONS, SRC

    stack, _ = make()
    order: list[str] = []
    stack.call_at(31.0, lambda now: order.append("before J"))
    stack.receive(OPTIONS, SRC, 0.0)  # Timer J at 32 s
    stack.call_at(33.0, lambda now: order.append(f"after J: {len(stack.server_txns)} txn"))
    assert stack.next_timer() == 31.0
    stack.handle_timer(31.0)
    assert stack.next_timer() == 32.0
    stack.handle_timer(40.0)
    assert order == ["before J", "after J: 0 txn"]


def test_compaction_drops_deadlines_of_finished_transactions_only() -> None:
    from .test_stack import OPTIONS, SRC

    stack, _ = make()
    stack.receive(OPTIONS, SRC, 0.0)  # answered 200: Timer J (32 s) runs
    assert len(stack.server_txns) == 1
    stack.compact_transactions()
    assert stack.timer_entries == 1  # live: kept
    stack.receive(OPTIONS.replace(b"z9hG4bKabc", b"z9hG4bKab2"), SRC, 1.0)
    stack.server_txns.clear()  # as if both had ended: their deadlines can no longer fire
    stack.compact_transactions()
    assert stack.timer_entries == 0
    stack.handle_timer(40.0)
    assert not stack.server_txns
