"""REGISTER through the real stack and application, sans-IO: auth, policy, bindings."""

from __future__ import annotations

import itertools
from dataclasses import replace

from onenumber.settings import Settings
from onenumber.sip.message import Response, parse

from .sipnet import Net, answer_auth, make_account, responses_to

PHONE = ("127.0.0.1", 33000)
_n = itertools.count(1)


def register(aor: str, *, contact: str | None = "sip:x@127.0.0.1:33000", expires: str | None = "300",
             auth: str | None = None, call_id: str = "reg-1", cseq: int = 1, extra: str = "",
             src: tuple[str, int] = PHONE) -> bytes:
    lines = [
        "REGISTER sip:127.0.0.1:25060 SIP/2.0",
        f"Via: SIP/2.0/UDP {src[0]}:{src[1]};branch=z9hG4bKr{next(_n)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{aor}@127.0.0.1>;tag=f1",
        f"To: <sip:{aor}@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
    ]
    if contact:
        lines.append(f"Contact: {contact if contact == '*' else '<' + contact + '>' + extra}")
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if auth:
        lines.append(f"Authorization: {auth}")
    lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def do_register(net: Net, aor: str, user: str, password: str, src: tuple[str, int] = PHONE, **kw: object) -> Response:
    first = responses_to(net.send(register(aor, src=src, **kw), src), src[1])[-1]  # type: ignore[arg-type]
    if first.status != 401:
        return first
    req = parse(register(aor, src=src, **kw))  # type: ignore[arg-type]
    auth = answer_auth(first, req, user, password)  # type: ignore[arg-type]
    cseq = int(kw.pop("cseq", 1)) + 1  # type: ignore[call-overload]
    return responses_to(net.send(register(aor, auth=auth, cseq=cseq, src=src, **kw), src), src[1])[-1]  # type: ignore[arg-type]


def setup(**settings: object) -> tuple[Net, list]:
    alice, devs = make_account("1000", "Alice", 2)
    bob, bob_devs = make_account("1001", "Bob", 1)
    return Net([alice, bob], devs + bob_devs, settings=Settings(**settings)), devs + bob_devs  # type: ignore[arg-type]


def test_two_devices_of_one_account_register_and_200_lists_bindings() -> None:
    net, devs = setup()
    r = do_register(net, "1000", "1000", devs[0].secret, contact="sip:a@127.0.0.1:33000")
    assert r.status == 200
    r = do_register(net, "1000", "1000_2", devs[1].secret, contact="sip:b@127.0.0.1:33002", call_id="reg-2")
    assert r.status == 200
    contacts = r.headers.get_all("contact")
    assert len(contacts) == 2 and all("expires=" in c for c in contacts)
    assert {b.auth_username for b in net.location.get("1000")} == {"1000", "1000_2"}


def test_challenge_is_md5_first_with_qop_and_same_for_unknown_users() -> None:
    net, _ = setup()
    known = responses_to(net.send(register("1000"), PHONE), PHONE[1])[0]
    unknown = responses_to(net.send(register("9999"), PHONE), PHONE[1])[0]
    assert known.status == unknown.status == 401
    ch = known.headers.get_all("www-authenticate")
    assert "algorithm=MD5" in ch[0] and 'qop="auth"' in ch[0] and "SHA-256" in ch[1]
    strip = lambda r: [v.split("nonce=")[0] for v in r.headers.get_all("www-authenticate")]  # noqa: E731
    assert strip(known) == strip(unknown)


def test_wrong_password_rechallenged_then_403_when_throttled() -> None:
    net, devs = setup(auth_max_failures=3)
    statuses = [do_register(net, "1000", "1000", "wrong").status for _ in range(3)]
    assert statuses == [401, 401, 403]
    assert do_register(net, "1000", "1000", devs[0].secret).status == 403  # blocked for a while
    net.now += 31
    assert do_register(net, "1000", "1000", devs[0].secret).status == 200


def test_credentials_of_one_account_cannot_register_another() -> None:
    net, devs = setup()
    assert do_register(net, "1001", "1000_2", devs[1].secret).status == 403


def test_untrusted_network_and_expired_credentials_refused() -> None:
    net, devs = setup(trusted_networks=("127.0.0.1/32",))
    outside = ("127.0.0.2", 33010)
    r = do_register(net, "1000", "1000", devs[0].secret, src=outside)
    assert r.status == 403 and "network" in r.reason
    net.directory.devices_by_auth["1000"] = replace(devs[0], internet=True)
    assert do_register(net, "1000", "1000", devs[0].secret, src=outside).status == 200
    net.directory.devices_by_auth["1000_2"] = replace(devs[1], credential_expires_at=net.now - 1)
    r = do_register(net, "1000", "1000_2", devs[1].secret)
    assert (r.status, r.reason) == (403, "Credentials expired")


