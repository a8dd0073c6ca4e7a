"""Young collections paced by the messages handled (onenumber/transport/gcpace.py)."""

from __future__ import annotations

import asyncio
import gc

import pytest

from onenumber.transport.gcpace import GcPacer, malloc_trim


def test_collects_the_young_generations_once_enough_messages_were_handled() -> None:
    handled = [100]
    collected: list[int] = []
    pacer = GcPacer(lambda: handled[0], every=1000, collect=lambda gen: collected.append(gen) or 0, scan_every=1)
    assert not pacer.tick()  # nothing handled since it started
    handled[0] = 1099
    assert not pacer.tick() and collected == []
    handled[0] = 1100
    assert pacer.tick() and collected == [1]  # generations 0 and 1, never the old one
    handled[0] = 2000
    assert not pacer.tick()  # counted from the last collection
    handled[0] = 5000
    assert pacer.tick() and collected == [1, 1] and pacer.collections == 2


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_records_the_longest_pause() -> None:
    clock = FakeClock()
    pauses = iter([0.004, 0.002])

    def collect(gen: int) -> int:
        clock.now += next(pauses)
        return 0

    handled = [0]
    pacer = GcPacer(lambda: handled[0], every=1, collect=collect, clock=clock, scan_every=1)
    handled[0] = 1
    pacer.tick()
    clock.now += 1.0
    handled[0] = 2
    pacer.tick()
    assert pacer.longest == pytest.approx(0.004)


def test_the_old_generation_is_collected_when_quiet_and_at_the_latest_after_hours() -> None:
    clock = FakeClock()
    handled = [0]
    collected: list[int] = []
    frozen: list[str] = []
    pacer = GcPacer(lambda: handled[0], every=10**9, collect=lambda gen: collected.append(gen) or 0, clock=clock,
                    full_every=600, full_at_latest=3600, quiet_rate=20, quiet_window=10,
                    freeze=lambda: frozen.append("freeze"), unfreeze=lambda: frozen.append("unfreeze"))

    total = [0.0]

    def run(seconds: float, rate: float) -> None:  # ticks every 50 ms at `rate` messages a second
        for _ in range(int(seconds * 20)):
            clock.now += 0.05
            total[0] += rate * 0.05
            handled[0] = int(total[0])
            pacer.tick()

    run(300, 0)
    assert collected == []  # quiet, but the last full collection (start-up) is recent
    run(400, 100)
    assert collected == []  # due, but busy: it waits for a quiet moment
    run(20, 10)
    assert collected == [2] and pacer.full_collections == 1  # quiet enough: collected once
    assert frozen == ["unfreeze", "freeze"]  # what the young rounds froze is collected too
    run(120, 0)
    assert collected == [2]  # at most once every full_every
    run(3600, 100)
    assert collected == [2, 2]  # busy for full_at_latest: collected all the same
    assert pacer.full_at == pytest.approx(clock.now, abs=700)


def test_young_rounds_freeze_instead_of_scanning_while_scans_find_no_garbage() -> None:
    handled = [0]
    found = [0]
    rounds: list[str] = []
    pacer = GcPacer(lambda: handled[0], every=10, scan_every=4, collect=lambda gen: rounds.append("scan") or found[0],
                    freeze=lambda: rounds.append("freeze"))

    def round_() -> None:
        handled[0] += 10
        assert pacer.tick()

    for _ in range(9):
        round_()
    # the first round scans; then one scan in every four rounds while they find nothing
    assert rounds == ["scan", "freeze", "freeze", "freeze", "scan", "freeze", "freeze", "freeze", "scan"]
    assert pacer.collections == 3 and pacer.freezes == 6
    rounds.clear()
    round_()
    found[0] = 12  # a scan finds cyclic garbage: every round scans until one finds none
    round_(), round_(), round_()
    assert rounds == ["freeze", "freeze", "freeze", "scan"]
    rounds.clear()
    round_(), round_()
    found[0] = 0
    round_(), round_(), round_()
    assert rounds == ["scan", "scan", "scan", "freeze", "freeze"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        GcPacer(lambda: 0, scan_every=0)
    with pytest.raises(ValueError):
        GcPacer(lambda: 0, every=0)
    with pytest.raises(ValueError):
        GcPacer(lambda: 0, interval=0)
    with pytest.raises(ValueError):
        GcPacer(lambda: 0, full_every=100, full_at_latest=50)


async def test_runs_on_the_loop_with_the_real_collector() -> None:
    handled = [0]
    before = gc.get_stats()[1]["collections"]
    pacer = GcPacer(lambda: handled[0], every=10, interval=0.001)  # the first round scans
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


def test_a_frozen_round_really_freezes_and_a_full_collection_unfreezes() -> None:
    frozen_before = gc.get_freeze_count()
    handled = [0]
    pacer = GcPacer(lambda: handled[0], every=1, scan_every=2, collect=lambda gen: 0)  # real freeze, unfreeze
    try:
        handled[0] = 1
        pacer.tick()  # scans
        young = [[] for _ in range(100)]  # tracked objects allocated since
        handled[0] = 2
        pacer.tick()  # freezes
        assert pacer.freezes == 1 and gc.get_freeze_count() >= frozen_before + len(young)
        pacer._full(0.0)
        assert pacer.full_collections == 1 and gc.get_freeze_count() >= len(young)  # frozen again after
    finally:
        gc.unfreeze()  # leave the test process's collector as it was (nothing frozen under pytest)


def test_a_slow_scan_is_logged_with_its_cpu_time(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    handled = [0]

    def collect(gen: int) -> int:
        clock.now += 0.2  # 200 ms of wall time, hardly any of it this thread's CPU
        return 0

    pacer = GcPacer(lambda: handled[0], every=10, collect=collect, clock=clock, scan_every=1)
    handled[0] = 10
    with caplog.at_level("WARNING", logger="onenumber.gc"):
        assert pacer.tick()
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("slow paced collection: 200.0 ms (") and "ms of CPU)" in line
