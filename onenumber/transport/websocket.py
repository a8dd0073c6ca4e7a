"""SIP over WebSocket (RFC 7118): one more reliable transport (`ws`, `wss`) for the stack.

The HTTP server (uvicorn, through Starlette's WebSocket) does the framing, the handshake and
the keep-alive pings; this module turns one accepted socket into a connection of the
`Driver` exactly like a TCP/TLS one: a connection id, `write()` for what the stack sends to
it, and `connection_lost` when it closes, which drops the bindings made over it at once
(`Driver.on_flow_closed`). Each WebSocket message carries one whole SIP message (§5.1), so
no stream framing is needed. Depends on the driver and the sans-IO stack only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..sip.stack import Source
from .driver import Driver

log = logging.getLogger("onenumber.transport.ws")

SUBPROTOCOL = "sip"
MAX_QUEUE = 512  # messages waiting to go out on one socket before it counts as stuck


class WsConnection:
    """One accepted WebSocket: what the driver needs of a connection (conn_id, transport,
    remote, local, write, close)."""

    def __init__(self, driver: Driver, websocket: Any, transport: str) -> None:
        self.driver = driver
        self.websocket = websocket
        self.transport = transport  # "ws" or "wss"
        self.conn_id = driver.new_conn_id(transport)
        client = websocket.client
        self.remote: tuple[str, int] = (client.host, int(client.port)) if client else ("", 0)
        server = websocket.scope.get("server") or ("", 0)
        self.local: tuple[str, int] = (str(server[0]), int(server[1] or 0))
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._closing = False

    def write(self, data: bytes) -> None:
        if self._closing:
            return
        if self._out.qsize() >= MAX_QUEUE:
            log.info("closing %s from %s: %d messages not sent", self.conn_id, self.remote, MAX_QUEUE)
            self.close()
            return
        self._out.put_nowait(data)

    def close(self) -> None:
        if not self._closing:
            self._closing = True
            self._out.put_nowait(None)

    async def _writer(self) -> None:
        ws = self.websocket
        while True:
            data = await self._out.get()
            if data is None:
                break
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                await ws.send_bytes(data)  # RFC 7118 §5.1: binary frames for non-UTF-8 messages
            else:
                await ws.send_text(text)
        await ws.close(code=1000)

    async def serve(self) -> None:
        """Read messages until the socket closes; the driver hears of the close right away."""
        ws = self.websocket
        driver = self.driver
        source = Source(self.transport, self.remote, self.local, self.conn_id)
        writer = asyncio.get_running_loop().create_task(self._writer())
        driver.connection_made(self)
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("bytes")
                if data is None:
                    text = message.get("text")
                    if text is None:
                        continue
                    data = text.encode("utf-8")
                if len(data) > driver.max_message:
                    log.info("closing %s from %s: a message of %d bytes", self.conn_id, self.remote, len(data))
                    break
                if not data.strip():
                    continue  # a CRLF keep-alive
                driver.receive(data, source)
        except Exception as exc:  # a reset connection surfaces as various errors
            log.debug("%s from %s: %s", self.conn_id, self.remote, exc)
        finally:
            self._closing = True
            driver.connection_lost(self)
            writer.cancel()
            try:
                await writer
            except (asyncio.CancelledError, Exception):
                pass


def sip_websocket_endpoint(driver: Driver, transport: str) -> Any:
    """The ASGI WebSocket endpoint for `/sip` (Starlette's `WebSocket` is passed in)."""

    async def endpoint(websocket: Any) -> None:
        offered = websocket.scope.get("subprotocols") or []
        if SUBPROTOCOL not in offered:
            # RFC 7118 §4.1: the client must ask for "sip"; refuse the handshake otherwise
            await websocket.close(code=1002)
            return
        await websocket.accept(subprotocol=SUBPROTOCOL)
        await WsConnection(driver, websocket, transport).serve()

    return endpoint
