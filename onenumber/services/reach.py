"""How to reach a registered device: the next hop and the Route set, from its binding.

With one node: the connection the REGISTER came over (TCP/TLS/WS), the address it came from
(UDP, through NATs), else its Contact; the Route set is its Path (RFC 3327). With several
nodes (sip/nodes.py) the first Path entry may name the node holding the device's flow: another
node is the next hop, with the whole Path as Route; this node's own entry is dropped and the
flow used directly. A dead node's UDP binding is tried at the device's address.
"""

from __future__ import annotations

from collections.abc import Callable

from ..model import Binding
from ..sip.nodes import FLOW_PARAM, node_id, path_uri
from ..sip.proxy import target_uri
from ..sip.stack import Target
from ..sip.uri import SipUri


class Reach:
    """Where a binding's requests go; `is_own_uri` and `node_alive` are set by the composition."""

    def __init__(self) -> None:
        self.is_own_uri: Callable[[SipUri], bool] = lambda uri: False
        self.node_alive: Callable[[str], bool] = lambda node: True

    def route(self, b: Binding) -> tuple[Target, list[str], bool] | None:
        """(next hop, Route set, through another node); None when the binding names no address."""
        path = list(b.path)
        if path and FLOW_PARAM in path[0]:  # several nodes: which one holds the device's flow
            hop = self.node_hop(path[0], b.transport)
            if hop is not None:
                return hop, path, True
            path = path[1:]  # this node (or a dead one's UDP binding, tried directly)
        if b.flow:
            return Target(b.transport, b.source[0], b.source[1], b.flow), path, False
        if b.transport == "udp":
            return Target("udp", b.source[0], b.source[1]), path, False
        uri = target_uri(b.contact)
        if uri is None:
            return None
        return Target(b.transport, uri.host.strip("[]"), uri.default_port()), path, False

    def node_hop(self, entry: str, transport: str) -> Target | None:
        """The node a Path entry names, as a next hop; None when it is this node (or a dead node,
        for a UDP binding: its address is tried directly, which works unless a NAT only lets the
        dead node's packets in)."""
        uri = path_uri(entry)
        if uri is None or self.is_own_uri(uri):
            return None
        if transport == "udp" and not self.node_alive(node_id(uri.host, uri.default_port())):
            return None
        return Target(uri.transport or "udp", uri.host.strip("[]"), uri.default_port())
