"""SIP event subscriptions (RFC 6665), sans-IO: SUBSCRIBE in, answers and NOTIFY requests out.

`Subscriptions` keeps one `Subscription` per dialog (the notifier side): a SUBSCRIBE
creates, refreshes or ends it, `notify` builds the NOTIFY as a `sip.message.Request` from
the stored `sip.dialog.Dialog` (route set from Record-Route, remote target from Contact,
our tag and theirs, our CSeq counting up), and `expire(now)` pops the subscriptions whose time is up
from a heap so the caller can send their final `terminated;reason=timeout` NOTIFY.
`may_watch` / `may_subscribe` say who may watch whom.

What the caller (the services' I/O glue) does: authenticate the SUBSCRIBE like any
request, send the answer `on_subscribe` returns (`Answer.response(req)`: it carries the
dialog's To tag, so do not build it with `Stack.make_response`, which makes a new one),
render the body for each NOTIFY (the `render` callback: `sip.bodies` does the XML), put a Via on the NOTIFY and send it
through the stack towards `Subscription.flow` (the connection or address the SUBSCRIBE
came from, kept opaque here), call `expire(now)` when `next_expiry()` is due, and call
`notify_failed` when a NOTIFY gets a 481 or times out.

Choices beyond RFC 6665:
- 200 OK for every accepted SUBSCRIBE (RFC 6665 deprecates 202).
- Expires: absent → the package default; below the minimum (and not 0) → 423 with
  Min-Expires; above the maximum → lowered to it. Expires 0 on a new SUBSCRIBE is a
  fetch: one NOTIFY with the state and `terminated;reason=timeout`, nothing kept.
- A refresh or unsubscribe with a CSeq not above the last one is answered 500 (§12.2.2).
- An `Accept` header that does not list the package's body type gets 406.
- The dialog-info `version` of a subscription counts its NOTIFYs from 0 (RFC 4235 §4.1.1).

Pure: no asyncio, no sockets, no clock (`now` is passed in); depends on sip only.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from ..sip.bodies import DIALOG_INFO_TYPE, MESSAGE_SUMMARY_TYPE, PIDF_TYPE
from ..sip.dialog import Dialog, response_for
from ..sip.errors import ParseError
from ..sip.headers import NameAddr, get_param, parse_params
from ..sip.message import Request, Response


class Package(StrEnum):
    DIALOG = "dialog"  # RFC 4235, BLF keys
    PRESENCE = "presence"  # RFC 3856, PIDF bodies
    MESSAGE_SUMMARY = "message-summary"  # RFC 3842, message waiting


CONTENT_TYPES: dict[Package, str] = {
    Package.DIALOG: DIALOG_INFO_TYPE,
    Package.PRESENCE: PIDF_TYPE,
    Package.MESSAGE_SUMMARY: MESSAGE_SUMMARY_TYPE,
}
ALLOW_EVENTS = ", ".join(p.value for p in Package)


@dataclass(frozen=True, slots=True)
class SubscriptionPolicy:
    min_expires: int = 60
    max_expires: int = 3600
    default_expires: dict[Package, int] = field(
        default_factory=lambda: {Package.DIALOG: 3600, Package.PRESENCE: 3600, Package.MESSAGE_SUMMARY: 3600}
    )
    packages: frozenset[Package] = frozenset(Package)


class State(StrEnum):
    ACTIVE = "active"
    TERMINATED = "terminated"


@dataclass(slots=True)
class Subscription:
    """One subscription dialog, notifier side. Mutable: refreshed and counted in place."""

    package: Package
    event_id: str | None  # the Event header's id parameter
    watcher: str  # the subscribing account's number
    target: str  # the watched account's number
    dialog: Dialog  # the SUBSCRIBE's dialog, our side the UAS
    expires_at: float
    flow: object = None  # where the SUBSCRIBE came from (a stack Source), for the glue
    device: str = ""  # the subscribing device's auth username (who already gets NOTIFYs)
    notifies: int = 0  # NOTIFYs built so far: the next dialog-info version
    state: State = State.ACTIVE
    prepared: Prepared | None = None  # its NOTIFY as a template (`Subscriptions.notify_data`)
    glue: object = None  # the caller's own per-subscription state (kept opaque here)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        d = self.dialog
        return _key(d.call_id, d.local_tag, d.remote_tag, self.package, self.event_id)

    @property
    def version(self) -> int:
        """The dialog-info version of the next NOTIFY."""
        return self.notifies

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires_at - now + 0.5))


def _key(call_id: str, local_tag: str, remote_tag: str, package: str, event_id: str | None) -> tuple:
    return (call_id, local_tag, remote_tag, str(package), event_id or "")


class Prepared(NamedTuple):
    """A subscription's NOTIFY as bytes with holes: the Via branch, the CSeq number, the
    Subscription-State value, the Content-Length and the body (what changes between NOTIFYs).
    Made from the request `Dialog.request` builds, so both ways give the same message; made
    again when what it was made of (`key`: the Via's transport and address, the remote
    target, our Contact) changes."""

    key: tuple[str, str, str]
    template: bytes  # %-format: branch, CSeq number, state, length, body
    routes: tuple[NameAddr, ...]  # the NOTIFY's Route set, parsed (the first one says where it goes)


@dataclass(frozen=True, slots=True)
class Answer:
    """What to answer a SUBSCRIBE, and the NOTIFY it triggers (if any)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    subscription: Subscription | None = None
    notify: Request | None = None  # send after the answer

    def response(self, req: Request) -> Response:
        """The answer to `req`, with the subscription's To tag (the one its NOTIFYs carry)."""
        tag = self.subscription.dialog.local_tag if self.subscription is not None else None
        return response_for(req, self.status, self.reason, tag, list(self.headers))


