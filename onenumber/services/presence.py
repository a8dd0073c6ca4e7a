"""Presence, BLF and message waiting over SIP: the event packages served to our devices.

`PresenceService` follows the call events (`DialogChanged`, `BindingChanged`) to keep
each account's device dialogs, derives one state per account (`routing.presence`),
and serves SUBSCRIBE (after the gate: `on_subscribe(txn, req, device, now)`) for three
packages through `services.subscriptions`:

- `dialog` (RFC 4235, BLF keys): the dialogs `routing.presence.visible_dialogs` says make
  the account's state, with the caller/callee identities, tags, and for a ringing
  account the pickup code as remote target (`*8` + number); a dialog that ended is shown
  once as terminated;
- `presence` (PIDF, RFC 3863): the account's state in a note and RPID activity;
- `message-summary` (RFC 3842): the counts the voicemail service reports
  (`set_mailbox(box, summary)`), only to the box's own devices; with `unsolicited_mwi`,
  also as out-of-dialog NOTIFYs to its registered devices that never subscribed.

A NOTIFY goes out to every subscriber of an account whose rendering changed; refreshes,
expiry (`terminated;reason=timeout`) and failed NOTIFYs (481/408/timeout end the
subscription) are handled here. Work triggered by events is scheduled with
`stack.call_at(now)`, so the driver's next timer run sends it: no loop reference, and the
sans-IO test bed steps it like any timer.

Depends on routing, sip and services (dialogs, directory, location, subscriptions).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from ..routing.model import Device
from ..routing.presence import DeviceDialog, DialogState, Direction, Presence, account_presence, account_view
from ..sip.bodies import DialogInfo, MessageSummary, Participant, dialog_info, message_summary, pidf
from ..sip.headers import NameAddr
from ..sip.message import Request, Response
from ..sip.stack import ClientTxn, ServerTxn, Source, Stack, Target, Timer
from ..sip.uri import SipUri
from .dialogs import Dialogs
from .directory import Directory
from .events import BindingChanged, DialogChanged, Event
from .location import Location
from .reach import Reach
from .subscriptions import Package, Prepared, State, Subscription, Subscriptions, WatchSettings, may_subscribe
from .voicemail.mwi import unsolicited_notify, unsolicited_targets

log = logging.getLogger("onenumber.presence")


@dataclass(slots=True)
class _Leg:
    """One device's side of one call, as BLF shows it. Its identities are looked up when it is
    first shown to a watcher (most calls are watched by nobody)."""

    dialog: DeviceDialog
    first: DialogChanged  # the event that made it: where its identities are looked up
    # (local tag, remote tag, local, remote): what a watcher sees of it besides its state, once
    # looked up (tags filled in as they become known)
    parties: _Parties | None = None
    # the last DialogInfo shown for it and what it was made of: a flush re-renders every call of
    # the account, and most of them have not changed since the previous one
    shown: tuple[tuple[object, ...], DialogInfo] | None = None


_Parties = tuple[str, str, Participant, "Participant | None"]


# enum members read off their class cost ~1 k instructions each in CPython 3.11: the hot paths use these
_DIALOG, _PRESENCE, _MESSAGE_SUMMARY = Package.DIALOG, Package.PRESENCE, Package.MESSAGE_SUMMARY
_TERMINATED = DialogState.TERMINATED
# a DialogChanged's direction and state (the call events' own enum) → routing's enums: dict
# lookups, where calling the enum classes cost ~1 µs each on every event
_DIRECTION = {d.value: d for d in Direction}
_STATE = {s.value: s for s in DialogState}

_RANK = {DialogState.TRYING: 0, DialogState.PROCEEDING: 1, DialogState.EARLY: 2, DialogState.CONFIRMED: 3}


def _rank(d: DeviceDialog) -> tuple[int, int]:
    """Which of a call's legs speaks for the account: the most advanced, then the lowest position."""
    return (_RANK.get(d.state, -1), -d.position)