def test_interval_too_brief_and_removal_and_fetch() -> None:
    net, devs = setup()
    r = do_register(net, "1000", "1000", devs[0].secret, expires="10")
    assert r.status == 423 and r.headers.get("min-expires") == "60"
    assert do_register(net, "1000", "1000", devs[0].secret).status == 200
    assert do_register(net, "1000", "1000_2", devs[1].secret, contact="sip:b@127.0.0.1:1", call_id="c2").status == 200
    fetch = do_register(net, "1000", "1000", devs[0].secret, contact=None, call_id="c3")
    assert fetch.status == 200 and len(fetch.headers.get_all("contact")) == 2
    star = do_register(net, "1000", "1000", devs[0].secret, contact="*", expires="0", call_id="c4")
    assert star.status == 200
    assert [b.auth_username for b in net.location.get("1000")] == ["1000_2"]  # only its own bindings


def test_same_instance_replaces_binding() -> None:
    net, devs = setup()
    inst = ';+sip.instance="<urn:uuid:00000000-0000-0000-0000-000000000001>";reg-id=1'
    do_register(net, "1000", "1000", devs[0].secret, contact="sip:a@127.0.0.1:40000", extra=inst)
    r = do_register(net, "1000", "1000", devs[0].secret, contact="sip:a@127.0.0.1:40002", extra=inst, call_id="n")
    assert r.status == 200
    (b,) = net.location.get("1000")
    assert b.contact == "sip:a@127.0.0.1:40002" and b.instance and b.reg_id == 1


def test_expired_bindings_removed_and_flow_close_drops_tcp_bindings() -> None:
    net, devs = setup()
    do_register(net, "1000", "1000", devs[0].secret, expires="60")
    net.now += 61
    assert net.location.expire(net.now) == 1 and not net.location.get("1000")
    net.bind(devs[1], 34000, transport="tcp", flow="tcp-7")
    net.router.on_flow_closed("tcp-7", net.now)
    assert not net.location.get("1000")


def test_options_and_unknown_method_and_bad_extension() -> None:
    net, _ = setup()
    base = register("1000").decode()
    opts = base.replace("REGISTER sip", "OPTIONS sip", 1).replace("1 REGISTER", "1 OPTIONS")
    (r,) = responses_to(net.send(opts.encode(), PHONE), PHONE[1])
    assert r.status == 200 and r.headers.get("allow") and r.headers.get("accept") and r.headers.get("supported")
    foo = base.replace("REGISTER sip", "FOO sip", 1).replace("1 REGISTER", "1 FOO")
    assert responses_to(net.send(foo.encode(), PHONE), PHONE[1])[0].status == 501
    fresh = register("1000").decode().replace("REGISTER sip", "OPTIONS sip", 1).replace("1 REGISTER", "1 OPTIONS")
    req = fresh.replace("Max-Forwards: 70", "Max-Forwards: 70\r\nRequire: nosuchthing")
    r = responses_to(net.send(req.encode(), PHONE), PHONE[1])[0]
    assert r.status == 420 and r.headers.get("unsupported") == "nosuchthing"


def test_garbage_is_dropped_and_bad_request_gets_400() -> None:
    net, _ = setup()
    assert net.send(b"\x00\x01garbage", PHONE) == []
    bad = register("1000").decode().replace("CSeq: 1 REGISTER", "CSeq: 1 INVITE")
    (r,) = responses_to(net.send(bad.encode(), PHONE), PHONE[1])
    assert r.status == 400


def test_phones_that_know_only_md5_get_only_the_md5_challenge() -> None:
    net, devs = setup()
    ua = "Max-Forwards: 70\r\nUser-Agent: baresip v1.0.0 (x86_64/linux)"
    req = register("1000").decode().replace("Max-Forwards: 70", ua)
    (r,) = responses_to(net.send(req.encode(), PHONE), PHONE[1])
    (ch,) = r.headers.get_all("www-authenticate")
    assert "MD5" in ch
    auth = answer_auth(r, parse(req.encode()), "1000", devs[0].secret)  # type: ignore[arg-type]
    again = register("1000", auth=auth, cseq=2).decode().replace("Max-Forwards: 70", ua)
    assert responses_to(net.send(again.encode(), PHONE), PHONE[1])[-1].status == 200


