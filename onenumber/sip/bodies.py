"""Event package bodies: RFC 4235 dialog-info+xml, RFC 3863 PIDF, RFC 3842 message-summary.

Values in, bytes out (and back, for message-summary, which tests and the voicemail
service read). The state strings are the RFC's own (`early`, `confirmed`…; presence
states `available`, `in-use`…) so this module needs nothing from routing.

Choices:
- dialog-info is always sent with `state="full"` (every current dialog of the entity);
  the caller keeps the per-subscription `version` counter (RFC 4235 §4.1.1: it goes up
  by one per NOTIFY of a subscription, starting at 0).
- For BLF pickup deskphones read the dialog's `call-id`, `local-tag` and `remote-tag`
  (an INVITE with Replaces, RFC 3891), and the remote identity to show who calls; some
  (Snom, Yealink with "directed pickup via BLF") dial the `<remote><target>` of an early
  dialog, so `DialogInfo.pickup_uri` puts the pickup code there (e.g. `sip:*81000@host`),
  and `<local><target>` carries `+sip.rendering` as Polycom expects.
- PIDF: `open` unless `offline`; the state itself is in `<note>` and, for
  on-the-phone/busy, an RFC 4480 `<rpid:activities>` element.

Pure: no I/O, depends on the standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

DIALOG_INFO_TYPE = "application/dialog-info+xml"
PIDF_TYPE = "application/pidf+xml"
MESSAGE_SUMMARY_TYPE = "application/simple-message-summary"

DIALOG_NS = "urn:ietf:params:xml:ns:dialog-info"
PIDF_NS = "urn:ietf:params:xml:ns:pidf"
RPID_NS = "urn:ietf:params:xml:ns:pidf:rpid"
DM_NS = "urn:ietf:params:xml:ns:pidf:data-model"

DIALOG_STATES = frozenset({"trying", "proceeding", "early", "confirmed", "terminated"})
DIALOG_EVENTS = frozenset({"cancelled", "rejected", "replaced", "local-bye", "remote-bye", "error", "timeout"})
PRESENCE_STATES = frozenset({"available", "ringing", "in-use", "dnd", "offline"})


# -- RFC 4235 dialog-info ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Participant:
    """`<local>` or `<remote>` of a dialog."""

    identity: str  # a URI
    display: str = ""
    target: str = ""  # a URI (the contact); empty → no <target>


@dataclass(frozen=True, slots=True)
class DialogInfo:
    """One `<dialog>` element."""

    id: str
    state: str  # trying | proceeding | early | confirmed | terminated
    direction: str = ""  # initiator | recipient | "" (unknown)
    call_id: str = ""
    local_tag: str = ""
    remote_tag: str = ""
    local: Participant | None = None
    remote: Participant | None = None
    event: str = ""  # on terminated: cancelled | rejected | replaced | local-bye | remote-bye | …
    code: int | None = None  # the response code with `rejected` etc.
    duration: int | None = None  # seconds since the dialog was created
    pickup_uri: str = ""  # early recipient dialogs: replaces the remote target (BLF pickup)

    def __post_init__(self) -> None:
        if self.state not in DIALOG_STATES:
            raise ValueError(f"unknown dialog state {self.state!r}")
        if self.direction not in ("", "initiator", "recipient"):
            raise ValueError(f"unknown dialog direction {self.direction!r}")
        if self.event and self.event not in DIALOG_EVENTS:
            raise ValueError(f"unknown dialog event {self.event!r}")


def dialog_info(entity: str, version: int, dialogs: Sequence[DialogInfo], *, full: bool = True) -> bytes:
    """An RFC 4235 dialog-info document for `entity` (the watched account's AOR).

    Written as text (the same bytes ElementTree would write, which the tests check): it is
    built for every NOTIFY of a BLF key, and ElementTree's serializer was most of that cost."""
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<dialog-info xmlns="{DIALOG_NS}" version="{version}" '
           f'state="{"full" if full else "partial"}" entity="{_attr(entity)}"']
    if not dialogs:
        out.append(" />")
        return "".join(out).encode()
    out.append(">")
    for d in dialogs:
        out.append(f'<dialog id="{_attr(d.id)}"')
        if d.call_id:
            out.append(f' call-id="{_attr(d.call_id)}"')
        if d.local_tag:
            out.append(f' local-tag="{_attr(d.local_tag)}"')
        if d.remote_tag:
            out.append(f' remote-tag="{_attr(d.remote_tag)}"')
        if d.direction:
            out.append(f' direction="{_attr(d.direction)}"')
        out.append("><state")
        if d.event:
            out.append(f' event="{_attr(d.event)}"')
        if d.code is not None:
            out.append(f' code="{d.code}"')
        out.append(f">{_text(d.state)}</state>" if d.state else " />")
        if d.duration is not None:
            out.append(f"<duration>{max(0, d.duration)}</duration>")
        if d.local is not None:
            _participant_text(out, "local", d.local, rendering=d.state == "confirmed")
        remote = d.remote
        if d.pickup_uri and d.state in ("trying", "proceeding", "early") and d.direction != "initiator":
            remote = Participant(remote.identity if remote else d.pickup_uri, remote.display if remote else "",
                                 d.pickup_uri)
        if remote is not None:
            _participant_text(out, "remote", remote)
        out.append("</dialog>")
    out.append("</dialog-info>")
    return "".join(out).encode()