def _shown_as(call_id: str, direction: str, parties: _Parties, state: str, pickup_uri: str = "") -> DialogInfo:
    """The account's side of a call as a watcher sees it: one DialogInfo, made once per state (a
    frozen dataclass costs ~20 k instructions to make: one per field set through object)."""
    return DialogInfo(f"{call_id}-{direction[0]}", state, direction, call_id, parties[0], parties[1], parties[2],
                      parties[3], "", None, None, pickup_uri)


class PresenceService:
    def __init__(
        self,
        stack: Stack,
        directory: Directory,
        location: Location,
        dialogs: Dialogs,
        subscriptions: Subscriptions,
        *,
        clock: Callable[[], float],
        domain: Callable[[], str],
        watch: WatchSettings | None = None,
        pickup_prefix: str = "*8",
        mailbox_uri: Callable[[str], str] = lambda box: "",
        unsolicited_mwi: bool = False,
    ) -> None:
        self.stack = stack
        self.directory = directory
        self.location = location
        self.reach = Reach()  # a binding's next hop (build_core shares the proxy's: several nodes)
        self.dialogs = dialogs
        self.subscriptions = subscriptions
        self.clock = clock
        self.domain = domain
        self.watch = watch or WatchSettings()
        self.pickup_prefix = pickup_prefix
        self.mailbox_uri = mailbox_uri
        self.unsolicited_mwi = unsolicited_mwi  # NOTIFY devices that never subscribe (many deskphones)
        self.legs: dict[str, dict[tuple[str, int | None, str], _Leg]] = {}  # account → legs
        self.ended: dict[str, list[DialogInfo]] = {}  # shown once as terminated
        self.rendered: dict[str, set[tuple[str, str]]] = {}  # account → (Call-ID, direction) shown to watchers
        self._bodies: dict[str, tuple[tuple[DialogInfo, ...], bytes, bytes]] = {}  # the last dialog-info rendered
        self.shown: dict[str, tuple[Presence, tuple[DialogInfo, ...]]] = {}
        self.mailboxes: dict[str, MessageSummary] = {}
        self.dirty: set[str] = set()
        self._flush_timer: Timer | None = None
        self._expiry: Timer | None = None
        self._expiry_at: float | None = None
        self.stats = {"notifies": 0}
        # told (account, state) whenever an account's state changes: the browser stream
        # (api/presence_voicemail.py); called from the flush, so never block in one
        self.state_listeners: list[Callable[[str, Presence], None]] = []

    # ---------------------------------------------------------------- call events
    def on_event(self, event: Event) -> None:
        if isinstance(event, DialogChanged):
            self._dialog_changed(event)
        elif isinstance(event, BindingChanged):
            self._mark(event.account)

    def _dialog_changed(self, ev: DialogChanged) -> None:
        legs = self.legs.get(ev.account)
        if legs is None:
            legs = self.legs[ev.account] = {}
        key = (ev.call_id, ev.position, ev.direction)
        direction = _DIRECTION[ev.direction]
        state = _STATE[ev.state]  # a StrEnum member hashes and compares as its value
        leg = legs.get(key)
        if state is _TERMINATED:
            legs.pop(key, None)
            if not legs:
                del self.legs[ev.account]
            call = (ev.call_id, direction.value)
            rendered = self.rendered.get(ev.account)
            if leg is not None and rendered is not None and call in rendered and not any(
                k[0] == ev.call_id and k[2] == ev.direction for k in legs
            ):  # the account's side of the call is over (not just one of the devices it rang)
                rendered.discard(call)
                if not rendered:
                    del self.rendered[ev.account]
                info = _shown_as(ev.call_id, ev.direction, self._parties(leg), "terminated")
                self.ended.setdefault(ev.account, []).append(info)
        else:
            dialog = DeviceDialog(ev.position if ev.position is not None else -1, state, direction, ev.call_id)
            if leg is None:
                legs[key] = _Leg(dialog, ev)
            else:
                still_ringing = leg.dialog.ringing and dialog.ringing
                leg.dialog = dialog
                if still_ringing:
                    # trying/proceeding/early of an incoming call: the device is ringing before and
                    # after, the call shows as early either way, so nothing a watcher (or the
                    # account's state) sees can change: no flush (each 180 of a forked call was one)
                    return
        self._mark(ev.account)

    def _parties(self, leg: _Leg) -> _Parties:
        """The leg's identities and tags (looked up once; tags filled in as they become known)."""
        parties = leg.parties
        if parties is None:
            parties = leg.parties = ("", "", *self._identities(leg.first, leg.dialog.direction))
        if not parties[0] or not parties[1]:
            ev, direction = leg.first, leg.dialog.direction
            local = parties[0] or self._local_tag(ev, direction)
            remote = parties[1] or self._remote_tag(ev, direction)
            if local != parties[0] or remote != parties[1]:  # the same object while nothing is new
                parties = leg.parties = (local, remote, parties[2], parties[3])
        return parties

    def _identities(self, ev: DialogChanged, direction: Direction) -> tuple[Participant, Participant | None]:
        """The local and remote identities of a new leg, from the call's record (gone once the
        call ended)."""
        rec = self.dialogs.get(ev.call_id)
        domain = self.domain()
        me = self.directory.account_for(ev.account)
        local = Participant(f"sip:{ev.account}@{domain}", me.display_name if me else "")
        remote: Participant | None = None
        if rec is not None:
            if direction is Direction.RECIPIENT:
                remote = Participant(f"sip:{rec.caller.number}@{domain}", rec.caller.name)
            elif rec.callee_account:
                callee = self.directory.account_for(rec.callee_account)
                remote = Participant(f"sip:{rec.callee_account}@{domain}", callee.display_name if callee else "")
        return local, remote

    def _local_tag(self, ev: DialogChanged, direction: Direction) -> str:
        rec = self.dialogs.get(ev.call_id)
        if rec is None:
            return ""
        if direction is Direction.INITIATOR:
            return rec.caller_tag or ""
        ans = rec.answered
        return (ans.tag or "") if ans is not None and ans.position == ev.position and ans.account == ev.account else ""

    def _remote_tag(self, ev: DialogChanged, direction: Direction) -> str:
        rec = self.dialogs.get(ev.call_id)
        if rec is None:
            return ""
        if direction is Direction.RECIPIENT:
            return rec.caller_tag or ""
        return rec.callee_tag or ""

    def _mark(self, account: str) -> None:
        self.dirty.add(account)
        if self._flush_timer is None:
            self._flush_timer = self.stack.call_at(self.clock(), self._flush)

    # ---------------------------------------------------------------- state and rendering
    def state(self, account: str, now: float) -> tuple[Presence, tuple[DialogInfo, ...]]:
        acc = self.directory.account_for(account)
        if acc is None or acc.number != account:
            return Presence.OFFLINE, ()
        devices = self.directory.devices(account)
        bindings = self.location.get(account)
        by_key = self.legs.get(account)
        if not by_key:  # idle: nothing to show
            return account_presence(acc, devices, bindings, (), now), ()
        legs = list(by_key.values())
        presence, shown = account_view(acc, devices, bindings, [leg.dialog for leg in legs], now)
        visible = {id(d) for d in shown}  # the legs' own objects
        pickup = f"sip:{self.pickup_prefix}{account}@{self.domain()}" if self.pickup_prefix else ""
        # One phone in the eyes of others: a call is one dialog of the account, whichever and
        # however many of its devices it rings (the most advanced leg speaks for it), and an
        # incoming call offered to its devices is early at once, as the account is `ringing`.
        calls: dict[tuple[str, str], _Leg] = {}
        for leg in legs:
            if id(leg.dialog) in visible:
                k = (leg.dialog.call_id, leg.dialog.direction)  # a StrEnum: equal to, and hashed as, its value
                best = calls.get(k)
                if best is None or _rank(leg.dialog) > _rank(best.dialog):
                    calls[k] = leg
        infos = []
        for (call_id, _), leg in sorted(calls.items()):
            d = leg.dialog
            parties = self._parties(leg)
            made_of = (parties, d.state, d.ringing, pickup)  # its direction is the leg's, for good
            if leg.shown is not None and leg.shown[0] == made_of:
                infos.append(leg.shown[1])
                continue
            direction = leg.first.direction
            if d.ringing:
                info = _shown_as(call_id, direction, parties, "early", pickup)
            else:
                info = _shown_as(call_id, direction, parties, str(d.state))
            leg.shown = (made_of, info)
            infos.append(info)
        if calls:
            self.rendered.setdefault(account, set()).update(calls)
        return presence, tuple(infos)

    def render(self, sub: Subscription) -> bytes:
        account = sub.target
        package = sub.package
        if package is _MESSAGE_SUMMARY:
            summary = self.mailboxes.get(account, MessageSummary())
            return message_summary(replace(summary, account=summary.account or self.mailbox_uri(account)))
        presence, infos = self.shown.get(account) or self.state(account, self.clock())
        if package is _PRESENCE:
            return pidf(f"pres:{account}@{self.domain()}", presence.value, contact=f"sip:{account}@{self.domain()}")
        ended = self.ended.get(account)
        dialogs = infos + tuple(ended) if ended else infos
        # every watcher of the account gets the same document but for its version: render it
        # once per change (most of a NOTIFY's cost was this XML)
        cached = self._bodies.get(account)
        if cached is None or cached[0] != dialogs:
            entity = f"sip:{account}@{self.domain()}"
            head, _, tail = dialog_info(entity, 0, dialogs).partition(b' version="0" ')
            cached = self._bodies[account] = (dialogs, head, tail)
        return b'%s version="%d" %s' % (cached[1], sub.notifies, cached[2])  # `sub.version`, without the property

    def presence_of(self, account: str, now: float) -> Presence:
        """The account's state alone (no dialog rendering)."""
        acc = self.directory.account_for(account)
        if acc is None or acc.number != account:
            return Presence.OFFLINE
        dialogs = [leg.dialog for leg in self.legs.get(account, {}).values()]
        return account_presence(acc, self.directory.devices(account), self.location.get(account), dialogs, now)

    def _flush(self, now: float) -> None:
        self._flush_timer = None
        dirty, self.dirty = self.dirty, set()
        for account in sorted(dirty):
            if not self._watched(account):  # nobody to NOTIFY: only the listeners (browsers), if any
                self.shown.pop(account, None)
                self.ended.pop(account, None)
                self._bodies.pop(account, None)
                if self.state_listeners:
                    state = self.presence_of(account, now)
                    for listener in self.state_listeners:
                        listener(account, state)
                continue
            previous = self.shown.get(account)
            current = self.shown[account] = self.state(account, now)
            if previous is None or current[1] != previous[1] or self.ended.get(account):
                self._notify_all(_DIALOG, account, now)
            if previous is None or current[0] is not previous[0]:
                self._notify_all(_PRESENCE, account, now)
                for listener in self.state_listeners:
                    listener(account, current[0])
            self.ended.pop(account, None)
            if not self.legs.get(account) and not self._watched(account):
                del self.shown[account]  # nothing to remember for an idle, unwatched account
                self._bodies.pop(account, None)

    def _watched(self, account: str) -> bool:
        return self.subscriptions.watched(account)

    def _notify_all(self, package: Package, account: str, now: float) -> None:
        subs = self.subscriptions.by_target.get((package, account))  # `for_target`, without the call
        if subs:
            for sub in list(subs.values()):
                self._notify(sub, now)

    def set_mailbox(self, box: str, summary: MessageSummary) -> None:
        """The voicemail service's counts for `box` changed: tell its subscribed devices."""
        self.mailboxes[box] = summary
        now = self.clock()
        self._notify_all(Package.MESSAGE_SUMMARY, box, now)
        if self.unsolicited_mwi:
            self._unsolicited(box, summary, now)

    def _unsolicited(self, box: str, summary: MessageSummary, now: float) -> None:
        """Out-of-dialog NOTIFYs to the box's registered devices that have no subscription."""
        domain = self.domain()
        summary = replace(summary, account=summary.account or self.mailbox_uri(box))
        for b in unsolicited_targets(box, self.location.get(box), self.subscriptions, now):
            found = self.reach.route(b)  # through the node holding its flow, with several nodes
            if found is None:
                continue
            target, routes, _ = found
            req = unsolicited_notify(b, f"sip:{box}@{domain}", summary, server_uri=f"sip:{box}@{domain}",
                                     call_id=f"mwi-{self.stack.new_tag()}@{domain}", from_tag=self.stack.new_tag(),
                                     routes=routes)
            host, port = self.stack.local.get(target.transport, b.local)
            self.stack.add_via(req, target.transport, host, port)
            self.stack.send_request(req, target, now, context=_Ignore())
            self.stats["notifies"] += 1

    # ---------------------------------------------------------------- SUBSCRIBE
    def on_subscribe(self, txn: ServerTxn, req: Request, device: Device, now: float) -> None:
        """An authenticated SUBSCRIBE from `device` (the gate admitted it)."""
        ruri = req.request_uri
        user = ruri.user_unescaped if isinstance(ruri, SipUri) else None
        target = self.directory.account_for(user or "") if user else None
        if req.to.tag is None and target is None:
            self._reply(txn, req, Response(404, "Not Found"), now)
            return
        target_number = target.number if target is not None else ""
        if req.to.tag is not None:  # a refresh: the dialog knows its target
            target_number = target_number or user or ""
        name = (req.headers.get("event") or "").split(";", 1)[0].strip().lower()
        package = Package(name) if name in {p.value for p in Package} else None
        allowed = package is not None and may_subscribe(package, device.account, target_number, self.watch)
        if package is Package.DIALOG or package is Package.PRESENCE:
            self.shown.setdefault(target_number, self.state(target_number, now))
        answer = self.subscriptions.on_subscribe(req, device.account, target_number, self.render, now,
                                                 allowed=allowed, flow=txn.source, device=device.auth_username)
        self.stack.respond(txn, answer.response(req), now)
        if answer.notify is not None and answer.subscription is not None:
            self._send(answer.subscription, answer.notify, now)
        self._arm_expiry(now)

    def _send(self, sub: Subscription, req: Request, now: float) -> None:
        """A NOTIFY built as a Request (the one a SUBSCRIBE triggers): sent as such, and made the
        subscription's template for the NOTIFYs to come (`_notify`)."""
        source = sub.flow if isinstance(sub.flow, Source) else None
        if source is None:
            return
        host, port = self.stack.local.get(source.transport, source.local)
        if sub.state is State.ACTIVE:
            self.subscriptions.prepare(sub, f"SIP/2.0/{source.transport.upper()} {host}:{port}", req)
        self._send_request(sub, req, now)

    def _reply(self, txn: ServerTxn, req: Request, resp: Response, now: float) -> None:
        self.stack.respond(txn, self.stack.make_response(req, resp.status, resp.reason), now)

    # ---------------------------------------------------------------- NOTIFY out, answers back
    def _notify(self, sub: Subscription, now: float, reason: str | None = None) -> None:
        """The next NOTIFY of `sub`, sent from its template (`Subscriptions.notify_data`): no
        Request object is built, and its answer is matched without being parsed."""
        source = sub.flow if isinstance(sub.flow, Source) else None
        if source is None:  # nowhere to send it: counted all the same
            self.subscriptions.notify(sub, self.render, now, reason=reason)
            return
        stack = self.stack
        address = stack.local.get(source.transport, source.local)
        glue = sub.glue
        if isinstance(glue, _Glue) and glue.source is source and glue.address == address:  # the last Via made
            via = glue.via
        else:
            via = f"SIP/2.0/{source.transport.upper()} {address[0]}:{address[1]}"
        branch = stack.new_branch()
        data, prepared = self.subscriptions.notify_data(sub, self.render, now, via, branch, reason=reason)
        if not isinstance(glue, _Glue) or glue.source is not source or glue.prepared is not prepared:
            target = _notify_target(source, prepared.routes)
            glue = sub.glue = _Glue(source, prepared, target, _NotifyContext(self, sub))
        glue.address, glue.via = address, via
        stack.send_prepared(data, branch, "NOTIFY", glue.target, now, context=glue.context)
        self.stats["notifies"] += 1

    def _send_request(self, sub: Subscription, req: Request, now: float) -> None:
        source = sub.flow if isinstance(sub.flow, Source) else None
        if source is None:
            return
        host, port = self.stack.local.get(source.transport, source.local)
        self.stack.add_via(req, source.transport, host, port)
        routes = req.routes
        if source.reliable and source.conn is not None:
            target = Target(source.transport, source.remote[0], source.remote[1], source.conn)
        elif routes and isinstance(routes[0].uri, SipUri):
            first = routes[0].uri
            target = Target(first.transport or "udp", first.host.strip("[]"), first.port or 5060)
        else:  # where the SUBSCRIBE came from: a phone behind NAT is reached there, not at its Contact
            target = Target(source.transport, source.remote[0], source.remote[1])
        self.stack.send_request(req, target, now, context=_NotifyContext(self, sub))
        self.stats["notifies"] += 1

    def notify_failed(self, sub: Subscription, status: int | None) -> None:
        self.subscriptions.notify_failed(sub, status)

    # ---------------------------------------------------------------- expiry
    def _arm_expiry(self, now: float) -> None:
        at = self.subscriptions.next_expiry()
        if at == self._expiry_at:
            return
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry_at = at
        self._expiry = None if at is None else self.stack.call_at(at, self._on_expiry)

    def _on_expiry(self, now: float) -> None:
        self._expiry = self._expiry_at = None
        for sub in self.subscriptions.expire(now):
            self._notify(sub, now, reason="timeout")
        self._arm_expiry(now)


