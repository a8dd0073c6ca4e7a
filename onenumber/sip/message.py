"""SIP requests and responses: bytes in, typed access on demand, bytes back out.

`parse(data)` splits one message (RFC 3261 §7): start line, header fields (folded lines
joined, compact names expanded, list headers split at their commas), body framed by
Content-Length. Header values stay text; `headers.py` gives typed views when needed, so
a proxy touches only what it reads and passes the rest through verbatim.

Anything malformed raises `ParseError` with the status to answer (400, 505) or None to drop.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import ParseError
from .headers import CSeq, NameAddr, Via, is_token, split_commas

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


def _canon(name: str) -> str:
    lname = name.lower()
    return COMPACT.get(lname, lname)


class Headers:
    """Ordered header fields. Names are matched case-insensitively and in compact form.

    Stored as a list of [key, name, value] where key is the lower-case long name; list
    headers hold one element per entry (a comma-joined field becomes several entries).
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items: list[list[str]] = []
        if items:
            for name, value in items:
                self.add(name, value)

    @classmethod
    def _raw(cls, items: list[list[str]]) -> Headers:
        h = cls.__new__(cls)
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
        return [(k, v) for k, _, v in self._items] == [(k, v) for k, _, v in other._items]

    def __repr__(self) -> str:
        return f"Headers({[(n, v) for _, n, v in self._items]!r})"

    def copy(self) -> Headers:
        return Headers._raw([list(i) for i in self._items])

    def get(self, name: str, default: str | None = None) -> str | None:
        key = _canon(name)
        for item in self._items:
            if item[0] == key:
                return item[2]
        return default

    def get_all(self, name: str) -> list[str]:
        key = _canon(name)
        return [item[2] for item in self._items if item[0] == key]

    def __contains__(self, name: str) -> bool:
        key = _canon(name)
        return any(item[0] == key for item in self._items)

    def add(self, name: str, value: str) -> None:
        """Append a field (after any others of the same name)."""
        key = _canon(name)
        self._items.append([key, CANONICAL.get(key, name), value])

    def prepend(self, name: str, value: str) -> None:
        """Insert a field before the first of the same name (or at the top): Via, Record-Route."""
        key = _canon(name)
        for i, item in enumerate(self._items):
            if item[0] == key:
                self._items.insert(i, [key, item[1], value])
                return
        self._items.insert(0, [key, CANONICAL.get(key, name), value])

    def set(self, name: str, value: str) -> None:
        """Replace every field of this name by one (kept at the first one's place)."""
        key = _canon(name)
        for i, item in enumerate(self._items):
            if item[0] == key:
                item[2] = value
                self._items[i + 1 :] = [it for it in self._items[i + 1 :] if it[0] != key]
                return
        self._items.append([key, CANONICAL.get(key, name), value])

    def remove(self, name: str) -> None:
        key = _canon(name)
        self._items = [it for it in self._items if it[0] != key]

    def pop_first(self, name: str) -> str | None:
        key = _canon(name)
        for i, item in enumerate(self._items):
            if item[0] == key:
                del self._items[i]
                return item[2]
        return None

    def encode_into(self, out: list[str]) -> None:
        for _, name, value in self._items:
            out.append(name)
            out.append(": ")
            out.append(value)
            out.append("\r\n")


class Message:
    __slots__ = ("body", "headers", "version")

    headers: Headers
    body: bytes
    version: str

    # typed access to what every layer reads -------------------------------------------------
    @property
    def call_id(self) -> str:
        return self.headers.get("call-id") or ""

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self.headers.get("cseq") or "")

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("via")]

    @property
    def top_via(self) -> Via:
        v = self.headers.get("via")
        if v is None:
            raise ParseError("missing Via")
        return Via.parse(v)

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("from") or "")

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(self.headers.get("to") or "")

    def start_line(self) -> str:
        raise NotImplementedError

    def __bytes__(self) -> bytes:
        out = [self.start_line(), "\r\n"]
        self.headers.encode_into(out)
        if "content-length" not in self.headers:
            out.append(f"Content-Length: {len(self.body)}\r\n")
        out.append("\r\n")
        return "".join(out).encode("utf-8", "surrogateescape") + self.body

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (
            self.start_line() == other.start_line()  # type: ignore[attr-defined]
            and self.headers == other.headers  # type: ignore[attr-defined]
            and self.body == other.body  # type: ignore[attr-defined]
        )

    def set_body(self, body: bytes, content_type: str | None = None) -> None:
        self.body = body
        self.headers.set("Content-Length", str(len(body)))
        if content_type:
            self.headers.set("Content-Type", content_type)


class Request(Message):
    __slots__ = ("method", "uri")

    def __init__(
        self, method: str, uri: str, headers: Headers | None = None, body: bytes = b"", version: str = "SIP/2.0"
    ) -> None:
        self.method = method
        self.uri = uri  # the Request-URI as text; parse with uri.parse_uri when needed
        self.headers = headers if headers is not None else Headers()
        self.body = body
        self.version = version

    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri}>"