def _participant_text(out: list[str], tag: str, p: Participant, rendering: bool | None = None) -> None:
    out.append(f"<{tag}><identity")
    if p.display:
        out.append(f' display="{_attr(p.display)}"')
    out.append(f">{_text(p.identity)}</identity>" if p.identity else " />")
    if p.target:
        if rendering is None:
            out.append(f'<target uri="{_attr(p.target)}" />')
        else:
            out.append(f'<target uri="{_attr(p.target)}"><param pname="+sip.rendering" '
                       f'pvalue="{"yes" if rendering else "no"}" /></target>')
    out.append(f"</{tag}>")


_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;", "\n": "&#10;",
                       "\t": "&#09;"})
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _attr(value: str) -> str:
    return value.translate(_ATTR)


def _text(value: str) -> str:
    return value.translate(_TEXT)


def _xml(root: ET.Element) -> bytes:
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False)


# -- RFC 3863 PIDF ------------------------------------------------------------------------

_ACTIVITY = {"in-use": "on-the-phone", "ringing": "on-the-phone", "dnd": "busy"}


def pidf(entity: str, state: str, *, tuple_id: str = "t0", contact: str = "") -> bytes:
    """A PIDF document for `entity` (a `pres:` or `sip:` URI) in one of the presence states."""
    if state not in PRESENCE_STATES:
        raise ValueError(f"unknown presence state {state!r}")
    # prefixes written out literally: no global ET.register_namespace state
    root = ET.Element("presence", {"xmlns": PIDF_NS, "xmlns:rpid": RPID_NS, "xmlns:dm": DM_NS, "entity": entity})
    tup = ET.SubElement(root, "tuple", {"id": tuple_id})
    status = ET.SubElement(tup, "status")
    ET.SubElement(status, "basic").text = "closed" if state == "offline" else "open"
    if contact:
        ET.SubElement(tup, "contact").text = contact
    ET.SubElement(tup, "note").text = state
    if (activity := _ACTIVITY.get(state)) is not None:
        person = ET.SubElement(root, "dm:person", {"id": "p0"})
        acts = ET.SubElement(person, "rpid:activities")
        ET.SubElement(acts, f"rpid:{activity}")
    return _xml(root)


# -- RFC 3842 message-summary -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """Voice-message counts of one mailbox."""

    new: int = 0
    old: int = 0
    new_urgent: int = 0
    old_urgent: int = 0
    account: str = ""  # Message-Account: the URI to call to listen (e.g. the access number)

    @property
    def waiting(self) -> bool:
        return self.new > 0


def message_summary(summary: MessageSummary) -> bytes:
    """`Messages-Waiting: yes|no`, `Message-Account`, `Voice-Message: new/old (urgent new/urgent old)`."""
    lines = [f"Messages-Waiting: {'yes' if summary.waiting else 'no'}"]
    if summary.account:
        lines.append(f"Message-Account: {summary.account}")
    lines.append(
        f"Voice-Message: {summary.new}/{summary.old} ({summary.new_urgent}/{summary.old_urgent})"
    )
    return ("\r\n".join(lines) + "\r\n").encode()


_VOICE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*(?:\(\s*(\d+)\s*/\s*(\d+)\s*\))?\s*")


def parse_message_summary(body: bytes) -> MessageSummary:
    """Read a message-summary body (ours or a phone's); unknown lines are ignored.

    Raises ValueError when `Messages-Waiting` is missing or not yes/no.
    """
    waiting: str | None = None
    account = ""
    new = old = new_urgent = old_urgent = 0
    for raw in body.decode("utf-8", "replace").splitlines():
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        if key == "messages-waiting":
            waiting = value.strip().lower()
        elif key == "message-account":
            account = value.strip()
        elif key == "voice-message" and (m := _VOICE.fullmatch(value)):
            new, old = int(m.group(1)), int(m.group(2))
            new_urgent, old_urgent = int(m.group(3) or 0), int(m.group(4) or 0)
    if waiting not in ("yes", "no"):
        raise ValueError("message-summary without Messages-Waiting: yes/no")
    return MessageSummary(new, old, new_urgent, old_urgent, account)
