"""OPTIONS keepalive for UDP bindings: a phone that stops answering is dropped well before its
registration expires, so calls stop ringing a dead device (issue 11, "Dead UDP phones").

Every UDP binding is pinged with an out-of-dialog OPTIONS every `keepalive_interval` seconds
(at the address its REGISTER came from: a phone behind NAT is reached there). Any response,
whatever its status, is a sign of life, and so is a refreshed registration. A ping still
unanswered when the next one is due is a miss; after `keepalive_max_misses` misses in a row the
binding is removed (`BindingChanged(..., "removed", "keepalive")`) and logged. With 30 s × 2
misses a dead phone is gone within 90 s. TCP/TLS/WS bindings need none of this: their
connection closing drops them.

Attached through the core's seams: it learns of bindings from `BindingChanged` events (and one
scan at start for the restored ones), sends through the stack as a transaction user context,
and keeps time with `stack.call_at`, so it runs the same in the sans-IO test bed.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from ..sip.message import Headers, Request, Response
from ..sip.stack import ClientTxn, Stack, Target, Timer
from .directory import Directory
from .events import BindingChanged, Event, EventBus
from .location import Location

log = logging.getLogger("onenumber.keepalive")

TICK = 1.0  # seconds between looks at the due pings


@dataclass(slots=True)
class _Probe:
    outstanding: bool = False  # the last ping is unanswered
    misses: int = 0
    expires_at: float = 0.0  # the binding's expiry when pinged: a refresh moves it (a sign of life)


class Keepalive:
    def __init__(self, stack: Stack, location: Location, directory: Directory, events: EventBus, *,
                 clock: Callable[[], float], rand: Callable[[], float] = random.random) -> None:
        self.stack = stack
        self.location = location
        self.directory = directory
        self.clock = clock
        self.rand = rand
        self._probes: dict[tuple[str, str], _Probe] = {}
        self._due: list[tuple[float, int, str, str]] = []
        self._seq = itertools.count()
        self._timer: Timer | None = None
        self.stats = {"pings": 0, "answers": 0, "dropped": 0}
        events.subscribe(self.on_event, BindingChanged)

    # ------------------------------------------------------------------ bindings come and go
    def start(self, now: float) -> None:
        """Watch the bindings restored at start-up too, then tick."""
        for b in self.location.all():
            if b.transport == "udp":
                self._watch(b.account, b.key, now)
        self._arm(now)

    def on_event(self, event: Event) -> None:
        if isinstance(event, BindingChanged) and event.change == "added" and event.transport == "udp":
            for b in self.location.get(event.account):
                if b.contact == event.contact:
                    self._watch(b.account, b.key, self.clock())

    def _watch(self, account: str, key: str, now: float) -> None:
        if (account, key) in self._probes:
            return
        self._probes[(account, key)] = _Probe()
        interval = self.directory.settings.keepalive_interval or TICK
        # the first ping at a random point of the interval: a restart does not ping everyone at once
        heapq.heappush(self._due, (now + self.rand() * interval, next(self._seq), account, key))

    # ------------------------------------------------------------------ pings
    def _arm(self, now: float) -> None:
        self._timer = self.stack.call_at(now + TICK, self._tick)

    def _tick(self, now: float) -> None:
        self._arm(now)
        settings = self.directory.settings
        interval, max_misses = settings.keepalive_interval, settings.keepalive_max_misses
        due = self._due
        while due and due[0][0] <= now:
            _, _, account, key = heapq.heappop(due)
            probe = self._probes.get((account, key))
            if probe is None:
                continue
            b = self.location.lookup(account, key)
            if b is None or b.transport != "udp":
                del self._probes[(account, key)]  # gone (unregistered, expired, replaced)
                continue
            if not interval:  # switched off: look again later
                heapq.heappush(due, (now + 10 * TICK, next(self._seq), account, key))
                continue
            if b.expires_at > probe.expires_at and probe.expires_at:  # re-registered: alive
                probe.outstanding, probe.misses = False, 0
            if probe.outstanding:
                probe.misses += 1
                if probe.misses >= max_misses:
                    del self._probes[(account, key)]
                    self.stats["dropped"] += 1
                    log.warning("binding of %s (%s, %s at %s:%d) dropped: %d keepalive ping(s) unanswered",
                                account, b.auth_username, b.contact, b.source[0], b.source[1], probe.misses)
                    self.location.remove(account, key, "keepalive")
                    continue
            probe.outstanding = True
            probe.expires_at = b.expires_at
            self._ping(account, key, b.contact, Target("udp", b.source[0], b.source[1]), now)
            heapq.heappush(due, (now + interval, next(self._seq), account, key))

    def _ping(self, account: str, key: str, contact: str, target: Target, now: float) -> None:
        host, port = self.stack.local.get("udp", ("127.0.0.1", 5060))
        h = Headers()
        h.add("Via", f"SIP/2.0/UDP {host}:{port};branch={self.stack.new_branch()};rport")
        h.add("Max-Forwards", "70")
        h.add("From", f"<sip:keepalive@{host}:{port}>;tag={self.stack.new_tag()}")
        h.add("To", f"<{contact}>")
        h.add("Call-ID", f"ka-{self.stack.new_tag()}@{host}")
        h.add("CSeq", "1 OPTIONS")
        h.add("Content-Length", "0")
        self.stack.send_request(Request("OPTIONS", contact, h), target, now, context=_Answer(self, account, key))
        self.stats["pings"] += 1

    def answered(self, account: str, key: str) -> None:
        probe = self._probes.get((account, key))
        if probe is not None:
            probe.outstanding, probe.misses = False, 0
            self.stats["answers"] += 1


class _Answer:
    """The ping's client transaction context: any response means the phone is there."""

    __slots__ = ("account", "key", "service")

    def __init__(self, service: Keepalive, account: str, key: str) -> None:
        self.service = service
        self.account = account
        self.key = key

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        if resp.status >= 200:
            self.service.answered(self.account, self.key)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        pass  # counted as a miss when the next ping is due
