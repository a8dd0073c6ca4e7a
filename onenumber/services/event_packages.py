"""SUBSCRIBE, NOTIFY and PUBLISH outside a dialog: the event packages (RFC 6665).

None is served yet (presence, BLF and message waiting arrive with the presence issue), so
every package is answered `489 Bad Event` with an empty `Allow-Events`, after the gate: an
unauthenticated watcher learns nothing.
"""

from __future__ import annotations

from ..routing.model import Device
from ..sip.message import Request
from ..sip.stack import ServerTxn
from .replies import Replier

PACKAGES: tuple[str, ...] = ()  # the event packages served here


class EventPackages:
    def __init__(self, replier: Replier) -> None:
        self.replier = replier

    def on_request(self, txn: ServerTxn, req: Request, device: Device, now: float) -> None:
        headers = [("Allow-Events", ", ".join(PACKAGES))] if PACKAGES else []
        self.replier.reply(txn, 489, "Bad Event", headers)
