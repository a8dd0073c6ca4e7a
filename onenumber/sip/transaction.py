"""SIP transaction state machines: RFC 3261 §17 as amended by RFC 6026 (sans-IO).

Four machines — INVITE/non-INVITE × client/server — each written as a table
``state -> {event: (next state, effect)}`` in the style of h11's ``_state.py``.
An (event, state) pair missing from a table is illegal and raises `TransactionError`;
absorbed messages (retransmissions the RFC says to drop) are explicit `_absorb` entries.

The objects decide WHAT to (re)send and WHEN; they never parse or build messages. The
stack matches messages to transactions, hands over the bytes to (re)send, and calls
`on_timer(now)` once `now >= deadline`. Every method takes `now`; results are lists of
actions (`Transmit`, `PassUp`, `Timeout`, `Terminated`) for the stack to carry out in order.

Timers (T1/T2/T4 from `TimerSettings`):

====  ===========================  =========================  ==============
name  machine / state              unreliable (UDP)           reliable
====  ===========================  =========================  ==============
A     INVITE client, Calling       T1, doubling, no cap       not used
B     INVITE client, Calling       64*T1 → Timeout            64*T1
D     INVITE client, Completed     max(32 s, 64*T1)           0
M     INVITE client, Accepted      64*T1 (RFC 6026)           64*T1
E     non-INVITE client            T1 doubling up to T2;      not used
                                   T2 in Proceeding
F     non-INVITE client            64*T1 → Timeout            64*T1
K     non-INVITE client, Completed T4                         0
G     INVITE server, Completed     T1 doubling up to T2       not used
H     INVITE server, Completed     64*T1 → Timeout            64*T1
I     INVITE server, Confirmed     T4                         0
L     INVITE server, Accepted      64*T1 (RFC 6026)           64*T1
J     non-INVITE server, Completed 64*T1                      0
====  ===========================  =========================  ==============

Choices worth knowing:

* A zero-duration timer (D, I, J, K on a reliable transport) is never scheduled: the
  transition to Terminated happens inside the same call, whose actions then end with
  `Terminated()`. So a non-INVITE final response over TCP yields ``[PassUp(), Terminated()]``.
* Retransmission timers (A, E, G) are re-armed from the `now` at which they fired, so a
  late `on_timer` call never produces a burst; lifetime timers (B, D, F, H, I, J, K, L, M)
  are absolute. When both are due, the lifetime timer wins (no retransmission right
  before a timeout). After `on_timer(now)` the deadline is always None or later than now.
* `on_timer` called before the deadline (a stale wake-up) returns []. Any call after
  Terminated raises: the stack must have forgotten the transaction.
* Messages from the network that the RFC says to discard (a 1xx after a final response,
  an ACK before any final response, an INVITE retransmission in Confirmed/Accepted) are
  absorbed with []; only misuse by the stack or TU raises.
* A transport error before a final response reaches the TU gives ``[Timeout(), Terminated()]``
  on the client side (the TU treats it as 408); otherwise just ``[Terminated()]``.

Hot path: slotted objects, shared singleton actions, the request/ACK/last-response
`Transmit` built once and reused; the per-(settings, transport) timer plan is cached.

Depends on nothing but the standard library: no parsing, no I/O, no clock.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Final, TypeAlias

__all__ = [
    "Action",
    "ClientTransaction",
    "LightClientTransaction",
    "PassUp",
    "ServerTransaction",
    "State",
    "Terminated",
    "Timeout",
    "TimerSettings",
    "TransactionError",
    "Transmit",
]


class TransactionError(Exception):
    """The stack or TU asked a transaction for something its state does not allow."""


@dataclass(frozen=True, slots=True)
class TimerSettings:
    """RFC 3261 §17.1.1.1 base timer values, in seconds."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        # t1 > 0 keeps every retransmission deadline strictly in the future.
        if not (self.t1 > 0 and self.t2 >= self.t1 and self.t4 >= 0):
            raise ValueError(f"need 0 < t1 <= t2 and t4 >= 0, got {self}")


class State(StrEnum):
    """RFC 3261 / RFC 6026 state names."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


_TRYING: Final = State.TRYING  # a member read off its enum class costs ~1 k instructions (CPython 3.11)


# --- actions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transmit:
    """Send these bytes to the transaction's peer now."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PassUp:
    """Deliver the response just received to the TU (client transactions)."""


