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


def busy_clock() -> Callable[[], float]:
    """Seconds the calling thread has been busy: running, or runnable and waiting for a core
    (Linux's /proc/thread-self/schedstat), so that messages per busy second is the rate a
    queue drains at, on a core of its own or a share of one. Elsewhere its CPU time only.
    Call it in the thread measured (the event loop's)."""
    try:
        fd = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
    except OSError:
        return time.thread_time

    def busy() -> float:
        try:
            run, wait = os.pread(fd, 64, 0).split()[:2]
            return (int(run) + int(wait)) / 1e9
        except (OSError, ValueError):
            return time.thread_time()

    return busy


class LoadWatch:
    """Samples every `interval` seconds; logs when shedding starts and stops."""

    def __init__(self, overload: Overload, queue: Callable[[], int], *, handled: Callable[[], int] = lambda: 0,
                 interval: float = 0.05, clock: Callable[[], float] = time.time,
                 busy: Callable[[], float] | None = None) -> None:
        self.overload = overload
        self.queue = queue
        self.handled = handled  # messages handled so far (the stack's count): the drain rate
        self.interval = interval
        self.clock = clock
        self.busy = busy  # the loop thread's busy seconds (`busy_clock`, the default): the drain rate's clock
        self.drain = DrainRate()
        self.max_lag = 0.0  # the worst lag seen since the last `take_max_lag` (for metrics)

    def take_max_lag(self) -> float:
        worst, self.max_lag = self.max_lag, 0.0
        return worst

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        was_over = False
        busy = self.busy or busy_clock()  # opened here: in the loop's thread
        handled, busy_at = self.handled(), busy()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval)
            end = loop.time()
            lag = max(0.0, end - start - self.interval)
            self.max_lag = max(self.max_lag, lag)
            now = self.clock()
            ov = self.overload
            before, handled = handled, self.handled()
            busy_before, busy_at = busy_at, busy()
            rate = self.drain.update(handled - before, busy_at - busy_before)
            ov.sample(now, lag=lag, queue=self.queue(), rate=rate)
            over = now < ov.shedding_until
            if over != was_over:
                if over:
                    log.warning("overload (%s: loop lag %.0f ms, on average %.0f ms; UDP queue %d KiB, %.0f ms "
                                "of work): new INVITEs and REGISTERs get 503", ov.reason, ov.lag * 1000,
                                ov.lag_avg * 1000, ov.queue // 1024, ov.queue_delay * 1000)
                else:
                    log.warning("overload over: %d request(s) refused so far", ov.shed_total)
                was_over = over
