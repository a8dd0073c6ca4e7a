"""Listening over the phone: the menu inside an answered call, ending with our BYE."""

from onenumber.services.voicemail.actions import DeleteMessage, Finished, MarkHeard, Play, PlayMessage, SendRequest
from onenumber.services.voicemail.listen import ListenCall
from onenumber.services.voicemail.menu import LISTENED, MenuSettings
from onenumber.services.voicemail.store import VoicemailMessage
from onenumber.services.voicemail.ua import CallPhase

from .test_deposit import in_dialog, invite, kinds


def box():
    return [VoicemailMessage("m1", "1000", "1001", "", 1.0, "/vm/m1.wav", 2.0, complete=True)]


def listen(**menu) -> ListenCall:
    return ListenCall("1000", box(), local_tag="vmtag", media_port=40002, session_id=9, menu=MenuSettings(**menu))


def test_listen_delete_and_hang_up():
    c = listen()
    out = c.on_invite(invite(), 0)
    assert kinds(out) == ["Reply", "StartMedia", "Play"] and out[2].prompt == "intro"
    c.on_ack(in_dialog("ACK", 1), 0.1)
    first = c.on_play_done(out[2], 2)
    assert isinstance(first[-1], PlayMessage) and first[-1].message_id == "m1"
    heard = c.on_play_done(first[-1], 4)
    assert heard[0] == MarkHeard("m1")
    deleted = c.on_digit("7", 5)
    assert DeleteMessage("m1") in deleted
    bye_on = [a for a in deleted if isinstance(a, Play)]
    assert [p.prompt for p in bye_on] == ["deleted", "no-more-messages", "goodbye"]
    assert c.on_play_done(Play("goodbye"), 7)[-1].__class__ is SendRequest
    assert c.phase is CallPhase.CLOSING
    assert c.on_bye_answered(200, 7.1)[-1] == Finished(LISTENED)


def test_menu_timer_runs_inside_the_call():
    c = listen(menu_timeout=3.0, menu_repeats=0)
    out = c.on_invite(invite(), 0)
    c.on_ack(in_dialog("ACK", 1), 0.1)
    msg = c.on_play_done(out[2], 1)[-1]
    menu_prompt = c.on_play_done(msg, 3)[-1]
    c.on_play_done(menu_prompt, 5)
    assert c.next_timer() == 8.0
    nxt = c.on_timer(8.0)
    assert [a.prompt for a in nxt if isinstance(a, Play)] == ["no-more-messages", "goodbye"]


def test_caller_hangs_up_mid_menu():
    c = listen()
    c.on_invite(invite(), 0)
    out = c.on_bye(in_dialog("BYE", 2), 1)
    assert kinds(out) == ["Reply", "StopPlayback", "CloseMedia", "Finished"]
    assert c.on_digit("1", 2) == []
