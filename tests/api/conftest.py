"""API fixtures: the real app (or a bare one with the ops router) on a fresh SQLite store,
opened on the TestClient's own event loop (the async engine belongs to the loop it runs on)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from onenumber.api.app import create_app
from onenumber.api.provision import SipEndpoint
from onenumber.services.directory import Directory
from onenumber.services.location import Location
from onenumber.settings import Settings
from onenumber.store import Snapshot, Store

T = TypeVar("T")
SIP = SipEndpoint(server="127.0.0.1", sip_port=25060, http_port=28080, websocket="ws", realm="onenumber")


@dataclass
class Api:
    client: TestClient
    store: Store
    app: FastAPI

    def run(self, make: Callable[[Store], Awaitable[T]]) -> T:
        """Run `make(store)` on the client's event loop (where the store's engine lives)."""

        async def call() -> T:
            return await make(self.store)

        return self.client.portal.call(call)  # type: ignore[union-attr]


def open_api(tmp_path: Path, app: FastAPI | None = None, host: str = "127.0.0.1") -> Iterator[Api]:
    directory = Directory(Snapshot((), (), Settings(), (), 0))
    app = app or create_app(store=None, directory=directory, location=Location(None), sip=SIP)  # type: ignore[arg-type]
    app.state.directory = directory
    app.state.sip = SIP
    with TestClient(app, client=(host, 40000)) as client:
        url = f"sqlite:///{tmp_path / 'api.sqlite3'}"
        store: Any = client.portal.call(Store.open, url)  # type: ignore[union-attr]
        app.state.store = store
        try:
            yield Api(client, store, app)
        finally:
            client.portal.call(store.close)  # type: ignore[union-attr]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from open_api(tmp_path)
