"""The driver serves the stack's deadlines on a grid, and a timer the loop fires a little early
serves its slot instead of re-arming for the remaining fraction of a millisecond (which spun)."""

from __future__ import annotations

import asyncio

from onenumber.transport.driver import EARLY, Driver


class FakeStack:
    def __init__(self, deadlines: list[float]) -> None:
        self.deadlines = deadlines  # sorted; handle_timer drops those due
        self.outbox: list = []
        self.handled: list[float] = []

    def next_timer(self) -> float | None:
        return self.deadlines[0] if self.deadlines else None

    def handle_timer(self, now: float) -> None:
        self.handled.append(now)
        self.deadlines = [d for d in self.deadlines if d > now]


def test_deadlines_in_one_slot_share_one_wakeup() -> None:
    async def go() -> None:
        now = [1000.0]
        stack = FakeStack([1000.0012, 1000.0031, 1000.0087, 1000.0154])
        driver = Driver(stack, clock=lambda: now[0])  # type: ignore[arg-type]
        driver.pump()
        at = driver._timer_at
        assert at is not None and abs(at - 1000.01) < 1e-9  # the end of the first deadline's slot
        now[0] = at - EARLY / 2  # the loop fires a little early
        driver._on_timer()
        assert stack.handled == [at]  # served as if on time: the slot's three deadlines at once
        assert stack.deadlines == [1000.0154]
        assert driver._timer_at is not None and abs(driver._timer_at - 1000.02) < 1e-9
        driver.close()

    asyncio.run(go())


def test_a_timer_fired_well_before_its_slot_serves_nothing_early() -> None:
    async def go() -> None:
        now = [1000.0]
        stack = FakeStack([1000.05])
        driver = Driver(stack, clock=lambda: now[0])  # type: ignore[arg-type]
        driver.pump()
        now[0] = 1000.05 - 10 * EARLY  # far too early (not what a loop does): the real time is used
        driver._on_timer()
        assert stack.handled == [now[0]] and stack.deadlines == [1000.05]
        assert driver._timer_at is not None and abs(driver._timer_at - 1000.05) < 1e-9
        driver.close()

    asyncio.run(go())

