"""Directed pickup policy: who may pick up, which call, what a refusal says."""

from __future__ import annotations

from onenumber.routing.pickup import (
    Replaces,
    RingingCall,
    decide_pickup,
    parse_replaces,
    pickup_target,
)

CALLS = [
    RingingCall("b", "1000", 20.0, "tb", tags=frozenset({"d0", "d1"})),
    RingingCall("a", "1000", 10.0, "ta"),
    RingingCall("c", "1002", 5.0, "tc"),
    RingingCall("d", "1000", 1.0, "td", answered=True, tags=frozenset({"d0"})),
]


def test_pickup_code() -> None:
    assert pickup_target("*81000") == "1000"
    assert pickup_target("*8 1000") == "1000"
    assert pickup_target("*8") is None
    assert pickup_target("1000") is None
    assert pickup_target("*981000") is None
    assert pickup_target("#51000", "#5") == "1000"


def test_replaces_header() -> None:
    assert parse_replaces("abc@h;to-tag=t1;from-tag=f1") == Replaces("abc@h", "t1", "f1", False)
    assert parse_replaces("abc@h; from-tag=f1 ;to-tag=;early-only") == Replaces("abc@h", "", "f1", True)
    assert parse_replaces("abc@h;to-tag=t1") is None  # from-tag is mandatory
    assert parse_replaces("") is None and parse_replaces(None) is None
    assert parse_replaces(";to-tag=a;from-tag=b") is None


def test_the_oldest_unanswered_call_of_the_target_is_picked() -> None:
    d = decide_pickup("1001", "1000", CALLS, allowed=True)
    assert d.ok and d.call_id == "a"


def test_forbidden_watcher_cannot_pick_up() -> None:
    d = decide_pickup("1001", "1000", CALLS, allowed=False)
    assert not d.ok and d.status == 403 and "1000" in d.reason


def test_nothing_ringing_is_480_and_unknown_number_404() -> None:
    d = decide_pickup("1001", "1003", CALLS, allowed=True)
    assert (d.call_id, d.status) == (None, 480) and "nothing is ringing at 1003" in d.reason
    assert decide_pickup("1001", None, CALLS, allowed=True).status == 404
    assert decide_pickup("1001", "1000", [], allowed=True).status == 480


def test_replaces_names_exactly_one_call() -> None:
    assert decide_pickup("1001", None, CALLS, allowed=True, replaces=Replaces("b", "", "tb")).call_id == "b"
    assert decide_pickup("1001", "1000", CALLS, allowed=True, replaces=Replaces("b", "d1", "tb")).call_id == "b"
    # wrong caller tag, unknown call, a call of another account than the code names
    assert decide_pickup("1001", None, CALLS, allowed=True, replaces=Replaces("b", "", "zz")).status == 481
    assert decide_pickup("1001", None, CALLS, allowed=True, replaces=Replaces("q", "", "")).status == 481
    assert decide_pickup("1001", "1000", CALLS, allowed=True, replaces=Replaces("c", "", "tc")).status == 481
    assert decide_pickup("1001", None, CALLS, allowed=False, replaces=Replaces("b", "", "tb")).status == 403


def test_replaces_of_an_answered_call() -> None:
    assert decide_pickup("1001", None, CALLS, allowed=True, replaces=Replaces("d", "", "td", True)).status == 486
    assert decide_pickup("1001", None, CALLS, allowed=True, replaces=Replaces("d", "", "td")).status == 481


def test_replaces_tags_must_name_the_early_dialog() -> None:
    """RFC 3891 §3: the to-tag and from-tag are checked, not just the Call-ID; a mismatch is 481."""
    def status(to_tag: str, from_tag: str, early_only: bool = False, call: str = "b") -> int | None:
        d = decide_pickup("1001", "1000", CALLS, allowed=True, replaces=Replaces(call, to_tag, from_tag, early_only))
        return None if d.ok else d.status

    assert status("", "tb") is None  # to-tag empty: our dialog-info's local tag while it rings
    assert status("d0", "tb") is None and status("d1", "tb", True) is None  # a rung device's early dialog
    assert status("zz", "tb") == 481  # no early dialog of this call has that tag
    assert status("d0", "") == 481  # the from-tag is the caller's, never empty here
    assert status("tb", "d0") == 481  # tags swapped
    assert status("d0", "td", True, call="d") == 486  # the answered dialog, early-only
    assert status("zz", "td", True, call="d") == 481  # a mismatch says so even for an answered call
