"""dialog-info written as text is byte for byte what ElementTree writes (the oracle below is
the ElementTree version it replaced), for any identities, tags and states."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from hypothesis import given, settings
from hypothesis import strategies as st

from onenumber.sip.bodies import DIALOG_NS, DialogInfo, Participant, dialog_info


def _participant(parent: ET.Element, tag: str, p: Participant, rendering: bool | None = None) -> None:
    el = ET.SubElement(parent, tag)
    ident = ET.SubElement(el, "identity", {"display": p.display} if p.display else {})
    ident.text = p.identity
    if p.target:
        target = ET.SubElement(el, "target", {"uri": p.target})
        if rendering is not None:
            ET.SubElement(target, "param", {"pname": "+sip.rendering", "pvalue": "yes" if rendering else "no"})


def oracle(entity: str, version: int, dialogs: list[DialogInfo], full: bool = True) -> bytes:
    root = ET.Element(
        "dialog-info",
        {"xmlns": DIALOG_NS, "version": str(version), "state": "full" if full else "partial", "entity": entity},
    )
    for d in dialogs:
        attrs = {"id": d.id}
        if d.call_id:
            attrs["call-id"] = d.call_id
        if d.local_tag:
            attrs["local-tag"] = d.local_tag
        if d.remote_tag:
            attrs["remote-tag"] = d.remote_tag
        if d.direction:
            attrs["direction"] = d.direction
        el = ET.SubElement(root, "dialog", attrs)
        st_attrs: dict[str, str] = {}
        if d.event:
            st_attrs["event"] = d.event
        if d.code is not None:
            st_attrs["code"] = str(d.code)
        ET.SubElement(el, "state", st_attrs).text = d.state
        if d.duration is not None:
            ET.SubElement(el, "duration").text = str(max(0, d.duration))
        if d.local is not None:
            _participant(el, "local", d.local, rendering=d.state == "confirmed")
        remote = d.remote
        if d.pickup_uri and d.state in ("trying", "proceeding", "early") and d.direction != "initiator":
            remote = Participant(remote.identity if remote else d.pickup_uri, remote.display if remote else "",
                                 d.pickup_uri)
        if remote is not None:
            _participant(el, "remote", remote)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


text = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00") | st.sampled_from(
    ["&", "<", ">", '"', "'", "\n", "\r", "\t"]), max_size=12)
participants = st.builds(Participant, text, text, text)
infos = st.builds(
    DialogInfo, text, st.sampled_from(["trying", "proceeding", "early", "confirmed", "terminated"]),
    st.sampled_from(["", "initiator", "recipient"]), text, text, text, st.none() | participants,
    st.none() | participants, st.sampled_from(["", "cancelled", "rejected"]), st.none() | st.integers(100, 699),
    st.none() | st.integers(-5, 10_000), text,
)


def test_examples() -> None:
    d = DialogInfo("c1-r", "early", "recipient", "c1@h", "", "ft", Participant("sip:1000@d", "Alice"),
                   Participant("sip:0612@d", 'Bob "B" <&>'), pickup_uri="sip:*81000@d")
    done = DialogInfo("c1-r", "terminated", "recipient", "c1@h", "t", "ft", event="cancelled", code=487, duration=3)
    for dialogs in ([], [d], [d, done]):
        assert dialog_info("sip:1000@d", 7, dialogs) == oracle("sip:1000@d", 7, dialogs)
    assert dialog_info("sip:1000@d", 1, [d], full=False) == oracle("sip:1000@d", 1, [d], full=False)
    root = ET.fromstring(dialog_info("sip:1000@d", 1, [d]))  # well-formed, namespaced
    assert root.find(f"{{{DIALOG_NS}}}dialog").get("call-id") == "c1@h"  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None)
@given(st.lists(infos, max_size=3), text, st.integers(0, 2**31))
def test_same_bytes_as_elementtree(dialogs: list[DialogInfo], entity: str, version: int) -> None:
    assert dialog_info(entity, version, dialogs) == oracle(entity, version, dialogs)