@dataclass(frozen=True, slots=True)
class Timeout:
    """Timer B/F/H fired or the transport failed: the TU treats it as a 408."""


@dataclass(frozen=True, slots=True)
class Terminated:
    """The transaction is over; the stack forgets it."""


Action: TypeAlias = Transmit | PassUp | Timeout | Terminated

# The field-less actions are immutable, so one instance each serves every call.
_PASS_UP: Final = PassUp()
_TIMEOUT: Final = Timeout()
_TERMINATED: Final = Terminated()


# --- events and effects ------------------------------------------------------------------


class _Ev(IntEnum):
    RECV_1XX = 0
    RECV_2XX = 1
    RECV_FAILURE = 2  # 300-699
    SEND_1XX = 3
    SEND_2XX = 4
    SEND_FAILURE = 5  # 300-699
    RECV_REQUEST = 6  # a retransmission of the request
    RECV_ACK = 7
    RETRANSMIT_TIMER = 8  # A, E or G fired
    EXPIRE_TIMER = 9  # B, D, F, H, I, J, K, L or M fired
    TRANSPORT_ERROR = 10


_EVENT_TEXT: Final = {
    _Ev.RECV_1XX: "receive a 1xx response",
    _Ev.RECV_2XX: "receive a 2xx response",
    _Ev.RECV_FAILURE: "receive a 300-699 response",
    _Ev.SEND_1XX: "send a 1xx response",
    _Ev.SEND_2XX: "send a 2xx response",
    _Ev.SEND_FAILURE: "send a 300-699 response",
    _Ev.RECV_REQUEST: "receive a request retransmission",
    _Ev.RECV_ACK: "receive an ACK",
    _Ev.RETRANSMIT_TIMER: "fire a retransmission timer",
    _Ev.EXPIRE_TIMER: "fire a lifetime timer",
    _Ev.TRANSPORT_ERROR: "handle a transport error",
}

# An effect runs before the state changes and may raise (then nothing has changed).
# Signature: effect(transaction, now, argument, actions_out).
_Effect: TypeAlias = Callable[["_Transaction", float, "bytes | None", "list[Action]"], None]


