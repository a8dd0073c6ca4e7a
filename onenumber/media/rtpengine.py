"""A small asyncio client of rtpengine's ng control protocol (bencoded dictionaries over UDP).

Each request is `<cookie> <bencoded dict>`; the reply carries the same cookie. A request that
gets no reply is sent again with the same cookie (rtpengine answers a repeated cookie from its
cache instead of running the command twice), up to `retries` times, each waiting `timeout`.
Commands: ping, offer, answer, delete, query. Depends on the bencode codec only.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
from typing import Any

from .bencode import BencodeError, decode, decode_text, encode

log = logging.getLogger("onenumber.media.rtpengine")


class NgError(Exception):
    """rtpengine answered `result: error`, or never answered."""


class NgTimeout(NgError):
    """No reply after every retry."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, client: NgClient) -> None:
        self.client = client

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.client._on_reply(data)

    def error_received(self, exc: Exception) -> None:
        log.debug("ng socket error: %s", exc)


class NgClient:
    """One UDP socket to one rtpengine; requests in flight are matched to replies by cookie."""

    def __init__(self, host: str, port: int, *, timeout: float = 1.0, retries: int = 3) -> None:
        self.address = (host, port)
        self.timeout = timeout
        self.retries = retries
        self._transport: asyncio.DatagramTransport | None = None
        self._waiting: dict[bytes, asyncio.Future[dict[str, Any]]] = {}
        self._prefix = os.urandom(4).hex()
        self._counter = itertools.count(1)

    async def open(self) -> NgClient:
        if self._transport is None:
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(lambda: _Protocol(self), remote_addr=self.address)
            self._transport = transport
        return self

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(NgError("client closed"))
        self._waiting.clear()

    def _on_reply(self, data: bytes) -> None:
        cookie, sep, body = data.partition(b" ")
        fut = self._waiting.get(cookie)
        if not sep or fut is None or fut.done():
            return
        try:
            reply = decode_text(decode(body))
        except BencodeError as exc:
            fut.set_exception(NgError(f"undecodable reply from rtpengine: {exc}"))
            return
        if not isinstance(reply, dict):
            fut.set_exception(NgError("reply from rtpengine is not a dictionary"))
            return
        fut.set_result(reply)

    async def command(self, command: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command; returns the reply dictionary (strings decoded) or raises NgError."""
        await self.open()
        assert self._transport is not None
        message = {"command": command, **(params or {})}
        cookie = f"{self._prefix}_{next(self._counter)}".encode()
        data = cookie + b" " + encode(message)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[cookie] = fut
        try:
            for _attempt in range(self.retries + 1):
                self._transport.sendto(data)
                try:
                    reply = await asyncio.wait_for(asyncio.shield(fut), self.timeout)
                    break
                except TimeoutError:
                    continue
            else:
                raise NgTimeout(
                    f"rtpengine at {self.address[0]}:{self.address[1]} did not answer {command!r} "
                    f"({self.retries + 1} tries, {self.timeout} s each)"
                )
        finally:
            self._waiting.pop(cookie, None)
            if not fut.done():
                fut.cancel()
        result = reply.get("result")
        if result == "error":
            raise NgError(f"rtpengine refused {command!r}: {reply.get('error-reason', 'no reason given')}")
        return reply

    # ------------------------------------------------------------------ commands
    async def ping(self) -> bool:
        reply = await self.command("ping")
        return reply.get("result") == "pong"

    async def offer(self, call_id: str, from_tag: str, sdp: str, params: dict[str, Any] | None = None) -> str:
        reply = await self.command("offer", {"call-id": call_id, "from-tag": from_tag, "sdp": sdp, **(params or {})})
        return _sdp(reply, "offer")

    async def answer(
        self, call_id: str, from_tag: str, to_tag: str, sdp: str, params: dict[str, Any] | None = None
    ) -> str:
        reply = await self.command(
            "answer", {"call-id": call_id, "from-tag": from_tag, "to-tag": to_tag, "sdp": sdp, **(params or {})}
        )
        return _sdp(reply, "answer")

    async def delete(self, call_id: str, from_tag: str | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"call-id": call_id}
        if from_tag:
            params["from-tag"] = from_tag
        return await self.command("delete", params)

    async def query(self, call_id: str) -> dict[str, Any]:
        return await self.command("query", {"call-id": call_id})


def _sdp(reply: dict[str, Any], command: str) -> str:
    sdp = reply.get("sdp")
    if not isinstance(sdp, str):
        raise NgError(f"rtpengine's {command} reply has no SDP")
    return sdp


async def wait_until_up(host: str, port: int, deadline_seconds: float = 5.0) -> bool:
    """Ping until rtpengine answers (it takes under a second to start) or the time is up."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_seconds
    client = NgClient(host, port, timeout=0.2, retries=0)
    try:
        while loop.time() < end:
            with contextlib.suppress(NgError, OSError):
                if await client.ping():
                    return True
            await asyncio.sleep(0.05)
        return False
    finally:
        client.close()
