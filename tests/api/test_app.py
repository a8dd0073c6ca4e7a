"""The HTTP side: health for everyone, live state for this machine only."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from onenumber.api.app import create_app
from onenumber.routing.model import Account, Binding, Device, DeviceKind
from onenumber.services.directory import Directory
from onenumber.services.location import Location
from onenumber.settings import Settings
from onenumber.store import Snapshot


def make_client(host: str) -> TestClient:
    snap = Snapshot((Account("1000", "Alice"),), (Device("1000", 0, DeviceKind.DESKPHONE, "1000", "s"),),
                    Settings(), (), 1)
    location = Location(None)
    location.apply([Binding("1000", "1000", "sip:a@127.0.0.1:5062", time.time() + 60, "udp", ("127.0.0.1", 5062))], [])
    app = create_app(store=None, directory=Directory(snap), location=location)  # type: ignore[arg-type]
    return TestClient(app, client=(host, 40000))


def test_live_bindings_and_ring_plan_from_the_server_itself() -> None:
    client = make_client("127.0.0.1")
    assert client.get("/api/health").json()["bindings"] == 1
    (row,) = client.get("/api/accounts/1000/bindings").json()
    assert row["contact"] == "sip:a@127.0.0.1:5062" and row["expires"] > 50
    plan = client.get("/api/accounts/1000/ring-plan").json()
    assert plan[0]["rings"] is True
    assert client.get("/api/accounts/9999/bindings").status_code == 404


def test_other_hosts_are_refused_live_state() -> None:
    client = make_client("192.0.2.7")
    assert client.get("/api/health").status_code == 200
    r = client.get("/api/accounts/1000/bindings")
    assert r.status_code == 403 and "server itself" in r.json()["detail"]
