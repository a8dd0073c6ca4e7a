"""The admin ops router (api/ops.py): CSV import/export, rotation, provisioning links and QR codes.

The admin dependency is injected: these tests mount the router on a bare app with a stand-in
dependency and override it, as the merger will with the real `require_admin`; the app's own
mount (loopback only for now) is checked too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI, HTTPException

from onenumber.api.auth import require_admin as require_admin_login
from onenumber.api.ops import build_ops_router
from onenumber.api.provision import build_provision_router
from onenumber.store import Store

from .conftest import OpsApi as Api
from .conftest import open_api


def require_admin() -> None:
    raise HTTPException(401, detail="log in as an admin")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from open_api(tmp_path)


@pytest.fixture
def bare(tmp_path: Path) -> Iterator[Api]:
    app = FastAPI()
    app.include_router(build_ops_router(require_admin))
    app.include_router(build_provision_router())
    yield from open_api(tmp_path, app)


async def seed(store: Store) -> None:
    await store.admin.add_account("1000", "Alice", ["+3225550100"])
    await store.admin.add_device("1000", "deskphone", label="T54W")
    await store.admin.add_device("1000", "mobile", ring_order=2)


def test_the_injected_admin_dependency_guards_every_endpoint(bare: Api) -> None:
    bare.run(seed)
    c = bare.client
    assert c.get("/api/export").status_code == 401
    assert c.post("/api/import", content=b"number,name\n").status_code == 401
    assert c.post("/api/accounts/1000/devices/0/rotate").status_code == 401
    assert c.post("/api/accounts/1000/devices/0/provisioning").status_code == 401
    bare.app.dependency_overrides[require_admin] = lambda: None
    assert c.get("/api/export").status_code == 200


def test_app_mounts_the_router_behind_the_admin_login(tmp_path: Path) -> None:
    for api in open_api(tmp_path, host="192.0.2.7", admin=False):
        assert api.client.get("/api/export").status_code == 401
        api.app.dependency_overrides[require_admin_login] = lambda: None
        assert api.client.get("/api/export").status_code == 200


def test_export_import_round_trip_and_noop(api: Api) -> None:
    api.run(seed)
    c = api.client
    r = c.get("/api/export")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    text = r.text
    assert text.startswith("number,name,dids,") and "secret" not in text
    rows = c.get("/api/export", params={"format": "json"}).json()
    assert [(row["number"], row["position"], row["auth_username"]) for row in rows] == [
        ("1000", 0, "1000"), ("1000", 1, "1000_2")]
    revision = api.run(lambda s: s.revision())
    r = c.post("/api/import", content=text.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 200 and r.json()["changed"] is False
    assert r.json()["devices"] == {"created": 0, "updated": 0, "unchanged": 2, "removed": 0}
    assert api.run(lambda s: s.revision()) == revision
    more = text + "1001,Bob,,ordered,10,30,,,,everywhere,no,,,0,softphone,,1,yes,no,yes,,\n"
    r = c.post("/api/import", content=more.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accounts"]["created"] == 1 and body["new_devices"] == [
        {"account": "1001", "position": 0, "auth_username": "1001", "url": None, "link_expires_at": None}]
    # with links=true each new device gets its one-time provisioning link in the same transaction
    more += "1002,Carol,,ordered,10,30,,,,everywhere,no,,,0,deskphone,,1,yes,no,yes,,\n"
    r = api.client.post("/api/import", params={"links": "true"}, content=more.encode(),
                        headers={"content-type": "text/csv"})
    (new,) = r.json()["new_devices"]
    assert new["auth_username"] == "1002" and new["url"].startswith("http://testserver/provision/")
    got = api.client.get(new["url"].removeprefix("http://testserver"), params={"format": "json"})
    assert got.status_code == 200 and got.json()["auth_username"] == "1002"


def test_import_errors_are_422_with_line_and_column_and_change_nothing(api: Api) -> None:
    api.run(seed)
    before = api.client.get("/api/export").text
    bad = before + "1001,Bob,,sideways,,,,,,,,,,,,,,,,,,\n"
    r = api.client.post("/api/import", content=bad.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"line": 4, "column": "ring_mode",
         "message": "ring mode 'sideways' is not known; use one of ordered, exclusive"}]
    assert "line 4, column ring_mode" in r.json()["detail"]
    assert api.client.get("/api/export").text == before
    r = api.client.post("/api/import", content=b"\xff\xfe", headers={"content-type": "text/csv"})
    assert r.status_code == 422 and "UTF-8" in r.json()["detail"]


def test_rotate_keeps_the_old_secret_for_the_window(api: Api) -> None:
    api.run(seed)
    old = api.run(lambda s: s.admin.get_device("1000", 1))
    r = api.client.post("/api/accounts/1000/devices/1/rotate", json={"overlap_hours": 2})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "secret" not in body["device"] and body["previous_secret_valid_until"] is not None
    new = api.run(lambda s: s.admin.get_device("1000", 1))
    assert new.secret != old.secret and new.previous_secret == old.secret
    assert new.previous_secret_until is not None
    assert abs(new.previous_secret_until - body["previous_secret_valid_until"]) < 1
    r = api.client.post("/api/accounts/1000/devices/1/rotate", json={"overlap_hours": 0})
    assert r.json()["previous_secret_valid_until"] is None  # revoked at once
    assert api.client.post("/api/accounts/1000/devices/5/rotate").status_code == 404
    assert api.client.post("/api/accounts/1000/devices/9/rotate").status_code == 422
    r = api.client.post("/api/accounts/1000/devices/0/rotate", json={"overlap_hours": -1})
    assert r.status_code == 422 and "overlap_hours" in r.text


def test_provisioning_link_json_and_qr_images(api: Api) -> None:
    api.run(seed)
    before = api.run(lambda s: s.admin.get_device("1000", 0)).secret
    r = api.client.post("/api/accounts/1000/devices/0/provisioning", json={"base_url": "https://pbx.example.com:8443"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["url"].startswith("https://pbx.example.com:8443/provision/") and body["rotated"] is False
    assert body["qr_svg"].startswith("<svg") and body["qr_png_data_uri"].startswith("data:image/png;base64,")
    assert api.run(lambda s: s.admin.get_device("1000", 0)).secret == before  # nothing rotated
    token = body["url"].rsplit("/", 1)[1]
    assert len(token) >= 22  # 128 bits or more
    svg = api.client.post("/api/accounts/1000/devices/0/provisioning", params={"format": "svg"})
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content
    png = api.client.post("/api/accounts/1000/devices/0/provisioning", params={"format": "png"})
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    # the default base is the API's own address; rotate on request
    r = api.client.post("/api/accounts/1000/devices/0/provisioning", json={"rotate": True})
    assert r.json()["url"].startswith("http://testserver/provision/") and r.json()["rotated"] is True
    assert api.run(lambda s: s.admin.get_device("1000", 0)).secret != before
    bad = api.client.post("/api/accounts/1000/devices/0/provisioning", json={"base_url": "ftp://x"})
    assert bad.status_code == 422 and "base_url" in bad.json()["detail"]
    assert api.client.post("/api/accounts/4242/devices/0/provisioning").status_code == 404


def test_openapi_lists_the_operations(api: Api) -> None:
    paths = api.client.get("/api/openapi.json").json()["paths"]
    for path in ("/api/export", "/api/import", "/api/accounts/{number}/devices/{position}/rotate",
                 "/api/accounts/{number}/devices/{position}/provisioning", "/provision/{token}"):
        assert path in paths