class Response(Message):
    __slots__ = ("reason", "status")

    def __init__(
        self, status: int, reason: str, headers: Headers | None = None, body: bytes = b"", version: str = "SIP/2.0"
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


# ---------------------------------------------------------------------------------------------
# parsing


def parse(data: bytes, *, stream: bool = False) -> Request | Response:
    """Parse one message. With `stream` False (UDP), the body is framed by Content-Length
    inside the datagram: a longer Content-Length is an error, trailing octets are ignored."""
    if len(data) > MAX_MESSAGE and not stream:
        raise ParseError("message too large", status=None)
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        # tolerate bare-LF messages from sloppy peers; reject anything else unframed
        lf = data.find(b"\n\n")
        if lf < 0:
            raise ParseError("no end of headers", status=None)
        head = data[:lf].replace(b"\r\n", b"\n").decode("utf-8", "surrogateescape").split("\n")
        rest = data[lf + 2 :]
    else:
        head = data[:head_end].decode("utf-8", "surrogateescape").split("\r\n")
        rest = data[head_end + 4 :]
    first = head[0]
    if not first or "\x00" in first:
        raise ParseError("invalid start line", status=None)

    items: list[list[str]] = []
    for line in head[1:]:
        if not line:
            continue
        c0 = line[0]
        if c0 == " " or c0 == "\t":
            if not items:
                raise ParseError("continuation line before any header", status=None)
            items[-1][2] = items[-1][2] + " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not name or not is_token(name):
            items.append(["", "", ""])  # marks the message invalid once we can answer it
            continue
        key = name.lower()
        key = COMPACT.get(key, key)
        items.append([key, CANONICAL.get(key, name), value.strip()])

    # split list headers into their elements
    expanded: list[list[str]] = []
    bad_header = False
    for item in items:
        if not item[0]:
            bad_header = True
            continue
        if item[0] in LIST_HEADERS and "," in item[2]:
            for v in split_commas(item[2]):
                expanded.append([item[0], item[1], v])
        else:
            expanded.append(item)
    headers = Headers._raw(expanded)

    msg: Request | Response
    if first.startswith("SIP/"):
        msg = _parse_status_line(first, headers)
    else:
        msg = _parse_request_line(first, headers)
    if bad_header:
        raise ParseError("malformed header line", partial=msg)

    # body framing (§18.3)
    cl_values = headers.get_all("content-length")
    if len(cl_values) > 1:
        raise ParseError("more than one Content-Length", partial=msg)
    if cl_values:
        cl = cl_values[0].strip()
        if not cl.isdigit() or len(cl) > 9:
            raise ParseError(f"invalid Content-Length {cl[:20]!r}", partial=msg)
        length = int(cl)
        if length > len(rest):
            raise ParseError("Content-Length larger than the message", partial=msg)
        msg.body = rest[:length]
    elif stream:
        msg.body = b""
    else:
        msg.body = rest
    _validate(msg)
    return msg


def _parse_request_line(first: str, headers: Headers) -> Request:
    parts = first.split(" ")
    if len(parts) != 3:
        partial = Request("UNKNOWN", "", headers)
        raise ParseError("malformed Request-Line", partial=partial)
    method, uri, version = parts
    req = Request(method, uri, headers)
    if not method or not is_token(method) or not uri or any(c in uri for c in "<>\t\"") or not version:
        raise ParseError("malformed Request-Line", partial=req)
    req.version = version
    if version.upper() != "SIP/2.0":
        if version.upper().startswith("SIP/"):
            raise ParseError("SIP Version Not Supported", status=505, partial=req)
        raise ParseError("malformed Request-Line", partial=req)
    req.version = "SIP/2.0"
    return req


def _parse_status_line(first: str, headers: Headers) -> Response:
    version, _, rest = first.partition(" ")
    code, _, reason = rest.partition(" ")
    if version.upper() != "SIP/2.0" or len(code) != 3 or not code.isdigit() or code[0] == "0":
        raise ParseError("malformed Status-Line", status=None)
    return Response(int(code), reason, headers)


def _validate(msg: Request | Response) -> None:
    """The checks every message must pass before any layer reads it (§8.1.1, §20)."""
    h = msg.headers
    for key in SINGLE_HEADERS:
        if len(h.get_all(key)) > 1:
            raise ParseError(f"more than one {CANONICAL.get(key, key)}", partial=msg)
    for key in ("call-id", "from", "to", "cseq", "via"):
        if key not in h:
            raise ParseError(f"missing {CANONICAL.get(key, key)}", partial=msg if key != "via" else None)
    cseq = msg.cseq  # raises on an invalid CSeq
    try:
        for v in h.get_all("via"):
            Via.parse(v)
        msg.from_  # noqa: B018  (parse to validate)
        msg.to  # noqa: B018
    except ParseError as exc:
        raise ParseError(exc.reason, partial=msg) from None
    mf = h.get("max-forwards")
    if mf is not None and (not mf.isdigit() or int(mf) > 255):
        raise ParseError(f"invalid Max-Forwards {mf[:20]!r}", partial=msg)
    if isinstance(msg, Request):
        if cseq.method != msg.method:
            raise ParseError("CSeq method does not match the Request-Line", partial=msg)
        exp = h.get("expires")
        if exp is not None and (not exp.isdigit() or int(exp) > 0xFFFFFFFF):
            raise ParseError(f"invalid Expires {exp[:20]!r}", partial=msg)
    else:
        if not cseq.method:
            raise ParseError("invalid CSeq", status=None)
