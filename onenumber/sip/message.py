"""SIP requests and responses: bytes in, typed access on demand, bytes back out.

`parse(data)` splits one message (RFC 3261 §7): start line, header fields (folded lines
joined, compact names expanded, list headers split at their commas), body framed by
Content-Length. Header values stay text; `headers.py` gives typed views when needed, so
a proxy touches only what it reads and passes the rest through verbatim.

Anything malformed raises `ParseError` with the status to answer (400, 505) or None to drop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from . import grammar
from .errors import ParseError
from .headers import CSeq, NameAddr, Via, is_token, parse_contacts, split_commas
from .uri import AbsoluteUri, SipUri, parse_uri

# compact form → canonical lower-case name (RFC 3261 §7.3.3, RFC 3515, RFC 3841, RFC 4028…)
COMPACT = {
    "i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
    "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
    "o": "event", "r": "refer-to", "b": "referred-by", "u": "allow-events", "x": "session-expires",
    "a": "accept-contact", "j": "reject-contact", "d": "request-disposition", "y": "identity",
}

# how each known header is written out
CANONICAL = {
    name.lower(): name
    for name in (
        "Via", "Max-Forwards", "Route", "Record-Route", "From", "To", "Call-ID", "CSeq",
        "Contact", "Content-Type", "Content-Length", "Expires", "Min-Expires", "User-Agent",
        "Server", "Allow", "Supported", "Require", "Proxy-Require", "Unsupported", "Accept",
        "Accept-Encoding", "Accept-Language", "Authorization", "Proxy-Authorization",
        "WWW-Authenticate", "Proxy-Authenticate", "Authentication-Info", "Path", "Date",
        "Reason", "Warning", "Retry-After", "Timestamp", "Subject", "Event", "Allow-Events",
        "Refer-To", "Referred-By", "Session-Expires", "Min-SE", "Content-Encoding",
        "Content-Disposition", "P-Asserted-Identity", "P-Preferred-Identity", "Diversion",
        "History-Info", "Privacy", "Organization", "Priority", "In-Reply-To", "Reply-To",
        "Service-Route", "Subscription-State", "Accept-Contact", "Reject-Contact",
        "Request-Disposition", "Identity", "Alert-Info", "Call-Info", "Error-Info", "MIME-Version",
        "Flow-Timer", "GRUU", "RSeq", "RAck",
    )
}

# headers whose comma-separated values are separate list elements (§7.3.1); auth headers are not
LIST_HEADERS = frozenset({
    "via", "route", "record-route", "contact", "path", "allow", "supported", "require",
    "proxy-require", "unsupported", "accept", "accept-encoding", "accept-language",
    "content-encoding", "allow-events", "service-route", "history-info", "diversion",
    "p-asserted-identity", "reason", "warning",
})

# headers that must appear at most once (§20); a second one is a 400
SINGLE_HEADERS = frozenset({"call-id", "to", "from", "cseq", "max-forwards", "content-length"})

MAX_MESSAGE = 65535

# name as written → (key, name to write back); filled as names are seen, bounded
_NAME_CACHE: dict[str, tuple[str, str]] = {}
_NAME_CACHE_SIZE = 2048

_is_digits = grammar.DIGITS.fullmatch


_KEY_CACHE: dict[str, str] = {}


def _canon(name: str) -> str:
    """The lower-case long name of a header name as a caller or peer wrote it (memoised:
    this runs for every header lookup)."""
    key = _KEY_CACHE.get(name)
    if key is None:
        lname = name.lower()
        key = COMPACT.get(lname, lname)
        if len(_KEY_CACHE) < _NAME_CACHE_SIZE:
            _KEY_CACHE[name] = key
    return key


canonical_key = _canon  # for builders in this package that write header items directly


def _name_entry(name: str) -> tuple[str, str] | None:
    """(key, canonical name) for a header name as written, None when it is not a token."""
    entry = _NAME_CACHE.get(name)
    if entry is None:
        if not is_token(name):
            return None
        key = _canon(name)
        entry = (key, CANONICAL.get(key, name))
        if len(_NAME_CACHE) < _NAME_CACHE_SIZE:
            _NAME_CACHE[name] = entry
    return entry


# header key → the typed cache entries built from it (see the Message properties)
_DERIVED: dict[str, tuple[str, ...]] = {
    "via": ("vias", "top_via"), "cseq": ("cseq",), "from": ("from",), "to": ("to",),
    "contact": ("contacts",), "route": ("routes",), "record-route": ("record_routes",), "path": ("paths",),
}


class Headers:
    """Ordered header fields. Names are matched case-insensitively and in compact form.

    Stored as a list of [key, name, value] where key is the lower-case long name; list
    headers hold one element per entry (a comma-joined field becomes several entries).
    Typed views parsed from the values are cached until the next change.
    """

    __slots__ = ("_cache", "_items")

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[list[str]] = []
        self._cache: dict[str, Any] = {}
        if items:
            for name, value in items:
                self.add(name, value)

    @classmethod
    def _raw(cls, items: list[list[str]]) -> Headers:
        h = cls()  # not cls.__new__: mypyc's native classes have no __new__ to call
        h._items = items
        return h

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._items:
            yield name, value

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        other._load()
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Headers({[(n, v) for _, n, v in self._items]!r})"

    def _load(self) -> None:
        """Nothing to do: the fields are there (`_LazyHeaders` parses them here on first use)."""

    def copy(self) -> Headers:
        h = Headers._raw([list(i) for i in self._items])
        h._cache = dict(self._cache)  # typed values are frozen: safe to share
        return h

    def get(self, name: str, default: str | None = None) -> str | None:
        key = _canon(name)
        for item in self._items:
            if item[0] == key:
                return item[2]
        return default

    def get_all(self, name: str) -> list[str]:
        key = _canon(name)
        return [item[2] for item in self._items if item[0] == key]

    def count(self, name: str) -> int:
        key = _canon(name)
        return sum(1 for item in self._items if item[0] == key)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = _canon(name)
        for item in self._items:  # noqa: SIM110 - a plain loop: this runs for every message
            if item[0] == key:
                return True
        return False

    def has_any(self, keys: frozenset[str]) -> bool:
        """Whether a field is named by one of `keys` (lower-case long names): one pass for
        several names, where most messages have none of them."""
        self._load()
        for item in self._items:  # noqa: SIM110 - a plain loop: this runs for every request
            if item[0] in keys:
                return True
        return False

    def add(self, name: str, value: str) -> None:
        """Append a field (after any others of the same name)."""
        key = _canon(name)
        self._forget(key)
        self._items.append([key, CANONICAL.get(key, name), value])

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before the first of the same name (or at the top): Via, Record-Route."""
        key = _canon(name)
        self._forget(key)
        for i, item in enumerate(self._items):
            if item[0] == key:
                self._items.insert(i, [key, item[1], value])
                return
        self._items.insert(0, [key, CANONICAL.get(key, name), value])

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name by one (kept at the first one's place)."""
        key = _canon(name)
        self._forget(key)
        items = self._items
        for i, item in enumerate(items):
            if item[0] == key:
                item[2] = value
                for j in range(i + 1, len(items)):  # most fields set here appear once: no copy then
                    if items[j][0] == key:
                        items[i + 1 :] = [it for it in items[i + 1 :] if it[0] != key]
                        break
                return
        items.append([key, CANONICAL.get(key, name), value])

    def remove(self, name: str) -> None:
        key = _canon(name)
        self._forget(key)
        self._items = [it for it in self._items if it[0] != key]

    def replace_first(self, name: str, value: str) -> None:
        """Change the value of the first field of this name (e.g. stamping the top Via)."""
        key = _canon(name)
        for item in self._items:
            if item[0] == key:
                item[2] = value
                self._forget(key)
                return
        raise KeyError(name)

    def pop_first(self, name: str) -> str | None:
        key = _canon(name)
        for i, item in enumerate(self._items):
            if item[0] == key:
                self._forget(key)
                del self._items[i]
                return item[2]
        return None

    def _forget(self, key: str) -> None:
        """Drop the typed values derived from header `key` (the others stay valid)."""
        cache = self._cache
        if cache:
            for k in _DERIVED.get(key, ()):
                cache.pop(k, None)

    def remember(self, key: str, value: Any) -> None:
        """Cache a typed value the caller built itself (a request we write: no need to parse back
        what we just wrote); `key` as in `typed`, dropped like the others when its header changes."""
        self._cache[key] = value

    def typed(self, key: str, build: Callable[[Headers], Any]) -> Any:
        """`build(self)` cached under `key` until the headers it derives from change (`_DERIVED`
        must list them; ParseError is not cached)."""
        try:
            return self._cache[key]
        except KeyError:
            value = self._cache[key] = build(self)
            return value

# typed builders, cached per Headers ---------------------------------------------------------


def _build_vias(h: Headers) -> tuple[Via, ...]:
    return tuple(Via.parse(v) for v in h.get_all("via"))


def _build_top_via(h: Headers) -> Via:
    cached = h._cache.get("vias")
    if cached:
        return cached[0]
    v = h.get("via")
    if v is None:
        raise ParseError("missing Via")
    return Via.parse(v)


def _build_name_addr(key: str) -> Callable[[Headers], NameAddr]:
    def build(h: Headers) -> NameAddr:
        v = h.get(key)
        if v is None:
            raise ParseError(f"missing {CANONICAL[key]}")
        return NameAddr.parse(v)

    return build


def _build_name_addrs(key: str) -> Callable[[Headers], tuple[NameAddr, ...]]:
    def build(h: Headers) -> tuple[NameAddr, ...]:
        return tuple(NameAddr.parse(v) for v in h.get_all(key))

    return build


def _build_cseq(h: Headers) -> CSeq:
    return CSeq.parse(h.get("cseq") or "")


def _build_contacts(h: Headers) -> tuple[NameAddr, ...] | None:
    values = h.get_all("contact")
    if not values:
        return ()
    c = parse_contacts(values)
    return None if c is None else tuple(c)


_build_from = _build_name_addr("from")
_build_to = _build_name_addr("to")
_build_routes = _build_name_addrs("route")
_build_record_routes = _build_name_addrs("record-route")
_build_paths = _build_name_addrs("path")


class Message:
    __slots__ = ("body", "headers", "version")

    headers: Headers
    body: bytes
    version: str

    # typed access to what every layer reads (parsed once, cached in the Headers) ---------------
    @property
    def call_id(self) -> str:
        return self.headers.get("call-id") or ""

    @property
    def cseq(self) -> CSeq:
        return self.headers.typed("cseq", _build_cseq)

    @property
    def vias(self) -> list[Via]:
        return list(self.headers.typed("vias", _build_vias))

    @property
    def top_via(self) -> Via:
        return self.headers.typed("top_via", _build_top_via)

    @property
    def from_(self) -> NameAddr:
        return self.headers.typed("from", _build_from)

    @property
    def to(self) -> NameAddr:
        return self.headers.typed("to", _build_to)

    @property
    def contacts(self) -> list[NameAddr] | None:
        """Every Contact as a name-addr ([] when there is none); None for `Contact: *`."""
        c = self.headers.typed("contacts", _build_contacts)
        return None if c is None else list(c)

    @property
    def routes(self) -> list[NameAddr]:
        return list(self.headers.typed("routes", _build_routes))

    @property
    def record_routes(self) -> list[NameAddr]:
        return list(self.headers.typed("record_routes", _build_record_routes))

    @property
    def paths(self) -> list[NameAddr]:
        return list(self.headers.typed("paths", _build_paths))

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards as an int (validated by parse), None when absent."""
        mf = self.headers.get("max-forwards")
        return None if mf is None else int(mf)

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        """The message on the wire; Content-Length always tells the real body length."""
        body = self.body
        lines = [self.start_line()]
        has_cl = False
        for key, name, value in self.headers._items:
            if key == "content-length":
                if has_cl:
                    continue
                has_cl = True
                value = str(len(body))
            lines.append(f"{name}: {value}")  # one piece per field: this runs for every message sent
        if not has_cl:
            lines.append(f"Content-Length: {len(body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + body

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (
            self.start_line() == other.start_line()
            and self.headers == other.headers
            and self.body == other.body
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def set_body(self, body: bytes, content_type: str | None = None) -> None:
        self.body = body
        self.headers.set("Content-Length", str(len(body)))
        if content_type:
            self.headers.set("Content-Type", content_type)


class Request(Message):
    __slots__ = ("_ruri", "_uri", "method")

    def __init__(
        self, method: str, uri: str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.method = method
        self._uri = uri
        self._ruri: SipUri | AbsoluteUri | None = None
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version

    @property
    def uri(self) -> str:
        """The Request-URI as text; `request_uri` gives it parsed."""
        return self._uri

    @uri.setter
    def uri(self, value: str) -> None:
        self._uri = value
        self._ruri = None

    @property
    def request_uri(self) -> SipUri | AbsoluteUri:
        """The Request-URI parsed (cached); raises ParseError when it is not a valid URI."""
        ruri = self._ruri
        if ruri is None:
            ruri = self._ruri = parse_uri(self._uri)
        return ruri

    def start_line(self) -> str:
        return f"{self.method} {self._uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self._uri}>"


class Response(Message):
    __slots__ = ("reason", "status")

    def __init__(
        self, status: int, reason: str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason}>"


class _LazyHeaders(Headers):
    """The header fields of a `LazyResponse`, parsed from the raw message on first use: every
    method loads them first. (A subclass of Headers rather than properties over Message's
    slots: mypyc compiles attribute reads to direct slot reads, which a property overriding
    the slot in a subclass would never see.) A message that turns out malformed reads as no
    header fields."""

    __slots__ = ("_pending", "_stream")

    def __init__(self, raw: bytes, stream: bool) -> None:
        self._items = []  # Headers' two fields, set here: one for each of a NOTIFY's 200s
        self._cache = {}
        self._pending: bytes | None = raw
        self._stream = stream

    def _load(self) -> None:
        raw = self._pending
        if raw is None:
            return
        self._pending = None
        try:
            parsed = parse(raw, stream=self._stream).headers
        except ParseError:
            return  # no header fields
        # the typed values parsing checked come along (nothing can be cached before the load)
        self._items, self._cache = parsed._items, parsed._cache

    def __iter__(self) -> Iterator[tuple[str, str]]:
        self._load()
        return super().__iter__()

    def __len__(self) -> int:
        self._load()
        return super().__len__()

    def __eq__(self, other: object) -> bool:
        self._load()
        return super().__eq__(other)

    __hash__ = None  # mutable

    def __repr__(self) -> str:
        self._load()
        return super().__repr__()

    def copy(self) -> Headers:
        self._load()
        return super().copy()

    def get(self, name: str, default: str | None = None) -> str | None:
        self._load()
        return super().get(name, default)

    def get_all(self, name: str) -> list[str]:
        self._load()
        return super().get_all(name)

    def count(self, name: str) -> int:
        self._load()
        return super().count(name)

    def __contains__(self, name: object) -> bool:
        self._load()
        return super().__contains__(name)

    def add(self, name: str, value: str) -> None:
        self._load()
        super().add(name, value)

    def prepend(self, name: str, value: str) -> None:
        self._load()
        super().prepend(name, value)

    def set(self, name: str, value: str) -> None:
        self._load()
        super().set(name, value)

    def remove(self, name: str) -> None:
        self._load()
        super().remove(name)

    def replace_first(self, name: str, value: str) -> None:
        self._load()
        super().replace_first(name, value)

    def pop_first(self, name: str) -> str | None:
        self._load()
        return super().pop_first(name)

    def remember(self, key: str, value: Any) -> None:
        self._load()
        super().remember(key, value)

    def typed(self, key: str, build: Callable[[Headers], Any]) -> Any:
        self._load()
        return super().typed(key, build)


class LazyResponse(Response):
    """A response known by its status line until more is read: its header fields are parsed
    from the raw bytes on first use (`_LazyHeaders`). The stack hands these to the transaction
    user for the client transactions it matched from the bytes alone (`Stack.send_prepared`),
    whose answers are mostly only looked at for their status (a NOTIFY's 200). Only messages
    without a body come this way (the stack checks), so the body is known: empty."""

    __slots__ = ()

    def __init__(self, status: int, reason: str, raw: bytes, stream: bool = False) -> None:
        self.status = status  # Response's fields, set here (one call less per NOTIFY's 200)
        self.reason = reason
        self.headers = _LazyHeaders(raw, stream)
        self.body = b""
        self.version = "SIP/2.0"

    def __bytes__(self) -> bytes:
        self.headers._load()  # Message.__bytes__ reads the fields' list directly
        return super().__bytes__()


# ---------------------------------------------------------------------------------------------
# parsing


def parse(data: bytes, *, stream: bool = False) -> Request | Response:
    """Parse one message.

    With `stream` False (UDP) the body is framed by Content-Length inside the datagram: a
    larger Content-Length is an error, trailing octets are ignored, and without one the
    body is the rest of the datagram. With `stream` True (TCP/TLS, after `StreamFramer`)
    a missing Content-Length means an empty body. CRLFs before the start line are skipped.

    Raises ParseError: status 400 (505 for another SIP version) with `partial` set when
    the request can be answered; status None when the bytes must be dropped (garbage, or
    any malformed response: responses are never answered).
    """
    if len(data) > MAX_MESSAGE and not stream:
        raise ParseError("message too large", status=None)
    if data[:1] == b"\r" or data[:1] == b"\n":
        data = data.lstrip(b"\r\n")
    head_end = data.find(b"\r\n\r\n")
    complete = True
    if head_end >= 0:
        lines = data[:head_end].decode("utf-8", "surrogateescape").split("\r\n")
        rest = data[head_end + 4 :]
    else:
        # tolerate bare-LF messages from sloppy peers; note a missing empty line
        lf = data.find(b"\n\n")
        if lf >= 0:
            head, rest = data[:lf], data[lf + 2 :]
        else:
            head, rest, complete = data, b"", False
        lines = head.decode("utf-8", "surrogateescape").replace("\r\n", "\n").split("\n")
        if lines and lines[-1] == "":
            lines.pop()
    if not lines or not lines[0]:
        raise ParseError("empty message", status=None)
    try:
        msg = _parse_head(lines)
        if data.find(b"\x00", 0, head_end if head_end >= 0 else len(data)) >= 0:
            _check_nul(msg)
    except ParseError as exc:
        if exc.partial is not None and isinstance(exc.partial, Response):
            exc.status = None
        raise
    try:
        _frame_body(msg, rest, stream)
        if not complete:
            raise ParseError("no empty line after the header fields", partial=msg)
        _validate(msg)
    except ParseError as exc:
        if isinstance(msg, Response):
            exc.status = None
        raise
    return msg


def _parse_head(lines: list[str]) -> Request | Response:
    first = lines[0]
    items: list[list[str]] = []
    bad: str | None = None
    last: list[str] | None = None
    name_entry = _name_entry
    known = _NAME_CACHE.get  # the names seen before (valid tokens): one dict lookup per line
    lists = LIST_HEADERS
    split = False  # a list header holds a comma: split it below (most messages have none)
    for line in lines[1:]:
        if not line:
            continue  # only a bare-CR line could get here; ignore it
        c0 = line[0]
        if c0 == " " or c0 == "\t":
            if last is None:
                bad = bad or "continuation line before any header"
                continue
            # LWS folding: the line break and leading white space become one SP (§7.3.1)
            last[2] = (last[2] + " " + line.strip(" \t")).strip(" \t")
            if "," in line and last[0] in lists:
                split = True
            continue
        name, colon, value = line.partition(":")
        entry = known(name) if colon else None
        if entry is None:
            entry = name_entry(name) if colon else None
            if entry is None:
                entry = name_entry(name.rstrip(" \t")) if colon else None
                if entry is None:
                    bad = bad or f"malformed header line {line[:40]!r}"
                    last = None
                    continue
        key = entry[0]
        if "," in value and key in lists:
            split = True
        last = [key, entry[1], value.strip(" \t")]
        items.append(last)

    headers = Headers._raw(items)
    parse_line = _parse_status_line if first.startswith("SIP/") else _parse_request_line
    msg: Request | Response = parse_line(first, headers)
    if bad is not None:
        raise ParseError(bad, partial=msg)
    if split:  # split list headers into their elements (§7.3.1)
        for i in range(len(items) - 1, -1, -1):
            item = items[i]
            if "," in item[2] and item[0] in lists:
                items[i : i + 1] = [[item[0], item[1], v] for v in split_commas(item[2])]
    return msg


def _check_nul(msg: Request | Response) -> None:
    """A NUL octet is legal only as a quoted-pair inside a quoted string (intmeth)."""
    for _, _, value in msg.headers._items:
        if "\x00" not in value:
            continue
        quoted = False
        i = 0
        while i < len(value):
            c = value[i]
            if c == "\x00" and not quoted:
                raise ParseError("NUL octet in a header field", partial=msg)
            if quoted and c == "\\":
                i += 1
            elif c == '"':
                quoted = not quoted
            i += 1


def _parse_request_line(first: str, headers: Headers) -> Request:
    parts = first.split(" ")
    if len(parts) != 3:
        # only a line that ends in a SIP version is a request we can answer (ltgtruri, trws…)
        status = 400 if grammar.REQUEST_LINE_VERSION.search(first) else None
        raise ParseError("malformed Request-Line", status=status, partial=Request("UNKNOWN", "", headers))
    method, uri, version = parts
    if not grammar.REQUEST_LINE_VERSION.fullmatch(version):
        raise ParseError("malformed Request-Line", status=None, partial=Request("UNKNOWN", "", headers))
    req = Request(method, uri, headers)
    if not is_token(method) or "\x00" in first:
        raise ParseError("malformed Request-Line", partial=req)
    if version != "SIP/2.0":
        if version.upper() != "SIP/2.0":
            raise ParseError("SIP Version Not Supported", status=505, partial=req)
        req.version = "SIP/2.0"
    return req


def _parse_status_line(first: str, headers: Headers) -> Response:
    version, _, rest = first.partition(" ")
    code, _, reason = rest.partition(" ")
    if version.upper() != "SIP/2.0" or len(code) != 3 or not _is_digits(code) or code[0] == "0":
        raise ParseError("malformed Status-Line", status=None)
    resp = Response(int(code), reason, headers)
    if version != "SIP/2.0":
        resp.version = "SIP/2.0"
    return resp


def _frame_body(msg: Request | Response, rest: bytes, stream: bool) -> None:
    """Body framing (§18.3, §20.14)."""
    items = msg.headers._items
    cl: str | None = None
    for item in items:
        if item[0] == "content-length":
            if cl is not None:
                raise ParseError("more than one Content-Length", partial=msg)
            cl = item[2]
    if cl is not None:
        if not _is_digits(cl) or len(cl) > 9:
            raise ParseError(f"invalid Content-Length {cl[:20]!r}", partial=msg)
        length = int(cl)
        if length > len(rest):
            raise ParseError("Content-Length larger than the message", partial=msg)
        msg.body = rest[:length] if length != len(rest) else rest
    else:
        msg.body = b"" if stream else rest


_MULTI_KEYS = frozenset({"via", "contact", "route", "record-route"})


def _validate(msg: Request | Response) -> None:
    """The checks every message must pass before any layer reads it (§8.1.1, §20).

    Every header a proxy or registrar reads is parsed here once and cached in the
    Headers, so a malformed one is a 400 at the door instead of an exception deep in a layer.
    """
    h = msg.headers
    first: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for key, _, value in h._items:
        if key in _MULTI_KEYS:
            lst = multi.get(key)
            if lst is None:
                multi[key] = [value]
            else:
                lst.append(value)
        elif key in first:
            if key in SINGLE_HEADERS:
                raise ParseError(f"more than one {CANONICAL.get(key, key)}", partial=msg)
        else:
            first[key] = value
    vias = multi.get("via")
    if vias is None:
        raise ParseError("missing Via", status=None, partial=msg)  # nowhere to send an answer
    for key in ("call-id", "from", "to", "cseq"):
        if key not in first:
            raise ParseError(f"missing {CANONICAL[key]}", partial=msg)
    if not first["call-id"]:
        raise ParseError("empty Call-ID", partial=msg)
    cache = h._cache
    is_request = isinstance(msg, Request)
    try:
        cache["cseq"] = cseq = CSeq.parse(first["cseq"])
        if not is_request:
            # a proxy reads only the top Via and CSeq of a response and relays the rest verbatim;
            # the other values are parsed (and checked) if a layer asks for them
            cache["top_via"] = Via.parse(vias[0])
            return
        cache["vias"] = parsed_vias = tuple([Via.parse(v) for v in vias])
        cache["top_via"] = parsed_vias[0]
        cache["from"] = NameAddr.parse(first["from"])
        cache["to"] = NameAddr.parse(first["to"])
        values = multi.get("contact")
        if values is not None:
            contacts = parse_contacts(values)
            cache["contacts"] = None if contacts is None else tuple(contacts)
        else:
            contacts = []  # no Contact (only its being None matters below)
            cache["contacts"] = ()
        values = multi.get("route")
        cache["routes"] = tuple([NameAddr.parse(v) for v in values]) if values else ()
        ruri = msg.request_uri  # type: ignore[union-attr]  # only reached for requests
    except ParseError as exc:
        raise ParseError(exc.reason, status=400 if is_request else None, partial=msg) from None
    mf = first.get("max-forwards")
    if mf is not None and (not _is_digits(mf) or int(mf) > 255):
        raise ParseError(f"invalid Max-Forwards {mf[:20]!r}", partial=msg)
    if isinstance(msg, Request):
        if isinstance(ruri, SipUri) and ruri.headers is not None:
            # §19.1.1: headers are not allowed in a Request-URI (escruri)
            raise ParseError("header fields in the Request-URI", partial=msg)
        if cseq.method != msg.method:
            raise ParseError("CSeq method does not match the Request-Line", partial=msg)
        if contacts is None and msg.method != "REGISTER":
            raise ParseError("'*' Contact outside REGISTER", partial=msg)
        exp = first.get("expires")
        if exp is not None and (not _is_digits(exp) or int(exp) > 0xFFFFFFFF):
            raise ParseError(f"invalid Expires {exp[:20]!r}", partial=msg)
