"""`/metrics` across worker processes (`serve --workers N`, docs/scaling.md).

The hot path keeps bumping plain counters in each worker (as with one process); what changes
is how the numbers reach the one `/metrics` answer, which worker 0 serves. Each worker writes
its collector's current values, about once a second, into prometheus-client's multiprocess
files (`counter_<pid>.db`, `gauge_<mode>_<pid>.db`: the library's own mmap format and
naming) in a directory of this run, `<data_dir>/run/metrics`; worker 0 writes its own values
at the scrape and merges every file with prometheus-client's `MultiProcessCollector`:

- counters are summed over every process that ever ran in this run, the dead ones too, so a
  restarted worker never makes a total go down (a worker killed with -9 loses at most the
  last second of its increments);
- gauges are merged by the mode of `GAUGE_MODES` (live calls and transactions are summed,
  loop lag is the worst worker's), and the `live*` files of a dead worker are removed by the
  supervisor (`mark_process_dead`), so its last values stop counting at once.

Bindings are the same shared set in every worker: only worker 0 counts them, at the scrape
(the periodic export leaves them out: counting 100,000 bindings every second in every
worker would cost more than all the rest). The supervisor empties the directory at start.

Why not prometheus-client's `Counter` objects with `PROMETHEUS_MULTIPROC_DIR`: those write
to the mmap on every increment (a lock and a struct pack per SIP message); copying a few
hundred values once a second costs nothing on the call path and gives the same sums, at most
a second late for workers other than 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from prometheus_client.core import Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

log = logging.getLogger("onenumber.metrics")

EXPORT_INTERVAL = 1.0  # seconds between a worker's writes of its values
LAG_WINDOW = 15.0  # seconds: loop_lag_max_seconds with several workers is the worst over this window

# how the workers' gauges combine (prometheus-client multiprocess modes); the others are summed
GAUGE_MODES = {
    "onenumber_bindings": "livemax",  # worker 0's count only (every worker holds a copy of the same set)
    "onenumber_loop_lag_seconds": "livemax",
    "onenumber_loop_lag_max_seconds": "livemax",
    "onenumber_udp_queue_delay_seconds": "livemax",
    "onenumber_overloaded": "livemax",
}
DEFAULT_GAUGE_MODE = "livesum"


def metrics_dir(data_dir: Path) -> Path:
    """This run's multiprocess directory (one server per data directory)."""
    return data_dir / "run" / "metrics"


def reset_dir(path: Path) -> None:
    """Empty (or make) the directory: the previous run's numbers are not this run's."""
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def process_dead(path: Path, pid: int) -> None:
    """A worker died: its live gauges stop counting (its counters stay in the totals)."""
    with contextlib.suppress(OSError):
        mark_process_dead(pid, str(path))


class RecentMax:
    """The worst value of a take-and-reset reading over the last `window` seconds: the loop lag
    peak can no longer be reset by the scrape when workers export on their own clock."""

    def __init__(self, take: Callable[[], float], window: float = LAG_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.take = take
        self.window = window
        self.clock = clock
        self._seen: deque[tuple[float, float]] = deque()

    def __call__(self) -> float:
        now = self.clock()
        self._seen.append((now, self.take()))
        while self._seen and now - self._seen[0][0] > self.window:
            self._seen.popleft()
        return max(v for _, v in self._seen)


class SharedMetrics:
    """One worker's values, written to its own multiprocess files."""

    def __init__(self, collector: Collector, path: Path, *, pid: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.collector = collector
        self.path = path
        self.pid = os.getpid() if pid is None else pid
        self.clock = clock
        self._files: dict[str, MmapedDict] = {}

    def _file(self, kind: str) -> MmapedDict:
        f = self._files.get(kind)
        if f is None:
            self.path.mkdir(parents=True, exist_ok=True)
            f = self._files[kind] = MmapedDict(str(self.path / f"{kind}_{self.pid}.db"))
        return f

    def export(self, collector: Collector | None = None) -> None:
        """Write the values of `collector` (by default this worker's periodic one)."""
        now = self.clock()
        for family in (collector or self.collector).collect():
            if family.type == "counter":
                kind = "counter"
            elif family.type == "gauge":
                kind = f"gauge_{GAUGE_MODES.get(family.name, DEFAULT_GAUGE_MODE)}"
            else:
                continue
            f = self._file(kind)
            for s in family.samples:
                key = mmap_key(family.name, s.name, list(s.labels), list(s.labels.values()), family.documentation)
                f.write_value(key, float(s.value), now)

    async def run(self, interval: float = EXPORT_INTERVAL) -> None:
        while True:
            try:
                self.export()
            except Exception:  # a full disk must not stop the worker
                log.exception("metrics: cannot write %s", self.path)
            await asyncio.sleep(interval)

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


class MergedCollector(Collector):
    """Worker 0's `/metrics`: its own values written fresh (`full`: also what the periodic
    export leaves out, such as the bindings every worker holds a copy of), then every worker's
    files merged."""

    def __init__(self, own: SharedMetrics, full: Collector | None = None) -> None:
        self.own = own
        self.full = full

    def collect(self) -> Iterator[Metric]:
        self.own.export(self.full)
        yield from MultiProcessCollector(None, path=str(self.own.path)).collect()
