"""REGISTER from an authenticated device: `sip.registrar` computes, `Location` applies.

The gate has already checked the device's credentials; here: which address of record it
may register, the domain, then the binding changes and the 200 with every binding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from email.utils import formatdate

from ..routing.model import Device
from ..sip.message import Request
from ..sip.registrar import RegisterOrigin, RegistrarPolicy, contact_header, process_register
from ..sip.stack import ServerTxn
from ..sip.uri import SipUri
from .directory import Directory
from .location import Location
from .replies import Replier

SUPPORTED_HEADER = "path, outbound"


_date: tuple[int, str] = (-1, "")


def _http_date(now: float) -> str:
    """The Date header value, formatted once per second (formatdate was 2 % of a REGISTER)."""
    global _date
    second = int(now)
    if _date[0] != second:
        _date = (second, formatdate(second, usegmt=True))
    return _date[1]


class Registrar:
    def __init__(
        self, directory: Directory, location: Location, replier: Replier, is_local: Callable[[str, object], bool]
    ) -> None:
        self.location = location
        self.replier = replier
        self.is_local = is_local
        # several nodes (docs/scaling.md): the Path entry naming this node and the device's flow,
        # put first in the Path of every binding received here; None with one node
        self.node_path: Callable[[RegisterOrigin], str] | None = None
        self.policy: RegistrarPolicy
        self.configure(directory)
        directory.listeners.append(self.configure)

    def configure(self, directory: Directory) -> None:
        s = directory.settings
        self.policy = RegistrarPolicy(
            min_expires=s.min_expires, max_expires=s.max_expires, default_expires=s.default_expires
        )

    @staticmethod
    def address_of_record(req: Request) -> SipUri | None:
        """The To of a REGISTER, when it is a SIP address of record (checked before the gate)."""
        to = req.to
        return to.uri if isinstance(to.uri, SipUri) and to.uri.user is not None else None

    def register(self, txn: ServerTxn, req: Request, device: Device, now: float) -> None:
        aor = self.address_of_record(req)
        assert aor is not None  # the router checked it
        user = aor.user_unescaped or ""
        if user not in (device.account, device.auth_username):
            self.replier.reply(txn, 403, "Forbidden (these credentials cannot register this address)")
            return
        if not self.is_local(aor.host, txn.source):
            self.replier.reply(txn, 403, "Forbidden (domain not served here)")
            return
        src = txn.source
        origin = RegisterOrigin(src.transport, src.remote, src.local, src.conn)
        result = process_register(
            req,
            account=device.account,
            auth_username=device.auth_username,
            existing=self.location.get(device.account),
            origin=origin,
            policy=self.policy,
            now=now,
        )
        if result.status != 200:
            self.replier.reply(txn, result.status, result.reason, result.headers)
            return
        if self.node_path is not None and result.upserts:
            own = self.node_path(origin)
            result.upserts = [replace(b, path=(own, *b.path)) for b in result.upserts]
        if result.upserts or result.removes:
            self.location.apply(result.upserts, result.removes, now)
        headers = [("Contact", contact_header(b, now)) for b in result.bindings]
        if any(b.outbound and b.reg_id is not None for b in result.upserts):
            headers.append(("Require", "outbound"))
        supported = {o.strip().lower() for v in req.headers.get_all("supported") for o in v.split(",")}
        if result.upserts and "path" in supported:  # RFC 3327 §5.3: echo the stored Path
            headers += [("Path", p) for p in req.headers.get_all("path")]
        headers.append(("Supported", SUPPORTED_HEADER))
        headers.append(("Date", _http_date(now)))
        self.replier.reply(txn, 200, "OK", headers)
