"""The caller identity a call carries: the account's number and name, never a device's.

Pure: the proxy puts the result in From and P-Asserted-Identity (SPEC "Outgoing calls").
"""

from __future__ import annotations

from dataclasses import dataclass

from ..frozen import quick_init
from .model import Account


@quick_init
@dataclass(frozen=True, slots=True)
class Identity:
    number: str
    name: str

    def name_addr(self, domain: str) -> str:
        """`"Name" <sip:number@domain>`, the display name quoted (RFC 3261 quoted-string)."""
        quoted = self.name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <sip:{self.number}@{domain}>'


def caller_identity(caller: Account, *, external: bool) -> Identity:
    """Internal calls show the account number; external ones the custom CLI, else the first
    DID, else the number (TVox "CLI Custom")."""
    number = caller.number
    if external:
        number = caller.custom_cli or (caller.dids[0] if caller.dids else caller.number)
    return Identity(number, caller.display_name)
