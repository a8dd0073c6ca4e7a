"""Typed errors of the SIP core. Each carries the status to answer with (or None: drop).

The server turns these into responses at one place (the stack); nothing else in the
core raises anything a peer could trigger.
"""

from __future__ import annotations

from typing import Any


class SipError(Exception):
    """A request that must be answered with `status` `reason`."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.headers = headers or []


class ParseError(SipError):
    """Bytes that are not a valid SIP message.

    `status` is 400 (or 505 for an unknown version) when enough of the message was read
    to answer it; None when the bytes are garbage and must be dropped. `partial` is what
    could be parsed (a Request or Response with its headers), used to build the answer.
    """

    def __init__(self, reason: str, status: int | None = 400, partial: Any = None) -> None:
        super().__init__(status or 0, reason)
        self.status: int | None = status  # type: ignore[assignment]  # None: drop, narrower than SipError
        self.partial = partial
