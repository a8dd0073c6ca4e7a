"""What only the edge can measure, sampled for overload control: how late the event loop runs
a timer (loop lag) and how many bytes wait in the UDP receive queue. The samples go to the
sans-IO `Overload` (sip/overload.py), which decides; nothing is decided here.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from ..sip.overload import DrainRate, Overload

log = logging.getLogger("onenumber.overload")

SO_MEMINFO = getattr(socket, "SO_MEMINFO", 55)  # Linux ≥ 4.6: sk_meminfo, [0] = receive queue bytes


def udp_queue_bytes(transport: asyncio.BaseTransport | None) -> int:
    """Bytes (kernel accounting) waiting in a UDP socket's receive queue; 0 when unknown."""
    if transport is None:
        return 0
    sock = transport.get_extra_info("socket")
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_MEMINFO, 36)
    except (OSError, AttributeError, TypeError):
        return 0
    return int(struct.unpack_from("I", raw)[0])


def sched_clock() -> Callable[[], tuple[float, float]]:
    """Seconds the calling thread has spent running, and runnable but waiting for a core
    (Linux's /proc/thread-self/schedstat; elsewhere its CPU time and no waiting). Their sum is
    its busy time: messages per busy second is the rate a queue drains at, on a core of its own
    or a share of one. Call it in the thread measured (the event loop's)."""
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return lambda: (time.thread_time(), 0.0)

    last = (0.0, 0.0)

    def times() -> tuple[float, float]:
        nonlocal last
        try:
            run, wait = os.pread(fd, 64, 0).split()[:2]
            last = int(run) / 1e9, int(wait) / 1e9
        except (OSError, ValueError):
            pass  # the last reading again (a zero step), not another clock's figure
        return last

    return times


class LoadWatch:
    """Samples every `interval` seconds; logs when shedding starts and stops."""

    def __init__(self, overload: Overload, queue: Callable[[], int], *, handled: Callable[[], int] = lambda: 0,
                 interval: float = 0.05, clock: Callable[[], float] = time.time,
                 sched: Callable[[], tuple[float, float]] | None = None) -> None:
        self.overload = overload
        self.queue = queue
        self.handled = handled  # messages handled so far (the stack's count): the drain rate
        self.interval = interval
        self.clock = clock
        self.sched = sched  # the loop thread's running and waiting seconds (`sched_clock`, the default)
        # the last samples' (running, waiting, wall) seconds, about a second's worth: what the
        # overload's log line says
        self.recent: deque[tuple[float, float, float]] = deque(maxlen=max(1, round(1 / interval)))
        self.drain = DrainRate()
        self.max_lag = 0.0  # the worst lag seen since the last `take_max_lag` (for metrics)

    def take_max_lag(self) -> float:
        worst, self.max_lag = self.max_lag, 0.0
        return worst

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        was_over = False
        sched = self.sched or sched_clock()  # opened here: in the loop's thread
        handled, (run, wait) = self.handled(), sched()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            end = loop.time()
            lag = max(0.0, end - start - self.interval)
            self.max_lag = max(self.max_lag, lag)
            now = self.clock()
            ov = self.overload
            before, handled = handled, self.handled()
            run_before, wait_before = run, wait
            run, wait = sched()
            self.recent.append((run - run_before, wait - wait_before, end - start))
            rate = self.drain.update(handled - before, run - run_before + wait - wait_before)
            ov.sample(now, lag=lag, queue=self.queue(), rate=rate)
            over = now < ov.shedding_until
            if over != was_over:
                if over:
                    # the running and waiting time tell the server's own work from a machine that
                    # did not give it the core
                    ran, waited, span = (sum(x) for x in zip(*self.recent, strict=True))
                    log.warning("overload (%s: loop lag %.0f ms, median %.0f ms; UDP queue %d KiB, %.0f ms "
                                "of work; in the last %.1f s the loop ran %.0f ms and waited %.0f ms for a core): "
                                "new INVITEs and REGISTERs get 503", ov.reason, ov.lag * 1000, ov.lag_median * 1000,
                                ov.queue // 1024, ov.queue_delay * 1000, span, ran * 1000, waited * 1000)
                else:
                    log.warning("overload over: %d request(s) refused so far", ov.shed_total)
                was_over = over
