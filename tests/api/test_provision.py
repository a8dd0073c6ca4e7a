"""The public provisioning endpoint: settings once (JSON or a labelled form), then 410."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from onenumber.store import Store
from onenumber.store.provisioning import create_link

from .conftest import SIP, open_api
from .conftest import OpsApi as Api


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from open_api(tmp_path)


async def seed(store: Store) -> str:
    await store.admin.add_account("1000", "Alice")
    await store.admin.add_device("1000", "deskphone")
    await store.admin.add_device("1000", "softphone", label="Laptop")
    return (await create_link(store, "1000", 1)).token


def test_json_settings_once_then_410(api: Api) -> None:
    token = api.run(seed)
    device = api.run(lambda s: s.admin.get_device("1000", 1))
    assert api.client.head(f"/provision/{token}").status_code == 200  # a preview does not spend it
    r = api.client.get(f"/provision/{token}", headers={"accept": "application/json"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["number"] == "1000" and body["display_name"] == "Alice"
    assert body["auth_username"] == "1000_2" and body["secret"] == device.secret
    assert body["server"] == SIP.server and body["domain"] == SIP.server and body["realm"] == "onenumber"
    assert body["ports"] == {"udp": 25060, "tcp": 25060, "ws": 28080}
    assert body["websocket"] == {"path": "/sip", "url": "ws://127.0.0.1:28080/sip"}
    assert body["aor"] == "sip:1000@127.0.0.1" and body["device"]["label"] == "Laptop"
    again = api.client.get(f"/provision/{token}", params={"format": "json"})
    assert again.status_code == 410 and "already used" in again.json()["detail"]
    assert api.client.head(f"/provision/{token}").status_code == 410
    page = api.client.get(f"/provision/{token}")
    assert page.status_code == 410 and "already used" in page.text and page.headers["content-type"].startswith(
        "text/html")


def test_html_form_has_labelled_fields(api: Api) -> None:
    token = api.run(seed)
    secret = api.run(lambda s: s.admin.get_device("1000", 1)).secret
    r = api.client.get(f"/provision/{token}", headers={"accept": "text/html,application/json;q=0.9"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    for field, label in (("auth_username", "Authentication user"), ("secret", "Password"),
                         ("server", "SIP server / outbound proxy"), ("port_udp", "UDP port")):
        assert f'<label for="{field}">{label}</label>' in page
    assert f'id="secret" name="secret" value="{secret}" readonly' in page
    assert 'value="1000_2"' in page


def test_the_secret_handed_out_is_the_current_one(api: Api) -> None:
    token = api.run(seed)
    rotated = api.run(lambda s: s.admin.rotate_secret("1000", 1))  # after the link was made
    body = api.client.get(f"/provision/{token}", params={"format": "json"}).json()
    assert body["secret"] == rotated.secret


def test_expired_unknown_and_replaced_links(api: Api) -> None:
    token = api.run(seed)
    newer = api.run(lambda s: create_link(s, "1000", 1))  # a new link replaces the earlier one
    assert api.client.get(f"/provision/{token}", params={"format": "json"}).status_code == 404
    past = api.run(lambda s: create_link(s, "1000", 0, hours=0.001, now=time.time() - 10))
    r = api.client.get(f"/provision/{past.token}", params={"format": "json"})
    assert r.status_code == 410 and "expired" in r.json()["detail"]
    page = api.client.get(f"/provision/{past.token}")
    assert page.status_code == 410 and "expired" in page.text
    assert api.client.get("/provision/not-a-token!", params={"format": "json"}).status_code == 404
    assert api.client.get("/provision/" + "A" * 43, params={"format": "json"}).status_code == 404
    assert api.client.get(f"/provision/{newer.token}", params={"format": "json"}).status_code == 200



def test_the_link_is_public_while_the_admin_api_is_not(tmp_path: Path) -> None:
    for api in open_api(tmp_path, host="192.0.2.7", admin=False):  # a phone on the LAN, no login
        token = api.run(seed)
        assert api.client.get(f"/provision/{token}", params={"format": "json"}).status_code == 200
        assert api.client.post("/api/accounts/1000/devices/0/provisioning").status_code == 401
