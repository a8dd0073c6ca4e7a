"""The SIP side assembled: stack, gate, registrar, proxy, in-dialog relay, dialogs and events.

`build_core()` is used by `main.py` (with real sockets behind the driver) and by the sans-IO
test bed (bytes in, bytes out), so both run exactly the same objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ..settings import Settings
from ..sip.overload import Overload, OverloadPolicy
from ..sip.stack import Stack
from .dialogs import Dialogs
from .directory import Directory
from .event_packages import EventPackages
from .events import BindingChanged, DialogChanged, EventBus
from .gate import Gate
from .indialog import InDialogRelay
from .location import Location
from .media import MediaSeam
from .presence import PresenceService
from .proxy import CallProxy
from .registrar import Registrar
from .replies import Replier
from .router import KNOWN_METHODS, LocalAddresses, Router
from .subscriptions import SubscriptionPolicy, Subscriptions, WatchSettings, may_watch, parse_watch_rule


@dataclass
class SipCore:
    stack: Stack
    router: Router
    gate: Gate
    proxy: CallProxy
    in_dialog: InDialogRelay
    dialogs: Dialogs
    events: EventBus
    local: LocalAddresses
    media: MediaSeam
    presence: PresenceService | None = None
    overload: Overload | None = None


def overload_policy(settings: Settings) -> OverloadPolicy:
    """The overload bounds the settings ask for (`overload_*`)."""
    return OverloadPolicy(
        max_lag=settings.overload_max_lag_ms / 1000.0, max_transactions=settings.overload_max_transactions,
        max_queue=settings.overload_max_queue_kb * 1024, max_queue_delay=settings.overload_max_queue_ms / 1000.0,
        retry_after=settings.overload_retry_after,
    )


def build_core(
    directory: Directory,
    location: Location,
    *,
    secret: bytes,
    realm: str,
    local_hosts: set[str],
    clock: Callable[[], float] = time.time,
    events: EventBus | None = None,
    presence: bool = True,
) -> SipCore:
    events = events or EventBus(clock)
    stack = Stack(None, known_methods=KNOWN_METHODS)  # type: ignore[arg-type]  # the router, set below
    replier = Replier(stack, clock)
    local = LocalAddresses(stack, directory, local_hosts)
    dialogs = Dialogs(events)
    media = MediaSeam(events)
    gate = Gate(directory, replier, secret=secret, realm=realm)
    registrar = Registrar(directory, location, replier, local.is_local)
    proxy = CallProxy(stack, replier, directory, location, dialogs, events, secret=secret, realm=realm,
                      domain=local.domain, media=media)
    in_dialog = InDialogRelay(stack, replier, dialogs, location, events, secret=secret, realm=realm,
                              is_own_uri=local.is_own_uri, media=media)
    watchers = None
    if presence:  # BLF, presence and message waiting (issue 10)
        def contact(account: str) -> str:
            host, port = stack.local.get("udp", ("127.0.0.1", 5060))
            return f"sip:{account}@{host}:{port}"

        subscriptions = Subscriptions(SubscriptionPolicy(), stack.new_tag, contact)
        watchers = PresenceService(stack, directory, location, dialogs, subscriptions, clock=clock,
                                   domain=local.domain)
        events.subscribe(watchers.on_event, DialogChanged, BindingChanged)
    watch = [WatchSettings()]  # the rule when there is no presence service (pickup still obeys it)

    def configure(d: Directory) -> None:
        """Settings (re)loaded: who may watch whom, unsolicited message waiting."""
        try:
            watch[0] = parse_watch_rule(d.settings.presence_watch)
        except ValueError:
            watch[0] = WatchSettings()
        if watchers is not None:
            watchers.watch = watch[0]
            watchers.unsolicited_mwi = d.settings.mwi_unsolicited

    def pickup_allowed(watcher: str, target: str) -> bool:
        return may_watch(watcher, target, watchers.watch if watchers is not None else watch[0])

    configure(directory)
    directory.listeners.append(configure)
    proxy.may_watch = pickup_allowed
    proxy.reach.is_own_uri = local.is_own_uri  # a node's own Path entry is no hop (several nodes)
    if watchers is not None:
        watchers.reach = proxy.reach
    router = Router(
        stack=stack, replier=replier, directory=directory, location=location, local=local, gate=gate,
        registrar=registrar, proxy=proxy, in_dialog=in_dialog, packages=EventPackages(replier, watchers),
    )
    stack.tu = router
    overload = stack.overload = Overload(overload_policy(directory.settings))
    directory.listeners.append(lambda d: setattr(overload, "policy", overload_policy(d.settings)))
    location.events = events
    return SipCore(stack, router, gate, proxy, in_dialog, dialogs, events, local, media, watchers, overload)