def _absorb(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    pass


def _pass_up(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    out.append(_PASS_UP)


def _timeout(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    out.append(_TIMEOUT)


def _ack_and_pass_up(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    # §17.1.1.3: the INVITE client transaction generates the ACK for a non-2xx final.
    if arg is None:
        raise TransactionError("a 300-699 response to INVITE needs the ACK bytes (ack=...)")
    t._ack_tx = arg
    out.append(Transmit(arg))
    out.append(_PASS_UP)


def _resend_ack(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    out.append(Transmit(t._ack_tx))  # type: ignore[arg-type]  # set on entering Completed


def _retransmit_request(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    # Timer A (cap = inf) or E in Trying (cap = T2): double the interval.
    out.append(Transmit(t._main_tx))  # type: ignore[arg-type]  # set when the request is first sent
    t._rtx_interval = interval = min(t._rtx_interval * 2.0, t._rtx_cap)
    t._rtx_at = now + interval


def _retransmit_request_t2(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    # §17.1.2.2: Timer E in Proceeding is reset to T2 each time.
    out.append(Transmit(t._main_tx))  # type: ignore[arg-type]  # set when the request is first sent
    t._rtx_interval = interval = t._timers.t2
    t._rtx_at = now + interval


def _send_response(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    t._main_tx = arg
    out.append(Transmit(arg))  # type: ignore[arg-type]  # public callers pass bytes


def _resend_response(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    # Nothing to repeat if the TU has not answered yet (INVITE Proceeding without a 1xx).
    if t._main_tx is not None:
        out.append(Transmit(t._main_tx))


def _retransmit_response(t: _Transaction, now: float, arg: bytes | None, out: list[Action]) -> None:
    # Timer G: doubling, capped at T2.
    out.append(Transmit(t._main_tx))  # type: ignore[arg-type]  # set when the response is first sent
    t._rtx_interval = interval = min(t._rtx_interval * 2.0, t._rtx_cap)
    t._rtx_at = now + interval


# --- the four tables ---------------------------------------------------------------------

_Table: TypeAlias = dict[State, dict[_Ev, tuple[State, _Effect]]]

_S = State
_E = _Ev

# RFC 3261 §17.1.1 figure 5 + RFC 6026 figure 3 (Accepted).
INVITE_CLIENT: Final[_Table] = {
    _S.CALLING: {
        _E.RECV_1XX: (_S.PROCEEDING, _pass_up),
        _E.RECV_2XX: (_S.ACCEPTED, _pass_up),
        _E.RECV_FAILURE: (_S.COMPLETED, _ack_and_pass_up),
        _E.RETRANSMIT_TIMER: (_S.CALLING, _retransmit_request),  # A
        _E.EXPIRE_TIMER: (_S.TERMINATED, _timeout),  # B
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _timeout),
    },
    _S.PROCEEDING: {
        _E.RECV_1XX: (_S.PROCEEDING, _pass_up),
        _E.RECV_2XX: (_S.ACCEPTED, _pass_up),
        _E.RECV_FAILURE: (_S.COMPLETED, _ack_and_pass_up),
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _timeout),
    },
    _S.COMPLETED: {
        _E.RECV_1XX: (_S.COMPLETED, _absorb),
        _E.RECV_2XX: (_S.COMPLETED, _absorb),
        _E.RECV_FAILURE: (_S.COMPLETED, _resend_ack),
        _E.EXPIRE_TIMER: (_S.TERMINATED, _absorb),  # D
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.ACCEPTED: {
        _E.RECV_1XX: (_S.ACCEPTED, _absorb),
        _E.RECV_2XX: (_S.ACCEPTED, _pass_up),  # forked 2xx / retransmissions: a proxy forwards them
        _E.RECV_FAILURE: (_S.ACCEPTED, _absorb),
        _E.EXPIRE_TIMER: (_S.TERMINATED, _absorb),  # M
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.TERMINATED: {},
}

# RFC 3261 §17.1.2 figure 6.
NON_INVITE_CLIENT: Final[_Table] = {
    _S.TRYING: {
        _E.RECV_1XX: (_S.PROCEEDING, _pass_up),
        _E.RECV_2XX: (_S.COMPLETED, _pass_up),
        _E.RECV_FAILURE: (_S.COMPLETED, _pass_up),
        _E.RETRANSMIT_TIMER: (_S.TRYING, _retransmit_request),  # E
        _E.EXPIRE_TIMER: (_S.TERMINATED, _timeout),  # F
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _timeout),
    },
    _S.PROCEEDING: {
        _E.RECV_1XX: (_S.PROCEEDING, _pass_up),
        _E.RECV_2XX: (_S.COMPLETED, _pass_up),
        _E.RECV_FAILURE: (_S.COMPLETED, _pass_up),
        _E.RETRANSMIT_TIMER: (_S.PROCEEDING, _retransmit_request_t2),  # E
        _E.EXPIRE_TIMER: (_S.TERMINATED, _timeout),  # F
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _timeout),
    },
    _S.COMPLETED: {
        _E.RECV_1XX: (_S.COMPLETED, _absorb),
        _E.RECV_2XX: (_S.COMPLETED, _absorb),
        _E.RECV_FAILURE: (_S.COMPLETED, _absorb),
        _E.EXPIRE_TIMER: (_S.TERMINATED, _absorb),  # K
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.TERMINATED: {},
}

# RFC 3261 §17.2.1 figure 7 + RFC 6026 figure 5 (Accepted).
INVITE_SERVER: Final[_Table] = {
    _S.PROCEEDING: {
        _E.RECV_REQUEST: (_S.PROCEEDING, _resend_response),
        _E.RECV_ACK: (_S.PROCEEDING, _absorb),  # no final response yet: nothing to acknowledge
        _E.SEND_1XX: (_S.PROCEEDING, _send_response),
        _E.SEND_2XX: (_S.ACCEPTED, _send_response),
        _E.SEND_FAILURE: (_S.COMPLETED, _send_response),
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.COMPLETED: {
        _E.RECV_REQUEST: (_S.COMPLETED, _resend_response),
        _E.RECV_ACK: (_S.CONFIRMED, _absorb),
        _E.RETRANSMIT_TIMER: (_S.COMPLETED, _retransmit_response),  # G
        _E.EXPIRE_TIMER: (_S.TERMINATED, _timeout),  # H: the ACK never came
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.CONFIRMED: {
        _E.RECV_REQUEST: (_S.CONFIRMED, _absorb),
        _E.RECV_ACK: (_S.CONFIRMED, _absorb),
        _E.EXPIRE_TIMER: (_S.TERMINATED, _absorb),  # I
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.ACCEPTED: {
        _E.RECV_REQUEST: (_S.ACCEPTED, _absorb),  # the TU retransmits the 2xx itself
        # An ACK for a 2xx is its own transaction (new branch); one matching here is dropped.
        _E.RECV_ACK: (_S.ACCEPTED, _absorb),
        _E.SEND_2XX: (_S.ACCEPTED, _send_response),
        _E.EXPIRE_TIMER: (_S.TERMINATED, _absorb),  # L
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.TERMINATED: {},
}

# RFC 3261 §17.2.2 figure 8.
NON_INVITE_SERVER: Final[_Table] = {
    _S.TRYING: {
        _E.RECV_REQUEST: (_S.TRYING, _absorb),
        _E.SEND_1XX: (_S.PROCEEDING, _send_response),
        _E.SEND_2XX: (_S.COMPLETED, _send_response),
        _E.SEND_FAILURE: (_S.COMPLETED, _send_response),
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.PROCEEDING: {
        _E.RECV_REQUEST: (_S.PROCEEDING, _resend_response),
        _E.SEND_1XX: (_S.PROCEEDING, _send_response),
        _E.SEND_2XX: (_S.COMPLETED, _send_response),
        _E.SEND_FAILURE: (_S.COMPLETED, _send_response),
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.COMPLETED: {
        _E.RECV_REQUEST: (_S.COMPLETED, _resend_response),
        _E.EXPIRE_TIMER: (_S.TERMINATED, _absorb),  # J
        _E.TRANSPORT_ERROR: (_S.TERMINATED, _absorb),
    },
    _S.TERMINATED: {},
}

# Timers armed on ENTERING a state (a self-transition re-arms nothing):
# state -> (retransmission timer or None, lifetime timer or None); absent = keep running timers
# (non-INVITE client Trying -> Proceeding keeps E and F, §17.1.2.2).
_ENTRY_TIMERS: Final[dict[str, dict[State, tuple[str | None, str | None]]]] = {
    "invite-client": {
        _S.CALLING: ("A", "B"),
        _S.PROCEEDING: (None, None),
        _S.COMPLETED: (None, "D"),
        _S.ACCEPTED: (None, "M"),
        _S.TERMINATED: (None, None),
    },
    "non-invite-client": {
        _S.TRYING: ("E", "F"),
        _S.COMPLETED: (None, "K"),
        _S.TERMINATED: (None, None),
    },
    "invite-server": {
        _S.PROCEEDING: (None, None),
        _S.COMPLETED: ("G", "H"),
        _S.CONFIRMED: (None, "I"),
        _S.ACCEPTED: (None, "L"),
        _S.TERMINATED: (None, None),
    },
    "non-invite-server": {
        _S.TRYING: (None, None),
        _S.PROCEEDING: (None, None),
        _S.COMPLETED: (None, "J"),
        _S.TERMINATED: (None, None),
    },
}

# (retransmit timer name, initial interval or None if unused, lifetime name, duration or None)
_Plan: TypeAlias = tuple[str | None, float | None, str | None, float | None]


def _duration(name: str, timers: TimerSettings, reliable: bool) -> float | None:
    t1 = timers.t1
    if name in "AEG":  # retransmissions exist only on unreliable transports
        return None if reliable else t1
    if name in "BFHLM":
        return 64.0 * t1
    if name == "D":  # must outlive the server's Timer H so every retransmitted final is ACKed
        return 0.0 if reliable else max(32.0, 64.0 * t1)
    if name in "IK":
        return 0.0 if reliable else timers.t4
    if name == "J":
        return 0.0 if reliable else 64.0 * t1
    raise AssertionError(name)


@functools.lru_cache(maxsize=64)
def _plan(kind: str, timers: TimerSettings, reliable: bool) -> dict[State, _Plan]:
    """Per-state timer durations for one machine, transport and settings (shared by instances)."""
    plan: dict[State, _Plan] = {}
    for state, (rtx, life) in _ENTRY_TIMERS[kind].items():
        plan[state] = (
            rtx,
            None if rtx is None else _duration(rtx, timers, reliable),
            life,
            None if life is None else _duration(life, timers, reliable),
        )
    return plan


# --- the machines ------------------------------------------------------------------------


class _Transaction:
    """Table interpreter shared by the client and server machines."""

    __slots__ = (
        "_ack_tx",
        "_kind",
        "_life_at",
        "_life_name",
        "_main_tx",
        "_plan",
        "_rtx_at",
        "_rtx_cap",
        "_rtx_interval",
        "_rtx_name",
        "_table",
        "_timers",
        "created",
        "invite",
        "last_status",
        "reliable",
        "state",
    )

    def __init__(self, kind: str, table: _Table, state: State, invite: bool, reliable: bool,
                 now: float, timers: TimerSettings) -> None:
        self.invite = invite
        self.reliable = reliable
        self.created = now
        self.state = state
        self.last_status: int | None = None
        self._kind = kind
        self._table = table
        self._timers = timers
        self._plan = _plan(kind, timers, reliable)
        # A (INVITE client) doubles without a cap; E and G stop at T2.
        self._rtx_cap = math.inf if kind == "invite-client" else timers.t2
        # client: the request; server: the last response sent. Bytes, wrapped in a Transmit only
        # when (re)sent: a transaction waits out Timer J/M/D (32 s) holding them, and a bytes
        # object is not one more for every young collection to scan
        self._main_tx: bytes | None = None
        self._ack_tx: bytes | None = None
        self._rtx_name: str | None = None
        self._rtx_at: float | None = None
        self._rtx_interval = 0.0
        self._life_name: str | None = None
        self._life_at: float | None = None

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self._kind} {self.state} "
                f"{'reliable' if self.reliable else 'unreliable'} timers={self.active_timers}>")

    @property
    def deadline(self) -> float | None:
        """When `on_timer` must next be called (None: no timer running)."""
        r = self._rtx_at
        life = self._life_at
        if r is None:
            return life
        if life is None or r < life:
            return r
        return life

    @property
    def active_timers(self) -> dict[str, float]:
        """Running timers by RFC name, e.g. ``{"A": 1.5, "B": 32.0}`` (for logs and tests)."""
        timers: dict[str, float] = {}
        if self._rtx_at is not None and self._rtx_name is not None:
            timers[self._rtx_name] = self._rtx_at
        if self._life_at is not None and self._life_name is not None:
            timers[self._life_name] = self._life_at
        return timers

    def on_timer(self, now: float) -> list[Action]:
        """Fire every timer due at `now` (lifetime before retransmission); [] if none is due."""
        if self.state is State.TERMINATED:
            raise TransactionError(f"{self._kind} transaction is Terminated; on_timer is not allowed")
        out: list[Action] = []
        while self.state is not State.TERMINATED:
            life = self._life_at
            if life is not None and life <= now:
                self._life_at = None
                self._step(_Ev.EXPIRE_TIMER, now, None, out)
                continue
            r = self._rtx_at
            if r is not None and r <= now:
                self._rtx_at = None  # the effect re-arms it from `now`
                self._step(_Ev.RETRANSMIT_TIMER, now, None, out)
                continue
            break
        return out

    def transport_error(self, now: float) -> list[Action]:
        """The transport could not deliver a message of this transaction (§17.1.4, §17.2.4)."""
        return self._step(_Ev.TRANSPORT_ERROR, now, None, [])

    # -- interpreter --

    def _step(self, event: _Ev, now: float, arg: bytes | None, out: list[Action]) -> list[Action]:
        state = self.state
        entry = self._table[state].get(event)
        if entry is None:
            raise TransactionError(
                f"{self._kind} transaction in state {state} cannot {_EVENT_TEXT[event]}")
        next_state, effect = entry
        effect(self, now, arg, out)
        if next_state is not state:
            self.state = next_state
            self._enter(next_state, now, out)
        return out

    def _enter(self, state: State, now: float, out: list[Action]) -> None:
        plan = self._plan.get(state)
        if plan is None:
            return  # keep the running timers
        rtx_name, rtx, life_name, life = plan
        self._rtx_name = rtx_name
        if rtx is None:
            self._rtx_at = None
        else:
            self._rtx_interval = rtx
            self._rtx_at = now + rtx
        self._life_name = life_name
        if life is None:
            self._life_at = None
        elif life == 0.0:
            # Zero-duration timer (reliable transport): fire now, inside this call.
            self._life_at = None
            self._step(_Ev.EXPIRE_TIMER, now, None, out)
        else:
            self._life_at = now + life
        if state is State.TERMINATED:
            out.append(_TERMINATED)


class ClientTransaction(_Transaction):
    """RFC 3261 §17.1 client transaction (INVITE: Calling/Proceeding/Completed/Accepted)."""

    __slots__ = ("_started",)

    def __init__(self, *, invite: bool, request: bytes, reliable: bool, now: float,
                 timers: TimerSettings = TimerSettings()) -> None:
        if invite:
            super().__init__("invite-client", INVITE_CLIENT, State.CALLING, True, reliable, now, timers)
        else:
            super().__init__("non-invite-client", NON_INVITE_CLIENT, State.TRYING, False, reliable,
                             now, timers)
        self._main_tx = request
        self._started = False

    @property
    def request(self) -> bytes:
        return self._main_tx  # type: ignore[return-value]  # always set for clients

    def start(self, now: float) -> list[Action]:
        """Send the request for the first time and arm A+B (INVITE) or E+F (non-INVITE)."""
        if self._started:
            raise TransactionError(f"{self._kind} transaction already started")
        self._started = True
        out: list[Action] = [Transmit(self._main_tx)]  # type: ignore[arg-type]  # set by __init__
        self._enter(self.state, now, out)
        return out

    def receive_response(self, status: int, now: float, ack: bytes | None = None) -> list[Action]:
        """A response matching this transaction arrived (§17.1.3 matching is the stack's job).

        `ack` is required for the first 300-699 response to an INVITE (the stack builds it);
        it is ignored otherwise — retransmitted finals in Completed re-send the stored ACK.
        """
        if not self._started:
            raise TransactionError(f"{self._kind} transaction received a response before start()")
        if 100 <= status < 200:
            event = _Ev.RECV_1XX
        elif 200 <= status < 300:
            event = _Ev.RECV_2XX
        elif 300 <= status < 700:
            event = _Ev.RECV_FAILURE
        else:
            raise TransactionError(f"invalid response status {status}")
        out = self._step(event, now, ack, [])
        if _PASS_UP in out:
            self.last_status = status
        return out

    def on_timer(self, now: float) -> list[Action]:
        if not self._started:
            raise TransactionError(f"{self._kind} transaction has no timers before start()")
        return _Transaction.on_timer(self, now)

    def transport_error(self, now: float) -> list[Action]:
        if not self._started:
            raise TransactionError(f"{self._kind} transaction has sent nothing before start()")
        return _Transaction.transport_error(self, now)


class LightClientTransaction:
    """The non-INVITE client transaction of a request the stack sends prepared
    (`Stack.send_prepared`: the NOTIFYs of subscriptions, by the thousand), written out instead
    of table-driven: Trying and Proceeding as in `ClientTransaction` (Timer E from T1 doubling
    up to T2, at T2 once Proceeding, not on reliable transports; Timer F at 64·T1, then
    Timeout), but a final response passes up and terminates at once. There is no Completed
    state, so no Timer K: K only absorbs retransmissions of the final, and without the
    transaction they are stray responses, which the transaction user drops. The same methods
    as `ClientTransaction` for the stack; a fraction of its cost (one object, no table walk)."""

    __slots__ = ("_data", "_f_at", "_interval", "_rtx_at", "_t2", "last_status", "reliable", "state")

    invite = False

    def __init__(self, request: bytes, reliable: bool, now: float, timers: TimerSettings = TimerSettings()) -> None:
        # positional (the stack makes one per NOTIFY): a class called with keywords builds a dict
        self._data = request  # its Transmit made when sent (most are sent once: by the stack, not start())
        self.reliable = reliable
        self.state = _TRYING
        self.last_status: int | None = None
        self._t2 = timers.t2
        t1 = self._interval = timers.t1
        self._rtx_at: float | None = None if reliable else now + t1  # E
        self._f_at: float | None = now + 64.0 * t1  # F

    def __repr__(self) -> str:
        return f"<LightClientTransaction {self.state} rtx={self._rtx_at} F={self._f_at}>"

    @property
    def request(self) -> bytes:
        return self._data

    @property
    def deadline(self) -> float | None:
        r, f = self._rtx_at, self._f_at
        return f if r is None or (f is not None and f <= r) else r

    @property
    def active_timers(self) -> dict[str, float]:
        timers = {"E": self._rtx_at} if self._rtx_at is not None else {}
        return timers | ({"F": self._f_at} if self._f_at is not None else {})

    def start(self, now: float) -> list[Action]:
        """The request's first transmission (the timers run from construction)."""
        return [Transmit(self._data)]

    def receive_response(self, status: int, now: float, ack: bytes | None = None) -> list[Action]:
        if not 100 <= status < 700:
            raise TransactionError(f"invalid response status {status}")
        if self.state is State.TERMINATED:
            return []  # a retransmitted final: absorbed
        self.last_status = status
        if status < 200:
            self.state = State.PROCEEDING
            return [_PASS_UP]
        self._end()
        return [_PASS_UP, _TERMINATED]

    def on_timer(self, now: float) -> list[Action]:
        if self.state is State.TERMINATED:
            raise TransactionError("non-invite-client transaction is Terminated; on_timer is not allowed")
        f = self._f_at
        if f is not None and f <= now:  # F: lifetime before retransmission, as the table machine
            self._end()
            return [_TIMEOUT, _TERMINATED]
        r = self._rtx_at
        if r is None or r > now:
            return []
        # E: doubling up to T2 in Trying, reset to T2 in Proceeding (§17.1.2.2)
        self._interval = min(self._interval * 2.0, self._t2) if self.state is State.TRYING else self._t2
        self._rtx_at = now + self._interval
        return [Transmit(self._data)]

    def transport_error(self, now: float) -> list[Action]:
        if self.state is State.TERMINATED:
            raise TransactionError("non-invite-client transaction in state Terminated cannot handle a transport error")
        self._end()
        return [_TIMEOUT, _TERMINATED]

    def _end(self) -> None:
        self.state = State.TERMINATED
        self._rtx_at = self._f_at = None


class ServerTransaction(_Transaction):
    """RFC 3261 §17.2 server transaction, created when a new request arrives.

    INVITE starts in Proceeding (the TU should send a 100 Trying at once: a proxy always
    does, §16.2); non-INVITE starts in Trying.
    """

    __slots__ = ()

    def __init__(self, *, invite: bool, reliable: bool, now: float,
                 timers: TimerSettings = TimerSettings()) -> None:
        if invite:
            super().__init__("invite-server", INVITE_SERVER, State.PROCEEDING, True, reliable, now, timers)
        else:
            super().__init__("non-invite-server", NON_INVITE_SERVER, State.TRYING, False, reliable,
                             now, timers)

    def receive_request(self, now: float) -> list[Action]:
        """A retransmission of the request arrived: answer it with the last response, if any."""
        return self._step(_Ev.RECV_REQUEST, now, None, [])

    def send_response(self, status: int, data: bytes, now: float) -> list[Action]:
        """The TU sends a response: ``[Transmit(data)]`` plus the state change (§17.2.1, §17.2.2)."""
        if 100 <= status < 200:
            event = _Ev.SEND_1XX
        elif 200 <= status < 300:
            event = _Ev.SEND_2XX
        elif 300 <= status < 700:
            event = _Ev.SEND_FAILURE
        else:
            raise TransactionError(f"invalid response status {status}")
        out = self._step(event, now, data, [])
        self.last_status = status
        return out

    def receive_ack(self, now: float) -> list[Action]:
        """An ACK matching this INVITE transaction arrived (Completed -> Confirmed)."""
        return self._step(_Ev.RECV_ACK, now, None, [])
