"""Several nodes, sans-IO: a binding another node holds is rung through it, and the node
holding a flow relays what another node sends it (sip/nodes.py, docs/scaling.md)."""

from __future__ import annotations

from dataclasses import replace

from onenumber.settings import Trunk
from onenumber.sip.message import Request, parse
from onenumber.sip.nodes import FLOW_PARAM, Flow, NodeAddress, make_flow_token, node_path, path_uri
from onenumber.sip.proxy import signed_route_params
from onenumber.sip.stack import Send

from .sipnet import SERVER, TRUNK, Net, invite, make_account, reply, requests_to, responses_to

SECRET = b"k" * 32  # the test bed's secret: the nodes share it
NODE_B = NodeAddress("127.0.0.3", 25070)
NODE_A = ("127.0.0.2", 25060)
PHONE = ("127.0.0.1", 40000)
FLOW = Flow("tcp", PHONE[0], PHONE[1], "w0.1fn2ab.tcp-1")


def _net() -> tuple[Net, list]:
    alice, devs = make_account("1000", "Alice", 1)
    return Net([alice], devs, trunks=(Trunk("gw", TRUNK[0], TRUNK[1]),)), devs


def _sends(out: list[tuple[Send, object]], host: str, port: int) -> list[tuple[Send, Request]]:
    return [(s, m) for s, m in out if isinstance(m, Request) and s.remote == (host, port)]


def test_a_binding_held_by_another_node_is_rung_through_that_node() -> None:
    net, devs = _net()
    b = net.bind(devs[0], PHONE[1], transport="tcp", flow=FLOW.conn)
    entry = node_path(NODE_B, SECRET, FLOW)
    net.location.apply([replace(b, path=(entry,))], [])
    out = net.send(invite("1000", TRUNK), TRUNK)
    [(send, inv)] = _sends(out, NODE_B.host, NODE_B.port)
    assert send.transport == "udp" and send.conn is None  # to the node, not over the flow
    assert inv.uri == b.contact  # the device's contact stays the Request-URI (loose routing)
    assert inv.headers.get_all("route") == [entry]
    assert "ons=" in (inv.headers.get("record-route") or "")  # our own, signed, as always
    assert not requests_to(out, PHONE[1])


def test_a_binding_held_by_this_node_is_rung_over_its_flow_without_the_route() -> None:
    net, devs = _net()
    b = net.bind(devs[0], PHONE[1], transport="tcp", flow=FLOW.conn)
    own = node_path(NodeAddress(*SERVER), SECRET, FLOW)
    net.location.apply([replace(b, path=(own, "<sip:edge.example.com;lr>"))], [])
    out = net.send(invite("1000", TRUNK), TRUNK)
    [inv] = requests_to(out, PHONE[1], "INVITE")
    sends = [s for s, m in out if m is inv]
    assert sends[0].conn == FLOW.conn
    assert inv.headers.get_all("route") == ["<sip:edge.example.com;lr>"]  # ours popped, the rest kept


def test_a_dead_nodes_udp_binding_is_tried_at_its_address() -> None:
    net, devs = _net()
    b = net.bind(devs[0], PHONE[1])
    net.location.apply([replace(b, path=(node_path(NODE_B, SECRET, Flow("udp", *PHONE)),))], [])
    net.core.proxy.reach.node_alive = lambda node: node != "127.0.0.3:25070"
    out = net.send(invite("1000", TRUNK), TRUNK)
    [inv] = requests_to(out, PHONE[1], "INVITE")
    assert inv.headers.get("route") is None
    assert not _sends(out, NODE_B.host, NODE_B.port)


def _from_node_a(token: str) -> Request:
    """What node A sends node B for the phone whose flow B holds (A's Record-Route signed)."""
    req = invite("1000", NODE_A)
    signed = signed_route_params(SECRET, req.call_id, req.from_.tag or "", None)
    text = bytes(req).decode()
    text = text.replace("INVITE sip:1000@127.0.0.1:25060", f"INVITE sip:1000@{PHONE[0]}:{PHONE[1]};transport=tcp", 1)
    head, _, rest = text.partition("\r\n")
    extra = (f"Route: <sip:{SERVER[0]}:{SERVER[1]};lr;{FLOW_PARAM}={token}>\r\n"
             f"Record-Route: <sip:{NODE_A[0]}:{NODE_A[1]};lr{signed}>\r\n")
    msg = parse(f"{head}\r\n{extra}{rest}".encode())
    assert isinstance(msg, Request)
    return msg


