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

from .errors import ParseError

_HOST_RE = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9.])?)$"
)
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+\-.]*$")
# unreserved / escaped / user-unreserved, plus ":" only in password (RFC 3261 §25.1)
_USER_RE = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$")
_PARAM_RE = re.compile(r"^(?:[A-Za-z0-9\-_.!~*'()\[\]/:&+$]|%[0-9A-Fa-f]{2})+$")


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
        """The value of a URI parameter (name compared case-insensitively); "" if it has none."""
        lname = name.lower()
        for k, v in self.params:
            if k.lower() == lname:
                return "" if v is None else v
        return None

    def has_param(self, name: str) -> bool:
        lname = name.lower()
        return any(k.lower() == lname for k, _ in self.params)

    def with_params(self, params: tuple[tuple[str, str | None], ...]) -> SipUri:
        return SipUri(self.scheme, self.user, self.password, self.host, self.port, params, self.headers)

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

    def equivalent(self, other: SipUri) -> bool:
        """URI comparison of RFC 3261 §19.1.4 (user case-sensitive, host not, escapes decoded)."""
        if self.scheme != other.scheme:
            return False
        if unquote(self.user or "") != unquote(other.user or "") or self.password != other.password:
            return False
        if self.host.lower() != other.host.lower() or self.port != other.port:
            return False
        mine = {k.lower(): unquote(v or "").lower() for k, v in self.params}
        theirs = {k.lower(): unquote(v or "").lower() for k, v in other.params}
        for special in ("user", "ttl", "method", "maddr", "transport"):
            if mine.get(special) != theirs.get(special):
                return False
        return all(theirs[k] == v for k, v in mine.items() if k in theirs)


def parse_uri(text: str) -> SipUri | AbsoluteUri:
    """Parse a URI; raise ParseError(400) when it is not valid."""
    scheme, colon, rest = text.partition(":")
    if not colon or not _SCHEME_RE.match(scheme) or not rest:
        raise ParseError(f"invalid URI {text[:80]!r}")
    lscheme = scheme.lower()
    if lscheme not in ("sip", "sips"):
        if any(c in rest for c in " \t\r\n<>"):
            raise ParseError(f"invalid URI {text[:80]!r}")
        return AbsoluteUri(lscheme, rest)
    return parse_sip_uri(lscheme, rest, text)


def parse_sip_uri(scheme: str, rest: str, text: str = "") -> SipUri:
    if any(c in rest for c in " \t\r\n<>\""):
        raise ParseError(f"invalid SIP URI {text[:80]!r}")
    headers = None
    q = rest.find("?")
    if q >= 0:
        rest, headers = rest[:q], rest[q + 1 :]
    user = password = None
    at = rest.rfind("@")
    if at >= 0:
        userinfo, rest = rest[:at], rest[at + 1 :]
        # the user part may hold ";" (semiuri), so split params only after the "@"
        user, pcolon, pw = userinfo.partition(":")
        if pcolon:
            password = pw
        if not user or not _USER_RE.match(user):
            raise ParseError(f"invalid user in URI {text[:80]!r}")
    hostport, *raw_params = rest.split(";")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ParseError(f"invalid IPv6 reference in URI {text[:80]!r}")
        host, after = hostport[: end + 1], hostport[end + 1 :]
        if after and not after.startswith(":"):
            raise ParseError(f"invalid host in URI {text[:80]!r}")
        port_text = after[1:] if after else None
    else:
        host, pcolon, port_text_ = hostport.partition(":")
        port_text = port_text_ if pcolon else None
    if not host or not _HOST_RE.match(host):
        raise ParseError(f"invalid host in URI {text[:80]!r}")
    port = None
    if port_text is not None:
        if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
            raise ParseError(f"invalid port in URI {text[:80]!r}")
        port = int(port_text)
    params: list[tuple[str, str | None]] = []
    for p in raw_params:
        if not p:
            raise ParseError(f"empty URI parameter in {text[:80]!r}")
        name, eq, value = p.partition("=")
        if not _PARAM_RE.match(name) or (eq and not value) or (value and not _PARAM_RE.match(value)):
            raise ParseError(f"invalid URI parameter {p[:40]!r}")
        params.append((name, value if eq else None))
    return SipUri(scheme, user, password, host, port, tuple(params), headers)


def parse_sip(text: str) -> SipUri:
    """Parse a URI that must be sip: or sips:; raise ParseError(416-like) otherwise."""
    uri = parse_uri(text)
    if not isinstance(uri, SipUri):
        raise ParseError(f"not a SIP URI: {text[:80]!r}", status=416)
    return uri
