"""The presence settings reach the running core on a configuration reload: `presence_watch`
(SUBSCRIBE for BLF/presence, and pickup) and `mwi_unsolicited` (message waiting to the
devices that never subscribe)."""

from __future__ import annotations

from dataclasses import replace

from onenumber.sip.bodies import MessageSummary

from .sipnet import Net
from .test_presence_service import D0, D1, authed_subscribe, notifies, office, responses_to


def reload(net: Net, **settings: object) -> None:
    net.directory.settings = replace(net.directory.settings, **settings)
    for listener in net.directory.listeners:
        listener(net.directory)


def test_watch_setting_forbids_and_allows_subscriptions() -> None:
    net, devs = office()
    bob = devs[2]
    reload(net, presence_watch="nobody")
    out = authed_subscribe(net, bob.secret, "1000", "dialog", src=("127.0.0.1", 33010))
    assert [r.status for r in responses_to(out, 33010) if r.status >= 200] == [403]
    reload(net, presence_watch="1001:1000")
    out = authed_subscribe(net, bob.secret, "1000", "dialog", src=("127.0.0.1", 33012))
    assert [r.status for r in responses_to(out, 33012) if r.status >= 200] == [200]
    reload(net, presence_watch="everyone")
    out = authed_subscribe(net, bob.secret, "1000", "presence", src=("127.0.0.1", 33014))
    assert [r.status for r in responses_to(out, 33014) if r.status >= 200] == [200]


def test_unsolicited_mwi_setting_sends_to_every_registered_device() -> None:
    net, _devs = office()
    presence = net.core.presence
    assert presence is not None
    presence.set_mailbox("1000", MessageSummary(1, 0))
    assert notifies(net.drain(), D0) == [] and notifies(net.drain(), D1) == []
    reload(net, mwi_unsolicited=True)
    presence.set_mailbox("1000", MessageSummary(2, 0))
    out = net.drain()
    assert len(notifies(out, D0)) == 1 and len(notifies(out, D1)) == 1
    assert all(n.headers.get("event") == "message-summary" and n.to.tag is None
               for n in notifies(out, D0) + notifies(out, D1))
    reload(net, mwi_unsolicited=False)
    presence.set_mailbox("1000", MessageSummary(0, 2))
    assert notifies(net.drain(), D1) == []
