"""Several nodes sharing one registrar (docs/scaling.md): flow tokens and node Path entries.

A device's connection (TCP/TLS/WS) or NAT address (UDP) is only usable from the node that
received its REGISTER. That node adds itself as the first Path entry of the binding (RFC 3327,
as an RFC 5626 edge proxy does), with a **flow token**: the transport, address and connection
id of the device's flow, signed with the secret every node shares. Another node ringing the
binding sends the request to that node with the Path as Route (loose routing); the owning
node sees its own Route carrying a token that verifies, and relays over the flow it names.
It also Record-Routes with the token, so in-dialog requests reach the device the same way.

Pure functions: no sockets, no clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import NamedTuple

from .errors import ParseError
from .headers import NameAddr
from .uri import SipUri, parse_uri

FLOW_PARAM = "onflow"  # the flow token, in a Path / Route / Record-Route URI of ours
_SEP = "\x1f"
_MAC_BYTES = 9  # 72 bits: 12 base64url characters


class Flow(NamedTuple):
    """Where a device is reached from the node holding it: a connection, or a UDP address."""

    transport: str
    host: str
    port: int
    conn: str | None = None


class NodeAddress(NamedTuple):
    """A node's SIP address, as other nodes reach it (`--node-uri`)."""

    host: str
    port: int
    transport: str = "udp"

    @property
    def node_id(self) -> str:
        return node_id(self.host, self.port)

    def uri(self, params: str = "") -> str:
        tp = "" if self.transport == "udp" else f";transport={self.transport}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"sip:{host}:{self.port}{tp};lr{params}"


def node_id(host: str, port: int) -> str:
    """The identity of a node (its heartbeat key, the owner of a binding): `host:port`."""
    return f"{host.strip('[]').lower()}:{port}"


def parse_node_uri(text: str) -> NodeAddress:
    """`sip:10.0.0.2:5060` or `sip:node-b.example.com:5060;transport=tcp` → NodeAddress.
    Raises ValueError when it is no SIP URI with a host (port 5060 when none is given)."""
    try:
        uri = parse_uri(text.strip())
    except ParseError as exc:
        raise ValueError(f"not a SIP URI: {text!r}") from exc
    if not isinstance(uri, SipUri) or not uri.host or uri.user is not None:
        raise ValueError(f"a node URI is sip:HOST:PORT (no user part): {text!r}")
    transport = (uri.transport or "udp").lower()
    if transport not in ("udp", "tcp"):
        raise ValueError(f"nodes talk over udp or tcp, not {transport!r}: {text!r}")
    return NodeAddress(uri.host.strip("[]"), uri.port or 5060, transport)


def _mac(secret: bytes, payload: str) -> str:
    digest = hashlib.blake2s(payload.encode(), key=secret[:32], digest_size=_MAC_BYTES,
                             person=b"onflow").digest()
    return base64.urlsafe_b64encode(digest).decode()


def make_flow_token(secret: bytes, flow: Flow) -> str:
    """`<payload>.<mac>`, both base64url: safe as a URI parameter value."""
    payload = _SEP.join((flow.transport, flow.host, str(flow.port), flow.conn or ""))
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{body}.{_mac(secret, payload)}"


def read_flow_token(secret: bytes, token: str) -> Flow | None:
    """The flow a token names, or None when it is malformed or not signed with `secret`."""
    body, dot, mac = token.partition(".")
    if not dot or not body or len(body) > 400:
        return None
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(_mac(secret, payload), mac):
        return None
    parts = payload.split(_SEP)
    if len(parts) != 4 or not parts[2].isdigit():
        return None
    transport, host, port, conn = parts
    return Flow(transport, host, int(port), conn or None)


def node_path(node: NodeAddress, secret: bytes, flow: Flow) -> str:
    """The Path entry a node adds to a binding it received: itself, with the flow's token."""
    return f"<{node.uri(f';{FLOW_PARAM}={make_flow_token(secret, flow)}')}>"


def path_uri(value: str) -> SipUri | None:
    """The SIP URI of one Path / Route header value."""
    try:
        uri = NameAddr.parse(value).uri
    except ParseError:
        return None
    return uri if isinstance(uri, SipUri) else None


def path_node(path: tuple[str, ...] | list[str]) -> str | None:
    """The node owning a binding (`host:port`): its first Path entry when a node put it there."""
    if not path or FLOW_PARAM not in path[0]:
        return None
    uri = path_uri(path[0])
    if uri is None or not uri.param(FLOW_PARAM):
        return None
    return node_id(uri.host, uri.port or uri.default_port())


def route_flow(secret: bytes, routes: list[SipUri]) -> Flow | None:
    """The flow named by a valid token in Routes of ours (just popped), if any."""
    for uri in routes:
        token = uri.param(FLOW_PARAM)
        if token:
            flow = read_flow_token(secret, token)
            if flow is not None:
                return flow
    return None


def copy_route_params(record_route: str | None, names: tuple[str, ...]) -> str:
    """`;name=value…` of the given parameters of a Record-Route (the signature of the node
    that set up the dialog, which the owning node repeats in its own Record-Route)."""
    if not record_route:
        return ""
    uri = path_uri(record_route.split(",", 1)[0])  # the first one: the nearest hop's
    if uri is None:
        return ""
    out = ""
    for name in names:
        value = uri.param(name)
        if value:
            out += f";{name}={value}"
    return out
