"""Typed views of the header values a registrar and proxy read (RFC 3261 §20, §25).

Each is a frozen dataclass with `parse(value)` (raising ParseError) and `__str__`.
Values that are not parsed stay text in `message.Headers` and go out verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ParseError
from .uri import AbsoluteUri, SipUri, parse_uri

Params = tuple[tuple[str, str | None], ...]

_TOKEN_RE = re.compile(r"^[A-Za-z0-9\-.!%*_+`'~]+$")
_VIA_RE = re.compile(r"^SIP\s*/\s*([0-9.]+)\s*/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s+(.+)$", re.S)


def is_token(text: str) -> bool:
    return bool(_TOKEN_RE.match(text))


def split_commas(value: str) -> list[str]:
    """Split a header value on the commas that separate list elements (not in quotes or <>)."""
    if "," not in value:
        return [value]
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
            out.append(value[start:i].strip())
            start = i + 1
        i += 1
    out.append(value[start:].strip())
    return out


def parse_params(text: str, context: str = "header") -> Params:
    """Parse `;name=value;flag` (leading ";" optional). Quoted values keep their quotes."""
    text = text.strip()
    if not text:
        return ()
    if text.startswith(";"):
        text = text[1:]
    out: list[tuple[str, str | None]] = []
    for part in _split_semis(text):
        name, eq, value = part.partition("=")
        name = name.strip()
        value = value.strip()
        if not name or not is_token(name) or (eq and not value):
            raise ParseError(f"invalid {context} parameter {part.strip()[:40]!r}")
        if value and not value.startswith('"') and not re.match(r"^[A-Za-z0-9\-.!%*_+`'~:\[\]]+$", value):
            raise ParseError(f"invalid {context} parameter value {value[:40]!r}")
        out.append((name, value if eq else None))
    return tuple(out)


def _split_semis(text: str) -> list[str]:
    if '"' not in text:
        return text.split(";")
    parts: list[str] = []
    quoted = False
    start = 0
    i = 0
    while i < len(text):
        c = text[i]
        if quoted:
            if c == "\\":
                i += 1
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == ";":
            parts.append(text[start:i])
            start = i + 1
        i += 1
    if quoted:
        raise ParseError("unterminated quoted string in parameters")
    parts.append(text[start:])
    return parts


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
        m = _VIA_RE.match(value.strip())
        if not m:
            raise ParseError(f"invalid Via {value[:60]!r}")
        transport = m.group(2).upper()
        rest = m.group(3).strip()
        sent_by, _, params_text = rest.partition(";")
        sent_by = sent_by.strip()
        host, port = _split_hostport(sent_by, "Via")
        params = parse_params(params_text, "Via") if _ else ()
        if _ and not params:
            raise ParseError("empty Via parameter")
        return cls(transport, host, port, params)

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


def _split_hostport(text: str, context: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ParseError(f"invalid IPv6 reference in {context}")
        host, after = text[: end + 1], text[end + 1 :].strip()
    else:
        host, colon, after = text.partition(":")
        after = (":" + after) if colon else ""
        host = host.strip()
    if not host or not re.match(r"^[A-Za-z0-9\-.\[\]:]+$", host):
        raise ParseError(f"invalid host in {context}: {text[:60]!r}")
    if not after:
        return host, None
    port_text = after[1:].strip()
    if not after.startswith(":") or not port_text.isdigit() or int(port_text) > 65535:
        raise ParseError(f"invalid port in {context}: {text[:60]!r}")
    return host, int(port_text)


@dataclass(frozen=True, slots=True)
class NameAddr:
    """`[display-name] <uri> *(;param)` or `addr-spec *(;param)` (From, To, Contact, Route…)."""

    uri: SipUri | AbsoluteUri
    display: str | None = None  # as written, quotes included
    params: Params = ()
    bracketed: bool = True

    @classmethod
    def parse(cls, value: str) -> NameAddr:
        value = value.strip()
        display = None
        if value.startswith('"'):
            i = 1
            while i < len(value):
                if value[i] == "\\":
                    i += 2
                    continue
                if value[i] == '"':
                    break
                i += 1
            else:
                raise ParseError("unterminated quoted display name")
            display = value[: i + 1]
            value = value[i + 1 :].lstrip()
            if not value.startswith("<"):
                raise ParseError("display name without <URI>")
        lt = value.find("<")
        if lt >= 0:
            if display is None and lt > 0:
                display = value[:lt].strip()
                if not all(is_token(w) for w in display.split()):
                    raise ParseError(f"invalid display name {display[:40]!r}")
            gt = value.find(">", lt)
            if gt < 0:
                raise ParseError("missing '>' in name-addr")
            uri = parse_uri(value[lt + 1 : gt].strip())
            params = parse_params(value[gt + 1 :])
            return cls(uri, display or None, params, True)
        # addr-spec: parameters after the URI belong to the header, not the URI (§20)
        uri_text, semi, params_text = value.partition(";")
        if any(c in uri_text.strip() for c in " \t,?"):
            raise ParseError(f"invalid addr-spec {value[:60]!r}")
        uri = parse_uri(uri_text.strip())
        return cls(uri, None, parse_params(params_text) if semi else (), False)

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
        num, _, method = value.strip().partition(" ")
        method = method.strip()
        if not num.isdigit() or len(num) > 10 or int(num) > 0xFFFFFFFF or not is_token(method):
            raise ParseError(f"invalid CSeq {value[:40]!r}")
        return cls(int(num), method)

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


def parse_auth_params(value: str) -> tuple[str, dict[str, str]]:
    """`Digest a=b, c="d"` → ("Digest", {"a": "b", "c": "d"}); names lower-cased, quotes removed."""
    scheme, _, rest = value.strip().partition(" ")
    params: dict[str, str] = {}
    for part in split_commas(rest):
        if not part:
            continue
        name, eq, val = part.partition("=")
        if not eq:
            raise ParseError(f"invalid auth parameter {part[:40]!r}")
        params[name.strip().lower()] = unquote_value(val.strip())
    return scheme, params


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
