"""Listening to messages: the DTMF menu as a pure state machine.

The account's own devices dial the access number (`*98` by default) and are recognised
by the device they call from; when that is not enough (`pin_required`) the caller keys
the box's PIN first, ending with `#`. Then:

    intro ("you have N new and M saved messages")
    for each message, new ones first then saved ones, oldest first:
        the message, then the message menu:
            1 replay · 7 delete · 9 save · # next · 0 menu again · * goodbye
    "no more messages", goodbye, hang up.

A new message becomes saved (heard) once it was played to its end, or when saved with 9;
`#` skips it and leaves it new unless it was heard to the end. Digits cut the prompt or
message being played. With no key pressed `menu_timeout` seconds after the menu prompt,
it is repeated (`menu_repeats` times), then the menu moves on to the next message.

Inputs: `start`, `on_digit`, `on_play_done`, `on_timer`; outputs: voicemail.actions
(`Play`, `PlayMessage`, `StopPlayback`, `MarkHeard`, `DeleteMessage`, `Finished`; the
dialog layer turns `Finished` into a BYE). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from .actions import Action, DeleteMessage, Finished, MarkHeard, Play, PlayMessage, StopPlayback
from .store import VoicemailMessage, listening_order

LISTENED = "listened"


@dataclass(frozen=True, slots=True)
class MenuSettings:
    pin: str | None = None  # the box's PIN
    pin_required: bool = False  # the calling device was not enough to recognise the box
    max_pin_tries: int = 3
    menu_timeout: float = 8.0
    menu_repeats: int = 1


class State(StrEnum):
    PIN = "pin"
    INTRO = "intro"
    MESSAGE = "message"  # playing a message
    MENU = "menu"  # the message menu (playing or waiting for a key)
    END = "end"


class Menu:
    def __init__(self, messages: list[VoicemailMessage], settings: MenuSettings | None = None) -> None:
        self.settings = settings or MenuSettings()
        self.queue = listening_order(messages)
        self.index = 0
        self.state = State.PIN if self.settings.pin_required else State.INTRO
        self.pin_digits = ""
        self.pin_tries = 0
        self.deadline: float | None = None
        self.repeats = 0

    @property
    def current(self) -> VoicemailMessage | None:
        return self.queue[self.index] if self.index < len(self.queue) else None

    # ---------------------------------------------------------------- events
    def start(self, now: float) -> list[Action]:
        if self.state is State.PIN:
            return [Play("enter-pin")]
        return self._intro()

    def on_digit(self, digit: str, now: float) -> list[Action]:
        if self.state is State.PIN:
            return self._pin_digit(digit, now)
        if self.state in (State.MESSAGE, State.MENU):
            return self._menu_digit(digit, now)
        if self.state is State.INTRO and digit == "#":  # skip the intro
            return [StopPlayback(), *self._play_current()]
        if self.state is State.INTRO and digit == "*":
            return [StopPlayback(), *self._goodbye()]
        return []

    def on_play_done(self, item: Play | PlayMessage, now: float) -> list[Action]:
        if isinstance(item, PlayMessage):
            msg = self.current
            if self.state is State.MESSAGE and msg is not None and msg.id == item.message_id:
                out: list[Action] = []
                if not msg.heard:  # heard to its end: it is not new any more
                    self.queue[self.index] = replace(msg, heard=True)
                    out.append(MarkHeard(msg.id))
                self.state = State.MENU
                return [*out, Play("message-menu")]
            return []
        if item.prompt == "intro" and self.state is State.INTRO:
            return self._play_current()
        if item.prompt == "message-menu" and self.state is State.MENU:
            self.deadline = now + self.settings.menu_timeout
        if item.prompt == "goodbye" and self.state is State.END:
            return [Finished(LISTENED)]
        return []

    def next_timer(self) -> float | None:
        return self.deadline

    def on_timer(self, now: float) -> list[Action]:
        if self.deadline is None or now < self.deadline:
            return []
        self.deadline = None
        if self.state is State.MENU:
            if self.repeats < self.settings.menu_repeats:
                self.repeats += 1
                return [Play("message-menu")]
            return self._advance()
        return []

    # ---------------------------------------------------------------- PIN
    def _pin_digit(self, digit: str, now: float) -> list[Action]:
        if digit != "#":
            self.pin_digits += digit
            return []
        entered, self.pin_digits = self.pin_digits, ""
        if self.settings.pin is not None and entered == self.settings.pin:
            self.state = State.INTRO
            return [StopPlayback(), *self._intro()]
        self.pin_tries += 1
        if self.pin_tries >= self.settings.max_pin_tries:
            return [StopPlayback(), *self._goodbye()]
        return [StopPlayback(), Play("wrong-pin"), Play("enter-pin")]

    # ---------------------------------------------------------------- messages
    def _intro(self) -> list[Action]:
        self.state = State.INTRO
        new = sum(1 for m in self.queue if not m.heard)
        saved = len(self.queue) - new
        if not self.queue:
            return [Play("no-messages"), *self._goodbye()]
        return [Play("intro", (("new", new), ("saved", saved)))]

    def _play_current(self) -> list[Action]:
        msg = self.current
        if msg is None:
            return [Play("no-more-messages"), *self._goodbye()]
        self.state = State.MESSAGE
        self.deadline = None
        self.repeats = 0
        prompt = "new-message" if not msg.heard else "saved-message"
        return [Play(prompt, (("number", self.index + 1),)), PlayMessage(msg.id, msg.path)]

    def _menu_digit(self, digit: str, now: float) -> list[Action]:
        msg = self.current
        if msg is None:
            return []
        self.deadline = None
        if digit == "1":
            return [StopPlayback(), *self._play_current()]
        if digit == "7":
            del self.queue[self.index]
            self.state = State.MESSAGE
            return [StopPlayback(), DeleteMessage(msg.id), Play("deleted"), *self._play_current()]
        if digit == "9":
            out: list[Action] = [StopPlayback()]
            if not msg.heard:
                self.queue[self.index] = replace(msg, heard=True)
                out.append(MarkHeard(msg.id))
            return [*out, Play("saved"), *self._advance()]
        if digit == "#":
            return [StopPlayback(), *self._advance()]
        if digit == "0":
            self.state = State.MENU
            return [StopPlayback(), Play("message-menu")]
        if digit == "*":
            return [StopPlayback(), *self._goodbye()]
        return []

    def _advance(self) -> list[Action]:
        self.index += 1
        return self._play_current()

    def _goodbye(self) -> list[Action]:
        self.state = State.END
        self.deadline = None
        return [Play("goodbye")]
