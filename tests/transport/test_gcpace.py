"""Young collections paced by the messages handled (onenumber/transport/gcpace.py)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from onenumber.transport.gcpace import GcPacer, malloc_trim


def test_collects_the_young_generations_once_enough_messages_were_handled() -> None:
    handled = [100]
    collected: list[int] = []
    pacer = GcPacer(lambda: handled[0], every=1000, collect=lambda gen: collected.append(gen) or 0)
    assert not pacer.tick()  # nothing handled since it started
    handled[0] = 1099
    assert not pacer.tick() and collected == []
    handled[0] = 1100
    assert pacer.tick() and collected == [1]  # generations 0 and 1, never the old one
    handled[0] = 2000
    assert not pacer.tick()  # counted from the last collection
    handled[0] = 5000
    assert pacer.tick() and collected == [1, 1] and pacer.collections == 2


def test_records_the_longest_pause() -> None:
    times = iter([0.0, 0.004, 1.0, 1.002])
    handled = [0]
    pacer = GcPacer(lambda: handled[0], every=1, collect=lambda gen: 0, clock=lambda: next(times))
    handled[0] = 1
    pacer.tick()
    handled[0] = 2
    pacer.tick()
    assert pacer.longest == pytest.approx(0.004)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        GcPacer(lambda: 0, every=0)
    with pytest.raises(ValueError):
        GcPacer(lambda: 0, interval=0)


async def test_runs_on_the_loop_with_the_real_collector() -> None:
    handled = [0]
    before = gc.get_stats()[1]["collections"]
    pacer = GcPacer(lambda: handled[0], every=10, interval=0.001)
    task = asyncio.get_running_loop().create_task(pacer.run())
    handled[0] = 10
    for _ in range(200):
        await asyncio.sleep(0.002)
        if pacer.collections:
            break
    task.cancel()
    assert pacer.collections == 1
    assert gc.get_stats()[1]["collections"] > before


def test_trims_malloc_every_interval() -> None:
    now = [0.0]
    trims: list[float] = []
    pacer = GcPacer(lambda: 0, collect=lambda gen: 0, clock=lambda: now[0], trim=lambda: trims.append(now[0]),
                    trim_interval=30.0)
    pacer.tick()
    now[0] = 29.9
    pacer.tick()
    assert trims == []
    now[0] = 30.0
    pacer.tick()
    now[0] = 45.0
    pacer.tick()
    now[0] = 60.5
    pacer.tick()
    assert trims == [30.0, 60.5]


def test_malloc_trim_is_callable_where_glibc_is() -> None:
    trim = malloc_trim()
    if trim is not None:  # glibc: 1 when memory was released, 0 when there was none to release
        assert trim() in (0, 1)
