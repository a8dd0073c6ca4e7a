"""Web phone session credentials: the gate accepts a session password for its device while the
session is granted, besides the device's own secret; revoking it refuses it at once (sans-IO)."""

from __future__ import annotations

from onenumber.services.webcreds import SessionCredentials

from .sipnet import Net
from .test_registrar_app import do_register, setup


def with_creds() -> tuple[Net, list, SessionCredentials]:
    net, devs = setup(auth_max_failures=10)
    creds = SessionCredentials(b"s" * 32)
    net.core.gate.session_credentials = creds
    return net, devs, creds


def test_session_password_registers_while_granted_only() -> None:
    net, devs, creds = with_creds()
    web = devs[1]
    password = creds.grant("session-a", "1000", web.auth_username)
    assert password != web.secret and len(password) >= 20
    r = do_register(net, "1000", web.auth_username, password, contact="sip:w@abc.invalid;transport=ws")
    assert r.status == 200
    assert [b.auth_username for b in net.location.get("1000")] == [web.auth_username]
    assert creds.revoke("session-a") == [("1000", web.auth_username)]
    assert net.location.drop_device("1000", web.auth_username) == 1
    assert net.location.get("1000") == []
    r = do_register(net, "1000", web.auth_username, password, contact="sip:w@abc.invalid;transport=ws",
                    call_id="reg-2")
    assert r.status == 401  # refused, re-challenged


def test_device_secret_still_works_and_other_devices_take_no_session_password() -> None:
    net, devs, creds = with_creds()
    password = creds.grant("s1", "1000", devs[1].auth_username)
    assert do_register(net, "1000", devs[1].auth_username, devs[1].secret).status == 200
    # a session password is for its own device only
    assert do_register(net, "1000", devs[0].auth_username, password, call_id="reg-3").status == 401


def test_two_sessions_have_their_own_passwords() -> None:
    creds = SessionCredentials(b"s" * 32)
    a = creds.grant("a", "1000", "1000_3")
    b = creds.grant("b", "1000", "1000_3")
    assert a != b and sorted(creds.passwords("1000_3")) == sorted([a, b])
    assert creds.password("a", "1000_3") == a  # derived: the same again for the same session
    creds.revoke("a")
    assert creds.passwords("1000_3") == [b] and creds.sessions() == {"b"}
    assert SessionCredentials(b"t" * 32).password("a", "1000_3") != a  # depends on the server secret
