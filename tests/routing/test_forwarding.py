"""Forwarding and DND: the final actions of a plan (onenumber.routing.forwarding)."""

from onenumber.routing import forwarding as fw
from onenumber.routing.model import Account, FinalAction, FinalKind, Forwarding


def account(**kw) -> Account:
    return Account(number="1000", display_name="Alice", **kw)


def test_no_rules_reject_busy_and_unavailable():
    finals = fw.final_actions(account())
    assert finals.on_busy == FinalAction(FinalKind.REJECT, 486, "Busy Here")
    assert finals.on_no_answer == FinalAction(FinalKind.REJECT, 480, "Temporarily Unavailable")
    assert finals.on_unavailable == FinalAction(FinalKind.REJECT, 480, "Temporarily Unavailable")


def test_busy_forward():
    finals = fw.final_actions(account(forwarding=Forwarding(busy="2000")))
    assert finals.on_busy == FinalAction(FinalKind.FORWARD, reason=fw.BUSY_FORWARD, target="2000")
    assert finals.on_no_answer.kind == FinalKind.REJECT


def test_no_answer_forward_also_covers_unavailable():
    finals = fw.final_actions(account(forwarding=Forwarding(no_answer="voicemail")))
    forward = FinalAction(FinalKind.FORWARD, reason=fw.NO_ANSWER_FORWARD, target="voicemail")
    assert finals.on_no_answer == forward
    assert finals.on_unavailable.kind == FinalKind.FORWARD
    assert finals.on_unavailable.target == "voicemail"
    assert "no answer" in finals.on_unavailable.reason
    assert finals.on_busy == fw.BUSY


def test_empty_targets_are_off():
    finals = fw.final_actions(account(forwarding=Forwarding(unconditional="", busy="", no_answer="")))
    assert finals.on_busy == fw.BUSY
    assert finals.on_no_answer == fw.UNAVAILABLE
    assert fw.immediate_action(account(forwarding=Forwarding(unconditional=""))) is None


def test_nothing_immediate_by_default():
    assert fw.immediate_action(account()) is None
    assert fw.immediate_action(account(forwarding=Forwarding(busy="2000", no_answer="3000"))) is None


def test_dnd_rejects_busy_without_busy_forward():
    imm = fw.immediate_action(account(dnd=True))
    assert imm is not None
    assert imm.action == FinalAction(FinalKind.REJECT, 486, "Busy Here (do not disturb)")
    assert imm.device_reason == "account in do-not-disturb"


def test_dnd_uses_busy_forward():
    imm = fw.immediate_action(account(dnd=True, forwarding=Forwarding(busy="2000", no_answer="3000")))
    assert imm is not None
    assert imm.action.kind == FinalKind.FORWARD
    assert imm.action.target == "2000"


def test_unconditional_forward():
    imm = fw.immediate_action(account(forwarding=Forwarding(unconditional="0612345678")))
    assert imm is not None
    assert imm.action == FinalAction(FinalKind.FORWARD, reason="unconditional forward", target="0612345678")
    assert imm.device_reason == "forwarded unconditionally"


def test_dnd_wins_over_unconditional():
    imm = fw.immediate_action(account(dnd=True, forwarding=Forwarding(unconditional="2000")))
    assert imm is not None
    assert imm.device_reason == fw.DEVICE_DND
    assert imm.action == fw.BUSY_DND
