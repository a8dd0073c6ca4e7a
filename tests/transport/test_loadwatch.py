"""The edge's load samples (transport/loadwatch.py): the busy clock the drain rate is measured on."""

from __future__ import annotations

import sys
import time

import pytest

from onenumber.transport.loadwatch import busy_clock


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="schedstat is Linux's")
def test_the_busy_clock_counts_running_and_not_sleeping() -> None:
    busy = busy_clock()
    assert busy is not time.thread_time  # /proc/thread-self/schedstat was there
    before = busy()
    _spin(0.1)
    spun = busy() - before
    assert 0.09 <= spun <= 0.5  # running (and any wait for the core while it wanted one)
    before = busy()
    time.sleep(0.1)
    assert busy() - before < 0.02  # blocked, as the event loop is in epoll_wait: not busy
