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

Most rounds do not even scan: a call or a registration leaves no cyclic garbage (main.py), so
a round whose messages' survivors are only freed by refcounting gains nothing from a scan, and
the scans were ~6 % of a REGISTER's CPU at 500/s (10-20 ms a second, ~20,000 young objects:
the transactions waiting out Timer J) and ~8 % of a forked call's at 50 calls/s
(bench/README.md). While the last scanning round found nothing unreachable, `scan_every` - 1
rounds of every `scan_every` freeze the young generations instead (`gc.freeze()`: a
constant-time move to the permanent generation that also resets the allocation count, which
is what keeps the automatic collector away); a round that finds garbage makes every round
scan until one finds none again. Frozen objects are still freed by refcounting; a cycle
frozen in an unscanned round waits for the next full collection, which unfreezes (the
start-up state main.py froze too), collects and freezes again.

The old generation is out of the automatic collector's reach (a scan of the whole heap under
load is a pause of a second or more), so a reference cycle that reached it would stay for good.
The pacer collects it itself: at a quiet moment (under `quiet_rate` messages a second for
`quiet_window` seconds) at most every `full_every` seconds, and after `full_at_latest` seconds
whatever the load, logging the pause.
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
SCAN_EVERY = 4  # one young round in this many scans; the others freeze (while scans find no garbage)
TRIM_INTERVAL = 30.0  # seconds between two malloc_trim calls (0.1-0.2 ms each)
FULL_EVERY = 600.0  # seconds: at most one full collection this often, when the server is quiet…
# …and one at least this often, quiet or not: a cycle frozen in a young round that did not
# scan waits for it (a pause of 0.1-0.3 s at the soak's heap, which the lag median rides out)
FULL_AT_LATEST = 3600.0
QUIET_RATE = 20.0  # messages a second under which the server counts as quiet…
QUIET_WINDOW = 10.0  # …over this many seconds
SLOW = 0.05  # seconds: a collection this long is logged as a warning (it delays every message waiting)


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
    """Checks every `interval` seconds; once `every` more messages have been handled, collects
    generations 0 and 1 or freezes them (see the module's text); collects the whole heap now and
    then, and calls `trim` (malloc_trim) every `trim_interval` seconds."""

    def __init__(self, handled: Callable[[], int], *, every: int = EVERY, interval: float = 0.05,
                 collect: Callable[[int], int] = gc.collect, clock: Callable[[], float] = time.perf_counter,
                 scan_every: int = SCAN_EVERY, freeze: Callable[[], None] = gc.freeze,
                 unfreeze: Callable[[], None] = gc.unfreeze,
                 trim: Callable[[], object] | None = None, trim_interval: float = TRIM_INTERVAL,
                 full_every: float = FULL_EVERY, full_at_latest: float = FULL_AT_LATEST,
                 quiet_rate: float = QUIET_RATE, quiet_window: float = QUIET_WINDOW) -> None:
        if every < 1 or scan_every < 1 or interval <= 0 or trim_interval <= 0:
            raise ValueError(f"every and scan_every must be >= 1, interval and trim_interval > 0, got {every}, "
                             f"{scan_every}, {interval}, {trim_interval}")
        if not 0 < full_every <= full_at_latest or quiet_rate < 0 or quiet_window <= 0:
            raise ValueError(f"need 0 < full_every <= full_at_latest, quiet_rate >= 0, quiet_window > 0, got "
                             f"{full_every}, {full_at_latest}, {quiet_rate}, {quiet_window}")
        self.handled = handled
        self.every = every
        self.interval = interval
        self.collect = collect
        self.clock = clock
        self.scan_every = scan_every
        self.freeze = freeze
        self.unfreeze = unfreeze
        self.trim = trim  # malloc_trim() in the server; None: no trimming
        self.trim_interval = trim_interval
        self.full_every = full_every
        self.full_at_latest = full_at_latest
        self.quiet_rate = quiet_rate
        self.quiet_window = quiet_window
        start = clock()
        self.trimmed_at = start
        self.last = handled()
        self.collections = 0  # young rounds that scanned
        self.freezes = 0  # young rounds that froze instead
        # young rounds frozen since the last scan; held at scan_every - 1 (every round scans) from
        # the start and while scans find garbage
        self.unscanned = scan_every - 1
        self.longest = 0.0  # seconds, the longest paced collection
        self.full_collections = 0
        self.full_longest = 0.0  # seconds, the longest full collection
        self.full_at = start  # the last full collection (start-up collected everything: main.py)
        self.window_at, self.window_handled = start, self.last  # the current quiet window

    def tick(self) -> bool:
        """One check; True when it collected or froze."""
        now = self.clock()
        if self.trim is not None and now - self.trimmed_at >= self.trim_interval:
            self.trimmed_at = now
            self.trim()
        handled = self.handled()
        if now - self.window_at >= self.quiet_window:
            rate = (handled - self.window_handled) / (now - self.window_at)
            self.window_at, self.window_handled = now, handled
            since = now - self.full_at
            if (since >= self.full_every and rate <= self.quiet_rate) or since >= self.full_at_latest:
                self._full(rate)
                self.last = handled  # the young generations were collected with it
                return True
        if handled - self.last < self.every:
            return False
        self.last = handled
        if self.unscanned < self.scan_every - 1:
            self.freeze()  # constant time: nothing is scanned (see the module's text)
            self.unscanned += 1
            self.freezes += 1
            return True
        cpu = time.thread_time()
        found = self.collect(1)  # generation 1 and the younger one: both hold only what was allocated lately
        cpu = time.thread_time() - cpu
        # garbage found: the next rounds scan too, until one finds none
        self.unscanned = self.scan_every - 1 if found else 0
        took = self.clock() - now
        self.collections += 1
        if took > self.longest:
            self.longest = took
            log.debug("paced collection took %.1f ms", took * 1000)
        if took > SLOW:
            # the CPU time tells a long scan from a machine that did not give the process its core
            log.warning("slow paced collection: %.1f ms (%.1f ms of CPU)", took * 1000, cpu * 1000)
        return True

    def _full(self, rate: float) -> None:
        start = self.clock()
        self.unfreeze()  # what the young rounds froze, and the start-up state main.py froze
        found = self.collect(2)
        self.freeze()  # the survivors are old: out of the young rounds' scans again
        end = self.clock()
        took = end - start
        self.full_at = end
        self.full_collections += 1
        self.full_longest = max(self.full_longest, took)
        log.log(logging.WARNING if took > SLOW else logging.INFO,
                "full collection: %d unreachable objects, %.1f ms, at %.0f messages/s", found, took * 1000, rate)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.tick()
