"""The voicemail settings on the call path: the access number (`voicemail_access`), another
box by access number + box (only with `voicemail_pin`, which is then asked), sans-IO."""

from __future__ import annotations

from dataclasses import replace

from onenumber.services.voicemail.actions import Play
from onenumber.services.voicemail.menu import Menu, MenuSettings
from onenumber.services.voicemail.service import StandaloneVoicemail
from onenumber.sip.message import Response, parse
from onenumber.sip.stack import Source, Stack, Target

from .sipnet import Net, answer_auth, invite, make_account, requests_to, responses_to

VM = 39000


def office() -> tuple[Net, list]:
    alice, devs = make_account("1000", "Alice", 2)
    bob, bob_devs = make_account("1001", "Bob", 1)
    net = Net([alice, bob], devs + bob_devs)
    net.core.proxy.voicemail = Target("udp", "127.0.0.1", VM)
    return net, devs + bob_devs


def dial(net: Net, number: str, device, port: int) -> list:  # type: ignore[no-untyped-def]
    phone = ("127.0.0.1", port)
    req = invite(number, phone, from_user=device.auth_username)
    (challenge,) = responses_to(net.send(req, phone), port)
    auth = answer_auth(challenge, req, device.auth_username, device.secret)
    return net.send(invite(number, phone, from_user=device.auth_username, call_id=req.call_id, auth=auth, cseq=2),
                    phone)


def test_access_number_setting() -> None:
    net, devs = office()
    net.directory.settings = replace(net.directory.settings, voicemail_access="*97")
    (vm,) = requests_to(dial(net, "*97", devs[1], 32000), VM, "INVITE")
    assert vm.uri == f"sip:*97@127.0.0.1:{VM}" and "<sip:1000@" in (vm.headers.get("from") or "")
    out = dial(net, "*98", devs[1], 32002)  # no longer the access number: no trunk, so 404
    assert not requests_to(out, VM) and [r.status for r in responses_to(out, 32002) if r.status >= 200] == [404]


def test_another_box_goes_to_voicemail_with_the_caller_named() -> None:
    net, devs = office()
    bob = devs[2]
    (vm,) = requests_to(dial(net, "*981000", bob, 32004), VM, "INVITE")
    assert vm.uri == f"sip:*981000@127.0.0.1:{VM}" and "<sip:1001@" in (vm.headers.get("from") or "")
    out = dial(net, "*981999", bob, 32006)  # no such box: not voicemail
    assert not requests_to(out, VM)


class FakeService:
    """Stands in for VoicemailService: records which box would be listened to, and how."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.listened: list[tuple[str, MenuSettings | None]] = []

    def listen(self, txn: object, req: object, box: str, menu: MenuSettings | None = None) -> None:
        self.listened.append((box, menu))

    def spawn(self, coro: object) -> None:
        pass


def _invite_to_vm(user: str, caller: str) -> bytes:
    return (
        f"INVITE sip:{user}@127.0.0.1:{VM} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:25060;branch=z9hG4bK{user}{caller}\r\n"
        f"From: <sip:{caller}@127.0.0.1>;tag=a\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: {user}-{caller}\r\n"
        f"CSeq: 1 INVITE\r\nContact: <sip:{caller}@127.0.0.1:25060>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_the_box_asks_for_the_pin_of_a_caller_not_its_own() -> None:
    app = StandaloneVoicemail()
    stack = Stack(app)
    stack.local = {"udp": ("127.0.0.1", VM)}
    svc = FakeService(stack)
    app.service = svc  # type: ignore[assignment]
    src = Source("udp", ("127.0.0.1", 25060), ("127.0.0.1", VM))
    stack.receive(_invite_to_vm("*981000", "1001"), src, 0.0)  # no PIN set: refused
    (resp,) = [parse(s.data) for s in stack.outbox]
    assert isinstance(resp, Response) and resp.status == 403 and "PIN" in resp.reason
    assert svc.listened == []
    app.menu = replace(app.menu, pin="2468")
    stack.receive(_invite_to_vm("*981000", "1002"), src, 0.0)
    stack.receive(_invite_to_vm("*981000", "1000"), src, 0.0)  # its own device: no PIN
    stack.receive(_invite_to_vm("*98", "1000"), src, 0.0)
    assert [(box, m.pin_required if m else None) for box, m in svc.listened] == [
        ("1000", True), ("1000", False), ("1000", False)]
    assert all(m is not None and m.pin == "2468" for _, m in svc.listened)


def _menu_for(app: StandaloneVoicemail, box: str, caller: str) -> MenuSettings | None:
    stack = Stack(app)
    stack.local = {"udp": ("127.0.0.1", VM)}
    svc = FakeService(stack)
    app.service = svc  # type: ignore[assignment]
    stack.receive(_invite_to_vm(f"*98{box}", caller), Source("udp", ("127.0.0.1", 25060), ("127.0.0.1", VM)), 0.0)
    if not svc.listened:
        (resp,) = [parse(s.data) for s in stack.outbox]
        assert isinstance(resp, Response) and resp.status == 403
        return None
    ((listened, menu),) = svc.listened
    assert listened == box and menu is not None and menu.pin_required
    return menu


def _opens(menu: MenuSettings, digits: str) -> bool:
    """Whether keying `digits` then # at the PIN prompt opens the box."""
    m = Menu([], menu)
    m.start(0.0)
    for d in digits + "#":
        out = m.on_digit(d, 1.0)
    return not any(isinstance(a, Play) and a.prompt == "wrong-pin" for a in out)


def test_a_box_with_its_own_pin_asks_for_that_one() -> None:
    """The account's voicemail_pin, when set, is the PIN of its box; the server-wide one stays
    the default of the boxes without (and a box with its own opens even with no server-wide one)."""
    from onenumber.main import box_pins

    alice, _ = make_account("1000", "Alice", 1, voicemail_pin="1357")
    bob, _ = make_account("1001", "Bob", 1)
    net = Net([alice, bob], [])
    app = StandaloneVoicemail()
    app.box_pin = box_pins(net.directory)
    menu = _menu_for(app, "1000", "1002")
    assert menu is not None and menu.pin == "1357" and _opens(menu, "1357") and not _opens(menu, "2468")
    assert _menu_for(app, "1001", "1002") is None  # no PIN of its own, none server-wide: refused
    app.menu = replace(app.menu, pin="2468")
    menu = _menu_for(app, "1001", "1002")
    assert menu is not None and menu.pin == "2468" and _opens(menu, "2468")
    menu = _menu_for(app, "1000", "1002")  # its own still wins over the server-wide one
    assert menu is not None and menu.pin == "1357" and not _opens(menu, "2468")