def test_the_node_holding_the_flow_relays_and_record_routes_with_the_token() -> None:
    net, _ = _net()  # node B here
    token = make_flow_token(SECRET, FLOW)
    req = _from_node_a(token)
    out = net.send(req, NODE_A)
    assert not [r for r in responses_to(out, NODE_A[1]) if r.status >= 400]  # no challenge: the token is enough
    [inv] = requests_to(out, PHONE[1], "INVITE")
    [send] = [s for s, m in out if m is inv]
    assert send.conn == FLOW.conn and send.transport == "tcp"
    assert inv.headers.get("route") is None
    rrs = inv.headers.get_all("record-route")
    assert len(rrs) == 3  # ours over TCP (to the phone), ours over UDP (to node A), node A's
    for rr in rrs[:2]:
        uri = path_uri(rr)
        assert uri is not None and uri.param(FLOW_PARAM) == token
        assert uri.param("ons") == path_uri(req.headers.get("record-route") or "").param("ons")  # type: ignore[union-attr]
    assert path_uri(rrs[0]).transport == "tcp" and path_uri(rrs[1]).transport is None  # type: ignore[union-attr]
    # the phone's answer goes back to node A
    out = net.send(reply(inv, 200, "OK", tag="ph", contact=f"sip:1000@{PHONE[0]}:{PHONE[1]};transport=tcp"),
                   PHONE, transport="tcp", conn=FLOW.conn)
    assert [r.status for r in responses_to(out, NODE_A[1])] == [200]
    # the caller's BYE, through node A: B's two Record-Routes as Route, then over the flow
    bye = _in_dialog(req, "BYE", [rrs[1], rrs[0]], to_tag="ph")
    out = net.send(bye, NODE_A)
    [fwd] = requests_to(out, PHONE[1], "BYE")
    assert next(s for s, m in out if m is fwd).conn == FLOW.conn
    # the phone's BYE, over its flow: B's Record-Routes, then node A's
    bye = _in_dialog(req, "BYE", rrs, to_tag="ph", from_phone=True)
    out = net.send(bye, PHONE, transport="tcp", conn=FLOW.conn)
    [to_a] = requests_to(out, NODE_A[1], "BYE")
    assert to_a.headers.get_all("route") == [rrs[2]]


def _in_dialog(invite_req: Request, method: str, routes: list[str], *, to_tag: str,
               from_phone: bool = False) -> Request:
    h = invite_req.headers
    frm, to = h.get("from") or "", f"{h.get('to')};tag={to_tag}"
    if from_phone:
        frm, to = to, frm
    src = PHONE if from_phone else NODE_A
    lines = [f"{method} sip:caller@127.0.0.1:30000 SIP/2.0" if from_phone else f"{method} {invite_req.uri} SIP/2.0",
             f"Via: SIP/2.0/{'TCP' if from_phone else 'UDP'} {src[0]}:{src[1]};branch=z9hG4bKbye{method};rport",
             *[f"Route: {r}" for r in routes], "Max-Forwards: 70", f"From: {frm}", f"To: {to}",
             f"Call-ID: {invite_req.call_id}", f"CSeq: {10 if from_phone else 2} {method}", "Content-Length: 0"]
    msg = parse(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


def test_a_forged_flow_token_is_refused() -> None:
    net, _ = _net()
    token = make_flow_token(b"another secret" * 3, FLOW)
    out = net.send(_from_node_a(token), NODE_A)
    assert [r.status for r in responses_to(out, NODE_A[1])] == [403]
    assert not requests_to(out, PHONE[1])


def test_unsolicited_message_waiting_reaches_a_device_through_its_node() -> None:
    from onenumber.sip.bodies import MessageSummary

    net, devs = _net()
    b = net.bind(devs[0], PHONE[1], transport="tcp", flow=FLOW.conn)
    entry = node_path(NODE_B, SECRET, FLOW)
    net.location.apply([replace(b, path=(entry,))], [])
    presence = net.core.presence
    assert presence is not None
    presence.unsolicited_mwi = True
    presence.set_mailbox("1000", MessageSummary(1, 0))
    [(send, notify)] = _sends(net.drain(), NODE_B.host, NODE_B.port)
    assert notify.method == "NOTIFY" and notify.uri == b.contact and notify.headers.get_all("route") == [entry]
    assert send.conn is None and send.transport == "udp"


def test_a_cancel_from_the_calling_node_reaches_the_phone_over_its_flow() -> None:
    from onenumber.sip.proxy import make_cancel

    net, _ = _net()  # node B
    req = _from_node_a(make_flow_token(SECRET, FLOW))
    out = net.send(req, NODE_A)
    [inv] = requests_to(out, PHONE[1], "INVITE")
    net.send(reply(inv, 180, "Ringing", tag="ph"), PHONE, transport="tcp", conn=FLOW.conn)
    out = net.send(make_cancel(req, None), NODE_A)
    assert 200 in [r.status for r in responses_to(out, NODE_A[1])]  # the CANCEL, answered hop by hop
    [cancel] = requests_to(out, PHONE[1], "CANCEL")
    assert next(s for s, m in out if m is cancel).conn == FLOW.conn
    out = net.send(reply(inv, 487, "Request Terminated", tag="ph"), PHONE, transport="tcp", conn=FLOW.conn)
    assert [r.status for r in responses_to(out, NODE_A[1])] == [487]
