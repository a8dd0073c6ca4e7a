"""Browser endpoints for presence (server-sent events) and voicemail, with TestClient and the
login dependency overridden; the presence side is the real core (sans-IO test bed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient

from onenumber.api.presence_voicemail import PresenceHub, PresenceVoicemail, build_router
from onenumber.media.wav import write_wav
from onenumber.routing.presence import Presence
from onenumber.services.subscriptions import WatchSettings
from onenumber.services.voicemail.store import MemoryMessageStore, VoicemailMessage
from tests.services.sipnet import Net, make_account

from .conftest import ALICE_PW, BOB_PW, Api, login


def logged_in() -> str:  # the real login comes with the portal; tests override it
    raise HTTPException(401, detail="not logged in")


@pytest.fixture
def office(tmp_path: Path) -> Iterator[tuple[FastAPI, Net, MemoryMessageStore, list[str]]]:
    alice, a_devs = make_account("1000", "Alice", 2)
    bob, b_devs = make_account("1001", "Bob", 1)
    carol, c_devs = make_account("1002", "Carol", 1)
    net = Net([alice, bob, carol], a_devs + b_devs + c_devs)
    messages = MemoryMessageStore()
    for mid, box, at, heard in (("m1", "1000", 10.0, False), ("m2", "1000", 20.0, True), ("x1", "1001", 5.0, False)):
        path = tmp_path / f"{mid}.wav"
        write_wav(path, b"\x10\x00" * 800)
        messages.messages[mid] = VoicemailMessage(mid, box, "1002", "Carol", at, str(path), 0.1, heard=heard,
                                                  complete=True)
    changed: list[str] = []

    async def on_change(box: str) -> None:
        changed.append(box)

    app = FastAPI()
    assert net.core.presence is not None
    hub = PresenceHub(net.directory, net.core.presence)
    app.state.presence_voicemail = PresenceVoicemail(hub, messages, on_change, keepalive=0.2)
    app.include_router(build_router(logged_in))
    app.dependency_overrides[logged_in] = lambda: "1000"
    yield app, net, messages, changed


def test_nobody_logged_in_is_401(office: tuple) -> None:
    app, *_ = office
    app.dependency_overrides.clear()
    assert TestClient(app).get("/api/me/voicemail").status_code == 401


def test_list_play_mark_heard_delete(office: tuple) -> None:
    app, _net, messages, changed = office
    client = TestClient(app)
    body = client.get("/api/me/voicemail").json()
    assert (body["new"], body["saved"]) == (1, 1)
    assert [m["id"] for m in body["messages"]] == ["m1", "m2"]  # only 1000's box
    assert body["messages"][0]["audio"] == "/api/me/voicemail/m1/audio"
    audio = client.get("/api/me/voicemail/m1/audio")
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert audio.content[:4] == b"RIFF" and len(audio.content) == 44 + 1600
    assert client.get("/api/me/voicemail/x1/audio").status_code == 404  # Bob's message
    assert client.post("/api/me/voicemail/x1/heard").status_code == 404
    heard = client.post("/api/me/voicemail/m1/heard").json()
    assert heard["heard"] is True and changed == ["1000"]
    assert client.get("/api/me/voicemail").json()["new"] == 0
    path = Path(messages.messages["m2"].path)
    assert client.delete("/api/me/voicemail/m2").status_code == 204
    assert not path.exists() and changed == ["1000", "1000"]
    assert client.delete("/api/me/voicemail/m2").status_code == 404
    assert client.delete("/api/me/voicemail/x1").status_code == 404 and "x1" in messages.messages
    assert [m["id"] for m in client.get("/api/me/voicemail").json()["messages"]] == ["m1"]


def _events(lines: Iterator[str], want: int) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event is not None:
            out.append((event, json.loads(line[6:])))
            event = None
            if len(out) >= want:
                return out
    return out


def test_presence_stream_pushes_colleagues_changes(office: tuple) -> None:
    app, net, _messages, _changed = office
    with TestClient(app) as client, client.stream("GET", "/api/presence/stream") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        (snap, snapshot), (mwi, counts) = _events(lines, 2)
        assert snap == "snapshot" and [(s["account"], s["state"]) for s in snapshot] == [
            ("1001", "offline"), ("1002", "offline")]
        assert mwi == "mwi" and counts == {"account": "1000", "new": 1, "saved": 1}
        bob = net.directory.devices("1001")[0]

        def register_bob() -> None:  # in the app's loop, as the SIP side runs in the server
            net.bind(bob, 31050)
            net.drain()
            net.advance(0.0)

        client.portal.call(register_bob)  # type: ignore[union-attr]
        ((kind, data),) = _events(lines, 1)
        assert (kind, data) == ("presence", {"account": "1001", "name": "Bob", "state": "available"})
        hub: PresenceHub = app.state.presence_voicemail.hub
        client.portal.call(hub.mailbox_changed, "1000", 2, 1)  # type: ignore[union-attr]
        assert _events(lines, 1) == [("mwi", {"account": "1000", "new": 2, "saved": 1})]
        client.portal.call(hub.presence_changed, "1001", Presence.AVAILABLE)  # type: ignore[union-attr]
        client.portal.call(hub.presence_changed, "1002", Presence.RINGING)  # type: ignore[union-attr]
        assert _events(lines, 1) == [("presence", {"account": "1002", "name": "Carol", "state": "ringing"})]


def test_presence_stream_obeys_the_watch_rule(office: tuple) -> None:
    app, net, _messages, _changed = office
    net.core.presence.watch = WatchSettings(rule="listed", allowed=frozenset({("1000", "1002")}))
    with TestClient(app) as client, client.stream("GET", "/api/presence/stream") as r:
        lines = r.iter_lines()
        ((_, snapshot), _) = _events(lines, 2)
        assert [s["account"] for s in snapshot] == ["1002"]
        hub: PresenceHub = app.state.presence_voicemail.hub
        client.portal.call(hub.presence_changed, "1001", Presence.RINGING)  # type: ignore[union-attr]
        client.portal.call(hub.presence_changed, "1002", Presence.IN_USE)  # type: ignore[union-attr]
        assert _events(lines, 1) == [("presence", {"account": "1002", "name": "Carol", "state": "in-use"})]


async def test_mounted_behind_the_real_login(api: Api, tmp_path: Path) -> None:
    """create_app mounts the endpoints for the logged-in user's own box: no login is 401, an
    admin (no account) 404, another box's message 404, and the other user sees only theirs."""
    messages = MemoryMessageStore()
    for mid, box in (("a1", "1000"), ("b1", "1001")):
        path = tmp_path / f"{mid}.wav"
        write_wav(path, b"\x10\x00" * 800)
        messages.messages[mid] = VoicemailMessage(mid, box, "1002", "Carol", 1.0, str(path), 0.1, complete=True)
    api.app.state.presence_voicemail = PresenceVoicemail(PresenceHub(api.directory, None), messages)
    async with api.client() as anon:
        r = await anon.get("/api/me/voicemail")
        assert r.status_code == 401 and r.json()["error"] == "not_logged_in"
    async with api.client() as alice:
        assert (await login(alice, "1000", ALICE_PW)).status_code == 200
        box = (await alice.get("/api/me/voicemail")).json()
        assert box["account"] == "1000" and [m["id"] for m in box["messages"]] == ["a1"] and box["new"] == 1
        assert (await alice.get("/api/me/voicemail/a1/audio")).status_code == 200
        assert (await alice.get("/api/me/voicemail/b1/audio")).status_code == 404
        assert (await alice.get("/api/me/voicemail?account=1001")).json()["account"] == "1000"  # no placeholder
        assert (await alice.get("/api/presence/stream")).status_code == 503  # no presence service here
    async with api.client() as bob:
        assert (await login(bob, "1001", BOB_PW)).status_code == 200
        assert [m["id"] for m in (await bob.get("/api/me/voicemail")).json()["messages"]] == ["b1"]
    async with api.client(headers={"Authorization": f"Bearer {api.admin_token}"}) as admin:
        assert (await admin.get("/api/me/voicemail")).status_code == 404
