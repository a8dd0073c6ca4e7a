"""The cyclic garbage collector's young collections, paced by the SIP messages handled.

CPython starts a young collection when the number of tracked objects allocated minus those
freed passes a threshold. Under a steady call load that difference hardly moves (every call's
transactions are freed 32 s later, Timer J), so collections came minutes apart, and each then
had to scan every object allocated since the last one that was still alive: all the live
transactions, 140-280 ms on the soak's machine, long enough for the overload control to refuse
a burst of calls. Collecting the two young generations every `every` messages instead scans
only what those messages left alive (a bounded pause whatever the rate); what survives moves
to the old generation, which refcounting frees as usual. The start-up state is frozen out of
the collector and the automatic thresholds stay as a safety net (main.py). The server counts
the messages `Stack.gc_paced` says: all but the NOTIFYs' 200s (matched from their bytes, they end
their transaction and leave nothing alive).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
from collections.abc import Callable

log = logging.getLogger("onenumber.gc")

# the collector's automatic thresholds in the server (main.py): young collections rarely on
# their own (the pacer runs them), and the old generation's out of reach (see main.py)
THRESHOLDS = (100_000, 50, 1_000_000_000)
EVERY = 1000  # messages handled between two young collections (a few ms of scanning at any rate)
TRIM_INTERVAL = 30.0  # seconds between two malloc_trim calls (0.1-0.2 ms each)


def malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None elsewhere (musl, macOS). SQLite allocates in the threads
    of the aiosqlite connections, each with its own glibc arena, and glibc gives a freed page
    back to the system only from the top of an arena: freed pages in the middle stayed resident
    (RSS rose ~0.5 MiB a minute at 50 calls/s with the call history on). malloc_trim(0) hands
    back every free page of every arena."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: trim(0)


class GcPacer:
    """Checks every `interval` seconds; collects generations 0 and 1 once `every` more messages
    have been handled, and calls `trim` (malloc_trim) every `trim_interval` seconds."""

    def __init__(self, handled: Callable[[], int], *, every: int = EVERY, interval: float = 0.05,
                 collect: Callable[[int], int] = gc.collect, clock: Callable[[], float] = time.perf_counter,
                 trim: Callable[[], object] | None = None, trim_interval: float = TRIM_INTERVAL) -> None:
        if every < 1 or interval <= 0 or trim_interval <= 0:
            raise ValueError(f"every must be >= 1, interval and trim_interval > 0, got {every}, {interval}, "
                             f"{trim_interval}")
        self.handled = handled
        self.every = every
        self.interval = interval
        self.collect = collect
        self.clock = clock
        self.trim = trim  # malloc_trim() in the server; None: no trimming
        self.trim_interval = trim_interval
        self.trimmed_at = clock() if trim is not None else 0.0
        self.last = handled()
        self.collections = 0
        self.longest = 0.0  # seconds, the longest paced collection

    def tick(self) -> bool:
        """One check; True when it collected."""
        if self.trim is not None and self.clock() - self.trimmed_at >= self.trim_interval:
            self.trimmed_at = self.clock()
            self.trim()
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
