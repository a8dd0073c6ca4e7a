"""Listening to the box over the phone: `menu.Menu` inside an answered call, sans-IO.

`ListenCall` is an `ua.AnsweringCall` whose media part is the DTMF menu: digits and
"played to the end" reports go to the menu, its actions come out, and its goodbye turns
into our BYE. Who may listen (the calling device's account, or the PIN) is decided
before: the glue builds the call with the box's messages and `MenuSettings`.

Pure: no asyncio, no clock; depends on voicemail.ua, menu, actions and store.
"""

from __future__ import annotations

from .actions import Action, Finished, Play, PlayMessage
from .menu import LISTENED, Menu, MenuSettings
from .store import VoicemailMessage
from .ua import AnsweringCall, CallPhase, UaSettings


class ListenCall(AnsweringCall):
    def __init__(
        self,
        box: str,
        messages: list[VoicemailMessage],
        *,
        local_tag: str,
        media_port: int,
        session_id: int,
        menu: MenuSettings | None = None,
        ua: UaSettings | None = None,
    ) -> None:
        super().__init__(local_tag=local_tag, media_port=media_port, session_id=session_id, ua=ua)
        self.box = box
        self.menu = Menu(messages, menu)

    def _relay(self, actions: list[Action]) -> list[Action]:
        out: list[Action] = []
        for a in actions:
            if isinstance(a, Finished):
                out += self.hang_up()
            else:
                out.append(a)
        return out

    def _started(self, now: float) -> list[Action]:
        return self._relay(self.menu.start(now))

    def on_digit(self, digit: str, now: float) -> list[Action]:
        if self.phase is not CallPhase.ACTIVE:
            return []
        return self._relay(self.menu.on_digit(digit, now))

    def on_play_done(self, item: Play | PlayMessage, now: float) -> list[Action]:
        if self.phase is not CallPhase.ACTIVE:
            return []
        return self._relay(self.menu.on_play_done(item, now))

    def next_timer(self) -> float | None:
        times = [t for t in (super().next_timer(), self.menu.next_timer() if self.phase is CallPhase.ACTIVE else None)
                 if t is not None]
        return min(times) if times else None

    def on_timer(self, now: float) -> list[Action]:
        out = super().on_timer(now)
        if self.phase is CallPhase.ACTIVE:
            out += self._relay(self.menu.on_timer(now))
        return out

    def _outcome(self) -> str:
        return LISTENED
