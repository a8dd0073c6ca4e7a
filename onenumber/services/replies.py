"""Answering a server transaction: the one helper every stage uses to reply."""

from __future__ import annotations

from collections.abc import Callable

from ..sip.stack import ServerTxn, Stack


class Replier:
    def __init__(self, stack: Stack, clock: Callable[[], float]) -> None:
        self.stack = stack
        self.clock = clock

    def reply(self, txn: ServerTxn, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        if txn.request is None:  # already answered
            return
        self.stack.respond(txn, self.stack.make_response(txn.request, status, reason, headers), self.clock())
