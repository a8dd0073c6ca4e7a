"""Typed views of the header values a registrar and proxy read (RFC 3261 §20, §25).

Each is a frozen dataclass with `parse(value)` (raising ParseError) and `__str__`.
Values that are not parsed stay text in `message.Headers` and go out verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from . import grammar
from .errors import ParseError
from .uri import AbsoluteUri, SipUri, parse_uri

Params = tuple[tuple[str, str | None], ...]

_token_match = grammar.TOKEN_RE.fullmatch
# From/To/Contact values repeat across a dialog and REGISTER refreshes; parsed values are frozen
_NAME_ADDR_CACHE: dict[str, NameAddr] = {}
_CACHE_SIZE = 4096
_param_match = grammar.PARAM_ITEM.match
_simple_params = grammar.SIMPLE_PARAMS.fullmatch
_VIA_CACHE: dict[str, Via] = {}
_CSEQ_CACHE: dict[str, CSeq] = {}


def is_token(text: str) -> bool:
    return _token_match(text) is not None


def split_commas(value: str) -> list[str]:
    """Split a header value on the commas that separate list elements (not in quotes or <>)."""
    if "," not in value:
        return [value]
    if '"' not in value and "<" not in value:
        return [v.strip(" \t") for v in value.split(",")]
    out: list[str] = []
    depth = 0
    quoted = False
    start = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "<":
            depth += 1
        elif c == ">":
            depth = max(0, depth - 1)
        elif c == "," and depth == 0:
            out.append(value[start:i].strip(" \t"))
            start = i + 1
        i += 1
    out.append(value[start:].strip(" \t"))
    return out


def parse_params(text: str, context: str = "header") -> Params:
    """Parse `;name=value;flag` (RFC 3261 generic-param, SWS allowed around ";" and "=").

    The leading ";" is optional. Quoted values keep their quotes.
    """
    stripped = text.lstrip(" \t")
    if not stripped:
        return ()
    return _params(stripped if stripped[0] == ";" else ";" + stripped, context)


def _params(text: str, context: str = "header") -> Params:
    """`*( SEMI generic-param )` exactly: anything else (even a stray word) is an error."""
    if _simple_params(text) is not None:  # fast path: validated whole, then split
        out_simple: list[tuple[str, str | None]] = []
        for part in text[1:].split(";"):
            name, eq, value = part.partition("=")
            out_simple.append((name, value if eq else None))
        return tuple(out_simple)
    out: list[tuple[str, str | None]] = []
    pos = 0
    end = len(text)
    match = _param_match
    while pos < end:
        m = match(text, pos)
        if m is None or m.end() == pos:
            if not text[pos:].strip(" \t"):
                break
            raise ParseError(f"invalid {context} parameter {text[pos:pos + 40]!r}")
        out.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(out)


def format_params(params: Params) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def get_param(params: Params, name: str) -> str | None:
    """Value of a parameter ("" for a flag), None when absent; names compare case-insensitively."""
    lname = name.lower()
    for k, v in params:
        if k.lower() == lname:
            return "" if v is None else v
    return None


def unquote_value(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


@dataclass(frozen=True, slots=True)
class Via:
    transport: str  # upper case: UDP, TCP, TLS, WS, WSS, SCTP, …
    host: str
    port: int | None
    params: Params = ()

    @classmethod
    def parse(cls, value: str) -> Via:
        cached = _VIA_CACHE.get(value)
        if cached is not None:
            return cached
        via = cls._parse(value)
        if len(_VIA_CACHE) >= _CACHE_SIZE:
            _VIA_CACHE.clear()  # bounded: a Via is parsed a few times within one exchange
        _VIA_CACHE[value] = via
        return via

    @classmethod
    def remember(cls, value: str, via: Via) -> None:
        """`via` is what `parse(value)` gives (a Via we wrote ourselves): cache it, so the responses
        that echo it back are matched without parsing it again."""
        if len(_VIA_CACHE) >= _CACHE_SIZE:
            _VIA_CACHE.clear()
        _VIA_CACHE[value] = via

    @classmethod
    def _parse(cls, value: str) -> Via:
        m = grammar.VIA.fullmatch(value.strip(" \t"))
        if m is None or m.group("proto").upper() != "SIP":
            raise ParseError(f"invalid Via {value[:60]!r}")
        port_text = m.group("port")
        port = None
        if port_text is not None:
            port = int(port_text)
            if port > 65535:
                raise ParseError(f"invalid port in Via {value[:60]!r}")
        params_text = m.group("params")
        params = _params(params_text, "Via") if params_text else ()
        return cls(m.group("transport").upper(), m.group("host"), port, params)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return get_param(self.params, "branch")

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def sent_by(self) -> tuple[str, int]:
        default = 5061 if self.transport in ("TLS", "WSS") else 5060
        return self.host.lower(), self.port if self.port is not None else default


@dataclass(frozen=True, slots=True)
class NameAddr:
    """`[display-name] <uri> *(;param)` or `addr-spec *(;param)` (From, To, Contact, Route…)."""

    uri: SipUri | AbsoluteUri
    display: str | None = None  # as written, quotes included
    params: Params = ()
    bracketed: bool = True

    @classmethod
    def parse(cls, value: str) -> NameAddr:
        cached = _NAME_ADDR_CACHE.get(value)
        if cached is not None:
            return cached
        na = cls._parse(value)
        if len(_NAME_ADDR_CACHE) >= _CACHE_SIZE:
            _NAME_ADDR_CACHE.clear()  # bounded: distinct values cannot grow memory
        _NAME_ADDR_CACHE[value] = na
        return na

    @classmethod
    def _parse(cls, value: str) -> NameAddr:
        value = value.strip(" \t")
        if "<" in value:
            m = grammar.NAME_ADDR.fullmatch(value)
            if m is None:
                raise ParseError(f"invalid name-addr {value[:60]!r}")
            display = m.group("quoted") or m.group("tokens")
            params_text = m.group("params")
            params = _params(params_text) if params_text else ()
            return cls(parse_uri(m.group("uri")), display, params, True)
        # addr-spec: parameters after the URI belong to the header, not the URI (§20), and
        # a URI holding ",", "?" or ";" must have been put in <> (§20.10)
        uri_text, semi, params_text = value.partition(";")
        uri_text = uri_text.rstrip(" \t")
        if not uri_text or any(c in uri_text for c in " \t,?\"<>"):
            raise ParseError(f"invalid addr-spec {value[:60]!r}")
        return cls(parse_uri(uri_text), None, _params(";" + params_text) if semi else (), False)

    def __str__(self) -> str:
        disp = f"{self.display} " if self.display else ""
        return f"{disp}<{self.uri}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        return get_param(self.params, name)

    @property
    def tag(self) -> str | None:
        return get_param(self.params, "tag")

    @property
    def display_text(self) -> str | None:
        return None if self.display is None else unquote_value(self.display)


@dataclass(frozen=True, slots=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, value: str) -> CSeq:
        cached = _CSEQ_CACHE.get(value)
        if cached is not None:
            return cached
        m = grammar.CSEQ.fullmatch(value.strip(" \t"))
        if m is None or int(m.group(1)) > 0xFFFFFFFF:
            raise ParseError(f"invalid CSeq {value[:40]!r}")
        cseq = cls(int(m.group(1)), m.group(2))
        if len(_CSEQ_CACHE) >= _CACHE_SIZE:
            _CSEQ_CACHE.clear()  # bounded; "1 INVITE", "2 BYE", "1 REGISTER"… are most of them
        _CSEQ_CACHE[value] = cseq
        return cseq

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_contacts(values: list[str]) -> list[NameAddr] | None:
    """Contact values → name-addrs; None for `Contact: *`."""
    if len(values) == 1 and values[0].strip() == "*":
        return None
    out = []
    for v in values:
        if v.strip() == "*":
            raise ParseError("'*' Contact mixed with others")
        out.append(NameAddr.parse(v))
    return out