def _notify_target(source: Source, routes: tuple[NameAddr, ...]) -> Target:
    """Where a subscription's NOTIFYs go: its connection, else its first Route, else where the
    SUBSCRIBE came from (a phone behind NAT is reached there, not at its Contact)."""
    if source.reliable and source.conn is not None:
        return Target(source.transport, source.remote[0], source.remote[1], source.conn)
    if routes and isinstance(routes[0].uri, SipUri):
        first = routes[0].uri
        return Target(first.transport or "udp", first.host.strip("[]"), first.port or 5060)
    return Target(source.transport, source.remote[0], source.remote[1])


class _Glue:
    """What presence keeps on a subscription between its NOTIFYs (`Subscription.glue`): the
    target worked out from its flow and template, and its transactions' context."""

    __slots__ = ("address", "context", "prepared", "source", "target", "via")

    def __init__(self, source: Source, prepared: Prepared, target: Target, context: _NotifyContext) -> None:
        self.source = source
        self.prepared = prepared
        self.target = target
        self.context = context
        self.address: tuple[str, int] | None = None  # our address the last NOTIFY's Via gave…
        self.via = ""  # …and that Via, without its branch


class _Ignore:
    """The context of an unsolicited NOTIFY: whatever comes back changes nothing."""

    __slots__ = ()

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        pass

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        pass


class _NotifyContext:
    """A NOTIFY's client transaction context (the router hands responses and timeouts here)."""

    __slots__ = ("service", "sub")

    def __init__(self, service: PresenceService, sub: Subscription) -> None:
        self.service = service
        self.sub = sub

    def on_response(self, txn: ClientTxn, resp: Response, now: float) -> None:
        if resp.status >= 300:
            self.service.notify_failed(self.sub, resp.status)

    def on_timeout(self, txn: ClientTxn, now: float) -> None:
        self.service.notify_failed(self.sub, None)
