"""SUBSCRIBE, NOTIFY and PUBLISH outside a dialog: the event packages (RFC 6665).

After the gate (an unauthenticated watcher learns nothing), SUBSCRIBE goes to the presence
service when there is one (`dialog`, `presence`, `message-summary`: services/presence.py);
anything else is answered `489 Bad Event` with the packages served in `Allow-Events`.
"""

from __future__ import annotations

from ..routing.model import Device
from ..sip.message import Request
from ..sip.stack import ServerTxn
from .presence import PresenceService
from .replies import Replier
from .subscriptions import Package

PACKAGES: tuple[str, ...] = tuple(p.value for p in Package)  # the event packages the presence service serves


class EventPackages:
    def __init__(self, replier: Replier, presence: PresenceService | None = None) -> None:
        self.replier = replier
        self.presence = presence

    def on_request(self, txn: ServerTxn, req: Request, device: Device, now: float) -> None:
        if self.presence is not None and req.method == "SUBSCRIBE":
            self.presence.on_subscribe(txn, req, device, now)
            return
        served = PACKAGES if self.presence is not None else ()
        headers = [("Allow-Events", ", ".join(served))] if served else []
        self.replier.reply(txn, 489, "Bad Event", headers)
