"""Values shared by every layer: the lowest layer of the package, importing nothing of ours.

`sip/` (the registrar computes bindings), `routing/` (plans ring them), `services/` and the
store all use these; keeping them here lets `sip/` stay below `routing/` (the layer rule in
docs/architecture.md, checked by tests/test_layers.py).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Binding:
    """A live registration of one device (RFC 3261 §10, RFC 5626)."""

    account: str
    auth_username: str
    contact: str  # the Contact URI as registered (without its header parameters)
    expires_at: float  # unix time
    transport: str  # udp | tcp | tls | ws | wss
    source: tuple[str, int]  # where the REGISTER came from (received/rport)
    local: tuple[str, int] = ("", 0)  # the server socket it arrived on
    instance: str | None = None  # +sip.instance
    reg_id: int | None = None
    flow: str | None = None  # connection id for TCP/TLS/WS; None for UDP
    path: tuple[str, ...] = ()  # Path header values (RFC 3327)
    user_agent: str = ""
    call_id: str = ""
    cseq: int = 0
    q: float | None = None
    outbound: bool = False  # the Contact carried ;ob (RFC 5626)
    params: str = ""  # Contact header parameters other than expires/q, verbatim

    @property
    def key(self) -> str:
        """Binding identity: instance+reg-id when present, else the contact URI."""
        if self.instance:
            return f"{self.instance};reg-id={self.reg_id or 0}"
        return self.contact
