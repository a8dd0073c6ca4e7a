"""The listening menu: new then saved, replay / delete / save / next, PIN, timeouts."""

from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.services.voicemail.actions import DeleteMessage, Finished, MarkHeard, Play, PlayMessage, StopPlayback
from onenumber.services.voicemail.menu import LISTENED, Menu, MenuSettings, State
from onenumber.services.voicemail.store import VoicemailMessage


def msg(id_: str, at: float, heard: bool = False) -> VoicemailMessage:
    return VoicemailMessage(id_, "1000", "1001", "", at, f"/vm/{id_}.wav", 3.0, heard, complete=True)


BOX = [msg("old-saved", 1.0, True), msg("new-2", 3.0), msg("new-1", 2.0), msg("saved-2", 4.0, True)]


def plays(actions) -> list[str]:
    out = []
    for a in actions:
        if isinstance(a, Play):
            out.append(a.prompt)
        elif isinstance(a, PlayMessage):
            out.append(f"msg:{a.message_id}")
    return out


def finish_playing(menu: Menu, actions, now: float = 0.0) -> list:
    """Pretend the glue played every queued item to its end; collect what that leads to."""
    out = []
    pending = [a for a in actions if isinstance(a, (Play, PlayMessage))]
    while pending:
        item = pending.pop(0)
        more = menu.on_play_done(item, now)
        out += more
        pending += [a for a in more if isinstance(a, (Play, PlayMessage))]
    return out


def test_order_new_then_saved_and_heard_to_the_end():
    m = Menu(BOX)
    start = m.start(0)
    assert start == [Play("intro", (("new", 2), ("saved", 2)))]
    after = m.on_play_done(start[0], 0)
    assert plays(after) == ["new-message", "msg:new-1"]
    assert after[0].args == (("number", 1),)
    done = m.on_play_done(after[1], 1)
    assert done == [MarkHeard("new-1"), Play("message-menu")]
    assert plays(m.on_digit("#", 2)) == ["new-message", "msg:new-2"]
    assert plays(m.on_digit("#", 3)) == ["saved-message", "msg:old-saved"]  # skipped: new-2 stays new
    assert plays(m.on_digit("#", 4)) == ["saved-message", "msg:saved-2"]
    end = m.on_digit("#", 5)
    assert plays(end) == ["no-more-messages", "goodbye"]
    assert m.on_play_done(Play("goodbye"), 6) == [Finished(LISTENED)]


def test_replay_delete_save():
    m = Menu(BOX)
    m.start(0)
    first = m.on_play_done(Play("intro"), 0)
    replay = m.on_digit("1", 1)  # during the message: cut and replay
    assert replay[0] == StopPlayback() and plays(replay) == ["new-message", "msg:new-1"]
    delete = m.on_digit("7", 2)
    assert delete[:2] == [StopPlayback(), DeleteMessage("new-1")]
    assert plays(delete) == ["deleted", "new-message", "msg:new-2"]
    save = m.on_digit("9", 3)
    assert save[:2] == [StopPlayback(), MarkHeard("new-2")]
    assert plays(save) == ["saved", "saved-message", "msg:old-saved"]
    assert [a for a in m.on_digit("9", 4) if isinstance(a, MarkHeard)] == []  # already heard
    assert plays(m.on_digit("0", 5)) == ["message-menu"]
    assert plays(m.on_digit("*", 6)) == ["goodbye"] and m.state is State.END
    assert first


def test_empty_box():
    m = Menu([])
    out = m.start(0)
    assert plays(out) == ["no-messages", "goodbye"]
    assert finish_playing(m, out) == [Finished(LISTENED)]


def test_pin():
    m = Menu(BOX, MenuSettings(pin="4321", pin_required=True, max_pin_tries=2))
    assert m.start(0) == [Play("enter-pin")]
    for d in "1111":
        assert m.on_digit(d, 0) == []
    assert plays(m.on_digit("#", 0)) == ["wrong-pin", "enter-pin"]
    for d in "4321":
        m.on_digit(d, 0)
    assert plays(m.on_digit("#", 0)) == ["intro"]
    bad = Menu(BOX, MenuSettings(pin="4321", pin_required=True, max_pin_tries=2))
    bad.start(0)
    bad.on_digit("#", 0)
    assert plays(bad.on_digit("#", 0)) == ["goodbye"]
    nopin = Menu(BOX, MenuSettings(pin=None, pin_required=True))
    nopin.start(0)
    assert plays(nopin.on_digit("#", 0)) == ["wrong-pin", "enter-pin"]  # no PIN set: no way in


def test_menu_timeout_repeats_then_moves_on():
    m = Menu(BOX, MenuSettings(menu_timeout=5.0, menu_repeats=1))
    m.start(0)
    msg_play = m.on_play_done(Play("intro"), 0)[1]
    menu_prompt = m.on_play_done(msg_play, 10)[-1]
    assert m.next_timer() is None
    m.on_play_done(menu_prompt, 12)
    assert m.next_timer() == 17
    assert m.on_timer(16) == []
    assert plays(m.on_timer(17)) == ["message-menu"]
    m.on_play_done(Play("message-menu"), 20)
    assert plays(m.on_timer(25)) == ["new-message", "msg:new-2"]


def test_intro_keys():
    m = Menu(BOX)
    m.start(0)
    assert plays(m.on_digit("#", 0)) == ["new-message", "msg:new-1"]
    m2 = Menu(BOX)
    m2.start(0)
    assert plays(m2.on_digit("*", 0)) == ["goodbye"]
    assert m2.on_digit("5", 0) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(list("0123456789*#")), st.just("done"), st.just("tick")), max_size=60))
def test_property_any_key_sequence_is_safe(events):
    box = [msg(f"m{i}", float(i), heard=i % 2 == 0) for i in range(4)]
    ids = {b.id for b in box}
    m = Menu(box, MenuSettings(menu_repeats=1))
    queue = [a for a in m.start(0) if isinstance(a, (Play, PlayMessage))]
    deleted: set[str] = set()
    now = 0.0
    for ev in events:
        now += 1
        if ev == "done":
            if not queue:
                continue
            out = m.on_play_done(queue.pop(0), now)
        elif ev == "tick":
            out = m.on_timer(now + 100)
        else:
            out = m.on_digit(ev, now)
        if any(isinstance(a, StopPlayback) for a in out):
            queue = []
        queue += [a for a in out if isinstance(a, (Play, PlayMessage))]
        for a in out:
            if isinstance(a, DeleteMessage):
                assert a.message_id in ids and a.message_id not in deleted
                deleted.add(a.message_id)
            if isinstance(a, (MarkHeard, PlayMessage)):
                assert a.message_id in ids and a.message_id not in deleted
    # pressing # until the end always finishes
    for _ in range(10):
        m.on_digit("#", now)
    assert m.state is State.END
