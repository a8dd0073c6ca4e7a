"""The cyclic garbage collector's young collections, paced by the SIP messages handled.

CPython starts a young collection when the number of tracked objects allocated minus those
freed passes a threshold. Under a steady call load that difference hardly moves (every call's
transactions are freed 32 s later, Timer J), so collections came minutes apart, and each then
had to scan every object allocated since the last one that was still alive: all the live
transactions, 140-280 ms on the soak's machine, long enough for the overload control to refuse
a burst of calls. Collecting the two young generations every `every` messages instead scans
only what those messages left alive (a bounded pause whatever the rate); what survives moves
to the old generation, which refcounting frees as usual. The start-up state is frozen out of
the collector and the automatic thresholds stay as a safety net (main.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("onenumber.gc")

EVERY = 1000  # messages handled between two young collections (a few ms of scanning at any rate)


class GcPacer:
    """Checks every `interval` seconds; collects generations 0 and 1 once `every` more messages
    have been handled."""

    def __init__(self, handled: Callable[[], int], *, every: int = EVERY, interval: float = 0.05,
                 collect: Callable[[int], int] = gc.collect, clock: Callable[[], float] = time.perf_counter) -> None:
        if every < 1 or interval <= 0:
            raise ValueError(f"every must be >= 1 and interval > 0, got {every}, {interval}")
        self.handled = handled
        self.every = every
        self.interval = interval
        self.collect = collect
        self.clock = clock
        self.last = handled()
        self.collections = 0
        self.longest = 0.0  # seconds, the longest paced collection

    def tick(self) -> bool:
        """One check; True when it collected."""
        handled = self.handled()
        if handled - self.last < self.every:
            return False
        self.last = handled
        start = self.clock()
        self.collect(1)  # generation 1 and the younger one: both hold only what was allocated lately
        took = self.clock() - start
        self.collections += 1
        if took > self.longest:
            self.longest = took
            log.debug("paced collection took %.1f ms", took * 1000)
        return True

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.tick()