def _reload(net: Net, settings: Settings) -> None:
    """What the server does when the store's revision moves (a CLI write)."""
    snap = net.directory.snapshot
    net.directory._install(replace(snap, settings=settings, revision=snap.revision + 1))
    for listener in net.directory.listeners:
        listener(net.directory)


def test_a_configuration_reload_keeps_digest_replay_protection() -> None:
    net, devs = setup()
    first = responses_to(net.send(register("1000"), PHONE), PHONE[1])[0]
    auth = answer_auth(first, parse(register("1000")), "1000", devs[0].secret)  # type: ignore[arg-type]
    assert responses_to(net.send(register("1000", auth=auth, cseq=2), PHONE), PHONE[1])[-1].status == 200
    _reload(net, Settings(min_expires=30))  # an unrelated setting changes
    replayed = responses_to(net.send(register("1000", auth=auth, cseq=3), PHONE), PHONE[1])[-1]
    assert replayed.status == 401  # the same nonce and nc again: refused, not forgotten


def test_a_changed_domain_stops_being_served() -> None:
    net, _ = setup()
    _reload(net, Settings(domain="old.example.com"))
    assert net.core.local.is_local("old.example.com")
    _reload(net, Settings(domain="new.example.com"))
    assert net.core.local.is_local("new.example.com") and not net.core.local.is_local("old.example.com")


def test_a_guessed_username_does_not_lock_out_other_devices_behind_the_same_address() -> None:
    """Regression (issue 6 §4): the block used to cover every device at the address."""
    net, devs = setup(auth_max_failures=3)
    statuses = [do_register(net, "1000", "1000", "guess", call_id=f"g{i}").status for i in range(4)]
    assert statuses[:3] == [401, 401, 403] and statuses[3] == 403
    assert do_register(net, "1000", "1000", devs[0].secret, call_id="g-right").status == 403  # that pair waits
    bob = devs[2]
    assert do_register(net, "1001", "1001", bob.secret, call_id="bob").status == 200  # same address, own creds


def test_failures_across_many_usernames_block_the_address() -> None:
    net, devs = setup(auth_max_failures=5, auth_max_usernames=3)
    for i, user in enumerate(("2000", "2001", "2002")):
        do_register(net, user, user, "guess", call_id=f"s{i}")
    assert do_register(net, "1001", "1001", devs[2].secret, call_id="after-scan").status == 403
    elsewhere = ("127.0.0.5", 33020)
    assert do_register(net, "1001", "1001", devs[2].secret, src=elsewhere, call_id="other-address").status == 200


def test_failed_logins_shared_between_workers_block_at_the_same_try_and_success_is_quiet() -> None:
    """Two workers (two cores over one directory) told of each other's logins, as
    transport/cluster.py does through Redis: tries alternating between them still get 403 on
    the 3rd, and a clean login shares nothing."""
    alice, devs = make_account("1000", "Alice", 1)
    workers = [Net([alice], devs, settings=Settings(auth_max_failures=3)) for _ in range(2)]
    shared: list[tuple[int, bool]] = []
    for i, net in enumerate(workers):
        other = workers[1 - i]

        def tell(failed: bool, address: str, username: str, now: float, i: int = i, other: Net = other) -> None:
            shared.append((i, failed))
            throttle = other.core.gate.throttle
            (throttle.record_failure if failed else throttle.record_success)(address, username, now)

        net.core.gate.on_login = tell
    assert do_register(workers[1], "1000", "1000", devs[0].secret).status == 200
    assert shared == []  # no failures to clear: nothing to tell
    statuses = [do_register(workers[n % 2], "1000", "1000", "wrong", call_id=f"w{n}").status for n in range(3)]
    assert statuses == [401, 401, 403]
    assert shared == [(0, True), (1, True), (0, True)]
    for net in workers:
        assert do_register(net, "1000", "1000", devs[0].secret, call_id="ok").status == 403


def test_a_change_of_trusted_networks_holds_for_an_address_already_seen() -> None:
    """The gate remembers each address's answer; a new trusted_networks list starts afresh."""
    net, devs = setup(trusted_networks=("127.0.0.1/32",))
    outside = ("127.0.0.2", 33010)
    assert do_register(net, "1000", "1000", devs[0].secret, src=outside).status == 403
    _reload(net, Settings(trusted_networks=("127.0.0.0/8",)))
    assert do_register(net, "1000", "1000", devs[0].secret, src=outside, call_id="reg-2").status == 200
    _reload(net, Settings(trusted_networks=("127.0.0.1/32",)))
    assert do_register(net, "1000", "1000", devs[0].secret, src=outside, call_id="reg-3").status == 403
