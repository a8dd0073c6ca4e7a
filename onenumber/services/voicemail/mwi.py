"""Message waiting (RFC 3842) for every device of an account.

Devices that subscribe to `message-summary` get in-dialog NOTIFYs from
`services.subscriptions` (`notify_target(Package.MESSAGE_SUMMARY, account, render)`
with `render_summary`). Many deskphones never subscribe and expect unsolicited NOTIFYs
instead: `unsolicited_targets` picks the live bindings of the account whose device has
no subscription, and `unsolicited_notify` builds the out-of-dialog NOTIFY for one of
them (Request-URI the binding's contact, Route its Path), sent when the setting asks.

Pure: no I/O, no clock; depends on routing.model, sip and services.subscriptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from ...routing.model import Binding
from ...sip.bodies import MESSAGE_SUMMARY_TYPE, MessageSummary, message_summary
from ...sip.message import Headers, Request
from ..subscriptions import Package, Subscription, Subscriptions


def render_summary(summary: MessageSummary) -> Callable[[Subscription], bytes]:
    """A `render` callback for Subscriptions.notify_target."""
    body = message_summary(summary)
    return lambda _sub: body


def unsolicited_targets(
    account: str, bindings: Iterable[Binding], subscriptions: Subscriptions, now: float
) -> list[Binding]:
    """Live bindings of `account` whose device does not subscribe to message-summary."""
    subscribed = {s.device for s in subscriptions.for_target(Package.MESSAGE_SUMMARY, account) if s.device}
    return [
        b for b in bindings
        if b.account == account and b.expires_at > now and b.auth_username not in subscribed
    ]


def unsolicited_notify(
    binding: Binding,
    aor: str,
    summary: MessageSummary,
    *,
    server_uri: str,
    call_id: str,
    from_tag: str,
    cseq: int = 1,
    subscription_state: str = "active",
    routes: Sequence[str] | None = None,
) -> Request:
    """An out-of-dialog NOTIFY to one registered contact, along `routes` (default: its Path).
    No Via: the stack adds one."""
    h = Headers()
    for path in binding.path if routes is None else routes:
        h.add("Route", path)
    h.add("Max-Forwards", "70")
    h.add("From", f"<{server_uri}>;tag={from_tag}")
    h.add("To", f"<{aor}>")
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} NOTIFY")
    h.add("Event", Package.MESSAGE_SUMMARY.value)
    h.add("Subscription-State", subscription_state)
    h.add("Contact", f"<{server_uri}>")
    req = Request("NOTIFY", binding.contact, h)
    req.set_body(message_summary(summary), MESSAGE_SUMMARY_TYPE)
    return req
