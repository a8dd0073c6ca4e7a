"""Run N whole exchanges through the sans-IO core, for instruction counting under callgrind.

    valgrind --tool=callgrind --callgrind-out-file=OUT python bench/count_core.py call 300

bench/compare.py --instructions runs this for N and for 0 and divides the difference by N:
the instructions one authenticated registration or one forked call costs, a figure that does
not move with what else the machine is doing (wall-clock benchmarks on a shared machine do).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# the checkout under test is the working directory: its own bench_core.py and test bed
sys.path.insert(0, str(Path.cwd() / "bench"))
sys.path.insert(0, str(Path.cwd()))

import bench_core


class Runner:
    """Stands in for pytest-benchmark's fixture: warm up, then call the exchange N times."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, fn) -> None:  # type: ignore[no-untyped-def]
        for _ in range(50):  # warm-up, counted in both the N and the 0 run
            fn()
        for _ in range(self.n):
            fn()


def main() -> None:
    what, n = sys.argv[1], int(sys.argv[2])
    # the registrations are prepared before the run (a digest each): 20,000 of them were ~90 % of
    # the instructions of a run with N=500, the same in both runs; 2,000 serve N up to 1,950
    os.environ.setdefault("ONENUMBER_BENCH_PREPARED", "2000")
    test = {"call": bench_core.test_forked_call, "register": bench_core.test_authenticated_registration,
            "authcall": bench_core.test_authenticated_forked_call}[what]
    test(Runner(n))


if __name__ == "__main__":
    main()