# -- who may watch whom -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchSettings:
    """Who may subscribe to whose dialog/presence state.

    `rule` "everyone" (the default: every local account), "nobody" (only oneself), or
    "listed": only the (watcher, target) pairs in `allowed`, where "*" matches any number.
    """

    domain: str = ""  # the local domain; "" → accept any domain given (single-domain server)
    rule: str = "everyone"
    allowed: frozenset[tuple[str, str]] = frozenset()


def parse_watch_rule(text: str, domain: str = "") -> WatchSettings:
    """A setting value: "" / "everyone", "nobody", or "1001:1000, 1002:*, *:1000" pairs."""
    text = text.strip()
    if text.lower() in ("", "everyone"):
        return WatchSettings(domain, "everyone")
    if text.lower() == "nobody":
        return WatchSettings(domain, "nobody")
    pairs = set()
    for item in text.split(","):
        watcher, sep, target = item.strip().partition(":")
        if not sep or not watcher.strip() or not target.strip():
            raise ValueError(f"watch rule {item.strip()!r}: expected WATCHER:TARGET (numbers or *)")
        pairs.add((watcher.strip(), target.strip()))
    return WatchSettings(domain, "listed", frozenset(pairs))


def may_watch(
    watcher_account: str,
    target_account: str,
    settings: WatchSettings,
    *,
    watcher_domain: str = "",
    target_domain: str = "",
) -> bool:
    """Whether `watcher_account` may see `target_account`'s presence (dialog/presence packages)."""
    if settings.domain:
        for dom in (watcher_domain, target_domain):
            if dom and dom.lower() != settings.domain.lower():
                return False
    if watcher_account == target_account or settings.rule == "everyone":
        return True
    if settings.rule == "listed":
        return any(
            w in ("*", watcher_account) and t in ("*", target_account) for w, t in settings.allowed
        )
    return False


def may_subscribe(package: Package, watcher_account: str, target_account: str, settings: WatchSettings,
                  **domains: str) -> bool:
    """Message waiting is private: only the account's own devices; the rest per `may_watch`."""
    if package is Package.MESSAGE_SUMMARY:
        return watcher_account == target_account and may_watch(watcher_account, target_account,
                                                               WatchSettings(settings.domain), **domains)
    return may_watch(watcher_account, target_account, settings, **domains)


# -- the subscriptions --------------------------------------------------------------------

Render = Callable[[Subscription], bytes]


