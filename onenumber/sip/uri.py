"""SIP and SIPS URIs (RFC 3261 §19.1): parse, print, compare.

    SIP-URI = "sip:" [ userinfo ] hostport uri-parameters [ headers ]
    userinfo = ( user / telephone-subscriber ) [ ":" password ] "@"
    hostport = host [ ":" port ]

Parsing keeps the escaped form of each part (so printing gives the same text back) and
offers the unescaped user for lookups. Other schemes (tel:, urn:, …) parse as `AbsoluteUri`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from . import grammar
from .errors import ParseError

# parsed URIs are immutable: a small cache saves re-parsing the same AOR/contact on every message
_CACHE: dict[str, SipUri | AbsoluteUri] = {}
_CACHE_SIZE = 4096

# RFC 3261 §19.1.4: an escaped character is equivalent to itself unless it is "reserved"
_RESERVED = frozenset(";/?:@&=+$,")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True, slots=True)
class AbsoluteUri:
    """A URI of a scheme we do not route (tel:, urn:, http:, …), kept as text."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"


@dataclass(frozen=True, slots=True)
class SipUri:
    scheme: str  # "sip" or "sips", lower case
    user: str | None  # escaped, as written
    password: str | None
    host: str  # as written; IPv6 keeps its brackets
    port: int | None
    params: tuple[tuple[str, str | None], ...] = ()  # escaped, names as written
    headers: str | None = None  # the part after "?", verbatim

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":")
                out.append(self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for name, value in self.params:
            out.append(f";{name}" if value is None else f";{name}={value}")
        if self.headers is not None:
            out.append("?")
            out.append(self.headers)
        return "".join(out)

    @property
    def user_unescaped(self) -> str | None:
        return None if self.user is None else unquote(self.user)

    @property
    def host_lower(self) -> str:
        return self.host.lower()

    def param(self, name: str) -> str | None:
        """The value (as written) of a URI parameter, "" if it has none, None if absent.

        Names compare case-insensitively with escapes decoded (`n%61me` is `name`)."""
        lname = name.lower()
        for k, v in self.params:
            if k.lower() == lname or ("%" in k and _norm(k).lower() == lname):
                return "" if v is None else v
        return None

    def has_param(self, name: str) -> bool:
        return self.param(name) is not None

    def without_headers(self) -> SipUri:
        return SipUri(self.scheme, self.user, self.password, self.host, self.port, self.params, None)

    @property
    def transport(self) -> str | None:
        t = self.param("transport")
        return t.lower() if t else None

    def default_port(self) -> int:
        if self.port is not None:
            return self.port
        return 5061 if self.scheme == "sips" or self.transport == "tls" else 5060

    def equivalent(self, other: SipUri | AbsoluteUri) -> bool:
        """URI comparison of RFC 3261 §19.1.4.

        Scheme, host and parameters compare case-insensitively, userinfo case-sensitively;
        escapes of unreserved characters equal the characters; an absent port or
        user/ttl/method/maddr/transport parameter never equals an explicit default; other
        parameters count only when both URIs have them; URI headers must all match.
        """
        if not isinstance(other, SipUri) or self.scheme != other.scheme:
            return False
        if (self.user is None) != (other.user is None) or (self.password is None) != (other.password is None):
            return False
        if _norm(self.user or "") != _norm(other.user or "") or _norm(self.password or "") != _norm(
            other.password or ""
        ):
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        mine = _param_map(self.params)
        theirs = _param_map(other.params)
        for special in ("user", "ttl", "method", "maddr", "transport"):
            if mine.get(special) != theirs.get(special):
                return False
        if any(theirs[k] != v for k, v in mine.items() if k in theirs):
            return False
        return _header_set(self.headers) == _header_set(other.headers)


def _norm(text: str) -> str:
    """Decode the escapes of unreserved characters (a reserved one stays escaped, upper-cased)."""
    if "%" not in text:
        return text

    def repl(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return "%" + m.group(1).upper() if ch in _RESERVED else ch

    return _ESCAPE_RE.sub(repl, text)


def _param_map(params: tuple[tuple[str, str | None], ...]) -> dict[str, str]:
    return {_norm(k).lower(): _norm(v or "").lower() for k, v in params}


def _header_set(headers: str | None) -> frozenset[tuple[str, str]]:
    if not headers:
        return frozenset()
    out = set()
    for h in headers.split("&"):
        name, _, value = h.partition("=")
        out.add((_norm(name).lower(), _norm(value)))
    return frozenset(out)


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """Parse a URI; raise ParseError(400) when it is not valid."""
    cached = _CACHE.get(text)
    if cached is not None:
        return cached
    scheme, colon, rest = text.partition(":")
    if not colon or not rest or not grammar.SCHEME.fullmatch(scheme):
        raise ParseError(f"invalid URI {text[:80]!r}")
    lscheme = scheme.lower()
    uri: SipUri | AbsoluteUri
    if lscheme == "sip" or lscheme == "sips":
        uri = parse_sip_uri(lscheme, rest, text)
    else:
        if not grammar.ABSOLUTE_REST.fullmatch(rest):
            raise ParseError(f"invalid URI {text[:80]!r}")
        uri = AbsoluteUri(lscheme, rest)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.clear()  # crude but bounded: a flood of distinct URIs cannot grow memory
    _CACHE[text] = uri
    return uri


def parse_sip_uri(scheme: str, rest: str, text: str = "") -> SipUri:
    """Parse what follows "sip:" or "sips:" (RFC 3261 §19.1.1, §25.1).

    userinfo is everything before the "@": the user may hold ";", "?" and "/" (semiuri,
    intmeth), so parameters and headers are looked for only after it. A peer that leaves
    octets unescaped in the URI headers gets a liberal second try (headers kept verbatim).
    """
    m = grammar.SIP_URI_REST.fullmatch(rest)
    headers = None
    if m is not None:
        headers = m.group("headers")
    else:
        q = rest.find("?")
        while q >= 0:
            m = grammar.SIP_URI_REST_NOHDR.fullmatch(rest, 0, q)
            if m is not None:
                headers = rest[q + 1 :]
                if not headers or not grammar.ABSOLUTE_REST.fullmatch(headers):
                    m = None
                break
            q = rest.find("?", q + 1)
        if m is None:
            raise ParseError(f"invalid SIP URI {(text or rest)[:80]!r}")
    port_text = m.group("port")
    port = None
    if port_text is not None:
        port = int(port_text)
        if port > 65535:
            raise ParseError(f"invalid port in URI {(text or rest)[:80]!r}")
    params_text = m.group("params")
    params: tuple[tuple[str, str | None], ...] = ()
    if params_text:
        out: list[tuple[str, str | None]] = []
        for p in params_text[1:].split(";"):
            name, eq, value = p.partition("=")
            out.append((name, value if eq else None))
        params = tuple(out)
    return SipUri(scheme, m.group("user"), m.group("password"), m.group("host"), port, params, headers)


def parse_sip(text: str) -> SipUri:
    """Parse a URI that must be sip: or sips:; raise ParseError(416-like) otherwise."""
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise ParseError(f"not a SIP URI: {text[:80]!r}", status=416)
    return uri
