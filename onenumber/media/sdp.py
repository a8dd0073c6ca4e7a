"""Minimal SDP (RFC 4566) offer/answer (RFC 3264) for G.711 audio with telephone-events.

What the voicemail service needs and no more: read an offer (any phone's: several
m-lines, session- or media-level `c=`, static payload types with or without `rtpmap`,
`a=sendonly` and friends), answer it with PCMU or PCMA (the first of those the offerer
lists) plus telephone-event when offered, and make an offer of our own. Streams we do
not take (video, a second audio line, unknown codecs) are refused with port 0, keeping
the m-line count as RFC 3264 §6 asks.

`NoCommonCodec` means the call must be answered 488 Not Acceptable Here.

Pure: no I/O; depends on the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .g711 import PCMA, PCMU

TELEPHONE_EVENT = "telephone-event"
_STATIC = {PCMU: ("PCMU", 8000), PCMA: ("PCMA", 8000)}
_NAMES = {"PCMU": PCMU, "PCMA": PCMA}
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
_REVERSE = {"sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


class SdpError(ValueError):
    pass


class NoCommonCodec(SdpError):
    """No audio stream with PCMU or PCMA: answer 488."""


@dataclass(frozen=True, slots=True)
class Codec:
    payload_type: int
    name: str  # as written in rtpmap, e.g. "PCMU", "telephone-event"
    rate: int
    fmtp: str = ""


@dataclass(frozen=True, slots=True)
class Media:
    kind: str  # audio, video…
    port: int
    proto: str  # RTP/AVP…
    formats: tuple[str, ...]
    address: str | None  # the connection address in force for this stream
    direction: str = "sendrecv"
    ptime: int | None = None
    codecs: tuple[Codec, ...] = ()  # those we could identify (rtpmap or static)

    def codec(self, payload_type: int) -> Codec | None:
        return next((c for c in self.codecs if c.payload_type == payload_type), None)


@dataclass(frozen=True, slots=True)
class Session:
    origin: str
    address: str | None  # session-level c=
    media: tuple[Media, ...] = ()


@dataclass(frozen=True, slots=True)
class AudioPlan:
    """What was agreed for the one audio stream."""

    remote: tuple[str, int]  # where to send RTP
    payload_type: int  # PCMU (0) or PCMA (8)
    dtmf_payload_type: int | None
    direction: str = "sendrecv"  # from our side
    ptime: int = 20
    held: bool = False  # the peer asked for no media (0.0.0.0, inactive, sendonly to us)


@dataclass(slots=True)
class _MediaBuilder:
    kind: str
    port: int
    proto: str
    formats: list[str]
    address: str | None = None
    direction: str | None = None
    ptime: int | None = None
    rtpmap: dict[int, tuple[str, int]] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)


def parse(sdp: bytes | str) -> Session:
    text = sdp.decode("utf-8", "replace") if isinstance(sdp, bytes) else sdp
    origin = ""
    session_addr: str | None = None
    session_dir = "sendrecv"
    media: list[_MediaBuilder] = []
    saw_version = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line {line[:40]!r}")
        kind, value = line[0], line[2:]
        cur = media[-1] if media else None
        if kind == "v":
            saw_version = True
        elif kind == "o":
            origin = value
        elif kind == "c":
            parts = value.split()
            if len(parts) < 3 or parts[0] != "IN":
                raise SdpError(f"bad connection line {value!r}")
            addr = parts[2].split("/", 1)[0]
            if cur is None:
                session_addr = addr
            else:
                cur.address = addr
        elif kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpError(f"bad media line {value!r}")
            port_text = parts[1].split("/", 1)[0]
            if not port_text.isdigit():
                raise SdpError(f"bad media port {parts[1]!r}")
            media.append(_MediaBuilder(parts[0], int(port_text), parts[2], parts[3:]))
        elif kind == "a":
            name, _, arg = value.partition(":")
            if name in _DIRECTIONS:
                if cur is None:
                    session_dir = name
                else:
                    cur.direction = name
            elif cur is None:
                continue
            elif name == "rtpmap":
                pt_text, _, enc = arg.partition(" ")
                enc_name, _, rest = enc.partition("/")
                rate_text = rest.split("/", 1)[0]
                if pt_text.isdigit() and rate_text.isdigit():
                    cur.rtpmap[int(pt_text)] = (enc_name, int(rate_text))
            elif name == "fmtp":
                pt_text, _, params = arg.partition(" ")
                if pt_text.isdigit():
                    cur.fmtp[int(pt_text)] = params.strip()
            elif name == "ptime" and arg.strip().isdigit():
                cur.ptime = int(arg.strip())
    if not saw_version:
        raise SdpError("no v= line: not SDP")
    return Session(origin, session_addr, tuple(_media(m, session_addr, session_dir) for m in media))


def _media(m: _MediaBuilder, session_addr: str | None, session_dir: str) -> Media:
    codecs = []
    for fmt in m.formats:
        if not fmt.isdigit():
            continue
        pt = int(fmt)
        if pt in m.rtpmap:
            name, rate = m.rtpmap[pt]
        elif pt in _STATIC:
            name, rate = _STATIC[pt]
        else:
            continue
        codecs.append(Codec(pt, name, rate, m.fmtp.get(pt, "")))
    return Media(
        m.kind, m.port, m.proto, tuple(m.formats), m.address or session_addr, m.direction or session_dir,
        m.ptime, tuple(codecs),
    )


def _audio_choice(m: Media) -> tuple[Codec, Codec | None] | None:
    """The first G.711 codec the offerer lists, and its telephone-event (8 kHz) if any."""
    if m.kind != "audio" or m.port == 0 or "RTP/AVP" not in m.proto.upper() or m.address is None:
        return None
    audio = next((c for c in m.codecs if c.name.upper() in _NAMES and c.rate == 8000), None)
    if audio is None:
        return None
    event = next((c for c in m.codecs if c.name.lower() == TELEPHONE_EVENT and c.rate == 8000), None)
    return audio, event


def answer(
    offer: Session, local_host: str, local_port: int, *, session_id: int, version: int = 1,
) -> tuple[bytes, AudioPlan]:
    """Our answer to `offer` and what it agrees. Raises NoCommonCodec (→ 488)."""
    plan: AudioPlan | None = None
    lines = _head(local_host, session_id, version)
    for m in offer.media:
        choice = _audio_choice(m) if plan is None else None
        if choice is None:
            lines.append(f"m={m.kind} 0 {m.proto} {' '.join(m.formats) or '0'}")
            continue
        audio, event = choice
        our_dir = _REVERSE.get(m.direction, "sendrecv")
        assert m.address is not None
        held = m.address in ("0.0.0.0", "::") or m.direction in ("inactive", "sendonly")
        pts = [audio.payload_type] + ([event.payload_type] if event else [])
        lines.append(f"m=audio {local_port} {m.proto} {' '.join(map(str, pts))}")
        lines.append(f"a=rtpmap:{audio.payload_type} {audio.name.upper()}/8000")
        if event is not None:
            lines.append(f"a=rtpmap:{event.payload_type} {TELEPHONE_EVENT}/8000")
            lines.append(f"a=fmtp:{event.payload_type} 0-15")
        lines.append("a=ptime:20")
        lines.append(f"a={our_dir}")
        plan = AudioPlan(
            (m.address, m.port), _NAMES[audio.name.upper()], event.payload_type if event else None,
            our_dir, m.ptime or 20, held,
        )
    if plan is None:
        raise NoCommonCodec("no audio stream with PCMU or PCMA")
    return _join(lines), plan


def offer(
    local_host: str, local_port: int, *, session_id: int, version: int = 1, dtmf_payload_type: int = 101,
    codecs: tuple[int, ...] = (PCMU, PCMA),
) -> bytes:
    """Our offer: PCMU and PCMA (in `codecs` order) and telephone-event."""
    lines = _head(local_host, session_id, version)
    fmts = " ".join(str(pt) for pt in (*codecs, dtmf_payload_type))
    lines.append(f"m=audio {local_port} RTP/AVP {fmts}")
    for pt in codecs:
        lines.append(f"a=rtpmap:{pt} {_STATIC[pt][0]}/8000")
    lines.append(f"a=rtpmap:{dtmf_payload_type} {TELEPHONE_EVENT}/8000")
    lines.append(f"a=fmtp:{dtmf_payload_type} 0-15")
    lines.append("a=ptime:20")
    lines.append("a=sendrecv")
    return _join(lines)


def plan_from_answer(answer_sdp: Session) -> AudioPlan:
    """What the peer's answer to our offer agrees (the first usable audio stream)."""
    for m in answer_sdp.media:
        choice = _audio_choice(m)
        if choice is not None:
            audio, event = choice
            assert m.address is not None
            held = m.address in ("0.0.0.0", "::") or m.direction in ("inactive", "sendonly")
            return AudioPlan((m.address, m.port), _NAMES[audio.name.upper()],
                             event.payload_type if event else None, _REVERSE.get(m.direction, "sendrecv"),
                             m.ptime or 20, held)
    raise NoCommonCodec("the answer has no audio stream with PCMU or PCMA")


def _head(host: str, session_id: int, version: int) -> list[str]:
    ip = "IP6" if ":" in host else "IP4"
    return [
        "v=0",
        f"o=OneNumber {session_id} {version} IN {ip} {host}",
        "s=OneNumber",
        f"c=IN {ip} {host}",
        "t=0 0",
    ]


def _join(lines: list[str]) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()
