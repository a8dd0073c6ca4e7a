"""BLF load through the sans-IO core: how many NOTIFYs the server sustains, and what watchers
add to a forked call. A standalone script (not a timed test):

    .venv/bin/python bench/bench_blf.py                      # CPU-time figures (a few seconds)
    .venv/bin/python bench/bench_blf.py --instructions 200   # + callgrind instruction counts

Set-up: 1,000 accounts × 2 registered devices; `--subs` (1,000) BLF subscriptions (`Event:
dialog`, each from its own watcher socket, digest-authenticated through the gate) spread
`--watchers` (3) per account over the first 334 accounts. Every call goes to a watched
account: INVITE from a trunk → both devices ring (180) → one answers → the other is
cancelled ("completed elsewhere") → ACK → BYE, bench_core.py's `forked_call`. Each NOTIFY
the server sends is answered 200 by its watcher (that answer is part of the cost). The
presence flush runs after every message, as the driver's timer would in the server, so a
call shows early → confirmed → terminated to each watcher (3 × 3 NOTIFYs per call).

Figures:
- NOTIFYs/s: NOTIFYs sent divided by the CPU time of the run (calls + NOTIFYs + their 200s);
  and the fan-out alone (NOTIFY built, sent and its 200 handled, no call around it).
- CPU per forked call (time.process_time, best of `--repeat`) with presence off, presence
  on but nobody watching, and every called account watched by 3: the extra is the last over
  the second (the issue's target: under +30 %).
- With `--instructions N`: the same three variants under callgrind ((run with N calls) −
  (run with 0)) / N: instructions per call, repeatable on a loaded machine (within ~1 %
  between runs). They count the whole process, so the bench's own side too: building the
  call's messages and reading the core's output (in all three), and each watcher cutting
  its 200 from a NOTIFY (`ok_for`, ~18 k instructions, in the watched variant only).
"""

from __future__ import annotations

import argparse
import gc
import itertools
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_core import D0, forked_call  # noqa: E402  # the forked call, as bench_core drives it

from onenumber.services.subscriptions import Package  # noqa: E402
from onenumber.settings import Trunk  # noqa: E402
from onenumber.sip.message import Request, Response, parse  # noqa: E402
from onenumber.sip.stack import Send, Source  # noqa: E402
from onenumber.transport.gcpace import THRESHOLDS as GC_THRESHOLDS  # noqa: E402
from onenumber.transport.gcpace import GcPacer  # noqa: E402
from tests.services.sipnet import SERVER, TRUNK, Net, make_account  # noqa: E402
from tests.services.test_presence_service import authed_subscribe  # noqa: E402

ACCOUNTS = 1000
STEP = 0.002  # simulated seconds per call (500 calls/s)
WATCHER_PORT = 40000  # watcher sockets: WATCHER_PORT + i


_ECHOED = re.compile(rb"\r\n((?:Via|From|To|Call-ID|CSeq):[^\r]*)")  # the header fields a 200 echoes


def ok_for(notify: bytes) -> bytes:
    """A watcher's 200 to one NOTIFY, cut from its bytes. Cheap, as it is the bench's side and
    not the server's, yet callgrind counts it: a regex over the header per field (the first
    version) cost ~40 k instructions per NOTIFY, splitting it into lines and keeping those that
    start with Via/From/To/Call-ID/CSeq ~28 k, one findall over it ~18 k."""
    return b"SIP/2.0 200 OK\r\n%b\r\nContent-Length: 0\r\n\r\n" % b"\r\n".join(
        _ECHOED.findall(notify, 0, notify.find(b"\r\n\r\n")))


