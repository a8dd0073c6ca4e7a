"""RFC 3261 §17 / RFC 6026 transaction machines: schedules, transitions, invariants.

Time is stepped by hand (no sleeping). The transition matrices below are written from
the RFC figures independently of the tables in onenumber.sip.transaction.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.sip.transaction import (
    Action,
    ClientTransaction,
    LightClientTransaction,
    PassUp,
    ServerTransaction,
    State,
    Terminated,
    Timeout,
    TimerSettings,
    TransactionError,
    Transmit,
)

REQ = b"INVITE sip:bob@example.com SIP/2.0\r\n\r\n"
ACK = b"ACK sip:bob@example.com SIP/2.0\r\n\r\n"
R100 = b"SIP/2.0 100 Trying\r\n\r\n"
R180 = b"SIP/2.0 180 Ringing\r\n\r\n"
R200 = b"SIP/2.0 200 OK\r\n\r\n"
R486 = b"SIP/2.0 486 Busy Here\r\n\r\n"

S = State
TX_REQ = [Transmit(REQ)]
DONE = [Terminated()]
TIMED_OUT = [Timeout(), Terminated()]


def client(invite: bool = True, reliable: bool = False, now: float = 0.0, **kw: float) -> ClientTransaction:
    t = ClientTransaction(invite=invite, request=REQ, reliable=reliable, now=now, timers=TimerSettings(**kw))
    assert t.start(now) == TX_REQ
    return t


def server(invite: bool = True, reliable: bool = False, now: float = 0.0, **kw: float) -> ServerTransaction:
    return ServerTransaction(invite=invite, reliable=reliable, now=now, timers=TimerSettings(**kw))


def run_timers(t: ClientTransaction | ServerTransaction, until: float) -> list[tuple[float, list[Action]]]:
    """Fire timers exactly at their deadlines up to `until`, like the event loop would."""
    fired = []
    while t.state is not S.TERMINATED and t.deadline is not None and t.deadline <= until:
        now = t.deadline
        fired.append((now, t.on_timer(now)))
    return fired


def times(fired: list[tuple[float, list[Action]]], action: Action) -> list[float]:
    return [now for now, actions in fired if action in actions]


# --- settings ------------------------------------------------------------------------------


def test_timer_settings_defaults_and_validation() -> None:
    assert TimerSettings() == TimerSettings(t1=0.5, t2=4.0, t4=5.0)
    for bad in ({"t1": 0.0}, {"t1": -1.0}, {"t1": 5.0, "t2": 4.0}, {"t4": -1.0}):
        with pytest.raises(ValueError):
            TimerSettings(**bad)


# --- INVITE client -------------------------------------------------------------------------


def test_timer_a_doubles_without_cap_then_b_times_out_at_64_t1() -> None:
    t = client()
    assert t.state is S.CALLING and t.active_timers == {"A": 0.5, "B": 32.0}
    fired = run_timers(t, 100.0)
    assert times(fired, Transmit(REQ)) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]  # 16 s gap: no T2 cap
    assert fired[-1] == (32.0, TIMED_OUT)
    assert t.state is S.TERMINATED and t.deadline is None


def test_timer_a_follows_custom_t1() -> None:
    t = client(t1=0.1, t2=0.4)
    fired = run_timers(t, 100.0)
    assert times(fired, Transmit(REQ)) == pytest.approx([0.1, 0.3, 0.7, 1.5, 3.1, 6.3])
    assert fired[-1][0] == pytest.approx(6.4) and fired[-1][1] == TIMED_OUT


def test_invite_client_reliable_has_no_timer_a_only_b() -> None:
    t = client(reliable=True)
    assert t.active_timers == {"B": 32.0}
    assert t.on_timer(31.9) == []
    assert t.on_timer(32.0) == TIMED_OUT


def test_invite_client_provisional_stops_a_and_b() -> None:
    t = client()
    assert t.receive_response(100, 0.2) == [PassUp()]
    assert t.state is S.PROCEEDING and t.deadline is None and t.last_status == 100
    assert t.receive_response(180, 5.0) == [PassUp()]
    assert t.last_status == 180
    assert t.on_timer(1000.0) == []  # stale wake-up: nothing runs in Proceeding (Timer C is the TU's)


@pytest.mark.parametrize("from_proceeding", [False, True])
def test_invite_client_failure_acks_and_timer_d_udp(from_proceeding: bool) -> None:
    t = client()
    if from_proceeding:
        t.receive_response(180, 0.1)
    assert t.receive_response(486, 1.0, ack=ACK) == [Transmit(ACK), PassUp()]
    assert t.state is S.COMPLETED and t.active_timers == {"D": 33.0} and t.last_status == 486
    # Each retransmission of the final response re-sends the stored ACK, without PassUp.
    assert t.receive_response(486, 2.0) == [Transmit(ACK)]
    assert t.receive_response(486, 3.0, ack=b"other") == [Transmit(ACK)]
    assert t.receive_response(180, 4.0) == []
    assert t.receive_response(200, 4.0) == []
    assert t.on_timer(32.9) == []
    assert t.on_timer(33.0) == DONE


def test_timer_d_outlives_timer_h_with_a_large_t1() -> None:
    t = client(t1=1.0, t2=4.0)
    t.receive_response(500, 0.0, ack=ACK)
    assert t.active_timers == {"D": 64.0}


def test_invite_client_failure_reliable_terminates_at_once() -> None:
    t = client(reliable=True)
    assert t.receive_response(603, 1.0, ack=ACK) == [Transmit(ACK), PassUp(), Terminated()]
    assert t.state is S.TERMINATED and t.deadline is None


def test_invite_client_failure_without_ack_is_refused_and_changes_nothing() -> None:
    t = client()
    with pytest.raises(TransactionError, match="ACK"):
        t.receive_response(486, 1.0)
    assert t.state is S.CALLING and t.active_timers == {"A": 0.5, "B": 32.0} and t.last_status is None


@pytest.mark.parametrize("reliable", [False, True])
def test_invite_client_2xx_accepted_with_timer_m(reliable: bool) -> None:
    t = client(reliable=reliable)
    t.on_timer(0.5)
    assert t.receive_response(200, 1.0) == [PassUp()]
    # RFC 6026: Timer M = 64*T1 whatever the transport; A and B are gone.
    assert t.state is S.ACCEPTED and t.active_timers == {"M": 33.0}
    assert t.receive_response(200, 2.0) == [PassUp()]  # forked or retransmitted 2xx: to the TU
    assert t.receive_response(202, 2.0) == [PassUp()] and t.last_status == 202
    assert t.receive_response(180, 3.0) == []
    assert t.receive_response(486, 3.0, ack=ACK) == []
    assert t.last_status == 202
    assert t.on_timer(32.9) == []
    assert t.on_timer(33.0) == DONE


def test_late_on_timer_fires_lifetime_before_retransmission() -> None:
    t = client()
    assert t.on_timer(40.0) == TIMED_OUT  # no pointless retransmission before the timeout


def test_late_retransmission_rearms_from_now_without_a_burst() -> None:
    t = client()
    assert t.on_timer(2.0) == TX_REQ  # A was due at 0.5: one send, not a catch-up burst
    assert t.active_timers == {"A": 3.0, "B": 32.0}
    assert t.on_timer(2.5) == []


def test_client_stale_on_timer_returns_nothing() -> None:
    t = client()
    assert t.on_timer(0.49) == []
    assert t.active_timers == {"A": 0.5, "B": 32.0}


# --- non-INVITE client ---------------------------------------------------------------------


def test_timer_e_doubles_capped_at_t2_then_f() -> None:
    t = client(invite=False)
    assert t.state is S.TRYING and t.active_timers == {"E": 0.5, "F": 32.0}
    fired = run_timers(t, 100.0)
    assert times(fired, Transmit(REQ)) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired[-1] == (32.0, TIMED_OUT)


def test_timer_e_in_proceeding_uses_t2() -> None:
    t = client(invite=False)
    assert t.on_timer(0.5) == TX_REQ  # next E in 1 s (Trying doubling)
    assert t.receive_response(100, 0.7) == [PassUp()]
    assert t.state is S.PROCEEDING
    assert t.active_timers == {"E": 1.5, "F": 32.0}  # entering Proceeding keeps E and F running
    fired = run_timers(t, 100.0)
    assert times(fired, Transmit(REQ)) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert fired[-1] == (32.0, TIMED_OUT)


def test_timer_e_in_proceeding_before_first_retransmission() -> None:
    t = client(invite=False, t1=0.5, t2=8.0)
    t.receive_response(180, 0.1)
    fired = run_timers(t, 100.0)
    assert times(fired, Transmit(REQ)) == [0.5, 8.5, 16.5, 24.5]


def test_non_invite_client_reliable_has_only_timer_f() -> None:
    t = client(invite=False, reliable=True)
    assert t.active_timers == {"F": 32.0}
    t.receive_response(100, 1.0)
    assert t.active_timers == {"F": 32.0}
    assert t.on_timer(32.0) == TIMED_OUT


@pytest.mark.parametrize("status", [200, 202, 302, 404, 503, 699])
def test_non_invite_client_final_and_timer_k_udp(status: int) -> None:
    t = client(invite=False)
    t.receive_response(100, 0.2)
    assert t.receive_response(status, 1.0, ack=ACK) == [PassUp()]  # ack ignored outside INVITE
    assert t.state is S.COMPLETED and t.active_timers == {"K": 6.0} and t.last_status == status
    for retransmitted in (100, 180, 200, status):
        assert t.receive_response(retransmitted, 2.0) == []
    assert t.last_status == status
    assert t.on_timer(5.9) == []
    assert t.on_timer(6.0) == DONE


def test_timer_k_follows_t4() -> None:
    t = client(invite=False, t4=2.5)
    t.receive_response(200, 1.0)
    assert t.active_timers == {"K": 3.5}


def test_non_invite_client_final_reliable_terminates_at_once() -> None:
    t = client(invite=False, reliable=True)
    assert t.receive_response(200, 1.0) == [PassUp(), Terminated()]
    assert t.state is S.TERMINATED and t.deadline is None


@pytest.mark.parametrize("invite", [True, False])
def test_client_misuse_raises(invite: bool) -> None:
    t = ClientTransaction(invite=invite, request=REQ, reliable=False, now=0.0)
    for call in (lambda: t.receive_response(200, 0.0), lambda: t.on_timer(0.0),
                 lambda: t.transport_error(0.0)):
        with pytest.raises(TransactionError, match="start"):
            call()
    assert t.deadline is None
    t.start(0.0)
    with pytest.raises(TransactionError, match="already started"):
        t.start(0.1)
    for status in (0, 99, 700, 1000):
        with pytest.raises(TransactionError, match="invalid response status"):
            t.receive_response(status, 0.1)
    assert t.request == REQ and t.invite is invite and t.reliable is False


# --- INVITE server -------------------------------------------------------------------------


def test_invite_server_proceeding_repeats_latest_provisional() -> None:
    t = server()
    assert t.state is S.PROCEEDING and t.deadline is None and t.last_status is None
    assert t.receive_request(0.0) == []  # nothing sent yet
    assert t.send_response(100, R100, 0.0) == [Transmit(R100)]
    assert t.receive_request(0.1) == [Transmit(R100)]
    assert t.send_response(180, R180, 0.2) == [Transmit(R180)]
    assert t.receive_request(0.3) == [Transmit(R180)]
    assert t.receive_ack(0.4) == []  # an ACK before any final response is dropped
    assert t.state is S.PROCEEDING and t.deadline is None and t.last_status == 180


def test_timer_g_doubles_capped_at_t2_then_h_times_out() -> None:
    t = server()
    assert t.send_response(486, R486, 0.0) == [Transmit(R486)]
    assert t.state is S.COMPLETED and t.active_timers == {"G": 0.5, "H": 32.0}
    fired = run_timers(t, 100.0)
    assert times(fired, Transmit(R486)) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert fired[-1] == (32.0, TIMED_OUT)


def test_invite_server_completed_then_ack_and_timer_i_udp() -> None:
    t = server()
    t.send_response(180, R180, 0.0)
    t.send_response(486, R486, 1.0)
    assert t.on_timer(1.5) == [Transmit(R486)]
    assert t.receive_request(1.7) == [Transmit(R486)]  # INVITE retransmission: repeat the final
    assert t.active_timers == {"G": 2.5, "H": 33.0}  # ...without touching Timer G
    assert t.receive_ack(2.0) == []
    assert t.state is S.CONFIRMED and t.active_timers == {"I": 7.0}
    assert t.receive_ack(3.0) == [] and t.receive_request(3.0) == []  # absorbed
    assert t.on_timer(6.9) == []
    assert t.on_timer(7.0) == DONE
    assert t.last_status == 486


def test_invite_server_reliable_has_no_g_and_ack_terminates_at_once() -> None:
    t = server(reliable=True)
    t.send_response(404, R486, 0.0)
    assert t.active_timers == {"H": 32.0}
    assert t.receive_ack(1.0) == DONE


def test_invite_server_reliable_timer_h() -> None:
    t = server(reliable=True)
    t.send_response(404, R486, 0.0)
    assert t.on_timer(32.0) == TIMED_OUT


@pytest.mark.parametrize("reliable", [False, True])
def test_invite_server_2xx_accepted_with_timer_l(reliable: bool) -> None:
    t = server(reliable=reliable)
    t.send_response(180, R180, 0.0)
    assert t.send_response(200, R200, 1.0) == [Transmit(R200)]
    assert t.state is S.ACCEPTED and t.active_timers == {"L": 33.0}
    assert t.receive_request(2.0) == []  # INVITE retransmission absorbed (RFC 6026)
    assert t.receive_ack(2.0) == []
    assert t.send_response(200, R200, 2.5) == [Transmit(R200)]  # the TU's own 2xx retransmission
    assert t.active_timers == {"L": 33.0}
    for status, data in ((180, R180), (486, R486)):
        with pytest.raises(TransactionError, match="Accepted"):
            t.send_response(status, data, 3.0)
    assert t.last_status == 200
    assert t.on_timer(33.0) == DONE


@pytest.mark.parametrize("status", [200, 180, 486])
def test_invite_server_no_response_after_final(status: int) -> None:
    t = server()
    t.send_response(500, R486, 0.0)
    with pytest.raises(TransactionError, match="Completed"):
        t.send_response(status, b"x", 0.1)
    t.receive_ack(0.2)
    with pytest.raises(TransactionError, match="Confirmed"):
        t.send_response(status, b"x", 0.3)
    assert t.last_status == 500


# --- non-INVITE server ---------------------------------------------------------------------


def test_non_invite_server_trying_proceeding_completed_timer_j_udp() -> None:
    t = server(invite=False)
    assert t.state is S.TRYING and t.deadline is None
    assert t.receive_request(0.1) == []  # Trying: retransmissions are discarded
    assert t.send_response(100, R100, 0.2) == [Transmit(R100)]
    assert t.state is S.PROCEEDING
    assert t.receive_request(0.3) == [Transmit(R100)]
    assert t.send_response(180, R180, 0.4) == [Transmit(R180)]
    assert t.receive_request(0.5) == [Transmit(R180)]
    assert t.send_response(200, R200, 1.0) == [Transmit(R200)]
    assert t.state is S.COMPLETED and t.active_timers == {"J": 33.0}
    assert t.receive_request(2.0) == [Transmit(R200)]
    assert run_timers(t, 100.0) == [(33.0, DONE)]  # no retransmission timer on the server side


@pytest.mark.parametrize("status", [200, 404])
def test_non_invite_server_final_from_trying(status: int) -> None:
    t = server(invite=False)
    assert t.send_response(status, R200, 0.0) == [Transmit(R200)]
    assert t.state is S.COMPLETED and t.last_status == status


def test_non_invite_server_reliable_final_terminates_at_once() -> None:
    t = server(invite=False, reliable=True)
    assert t.send_response(200, R200, 0.0) == [Transmit(R200), Terminated()]
    assert t.state is S.TERMINATED


@pytest.mark.parametrize("second", [100, 200, 500])
def test_non_invite_server_second_final_raises(second: int) -> None:
    t = server(invite=False)
    t.send_response(200, R200, 0.0)
    with pytest.raises(TransactionError, match="Completed"):
        t.send_response(second, R200, 0.1)
    assert t.state is S.COMPLETED and t.last_status == 200


def test_non_invite_server_has_no_ack() -> None:
    t = server(invite=False)
    with pytest.raises(TransactionError, match="ACK"):
        t.receive_ack(0.0)


@pytest.mark.parametrize("invite", [True, False])
def test_server_invalid_status_raises(invite: bool) -> None:
    t = server(invite=invite)
    for status in (0, 99, 700):
        with pytest.raises(TransactionError, match="invalid response status"):
            t.send_response(status, b"x", 0.0)
    assert t.last_status is None and t.state in (S.PROCEEDING, S.TRYING)


def test_server_stale_on_timer_returns_nothing() -> None:
    t = server()
    assert t.on_timer(5.0) == []


# --- the transition matrices, one cell at a time -------------------------------------------
# Each cell: (next state, action codes) or None for "raises TransactionError".
# Codes: T = Transmit, P = PassUp, O = Timeout, X = Terminated.

CLIENT_EVENTS = ("1xx", "2xx", "fail", "terr")
SERVER_EVENTS = ("req", "ack", "s1xx", "s2xx", "sfail", "terr")

_PROC_LIKE = {"1xx": (S.PROCEEDING, "P"), "2xx": (S.ACCEPTED, "P"), "fail": (S.COMPLETED, "TP"),
              "terr": (S.TERMINATED, "OX")}
INVITE_CLIENT_MATRIX = {
    S.CALLING: _PROC_LIKE,
    S.PROCEEDING: _PROC_LIKE,
    S.COMPLETED: {"1xx": (S.COMPLETED, ""), "2xx": (S.COMPLETED, ""), "fail": (S.COMPLETED, "T"),
                  "terr": (S.TERMINATED, "X")},
    S.ACCEPTED: {"1xx": (S.ACCEPTED, ""), "2xx": (S.ACCEPTED, "P"), "fail": (S.ACCEPTED, ""),
                 "terr": (S.TERMINATED, "X")},
    S.TERMINATED: dict.fromkeys(CLIENT_EVENTS),
}
_TRYING_LIKE = {"1xx": (S.PROCEEDING, "P"), "2xx": (S.COMPLETED, "P"), "fail": (S.COMPLETED, "P"),
                "terr": (S.TERMINATED, "OX")}
NON_INVITE_CLIENT_MATRIX = {
    S.TRYING: _TRYING_LIKE,
    S.PROCEEDING: _TRYING_LIKE,
    S.COMPLETED: {"1xx": (S.COMPLETED, ""), "2xx": (S.COMPLETED, ""), "fail": (S.COMPLETED, ""),
                  "terr": (S.TERMINATED, "X")},
    S.TERMINATED: dict.fromkeys(CLIENT_EVENTS),
}
INVITE_SERVER_MATRIX = {
    S.PROCEEDING: {"req": (S.PROCEEDING, "T"), "ack": (S.PROCEEDING, ""), "s1xx": (S.PROCEEDING, "T"),
                   "s2xx": (S.ACCEPTED, "T"), "sfail": (S.COMPLETED, "T"), "terr": (S.TERMINATED, "X")},
    S.COMPLETED: {"req": (S.COMPLETED, "T"), "ack": (S.CONFIRMED, ""), "s1xx": None, "s2xx": None,
                  "sfail": None, "terr": (S.TERMINATED, "X")},
    S.CONFIRMED: {"req": (S.CONFIRMED, ""), "ack": (S.CONFIRMED, ""), "s1xx": None, "s2xx": None,
                  "sfail": None, "terr": (S.TERMINATED, "X")},
    S.ACCEPTED: {"req": (S.ACCEPTED, ""), "ack": (S.ACCEPTED, ""), "s1xx": None,
                 "s2xx": (S.ACCEPTED, "T"), "sfail": None, "terr": (S.TERMINATED, "X")},
    S.TERMINATED: dict.fromkeys(SERVER_EVENTS),
}
NON_INVITE_SERVER_MATRIX = {
    S.TRYING: {"req": (S.TRYING, ""), "ack": None, "s1xx": (S.PROCEEDING, "T"),
               "s2xx": (S.COMPLETED, "T"), "sfail": (S.COMPLETED, "T"), "terr": (S.TERMINATED, "X")},
    S.PROCEEDING: {"req": (S.PROCEEDING, "T"), "ack": None, "s1xx": (S.PROCEEDING, "T"),
                   "s2xx": (S.COMPLETED, "T"), "sfail": (S.COMPLETED, "T"), "terr": (S.TERMINATED, "X")},
    S.COMPLETED: {"req": (S.COMPLETED, "T"), "ack": None, "s1xx": None, "s2xx": None, "sfail": None,
                  "terr": (S.TERMINATED, "X")},
    S.TERMINATED: dict.fromkeys(SERVER_EVENTS),
}

# How to reach each state at t=1 over UDP (all timers are then > 1, none is zero).
_REACH: dict[tuple[str, State], list[str]] = {
    ("ic", S.CALLING): [], ("ic", S.PROCEEDING): ["1xx"], ("ic", S.COMPLETED): ["fail"],
    ("ic", S.ACCEPTED): ["2xx"], ("ic", S.TERMINATED): ["terr"],
    ("nc", S.TRYING): [], ("nc", S.PROCEEDING): ["1xx"], ("nc", S.COMPLETED): ["2xx"],
    ("nc", S.TERMINATED): ["terr"],
    ("is", S.PROCEEDING): ["s1xx"], ("is", S.COMPLETED): ["sfail"], ("is", S.CONFIRMED): ["sfail", "ack"],
    ("is", S.ACCEPTED): ["s2xx"], ("is", S.TERMINATED): ["terr"],
    ("ns", S.TRYING): [], ("ns", S.PROCEEDING): ["s1xx"], ("ns", S.COMPLETED): ["s2xx"],
    ("ns", S.TERMINATED): ["terr"],
}
_MATRICES = {"ic": INVITE_CLIENT_MATRIX, "nc": NON_INVITE_CLIENT_MATRIX, "is": INVITE_SERVER_MATRIX,
             "ns": NON_INVITE_SERVER_MATRIX}
_CODES = {Transmit: "T", PassUp: "P", Timeout: "O", Terminated: "X"}


def _make(kind: str, reliable: bool = False) -> ClientTransaction | ServerTransaction:
    if kind in ("ic", "nc"):
        return client(invite=kind == "ic", reliable=reliable)
    return server(invite=kind == "is", reliable=reliable)


def _apply(t: ClientTransaction | ServerTransaction, event: str, now: float) -> list[Action]:
    if isinstance(t, ClientTransaction):
        status = {"1xx": 180, "2xx": 200, "fail": 486}.get(event)
        return t.transport_error(now) if status is None else t.receive_response(status, now, ack=ACK)
    call = {
        "req": lambda: t.receive_request(now),
        "ack": lambda: t.receive_ack(now),
        "s1xx": lambda: t.send_response(180, R180, now),
        "s2xx": lambda: t.send_response(200, R200, now),
        "sfail": lambda: t.send_response(486, R486, now),
        "terr": lambda: t.transport_error(now),
    }[event]
    return call()


CELLS = [(kind, state, event, cell) for kind, matrix in _MATRICES.items()
         for state, row in matrix.items() for event, cell in row.items()]


@pytest.mark.parametrize(("kind", "state", "event", "cell"), CELLS,
                         ids=[f"{k}-{s}-{e}" for k, s, e, _ in CELLS])
def test_transition_matrix_udp(kind: str, state: State, event: str,
                               cell: tuple[State, str] | None) -> None:
    t = _make(kind)
    for step in _REACH[(kind, state)]:
        _apply(t, step, 1.0)
    assert t.state is state
    before = (t.state, t.active_timers, t.last_status)
    if cell is None:
        with pytest.raises(TransactionError):
            _apply(t, event, 2.0)
        assert (t.state, t.active_timers, t.last_status) == before  # a refused call changes nothing
        return
    actions = _apply(t, event, 2.0)
    assert (t.state, "".join(_CODES[type(a)] for a in actions)) == cell


# Over a reliable transport the zero-length D/I/J/K collapse Completed/Confirmed into the call.
RELIABLE_CELLS = [
    ("ic", S.CALLING, "fail", (S.TERMINATED, "TPX")),
    ("ic", S.PROCEEDING, "fail", (S.TERMINATED, "TPX")),
    ("ic", S.CALLING, "2xx", (S.ACCEPTED, "P")),  # Timer M is 64*T1 on every transport
    ("nc", S.TRYING, "2xx", (S.TERMINATED, "PX")),
    ("nc", S.PROCEEDING, "fail", (S.TERMINATED, "PX")),
    ("is", S.COMPLETED, "ack", (S.TERMINATED, "X")),
    ("is", S.PROCEEDING, "s2xx", (S.ACCEPTED, "T")),  # Timer L too
    ("ns", S.TRYING, "s2xx", (S.TERMINATED, "TX")),
    ("ns", S.PROCEEDING, "sfail", (S.TERMINATED, "TX")),
]


@pytest.mark.parametrize(("kind", "state", "event", "cell"), RELIABLE_CELLS)
def test_transition_matrix_reliable(kind: str, state: State, event: str, cell: tuple[State, str]) -> None:
    t = _make(kind, reliable=True)
    for step in _REACH[(kind, state)]:
        _apply(t, step, 1.0)
    assert t.state is state
    actions = _apply(t, event, 2.0)
    assert (t.state, "".join(_CODES[type(a)] for a in actions)) == cell


@pytest.mark.parametrize("kind", ["ic", "nc", "is", "ns"])
def test_everything_raises_after_terminated(kind: str) -> None:
    t = _make(kind)
    assert _apply(t, "terr", 1.0)[-1] == Terminated()
    events = CLIENT_EVENTS if kind in ("ic", "nc") else SERVER_EVENTS
    for event in events:
        with pytest.raises(TransactionError, match="Terminated"):
            _apply(t, event, 2.0)
    with pytest.raises(TransactionError, match="Terminated"):
        t.on_timer(100.0)


def test_repr_names_machine_state_and_timers() -> None:
    text = repr(client())
    assert "invite-client" in text and "Calling" in text and "'A': 0.5" in text


# --- property: random event sequences ------------------------------------------------------

_STATUSES = st.sampled_from([0, 100, 180, 183, 200, 202, 301, 404, 486, 503, 603, 700])
_DT = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 4.0, 5.0, 32.0]), st.floats(0.0, 40.0))
_CLIENT_EV = st.tuples(st.sampled_from(["start", "resp", "resp", "resp", "timer", "terr"]), _STATUSES, _DT)
_SERVER_EV = st.tuples(st.sampled_from(["req", "ack", "send", "send", "send", "timer", "terr"]),
                       _STATUSES, _DT)
# States in which no timer may run: the TU (Timer C, 100 Trying, final answer) drives them.
_TIMERLESS = {
    ("ic", S.PROCEEDING), ("is", S.PROCEEDING), ("ns", S.TRYING), ("ns", S.PROCEEDING),
    ("ic", S.TERMINATED), ("nc", S.TERMINATED), ("is", S.TERMINATED), ("ns", S.TERMINATED),
}


class _Checker:
    """Drives one machine and checks the invariants after every call."""

    def __init__(self, kind: str, t: ClientTransaction | ServerTransaction, loop: bool) -> None:
        self.kind, self.t, self.loop = kind, t, loop
        self.allowed = {REQ, ACK} if kind in ("ic", "nc") else set()
        self.ended = False
        self.started = kind in ("is", "ns")

    def call(self, now: float, fn, *args) -> None:  # type: ignore[no-untyped-def]
        t = self.t
        before = (t.state, t.active_timers, t.last_status)
        try:
            actions = fn(*args)
        except TransactionError:
            assert (t.state, t.active_timers, t.last_status) == before
            return
        assert not self.ended, "a Terminated transaction accepted a call"
        assert isinstance(actions, list)
        assert all(isinstance(a, Transmit | PassUp | Timeout | Terminated) for a in actions)
        for a in actions:
            if isinstance(a, Transmit):
                assert a.data in self.allowed
        if Terminated() in actions:
            assert actions.count(Terminated()) == 1 and actions[-1] == Terminated()
            assert t.state is S.TERMINATED and t.deadline is None
            self.ended = True
        else:
            assert t.state is not S.TERMINATED
        if Timeout() in actions:
            assert actions[-2:] == [Timeout(), Terminated()]
        if PassUp() in actions:
            assert self.kind in ("ic", "nc")
        if self.kind == "nc":
            assert Transmit(ACK) not in actions
        deadline = t.deadline
        if self.loop and deadline is not None:
            assert deadline > now, "deadline in the past after a call"
        if self.started and deadline is None:
            assert (self.kind, t.state) in _TIMERLESS

    def fire_due(self, now: float) -> None:
        """What the event loop does before delivering a message at `now`."""
        while self.loop and not self.ended and self.started and self.t.deadline is not None \
                and self.t.deadline <= now:
            due = self.t.deadline
            self.call(due, self.t.on_timer, due)


def _run_client(kind: str, reliable: bool, loop: bool, events: list[tuple[str, int, float]]) -> None:
    t = ClientTransaction(invite=kind == "ic", request=REQ, reliable=reliable, now=0.0,
                          timers=TimerSettings())
    c = _Checker(kind, t, loop)
    now = 0.0
    for name, status, dt in events:
        now += dt
        c.fire_due(now)
        if name == "start":
            c.call(now, t.start, now)
            c.started = True
        elif name == "resp":
            c.call(now, t.receive_response, status, now, ACK if status >= 300 else None)
        elif name == "timer":
            c.call(now, t.on_timer, now)
        else:
            c.call(now, t.transport_error, now)


def _run_server(kind: str, reliable: bool, loop: bool, events: list[tuple[str, int, float]]) -> None:
    t = ServerTransaction(invite=kind == "is", reliable=reliable, now=0.0)
    c = _Checker(kind, t, loop)
    now = 0.0
    for name, status, dt in events:
        now += dt
        c.fire_due(now)
        if name == "req":
            c.call(now, t.receive_request, now)
        elif name == "ack":
            c.call(now, t.receive_ack, now)
        elif name == "send":
            data = b"SIP/2.0 %d X\r\n\r\n" % status
            c.allowed.add(data)
            c.call(now, t.send_response, status, data, now)
        elif name == "timer":
            c.call(now, t.on_timer, now)
        else:
            c.call(now, t.transport_error, now)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["ic", "nc"]), reliable=st.booleans(), loop=st.booleans(),
       events=st.lists(_CLIENT_EV, max_size=30))
def test_client_random_sequences(kind: str, reliable: bool, loop: bool,
                                 events: list[tuple[str, int, float]]) -> None:
    _run_client(kind, reliable, loop, events)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["is", "ns"]), reliable=st.booleans(), loop=st.booleans(),
       events=st.lists(_SERVER_EV, max_size=30))
def test_server_random_sequences(kind: str, reliable: bool, loop: bool,
                                 events: list[tuple[str, int, float]]) -> None:
    _run_server(kind, reliable, loop, events)


# -- the light non-INVITE client machine (the stack's prepared requests) -------------------------

@given(
    events=st.lists(st.tuples(st.sampled_from(["timer", "1xx", "final", "error"]), st.floats(0, 12)), max_size=15),
    reliable=st.booleans(),
)
def test_light_client_behaves_as_the_table_machine_up_to_its_final(events: list, reliable: bool) -> None:
    """Same retransmissions (E), timeout (F), 1xx and transport errors as ClientTransaction; a
    final response passes up as there, then the light one terminates at once (no Completed/K)."""
    timers = TimerSettings()
    table = ClientTransaction(invite=False, request=b"NOTIFY", reliable=reliable, now=0.0, timers=timers)
    light = LightClientTransaction(request=b"NOTIFY", reliable=reliable, now=0.0, timers=timers)
    assert table.start(0.0) == light.start(0.0)
    now = 0.0
    for kind, dt in events:
        assert (table.state, table.deadline, table.active_timers) == (light.state, light.deadline, light.active_timers)
        now += dt
        if kind == "timer":
            assert table.on_timer(now) == light.on_timer(now)
        elif kind == "1xx":
            assert table.receive_response(180, now) == light.receive_response(180, now)
        elif kind == "final":
            expected = table.receive_response(200, now)  # reliable: K is 0, it terminates there too
            if table.state is not State.TERMINATED:
                expected = [*expected, Terminated()]
            assert expected == light.receive_response(200, now)
            assert light.state is State.TERMINATED and light.deadline is None and light.last_status == 200
            assert light.receive_response(200, now + 1) == []  # a retransmission: absorbed
            return
        else:
            assert table.transport_error(now) == light.transport_error(now)
        if table.state is State.TERMINATED:
            assert light.state is State.TERMINATED
            with pytest.raises(TransactionError):
                light.on_timer(now + 100)
            return
