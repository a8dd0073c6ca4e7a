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
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<dialog-info xmlns="{DIALOG_NS}" version="{version}" '
            f'state="{"full" if full else "partial"}" entity="{_attr(entity)}"')
    if not dialogs:
        return f"{head} />".encode()
    return f'{head}>{"".join([_dialog_text(d) for d in dialogs])}</dialog-info>'.encode()


_RINGING = ("trying", "proceeding", "early")


def _dialog_text(d: DialogInfo) -> str:
    """One `<dialog>` element. Written out, a handful of f-strings: a BLF flush renders one per
    call of the account, and a function call or an escape per value cost more than the text."""
    id_, call_id, ltag, rtag, direction, state, event = (d.id, d.call_id, d.local_tag, d.remote_tag, d.direction,
                                                         d.state, d.event)
    local, remote, pickup = d.local, d.remote, d.pickup_uri
    li = ld = lt = ri = rd = rt = ""
    if local is not None:
        li, ld, lt = local.identity, local.display, local.target
    if remote is not None:
        ri, rd, rt = remote.identity, remote.display, remote.target
    if pickup and state in _RINGING and direction != "initiator":  # BLF pickup: the code as remote target
        if remote is None:
            ri, rd = pickup, ""
        rt = pickup
        shows_remote = True
    else:
        shows_remote = remote is not None
    values = f"{id_}{call_id}{ltag}{rtag}{direction}{state}{event}{li}{ld}{lt}{ri}{rd}{rt}"
    if _attr(values) is not values:  # one check for all: most documents have nothing to escape
        # something to escape (rare): identities and the state are element text, the rest attributes
        id_, call_id, ltag, rtag, direction, event = (_attr(id_), _attr(call_id), _attr(ltag), _attr(rtag),
                                                      _attr(direction), _attr(event))
        state, li, ri = _text(state), _text(li), _text(ri)
        ld, lt, rd, rt = _attr(ld), _attr(lt), _attr(rd), _attr(rt)
    attrs = ((f' call-id="{call_id}"' if call_id else "") + (f' local-tag="{ltag}"' if ltag else "")
             + (f' remote-tag="{rtag}"' if rtag else "") + (f' direction="{direction}"' if direction else ""))
    code = d.code
    status = ((f' event="{event}"' if event else "") + (f' code="{code}"' if code is not None else "")
              + (f">{state}</state>" if state else " />"))
    if d.duration is not None:
        status += f"<duration>{max(0, d.duration)}</duration>"
    if local is not None:
        status += ((f'<local><identity display="{ld}"' if ld else "<local><identity")
                   + (f">{li}</identity>" if li else " />"))
        if lt:
            status += (f'<target uri="{lt}"><param pname="+sip.rendering" '
                       f'pvalue="{"yes" if d.state == "confirmed" else "no"}" /></target>')
        status += "</local>"
    if shows_remote:
        status += ((f'<remote><identity display="{rd}"' if rd else "<remote><identity")
                   + (f">{ri}</identity>" if ri else " />") + (f'<target uri="{rt}" />' if rt else "") + "</remote>")
    return f'<dialog id="{id_}"{attrs}><state{status}</dialog>'


_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\r": "&#13;", "\n": "&#10;",
                       "\t": "&#09;"})
_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


# str.translate with a dict looks every character up (~10 k instructions for a Call-ID, most of a
# dialog-info document's cost); the values rarely hold one to escape, and `in` finds that at C speed
def _attr(value: str) -> str:
    if ("&" in value or "<" in value or ">" in value or '"' in value or "\r" in value or "\n" in value
            or "\t" in value):
        return value.translate(_ATTR)
    return value


def _text(value: str) -> str:
    return value.translate(_TEXT) if "&" in value or "<" in value or ">" in value else value


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