class Bed:
    """A core with accounts, devices, and BLF watchers whose NOTIFYs get answered.

    `server` accumulates the CPU time spent inside the core (stack input, timers, event
    subscribers): what the server would spend; building the test messages and reading the
    core's output are the bench's own work and are not counted."""

    def __init__(self, *, presence: bool, subs: int, watchers: int) -> None:
        accounts, devices = [], []
        for i in range(ACCOUNTS):
            a, d = make_account(str(10000 + i), f"User {i}", 2)
            accounts.append(a)
            devices += d
        self.net = Net(accounts, devices, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),), record_events=False,
                       presence=presence)
        self.pacer = GcPacer(self.net.stack.gc_paced)
        for i, dev in enumerate(devices):
            self.net.bind(dev, D0 + (i % 2) * 2)
        self.devices = devices
        self.notifies = 0
        self.server = 0.0
        watched = max(1, -(-subs // max(watchers, 1))) if subs else max(1, -(-1000 // 3))
        self.targets = [str(10000 + i) for i in range(watched)]
        for i in range(subs):
            target = self.targets[i // watchers]
            watcher = devices[(2 * (watched + i)) % len(devices)]  # device 0 of another account
            out = authed_subscribe(self.net, watcher.secret, target, "dialog", user=watcher.auth_username,
                                   src=("127.0.0.1", WATCHER_PORT + i), expires=3600)
            self._answer([s for s, _ in out])
        self.net.advance(0)
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)  # as onenumber.main does
        # and, as the server does, young collections every 1,000 messages (transport/gcpace.py;
        # `Stack.gc_paced`: the NOTIFYs' 200s, which leave nothing alive, do not count), counted
        # as the server's time (counted, they made the watched run collect half as often again)
        self.pacer.last = self.net.stack.gc_paced()
        self.counter = itertools.count(1)

    @property
    def subscriptions(self) -> int:
        p = self.net.core.presence
        return len(p.subscriptions) if p is not None else 0

    def _core(self, data: bytes, src: tuple[str, int]) -> list[Send]:
        """One message into the core, as the driver does it: receive, dispatch the call events,
        run the timers due now (the presence flush); returns what the core sends."""
        net, stack = self.net, self.net.stack
        t0 = time.process_time()
        stack.receive(data, Source("udp", src, SERVER), net.now)
        out: list[Send] = []
        while True:
            out += stack.outbox
            stack.outbox = []
            if not net.core.events.dispatch() and not stack.outbox:
                nxt = stack.next_timer()
                if nxt is None or nxt > net.now:
                    break
                stack.handle_timer(net.now)
        self.pacer.tick()
        self.server += time.process_time() - t0
        return out

    def _answer(self, out: list[Send]) -> list[Send]:
        """Each watcher answers its NOTIFYs 200 (what keeps a subscription alive); the rest is
        returned."""
        rest = []
        while out:
            more: list[Send] = []
            for send in out:
                if send.remote[1] >= WATCHER_PORT and send.data.startswith(b"NOTIFY "):
                    self.notifies += 1
                    more += self._core(ok_for(send.data), ("127.0.0.1", send.remote[1]))
                else:
                    rest.append(send)
            out = more
        return rest

    def send(self, data: object, src: tuple[str, int]) -> list[tuple[Send, Request | Response]]:
        raw = data if isinstance(data, bytes) else bytes(data)  # type: ignore[call-overload]
        return [(x, parse(x.data, stream=True)) for x in self._answer(self._core(raw, src))]

    def call(self) -> None:
        n = next(self.counter)
        forked_call(self.send, n, self.targets[n % len(self.targets)], prefix="blf")
        self.net.now += STEP
        t0 = time.process_time()
        self.net.stack.handle_timer(self.net.now)
        self.server += time.process_time() - t0
        self._answer(self.net.stack.outbox)
        self.net.stack.outbox = []

    def fan_out(self, rounds: int) -> int:
        """NOTIFYs alone: every watched account's watchers are sent its state again."""
        presence = self.net.core.presence
        assert presence is not None
        before = self.notifies
        for _ in range(rounds):
            for target in self.targets:
                t0 = time.process_time()
                presence._notify_all(Package.DIALOG, target, self.net.now)
                self.server += time.process_time() - t0
                out, self.net.stack.outbox = self.net.stack.outbox, []
                self._answer(out)
            self.net.now += STEP
        return self.notifies - before


VARIANTS = {  # name → (presence service, subscriptions, watchers per account)
    "presence-off": (False, 0, 3),
    "no-watchers": (True, 0, 3),
    "3-watchers": (True, 1000, 3),
}


def cpu_per_call(variant: str, calls: int, repeat: int) -> float:
    presence, subs, watchers = VARIANTS[variant]
    best = float("inf")
    for _ in range(repeat):
        bed = Bed(presence=presence, subs=subs, watchers=watchers)
        for _ in range(100):
            bed.call()  # warm-up
        before = bed.server
        for _ in range(calls):
            bed.call()
        best = min(best, (bed.server - before) / calls)
    return best


def count(variant: str, n: int) -> None:
    """The callgrind driver: set up, warm up, then `n` calls (run for n and for 0)."""
    presence, subs, watchers = VARIANTS[variant]
    bed = Bed(presence=presence, subs=subs, watchers=watchers)
    for _ in range(50):
        bed.call()
    for _ in range(n):
        bed.call()


def instructions(variant: str, n: int, out: Path) -> float:
    out.mkdir(parents=True, exist_ok=True)
    totals = []
    for k in (0, n):
        cg = out / f"{variant}-{k}.callgrind"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", sys.executable, __file__,
               "--count", variant, str(k)]
        subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=3600)
        line = next(x for x in cg.read_text().splitlines() if x.startswith(("summary:", "totals:")))
        totals.append(int(line.split()[1]))
    return (totals[1] - totals[0]) / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subs", type=int, default=1000, help="BLF subscriptions for the NOTIFY rate (default 1000)")
    ap.add_argument("--watchers", type=int, default=3, help="watchers per watched account (default 3)")
    ap.add_argument("--calls", type=int, default=1000, help="calls per measured run (default 1000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per CPU figure, the best is kept (default 3)")
    ap.add_argument("--instructions", type=int, metavar="N", help="also count instructions of N calls (callgrind)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "blf", help="callgrind output folder")
    ap.add_argument("--count", nargs=2, metavar=("VARIANT", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.count:
        count(args.count[0], int(args.count[1]))
        return 0

    print(f"BLF benchmark: {ACCOUNTS} accounts x 2 devices, sans-IO core, one process")
    t0 = time.perf_counter()
    bed = Bed(presence=True, subs=args.subs, watchers=args.watchers)
    print(f"  {bed.subscriptions} subscriptions on {len(bed.targets)} accounts set up in "
          f"{time.perf_counter() - t0:.1f} s ({bed.notifies} initial NOTIFYs answered)")
    for _ in range(100):
        bed.call()
    before, c0 = bed.notifies, bed.server
    for _ in range(args.calls):
        bed.call()
    cpu = bed.server - c0
    sent = bed.notifies - before
    print(f"  calls to watched accounts: {args.calls} calls, {sent} NOTIFYs ({sent / args.calls:.1f}/call) in "
          f"{cpu:.2f} s CPU -> {sent / cpu:,.0f} NOTIFYs/s with the calls causing them "
          f"({args.calls / cpu:,.0f} calls/s)")
    c0 = bed.server
    fanned = bed.fan_out(10)
    cpu = bed.server - c0
    print(f"  NOTIFY fan-out alone: {fanned} NOTIFYs (+ their 200s) in {cpu:.2f} s CPU -> "
          f"{fanned / cpu:,.0f} NOTIFYs/s")
    print(f"  subscriptions still active: {bed.subscriptions}")

    print(f"CPU per forked call (best of {args.repeat} x {args.calls} calls; noisy on a shared machine, "
          f"--instructions gives repeatable figures):")
    per = {v: cpu_per_call(v, args.calls, args.repeat) for v in VARIANTS}
    for v, s in per.items():
        print(f"  {v:13s} {s * 1e6:8.0f} µs")
    extra = per["3-watchers"] / per["no-watchers"] - 1
    print(f"  3 watchers per called account vs none: {extra:+.1%} (target < +30 %); "
          f"presence service without watchers vs off: {per['no-watchers'] / per['presence-off'] - 1:+.1%}")
    if args.instructions:
        print(f"Instructions per forked call (callgrind, ({args.instructions} calls) - (0 calls)):")
        ir = {v: instructions(v, args.instructions, args.out) for v in VARIANTS}
        for v, n in ir.items():
            print(f"  {v:13s} {n:12,.0f}")
        print(f"  3 watchers per called account vs none: {ir['3-watchers'] / ir['no-watchers'] - 1:+.1%} "
              f"(target < +30 %); presence service without watchers vs off: "
              f"{ir['no-watchers'] / ir['presence-off'] - 1:+.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
