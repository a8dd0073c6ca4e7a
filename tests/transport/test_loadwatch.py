"""The edge's load samples (transport/loadwatch.py): the busy clock the drain rate is measured on."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from onenumber.sip.overload import DATAGRAM_BYTES, Overload, OverloadPolicy
from onenumber.transport.loadwatch import LoadWatch, sched_clock


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="schedstat is Linux's")
def test_the_busy_clock_counts_running_and_not_sleeping() -> None:
    times = sched_clock()

    def busy() -> float:
        run, wait = times()
        return run + wait

    before = busy()
    _spin(0.1)
    spun = busy() - before
    assert 0.09 <= spun <= 0.5  # running (and any wait for the core while it wanted one)
    before = busy()
    time.sleep(0.1)
    assert busy() - before < 0.02  # blocked, as the event loop is in epoll_wait: not busy


async def _modest_load(handled: list[int], samples: int) -> None:
    for _ in range(samples):  # 25 messages a sample (500 a second), 0.1 ms each
        _spin(0.0025)
        handled[0] += 25
        await asyncio.sleep(0.05)


async def test_one_stall_at_a_modest_load_is_not_an_overload() -> None:
    ov = Overload(OverloadPolicy())  # the defaults: 100 ms of lag, 100 ms of queued work
    handled, queue = [0], [0]
    watch = LoadWatch(ov, lambda: queue[0], handled=lambda: handled[0])
    task = asyncio.create_task(watch.run())
    try:
        await _modest_load(handled, 10)
        _spin(0.4)  # a collection holds the loop for 400 ms; 200 datagrams queue meanwhile
        queue[0] = 200 * DATAGRAM_BYTES
        await asyncio.sleep(0)
        await asyncio.sleep(0.06)  # the sample after the stall
        assert watch.max_lag > 0.3  # the watch saw it
        queue[0] = 0  # read in a few ms
        await _modest_load(handled, 6)
        assert ov.shedding_until == 0.0, (ov.reason, ov.lag_median, ov.queue_delay, watch.drain.rate)
    finally:
        task.cancel()


async def test_a_loop_that_keeps_running_late_is_an_overload() -> None:
    ov = Overload(OverloadPolicy())
    handled = [0]
    watch = LoadWatch(ov, lambda: 0, handled=lambda: handled[0])
    task = asyncio.create_task(watch.run())
    try:
        await _modest_load(handled, 4)
        for _ in range(4):  # every sample 150 ms late
            _spin(0.15)
            handled[0] += 25
            await asyncio.sleep(0.05)
        assert ov.shedding_until > 0.0 and ov.reason == "lag"
    finally:
        task.cancel()