class Subscriptions:
    def __init__(
        self, policy: SubscriptionPolicy, new_tag: Callable[[], str], contact: str | Callable[[str], str]
    ) -> None:
        self.policy = policy
        self.new_tag = new_tag
        # our Contact URI for the subscription dialogs: fixed, or made from the watched account
        # (so a refresh's Request-URI names an account the router sends back here)
        self.contact = contact
        self.by_key: dict[tuple, Subscription] = {}
        self.by_target: dict[tuple[Package, str], dict[tuple, Subscription]] = {}
        self._per_target: dict[str, int] = {}  # target → its subscriptions, any package
        self._heap: list[tuple[float, int, tuple]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self.by_key)

    # ---------------------------------------------------------------- SUBSCRIBE
    def on_subscribe(
        self,
        req: Request,
        watcher: str,
        target: str,
        render: Render,
        now: float,
        *,
        allowed: bool = True,
        flow: object = None,
        device: str = "",
    ) -> Answer:
        """Handle an authenticated SUBSCRIBE from `watcher`'s device for `target`'s state.

        `allowed` is the caller's `may_subscribe` verdict (checked for new subscriptions;
        a refresh of an existing one is not re-judged). `render` builds the NOTIFY body.
        """
        event = req.headers.get("event")
        if not event:
            return Answer(400, "Bad Request (no Event header)")
        name, params = _event(event)
        if name is None or name not in self.policy.packages:
            return Answer(489, "Bad Event", (("Allow-Events", ", ".join(sorted(self.policy.packages))),))
        package = Package(name)
        event_id = get_param(params, "id")
        if not _accepts(req, CONTENT_TYPES[package]):
            return Answer(406, "Not Acceptable", (("Accept", CONTENT_TYPES[package]),))
        expires = _expires(req, self.policy.default_expires.get(package, self.policy.max_expires))
        if expires is None:
            return Answer(400, "Bad Request (invalid Expires)")
        if 0 < expires < self.policy.min_expires:
            return Answer(423, "Interval Too Brief", (("Min-Expires", str(self.policy.min_expires)),))
        expires = min(expires, self.policy.max_expires)
        to_tag = req.to.tag
        if to_tag:
            return self._refresh(req, package, event_id, to_tag, expires, render, now, flow)
        if not allowed:
            return Answer(403, "Forbidden")
        try:
            dialog = Dialog.from_request(req, self.new_tag())
        except ValueError:
            return Answer(400, "Bad Request (SUBSCRIBE without Contact)")
        sub = Subscription(package, event_id, watcher, target, dialog, now + expires, flow, device)
        if expires == 0:  # a fetch: one NOTIFY, nothing kept (RFC 6665 §4.4.3)
            notify = self._build(sub, render, now, reason="timeout")
            return Answer(200, "OK", self._ok_headers(sub, 0), sub, notify)
        self._add(sub)
        return Answer(200, "OK", self._ok_headers(sub, expires), sub, self._build(sub, render, now))

    def _refresh(
        self, req: Request, package: Package, event_id: str | None, to_tag: str, expires: int,
        render: Render, now: float, flow: object,
    ) -> Answer:
        sub = self.by_key.get(_key(req.call_id, to_tag, req.from_.tag or "", package, event_id))
        if sub is None:
            return Answer(481, "Subscription Does Not Exist")
        if req.cseq.number <= sub.dialog.remote_cseq:
            return Answer(500, "Server Internal Error (CSeq out of order)")
        sub.dialog.remote_cseq = req.cseq.number
        contacts = req.contacts
        if contacts:  # a target refresh (§12.2.2)
            sub.dialog.remote_target = str(contacts[0].uri)
        if flow is not None:
            sub.flow = flow
        if expires == 0:
            self._remove(sub)
            notify = self._build(sub, render, now, reason="timeout")
            return Answer(200, "OK", self._ok_headers(sub, 0), sub, notify)
        sub.expires_at = now + expires
        heapq.heappush(self._heap, (sub.expires_at, next(self._seq), sub.key))
        return Answer(200, "OK", self._ok_headers(sub, expires), sub, self._build(sub, render, now))

    def _contact(self, sub: Subscription) -> str:
        contact = self.contact
        return contact if isinstance(contact, str) else contact(sub.target)

    def _ok_headers(self, sub: Subscription, expires: int) -> tuple[tuple[str, str], ...]:
        return (("Expires", str(expires)), ("Contact", f"<{self._contact(sub)}>"))

    # ---------------------------------------------------------------- NOTIFY
    def notify(self, sub: Subscription, render: Render, now: float, *, reason: str | None = None) -> Request:
        """The next NOTIFY of `sub`; with `reason` it is the last (terminated) and `sub` is dropped."""
        if reason is not None:
            self._remove(sub)
        return self._build(sub, render, now, reason=reason)

    def notify_target(self, package: Package, target: str, render: Render, now: float) -> list[Request]:
        """A NOTIFY for every active subscription to `target`'s `package` state (on each change)."""
        return [self._build(sub, render, now) for sub in list(self.for_target(package, target))]

    def watched(self, target: str) -> bool:
        """Whether `target` has a subscriber, to any package."""
        return target in self._per_target

    def for_target(self, package: Package, target: str) -> Iterable[Subscription]:
        return self.by_target.get((package, target), {}).values()

    @staticmethod
    def _next(sub: Subscription, render: Render, now: float, reason: str | None) -> tuple[bytes, str]:
        """The next NOTIFY's body and Subscription-State (with `reason`: the last one)."""
        body = render(sub)  # before the count: the body's version is the NOTIFYs sent so far
        sub.notifies += 1
        if reason is None:
            return body, f"active;expires={sub.remaining(now)}"
        sub.state = State.TERMINATED
        return body, f"terminated;reason={reason}"

    def _build(self, sub: Subscription, render: Render, now: float, *, reason: str | None = None) -> Request:
        body, sub_state = self._next(sub, render, now, reason)
        extra = [
            ("Event", sub.package.value + (f";id={sub.event_id}" if sub.event_id else "")),
            ("Subscription-State", sub_state),
            ("Contact", f"<{self._contact(sub)}>"),
        ]
        return sub.dialog.request("NOTIFY", extra, body, CONTENT_TYPES[sub.package])

    def notify_data(self, sub: Subscription, render: Render, now: float, via: str, branch: str, *,
                    reason: str | None = None) -> tuple[bytes, Prepared]:
        """`notify`, serialized: the next NOTIFY of `sub` as bytes, its top Via `via` (e.g.
        "SIP/2.0/UDP 192.0.2.1:5060") with `branch` and rport, filled into the subscription's
        template, and the template (for its routes). The same message `notify` builds, plus that
        Via, at a fraction of the cost: a busy account's watchers get three per call."""
        d = sub.dialog
        if reason is None:  # `_next`, written out for the usual NOTIFY (an active subscription's)
            body = render(sub)
            sub.notifies += 1
            state = b"active;expires=%d" % max(0, int(sub.expires_at - now + 0.5))  # `remaining`
        else:
            self._remove(sub)
            body, sub_state = self._next(sub, render, now, reason)
            state = sub_state.encode()
        prepared = sub.prepared
        contact = self._contact(sub)
        if prepared is None or prepared.key[0] != via or prepared.key[1] != d.remote_target \
                or prepared.key[2] != contact:
            prepared = sub.prepared = self._prepare(sub, (via, d.remote_target, contact))
        d.local_cseq += 1
        data = prepared.template % (branch.encode(), d.local_cseq, state, len(body), body)
        return data, prepared

    def prepare(self, sub: Subscription, via: str, notify: Request) -> None:
        """Make `sub`'s template from `notify`, a NOTIFY `notify` built for it just now (the one
        a SUBSCRIBE triggers), so that later NOTIFYs start from it (`notify_data`)."""
        if notify.headers.get("content-type") and notify.body:
            sub.prepared = self._prepare(sub, (via, sub.dialog.remote_target, self._contact(sub)), notify)

    def _prepare(self, sub: Subscription, key: tuple[str, str, str], req: Request | None = None) -> Prepared:
        """The template: the request `_build` makes (or made: `req`), holes marked by NUL (never
        in a parsed value)."""
        if req is None:
            d = sub.dialog
            extra = [
                ("Event", sub.package.value + (f";id={sub.event_id}" if sub.event_id else "")),
                ("Subscription-State", ""),
                ("Contact", f"<{key[2]}>"),
            ]
            req = d.request("NOTIFY", extra, b"\x00", CONTENT_TYPES[sub.package])
            d.local_cseq -= 1  # counted when a NOTIFY is filled in
        lines = [req.start_line(), f"Via: {key[0]};branch=\x00B;rport"]
        for k, name, value in req.headers._items:
            if k == "via":
                continue
            if k == "cseq":
                value = "\x00C NOTIFY"
            elif k == "subscription-state":
                value = "\x00S"
            elif k == "content-length":
                value = "\x00L"
            lines.append(f"{name}: {value}")
        lines.append("\r\n")
        text = "\r\n".join(lines).replace("%", "%%").encode("utf-8", "surrogateescape")
        parts = text.split(b"\x00")
        if [p[:1] for p in parts[1:]] != [b"B", b"C", b"S", b"L"]:
            raise ValueError("NOTIFY template: a value holds a NUL")
        template = b"".join((parts[0], b"%b", parts[1][1:], b"%d", parts[2][1:], b"%b", parts[3][1:], b"%d",
                             parts[4][1:], b"%b"))
        return Prepared(key, template, tuple(req.routes))

    def notify_failed(self, sub: Subscription, status: int | None) -> None:
        """A NOTIFY was answered `status` (None: it timed out): 481, 408 and timeouts end it
        (RFC 6665 §4.2.2); other failures leave it to expire."""
        if status is None or status in (404, 405, 408, 410, 416, 480, 481, 482, 483, 484, 485, 489, 501, 604):
            self._remove(sub)

    # ---------------------------------------------------------------- expiry
    def next_expiry(self) -> float | None:
        while self._heap:
            at, _, key = self._heap[0]
            sub = self.by_key.get(key)
            if sub is not None and sub.expires_at == at:
                return at
            heapq.heappop(self._heap)  # stale: refreshed or removed
        return None

    def expire(self, now: float) -> list[Subscription]:
        """Remove and return every subscription whose time is up; send each a final
        `notify(sub, render, now, reason="timeout")` (it is already removed then)."""
        out = []
        while (at := self.next_expiry()) is not None and at <= now:
            _, _, key = heapq.heappop(self._heap)
            sub = self.by_key[key]
            self._remove(sub)
            out.append(sub)
        return out

    # ---------------------------------------------------------------- storage
    def _add(self, sub: Subscription) -> None:
        self.by_key[sub.key] = sub
        self.by_target.setdefault((sub.package, sub.target), {})[sub.key] = sub
        self._per_target[sub.target] = self._per_target.get(sub.target, 0) + 1
        heapq.heappush(self._heap, (sub.expires_at, next(self._seq), sub.key))

    def _remove(self, sub: Subscription) -> None:
        if self.by_key.pop(sub.key, None) is None:
            return
        left = self._per_target[sub.target] - 1
        if left:
            self._per_target[sub.target] = left
        else:
            del self._per_target[sub.target]
        group = self.by_target.get((sub.package, sub.target))
        if group is not None:
            group.pop(sub.key, None)
            if not group:
                del self.by_target[(sub.package, sub.target)]


# -- helpers ------------------------------------------------------------------------------


def _event(value: str) -> tuple[str | None, tuple]:
    """`dialog;id=1` → ("dialog", params); a malformed header → (None, ())."""
    name, _, rest = value.strip().partition(";")
    name = name.strip().lower()
    try:
        params = parse_params(rest) if rest else ()
    except ParseError:
        return None, ()
    return (name or None), params


def _accepts(req: Request, content_type: str) -> bool:
    accepts = req.headers.get_all("accept")
    if not accepts:
        return True
    wanted = (content_type, "*/*", content_type.split("/")[0] + "/*")
    return any(item.split(";", 1)[0].strip().lower() in wanted for item in accepts)


def _expires(req: Request, default: int) -> int | None:
    value = req.headers.get("expires")
    if value is None:
        return default
    value = value.strip()
    if not value.isdigit():
        return None
    return min(int(value), 0xFFFFFFFF)


__all__ = [
    "ALLOW_EVENTS",
    "CONTENT_TYPES",
    "Answer",
    "Package",
    "Prepared",
    "State",
    "Subscription",
    "SubscriptionPolicy",
    "Subscriptions",
    "WatchSettings",
    "may_subscribe",
    "may_watch",
    "parse_watch_rule",
]
