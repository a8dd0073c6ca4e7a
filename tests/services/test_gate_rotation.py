"""Credential rotation at the gate, sans-IO: the previous secret works inside the overlap
window only, the current one always; expiry is still a 403 whatever secret is used."""

from __future__ import annotations

from dataclasses import replace

from onenumber.routing.model import Device, DeviceKind
from onenumber.services.gate import lapsed_secret, valid_secrets

from .test_registrar_app import do_register, setup

OLD, NEW = "old-secret-aaaaaaaaaaaa", "new-secret-bbbbbbbbbbbb"


def rotated(device: Device, until: float) -> Device:
    return replace(device, secret=NEW, previous_secret=OLD, previous_secret_until=until)


def test_valid_secrets_is_pure_and_bounded_by_the_window() -> None:
    d = Device("1000", 0, DeviceKind.DESKPHONE, "1000", NEW)
    assert valid_secrets(None, 0) == ()
    assert valid_secrets(d, 100) == (NEW,)
    r = replace(d, previous_secret=OLD, previous_secret_until=100.0)
    assert valid_secrets(r, 99.9) == (NEW, OLD)
    assert valid_secrets(r, 100.0) == (NEW,)  # the window's end is exclusive
    assert valid_secrets(replace(r, previous_secret_until=None), 0) == (NEW,)
    assert lapsed_secret(r, 99.9) is None and lapsed_secret(r, 100.0) == OLD and lapsed_secret(d, 100) is None


def test_old_secret_registers_inside_the_window_and_is_refused_after() -> None:
    net, devs = setup()
    net.directory.devices_by_auth["1000"] = rotated(devs[0], net.now + 60)
    assert do_register(net, "1000", "1000", OLD).status == 200
    assert do_register(net, "1000", "1000", NEW, call_id="new-1").status == 200
    net.now += 61  # the window is over: a clear 403 the phone stops on
    r = do_register(net, "1000", "1000", OLD, call_id="old-2")
    assert (r.status, r.reason) == (403, "Credentials expired (rotated)")
    assert do_register(net, "1000", "1000", NEW, call_id="new-2").status == 200


def test_a_phone_retrying_the_lapsed_secret_is_not_throttled() -> None:
    """Refusals of the old secret count as no failure: once the phone has the new secret
    (same address, same username) it registers at once instead of being blocked."""
    net, devs = setup(auth_max_failures=2)
    net.directory.devices_by_auth["1000"] = rotated(devs[0], net.now - 1)
    for i in range(5):
        assert do_register(net, "1000", "1000", OLD, call_id=f"old-{i}").status == 403
    assert do_register(net, "1000", "1000", NEW, call_id="new").status == 200
    assert do_register(net, "1000", "1000", "wrong", call_id="w").status == 401  # a wrong one still counts


def test_a_wrong_password_still_fails_during_the_window() -> None:
    net, devs = setup()
    net.directory.devices_by_auth["1000"] = rotated(devs[0], net.now + 60)
    assert do_register(net, "1000", "1000", "neither-of-them").status == 401


def test_expired_credentials_are_refused_with_either_secret() -> None:
    net, devs = setup()
    net.directory.devices_by_auth["1000"] = replace(rotated(devs[0], net.now + 60), credential_expires_at=net.now - 1)
    for password, call_id in ((OLD, "a"), (NEW, "b")):
        r = do_register(net, "1000", "1000", password, call_id=call_id)
        assert (r.status, r.reason) == (403, "Credentials expired")
