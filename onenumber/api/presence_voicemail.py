"""Presence and voicemail for the browser (the web phone and the portal pages).

- `GET /api/presence/stream`: server-sent events (no polling): first a `snapshot` of the
  state of every colleague the logged-in account may watch (the `presence_watch` rule, as
  for BLF), then one `presence` event per change (`{"account", "name", "state"}`), and
  `mwi` events with the account's own message counts when its box changes; a comment
  line every `keepalive` seconds keeps proxies from closing an idle stream.
- `GET /api/me/voicemail`: the account's messages (new first count, oldest first list);
  `GET /api/me/voicemail/{id}/audio` the WAV; `POST /api/me/voicemail/{id}/heard`;
  `DELETE /api/me/voicemail/{id}`. Heard and delete update message waiting on the phones.

`build_router(current_account)` takes the dependency that says who is logged in (it
returns the account's number); `app.py` mounts it with the real login (`current_account`:
the user's own account). What the endpoints read is on `app.state.presence_voicemail`
(`PresenceVoicemail`, set by main.py); without it they answer 503.

`PresenceHub` fans the presence service's changes out to the open streams: each stream has
a bounded queue (a slow browser loses its oldest events, never slows a call), and the hub
publishes only real changes (the service may report an unchanged state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, StreamingResponse

from ..routing.presence import Presence
from ..services.directory import Directory
from ..services.presence import PresenceService
from ..services.subscriptions import may_watch
from ..services.voicemail.store import MessageStore, VoicemailMessage, summary

KEEPALIVE = 15.0
QUEUE = 256  # events kept for a stream that does not read


@dataclass(eq=False)
class _Stream:
    me: str
    queue: asyncio.Queue[tuple[str, dict[str, Any]]] = field(default_factory=lambda: asyncio.Queue(QUEUE))

    def push(self, event: str, data: dict[str, Any]) -> None:
        if self.queue.full():  # a slow reader: drop its oldest event rather than grow or block
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
        self.queue.put_nowait((event, data))


class PresenceHub:
    """Presence changes (and message counts) to the open browser streams."""

    def __init__(self, directory: Directory, presence: PresenceService | None) -> None:
        self.directory = directory
        self.presence = presence
        self.streams: set[_Stream] = set()
        self.last: dict[str, str] = {}

    def may_see(self, watcher: str, account: str) -> bool:
        return self.presence is not None and may_watch(watcher, account, self.presence.watch)

    def open(self, me: str) -> _Stream:
        stream = _Stream(me)
        if not self.streams and self.presence is not None:  # listen only while a page is open
            self.presence.state_listeners.append(self.presence_changed)
        self.streams.add(stream)
        return stream

    def close(self, stream: _Stream) -> None:
        self.streams.discard(stream)
        if not self.streams and self.presence is not None:
            with contextlib.suppress(ValueError):
                self.presence.state_listeners.remove(self.presence_changed)
            self.last.clear()  # what was last seen goes stale while nobody listens

    def snapshot(self, me: str) -> list[dict[str, Any]]:
        """Every colleague `me` may watch, with its state now."""
        if self.presence is None:
            return []
        now = time.time()
        out = []
        for number, account in sorted(self.directory.accounts.items()):
            if number != me and self.may_see(me, number):
                state = self.presence.state(number, now)[0].value
                out.append({"account": number, "name": account.display_name, "state": state})
        return out

    def presence_changed(self, account: str, state: Presence) -> None:
        if self.last.get(account) == state.value:
            return
        self.last[account] = state.value
        if not self.streams:
            return
        acc = self.directory.accounts.get(account)
        data = {"account": account, "name": acc.display_name if acc else "", "state": state.value}
        for stream in list(self.streams):
            if stream.me != account and self.may_see(stream.me, account):
                stream.push("presence", data)

    def mailbox_changed(self, box: str, new: int, saved: int) -> None:
        for stream in list(self.streams):
            if stream.me == box:
                stream.push("mwi", {"account": box, "new": new, "saved": saved})


@dataclass
class PresenceVoicemail:
    """What the endpoints use (main.py builds it; tests build their own)."""

    hub: PresenceHub
    messages: MessageStore | None = None
    changed: Callable[[str], Awaitable[None]] | None = None  # message waiting to the box's phones
    keepalive: float = KEEPALIVE


def _state(request: Request) -> PresenceVoicemail:
    pv = getattr(request.app.state, "presence_voicemail", None)
    if not isinstance(pv, PresenceVoicemail):
        raise HTTPException(503, detail="presence and voicemail are not running on this server")
    return pv


def _message_view(m: VoicemailMessage) -> dict[str, Any]:
    return {
        "id": m.id, "caller": m.caller, "caller_name": m.caller_name, "received_at": m.received_at,
        "duration": round(m.duration, 2), "heard": m.heard, "urgent": m.urgent,
        "audio": f"/api/me/voicemail/{m.id}/audio",
    }


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def build_router(current_account: Callable[..., Any]) -> APIRouter:
    """The endpoints, for the account `current_account` (a FastAPI dependency) returns."""
    router = APIRouter()

    async def own_message(pv: PresenceVoicemail, me: str, message_id: str) -> VoicemailMessage:
        if pv.messages is None:
            raise HTTPException(503, detail="voicemail is not running on this server")
        m = await pv.messages.get(message_id)
        if m is None or m.account != me:  # another box's message is not found, not forbidden
            raise HTTPException(404, detail=f"no voicemail message {message_id!r} in your box")
        return m

    async def box_changed(pv: PresenceVoicemail, me: str) -> None:
        if pv.changed is not None:
            await pv.changed(me)

    @router.get("/api/presence/stream")
    async def presence_stream(request: Request, me: str = Depends(current_account)) -> StreamingResponse:
        pv = _state(request)
        if pv.hub.presence is None:
            raise HTTPException(503, detail="presence is not running on this server (serve --no-presence)")
        stream = pv.hub.open(me)
        first = pv.hub.snapshot(me)
        counts = None
        if pv.messages is not None:
            s = summary([m for m in await pv.messages.list(me) if m.complete])
            counts = {"account": me, "new": s.new, "saved": s.old}

        async def events() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 3000\n\n"
                yield _sse("snapshot", first)
                if counts is not None:
                    yield _sse("mwi", counts)
                while True:
                    try:
                        event, data = await asyncio.wait_for(stream.queue.get(), pv.keepalive)
                    except TimeoutError:
                        if await request.is_disconnected():
                            return
                        yield b": keepalive\n\n"
                        continue
                    yield _sse(event, data)
            finally:
                pv.hub.close(stream)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @router.get("/api/me/voicemail")
    async def my_voicemail(request: Request, me: str = Depends(current_account)) -> dict[str, Any]:
        pv = _state(request)
        if pv.messages is None:
            raise HTTPException(503, detail="voicemail is not running on this server")
        messages = [m for m in await pv.messages.list(me) if m.complete]
        s = summary(messages)
        return {"account": me, "new": s.new, "saved": s.old, "messages": [_message_view(m) for m in messages]}

    @router.get("/api/me/voicemail/{message_id}/audio")
    async def my_voicemail_audio(message_id: str, request: Request, me: str = Depends(current_account)) -> Response:
        m = await own_message(_state(request), me, message_id)
        if not os.path.exists(m.path):
            raise HTTPException(404, detail=f"the recording of message {message_id!r} is missing")
        return FileResponse(m.path, media_type="audio/wav", filename=f"voicemail-{m.id}.wav")

    @router.post("/api/me/voicemail/{message_id}/heard")
    async def my_voicemail_heard(message_id: str, request: Request, me: str = Depends(current_account)) -> dict[
        str, Any
    ]:
        pv = _state(request)
        await own_message(pv, me, message_id)
        assert pv.messages is not None
        m = await pv.messages.set_heard(message_id, True)
        if m is None:
            raise HTTPException(404, detail=f"no voicemail message {message_id!r} in your box")
        await box_changed(pv, me)
        return _message_view(m)

    @router.delete("/api/me/voicemail/{message_id}", status_code=204)
    async def my_voicemail_delete(message_id: str, request: Request, me: str = Depends(current_account)) -> Response:
        pv = _state(request)
        await own_message(pv, me, message_id)
        assert pv.messages is not None
        await pv.messages.delete(message_id)
        await box_changed(pv, me)
        return Response(status_code=204)

    return router


__all__ = ["KEEPALIVE", "PresenceHub", "PresenceVoicemail", "build_router"]
