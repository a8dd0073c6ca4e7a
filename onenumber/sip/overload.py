"""Overload control: when to refuse new work with 503 + Retry-After (RFC 3261 §21.5.4).

Pure policy, no clock, no I/O. The edge measures what only it can see — how late the event
loop runs its callbacks (loop lag) and how many bytes wait in the UDP receive queue — and
hands the samples in; the stack asks `admit()` for every request that would start new work.

Only requests that *start* something are refused: an INVITE without a To tag (a new call)
and a REGISTER. Retransmissions (matched to a transaction already accepted), ACK, CANCEL,
BYE and every other in-dialog request are always served, so calls already set up end
normally and the server drains its backlog instead of abandoning half-finished work.

Work already begun is finished first: while the server is over a bound but under twice it, an
INVITE or REGISTER that carries credentials (the second half of a call or registration we
challenged, whose first half has already cost us) is still admitted; only past twice a bound
(or at the transactions bound) is everything new refused.

The lag bound applies to the median of the last `lag_window` samples: one or two late timers — a
collection, another process taking the core for a moment — are not an overload, a loop that
keeps running late is. (An exponential average did not do: one stall of 400 ms on a busy machine
moved it by 100 ms on its own, and refused half a second of calls at half the capacity.) Being
over a bound switches shedding on; it stays on for `hold` seconds after the last sample over a
bound, so a single quiet sample in a storm does not let a burst in.

The UDP queue counts in time: its datagrams divided by the rate the server drains them when it
has work (`DrainRate`: messages per second of the event loop's busy time, running or waiting for
a core; idle time left out). Messages per second of wall-clock time would not do: under a modest
load that is the offered rate, not how fast the server can go, and a stall of 200 ms (a
collection, the core taken by another process for a moment) handles no message at all, so right
after it the rate was near 0 and the few dozen datagrams that queued meanwhile counted as
seconds of work: a soak at half the capacity refused 177 calls in four such seconds
(bench/soak.py). A server short of CPU for good (a share of a core) has its busy rate fall to
what it manages.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

STARTS_WORK = frozenset({"INVITE", "REGISTER"})
DATAGRAM_BYTES = 2304  # what the kernel charges a queued SIP-sized datagram (skb truesize on Linux)
MIN_RATE = 50.0  # messages/s assumed when the server handled fewer: a stalled server has a long queue


@dataclass(slots=True)
class DrainRate:
    """Messages handled per second of the event loop's busy time (running or waiting for a
    core), smoothed: how fast a queue drains once there is work, however long the loop idled;
    one stall moves it by a fraction (`weight`), a lasting shortage of CPU all the way."""

    weight: float = 0.2  # of a new sample in the average
    min_messages: int = 20  # a sample spans at least this many messages (a quiet server's add up)
    rate: float = 0.0  # messages per busy second; 0: not known yet
    _messages: int = 0  # what the sample being gathered holds so far
    _busy: float = 0.0

    def update(self, messages: int, busy: float) -> float:
        """Record `messages` handled in `busy` seconds; the smoothed rate."""
        self._messages += messages
        self._busy += busy
        if self._messages >= self.min_messages and self._busy > 0:
            sample = self._messages / self._busy
            self.rate = sample if not self.rate else self.rate + self.weight * (sample - self.rate)
            self._messages, self._busy = 0, 0.0
        return self.rate


@dataclass(frozen=True, slots=True)
class OverloadPolicy:
    """The bounds (0 switches a bound off) and the Retry-After range."""

    max_lag: float = 0.1  # seconds the event loop may run late
    max_transactions: int = 10000  # at most this many requests in progress (accepted, not answered yet)
    max_queue: int = 4 << 20  # bytes waiting in the UDP receive queue (kernel accounting: ~2.3 KiB a datagram)
    # how long the UDP queue takes to drain at the rate the server is handling messages: the
    # waiting a new request faces, whatever the machine's speed or the server's share of it
    max_queue_delay: float = 0.1
    retry_after: int = 5  # Retry-After is drawn from [retry_after, 2 × retry_after] seconds
    hold: float = 0.5  # seconds shedding stays on after the last sample over a bound
    lag_window: int = 5  # the lag bound applies to the median of this many samples (1: the last one)

    def __post_init__(self) -> None:
        if self.max_lag < 0 or self.max_transactions < 0 or self.max_queue < 0 or self.max_queue_delay < 0:
            raise ValueError(f"overload bounds must be >= 0, got {self}")
        if self.retry_after < 1 or self.hold < 0 or self.lag_window < 1:
            raise ValueError(f"overload retry_after must be >= 1, hold >= 0 and lag_window >= 1, got {self}")


@dataclass(slots=True)
class Overload:
    """The live overload state: the last samples, whether shedding is on, and what was shed."""

    policy: OverloadPolicy = field(default_factory=OverloadPolicy)
    rand: Callable[[], float] = random.random
    lag: float = 0.0  # the last sample
    lag_median: float = 0.0  # the median of the last samples: what the bound applies to
    lags: deque[float] = field(default_factory=deque)  # the last `lag_window` samples
    queue: int = 0
    queue_delay: float = 0.0  # the queue in seconds of work at the current message rate
    shedding_until: float = 0.0
    severe_until: float = 0.0  # past twice a bound: requests with credentials are refused too
    reason: str = ""  # which bound was passed last ("lag", "queue", "transactions")
    shed: dict[str, int] = field(default_factory=dict)  # requests refused, by method

    def sample(self, now: float, *, lag: float | None = None, queue: int | None = None,
               rate: float | None = None) -> bool:
        """Record the edge's measurements (loop lag in seconds, UDP queue in bytes, the rate the
        server drains messages: `DrainRate`); True when they put the server over a bound."""
        p = self.policy
        if lag is not None:
            self.lag = lag
            lags, window = self.lags, p.lag_window
            lags.append(lag)
            while len(lags) > window:  # (the window may shrink when the settings reload)
                lags.popleft()
            calm = [0.0] * (window - len(lags))  # no sample yet counts as calm: a start-up stall is not one
            self.lag_median = sorted([*calm, *lags])[window // 2]
        if queue is not None:
            self.queue = queue
            self.queue_delay = queue / DATAGRAM_BYTES / max(rate or 0.0, MIN_RATE)
        over = ""
        if p.max_lag and self.lag_median > p.max_lag:
            over = "lag"
        elif p.max_queue_delay and self.queue_delay > p.max_queue_delay:
            over = "queue delay"
        elif p.max_queue and self.queue > p.max_queue:
            over = "queue"
        if over:
            self.reason = over
            self.shedding_until = max(self.shedding_until, now + p.hold)
            if ((p.max_lag and self.lag_median > 2 * p.max_lag) or (p.max_queue and self.queue > 2 * p.max_queue)
                    or (p.max_queue_delay and self.queue_delay > 2 * p.max_queue_delay)):
                self.severe_until = max(self.severe_until, now + p.hold)
        return bool(over)

    def overloaded(self, now: float, pending: int) -> bool:
        p = self.policy
        if p.max_transactions and pending >= p.max_transactions:
            self.reason = "transactions"
            return True
        return now < self.shedding_until

    def admit(self, method: str, in_dialog: bool, pending: int, now: float, credentials: bool = False) -> bool:
        """Whether a request that matched no transaction may start new work now (`credentials`:
        it answers a challenge of ours)."""
        if method not in STARTS_WORK or (in_dialog and method == "INVITE"):
            return True
        if not self.overloaded(now, pending):
            return True
        p = self.policy
        if credentials and now >= self.severe_until and not (p.max_transactions and pending >= p.max_transactions):
            return True
        self.shed[method] = self.shed.get(method, 0) + 1
        return False

    def retry_after(self) -> int:
        """Seconds for Retry-After, randomised so refused clients do not all return at once."""
        base = self.policy.retry_after
        return base + int(self.rand() * (base + 1)) if base else 0

    @property
    def shed_total(self) -> int:
        return sum(self.shed.values())
