"""Event bodies: dialog-info, PIDF and message-summary are well-formed and say what they should."""

from xml.etree import ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onenumber.sip.bodies import (
    DIALOG_NS,
    DM_NS,
    PIDF_NS,
    RPID_NS,
    DialogInfo,
    MessageSummary,
    Participant,
    dialog_info,
    message_summary,
    parse_message_summary,
    pidf,
)

D = f"{{{DIALOG_NS}}}"
P = f"{{{PIDF_NS}}}"
ENTITY = "sip:1000@example.com"


def test_empty_dialog_info_is_full_state():
    root = ET.fromstring(dialog_info(ENTITY, 0, []))
    assert root.tag == f"{D}dialog-info"
    assert root.attrib == {"version": "0", "state": "full", "entity": ENTITY}
    assert list(root) == []


def test_dialog_info_fields():
    body = dialog_info(
        ENTITY,
        7,
        [
            DialogInfo(
                id="d1",
                state="confirmed",
                direction="recipient",
                call_id="abc@host",
                local_tag="lt",
                remote_tag="rt",
                local=Participant("sip:1000@example.com", "Alice", "sip:1000@10.0.0.1:5070"),
                remote=Participant("sip:1001@example.com", "Bob & Co <x>", "sip:1001@10.0.0.2:5080"),
                duration=12,
            ),
            DialogInfo(id="d2", state="terminated", direction="initiator", event="cancelled"),
        ],
    )
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)
    assert root.get("version") == "7"
    d1, d2 = root.findall(f"{D}dialog")
    assert d1.attrib == {
        "id": "d1", "call-id": "abc@host", "local-tag": "lt", "remote-tag": "rt", "direction": "recipient",
    }
    assert d1.findtext(f"{D}state") == "confirmed"
    assert d1.findtext(f"{D}duration") == "12"
    assert d1.findtext(f"{D}local/{D}identity") == "sip:1000@example.com"
    assert d1.find(f"{D}local/{D}identity").get("display") == "Alice"
    target = d1.find(f"{D}local/{D}target")
    assert target.get("uri") == "sip:1000@10.0.0.1:5070"
    assert target.find(f"{D}param").attrib == {"pname": "+sip.rendering", "pvalue": "yes"}
    assert d1.find(f"{D}remote/{D}identity").get("display") == "Bob & Co <x>"  # escaped, round-trips
    assert d1.find(f"{D}remote/{D}target").get("uri") == "sip:1001@10.0.0.2:5080"
    assert d2.find(f"{D}state").get("event") == "cancelled"
    assert d2.findtext(f"{D}state") == "terminated"
    assert d2.find(f"{D}local") is None


def test_pickup_uri_on_early_incoming_dialogs_only():
    remote = Participant("sip:2000@example.com", "Carol", "sip:2000@10.0.0.3")
    early = DialogInfo("d", "early", "recipient", remote=remote, pickup_uri="sip:*81000@example.com")
    el = ET.fromstring(dialog_info(ENTITY, 1, [early])).find(f"{D}dialog")
    assert el.find(f"{D}remote/{D}target").get("uri") == "sip:*81000@example.com"
    assert el.findtext(f"{D}remote/{D}identity") == "sip:2000@example.com"  # still who calls
    confirmed = DialogInfo("d", "confirmed", "recipient", remote=remote, pickup_uri="sip:*81000@example.com")
    el = ET.fromstring(dialog_info(ENTITY, 2, [confirmed])).find(f"{D}dialog")
    assert el.find(f"{D}remote/{D}target").get("uri") == "sip:2000@10.0.0.3"
    bare = DialogInfo("d", "early", "recipient", pickup_uri="sip:*81000@example.com")
    el = ET.fromstring(dialog_info(ENTITY, 3, [bare])).find(f"{D}dialog")
    assert el.find(f"{D}remote/{D}target").get("uri") == "sip:*81000@example.com"


def test_dialog_info_rejects_unknown_values():
    with pytest.raises(ValueError):
        DialogInfo("d", "ringing")
    with pytest.raises(ValueError):
        DialogInfo("d", "early", direction="inbound")
    with pytest.raises(ValueError):
        DialogInfo("d", "terminated", event="hangup")


@pytest.mark.parametrize(
    ("state", "basic", "activity"),
    [
        ("available", "open", None),
        ("ringing", "open", "on-the-phone"),
        ("in-use", "open", "on-the-phone"),
        ("dnd", "open", "busy"),
        ("offline", "closed", None),
    ],
)
def test_pidf(state, basic, activity):
    root = ET.fromstring(pidf("pres:1000@example.com", state, contact="sip:1000@example.com"))
    assert root.tag == f"{P}presence"
    assert root.get("entity") == "pres:1000@example.com"
    tup = root.find(f"{P}tuple")
    assert tup.findtext(f"{P}status/{P}basic") == basic
    assert tup.findtext(f"{P}note") == state
    assert tup.findtext(f"{P}contact") == "sip:1000@example.com"
    acts = root.find(f"{{{DM_NS}}}person/{{{RPID_NS}}}activities")
    if activity is None:
        assert acts is None
    else:
        assert [c.tag for c in acts] == [f"{{{RPID_NS}}}{activity}"]


def test_pidf_rejects_unknown_state():
    with pytest.raises(ValueError):
        pidf("pres:1000@example.com", "away")


def test_message_summary_text():
    body = message_summary(MessageSummary(new=2, old=8, new_urgent=0, old_urgent=2, account="sip:*98@example.com"))
    assert body == (
        b"Messages-Waiting: yes\r\nMessage-Account: sip:*98@example.com\r\nVoice-Message: 2/8 (0/2)\r\n"
    )
    assert message_summary(MessageSummary(old=3)) == b"Messages-Waiting: no\r\nVoice-Message: 0/3 (0/0)\r\n"


def test_parse_message_summary_rfc_example():
    # RFC 3842 §6 example (with extra classes we do not count)
    body = (
        b"Messages-Waiting: yes\r\nMessage-Account: sip:alice@vmail.example.com\r\n"
        b"Voice-Message: 2/8 (0/2)\r\nFax-Message: 1/0\r\n"
    )
    assert parse_message_summary(body) == MessageSummary(2, 8, 0, 2, "sip:alice@vmail.example.com")
    assert parse_message_summary(b"messages-waiting: NO\r\nVoice-Message: 0/1\r\n") == MessageSummary(0, 1)
    with pytest.raises(ValueError):
        parse_message_summary(b"Voice-Message: 1/0\r\n")


@given(st.builds(MessageSummary, *(st.integers(0, 10_000) for _ in range(4)),
                 account=st.sampled_from(["", "sip:*98@example.com"])))
def test_message_summary_round_trip(summary):
    assert parse_message_summary(message_summary(summary)) == summary
