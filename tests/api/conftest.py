"""API fixtures: a real store (SQLite file, and PostgreSQL where marked), the app over httpx's
ASGI transport on the test's own event loop, accounts 1000 (Alice) and 1001 (Bob) with
passwords, an admin, and an admin API token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from onenumber.api.app import create_app
from onenumber.services.directory import Directory
from onenumber.services.location import Location
from onenumber.services.logins import LoginService
from onenumber.services.webcreds import SessionCredentials
from onenumber.sip.auth import LoginThrottle
from onenumber.store import Store
from onenumber.store import logins as db

ALICE_PW = "alice-password"
BOB_PW = "bob-password"
ADMIN_PW = "admin-password"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Api:
    app: FastAPI
    store: Store
    directory: Directory
    location: Location
    logins: LoginService
    credentials: SessionCredentials
    clock: Clock
    admin_token: str
    client: Callable[..., httpx.AsyncClient]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    store = await Store.open(f"sqlite:///{tmp_path / 'api.sqlite3'}")
    try:
        admin = store.admin
        await admin.add_account("1000", "Alice")
        await admin.add_device("1000", "deskphone", label="Desk")
        await admin.add_device("1000", "mobile", label="Mobile")
        await admin.add_account("1001", "Bob")
        await admin.add_device("1001", "deskphone", label="Bob desk")
        await db.set_account_password(store, "1000", ALICE_PW)
        await db.set_account_password(store, "1001", BOB_PW)
        await db.create_admin(store, "root", ADMIN_PW)
        clock = Clock()
        token, _ = await db.create_api_token(store, "tests", "admin", now=clock.now)
        directory = Directory(await store.snapshot())
        location = Location(None)
        credentials = SessionCredentials(b"secret")
        logins = LoginService(store, clock=clock, throttle=LoginThrottle(max_failures=3, max_usernames=5,
                                                                          block_seconds=30))
        app = create_app(store=store, directory=directory, location=location, logins=logins,
                         credentials=credentials)

        def client(host: str = "127.0.0.1", **kwargs: object) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=(host, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://testserver", **kwargs)  # type: ignore[arg-type]

        yield Api(app, store, directory, location, logins, credentials, clock, token, client)
    finally:
        await store.close()


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/login", json={"username": username, "password": password})
