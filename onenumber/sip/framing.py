"""Cutting SIP messages out of a TCP/TLS byte stream (RFC 3261 §18.3, RFC 5626 §4.4.1).

A message is its header block (ending at the first CRLFCRLF) plus Content-Length octets
of body; on a stream a missing Content-Length means no body. Between messages:

- "\\r\\n\\r\\n" is an RFC 5626 keepalive ping: it is consumed and counted in
  `StreamFramer.pongs_needed`; the caller answers each with one "\\r\\n" pong and
  resets the count);
- a lone "\\r\\n" (a pong, or stray CRLF that §7.5 says to ignore) is skipped.

Anything that makes the framing unknowable (a header block over `max_header`, a
Content-Length that is missing digits, repeated with different values or over
`max_body`) raises ParseError(status=None): the caller closes the connection.

Sans-IO: bytes in, bytes out; depends only on errors.py.
"""

from __future__ import annotations

import re

from .errors import ParseError

# Content-Length (or compact "l") at the start of a header line, value up to the line end
# (a folded value continues after CRLF + white space)
_CL_RE = re.compile(rb"\r\n(?:content-length|l)[ \t]*:((?:[ \t]|\r\n[ \t])*+[^\r\n]*)", re.I)

MAX_HEADER = 16 * 1024
MAX_BODY = 64 * 1024


class StreamFramer:
    """Incremental framer: `feed(bytes)` returns the complete messages it now holds."""

    __slots__ = ("_buf", "_need", "_scan", "max_body", "max_header", "pongs_needed")

    def __init__(self, max_header: int = MAX_HEADER, max_body: int = MAX_BODY) -> None:
        self._buf = bytearray()
        self._scan = 0  # how far the current header block was searched for CRLFCRLF
        self._need = 0  # length of the current message once its header block is known
        self.max_header = max_header
        self.max_body = max_body
        self.pongs_needed = 0

    @property
    def buffered(self) -> int:
        """Octets held that do not yet form a whole message."""
        return len(self._buf)


    def feed(self, data: bytes) -> list[bytes]:
        """Add received octets; return every message now complete (possibly none)."""
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while buf:
            if self._need:  # header block known: wait for the body
                if len(buf) < self._need:
                    break
                out.append(bytes(buf[: self._need]))
                del buf[: self._need]
                self._need = self._scan = 0
                continue
            if self._scan == 0:  # at a message boundary: keepalives first
                c = buf[0]
                if c == 0x0D:
                    if buf[:4] == b"\r\n\r\n":
                        self.pongs_needed += 1
                        del buf[:4]
                        continue
                    if len(buf) < 4 and b"\r\n\r\n".startswith(bytes(buf)):
                        break  # maybe the start of a ping: wait for the rest
                    if buf[:2] == b"\r\n":
                        del buf[:2]
                        continue
                elif c == 0x0A:  # a bare LF between messages: skip it
                    del buf[:1]
                    continue
            end = buf.find(b"\r\n\r\n", max(0, self._scan - 3))
            if end < 0:
                if len(buf) > self.max_header:
                    raise ParseError("header block too large", status=None)
                self._scan = len(buf)
                break
            head_len = end + 4
            if head_len > self.max_header:
                raise ParseError("header block too large", status=None)
            self._scan = head_len
            self._need = head_len + self._content_length(bytes(buf[:head_len]))
        return out

    def _content_length(self, head: bytes) -> int:
        values = {m.group(1).strip(b" \t\r\n") for m in _CL_RE.finditer(head)}
        if not values:
            return 0
        if len(values) > 1:
            raise ParseError("conflicting Content-Length values on a stream", status=None)
        text = values.pop()
        if not text.isdigit() or len(text) > 9:
            raise ParseError(f"invalid Content-Length {text[:20]!r} on a stream", status=None)
        length = int(text)
        if length > self.max_body:
            raise ParseError("body larger than allowed", status=None)
        return length
