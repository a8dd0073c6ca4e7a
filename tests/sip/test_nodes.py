"""Flow tokens and node Path entries (onenumber/sip/nodes.py)."""

from __future__ import annotations

import pytest

from onenumber.sip.nodes import (
    FLOW_PARAM,
    Flow,
    NodeAddress,
    copy_route_params,
    make_flow_token,
    node_id,
    node_path,
    parse_node_uri,
    path_node,
    path_uri,
    read_flow_token,
    route_flow,
)
from onenumber.sip.uri import SipUri, parse_uri

SECRET = b"s" * 32


def test_a_flow_token_names_its_flow_and_only_with_the_secret() -> None:
    flow = Flow("tcp", "192.0.2.7", 40123, "w0.1f3an2a9c0e.tcp-17")
    token = make_flow_token(SECRET, flow)
    assert read_flow_token(SECRET, token) == flow
    assert read_flow_token(b"x" * 32, token) is None  # another secret
    body, mac = token.split(".")
    assert read_flow_token(SECRET, body[:-1] + ("A" if body[-1] != "A" else "B") + "." + mac) is None
    assert read_flow_token(SECRET, body) is None
    assert read_flow_token(SECRET, "") is None
    assert read_flow_token(SECRET, "!!!." + mac) is None


def test_a_udp_flow_has_no_connection() -> None:
    flow = Flow("udp", "203.0.113.9", 5062)
    assert read_flow_token(SECRET, make_flow_token(SECRET, flow)) == flow


def test_a_token_is_a_valid_uri_parameter_value() -> None:
    token = make_flow_token(SECRET, Flow("ws", "::1", 1, "w3.ab.ws-1"))
    assert all(c.isalnum() or c in "-_." for c in token), token


def test_node_path_is_a_loose_route_to_the_node_carrying_the_token() -> None:
    node = NodeAddress("127.0.0.3", 25070)
    flow = Flow("tcp", "127.0.0.1", 30000, "w0.1n2.tcp-1")
    entry = node_path(node, SECRET, flow)
    uri = path_uri(entry)
    assert uri is not None and uri.host == "127.0.0.3" and uri.port == 25070 and uri.has_param("lr")
    assert uri.transport is None  # UDP between the nodes by default
    assert read_flow_token(SECRET, uri.param(FLOW_PARAM) or "") == flow
    assert path_node((entry, "<sip:edge.example.com;lr>")) == "127.0.0.3:25070"
    tcp = path_uri(node_path(NodeAddress("node-b.example.com", 5060, "tcp"), SECRET, flow))
    assert tcp is not None and tcp.transport == "tcp"


def test_path_node_is_none_for_paths_no_node_wrote() -> None:
    assert path_node(()) is None
    assert path_node(("<sip:edge.example.com;lr>",)) is None
    assert path_node(("<sip:edge.example.com;lr>", node_path(NodeAddress("h", 1), SECRET, Flow("udp", "a", 1)))) is None


def test_route_flow_takes_the_first_valid_token() -> None:
    good = Flow("tcp", "127.0.0.1", 1, "c")
    forged = parse_uri(f"sip:127.0.0.3:5;lr;{FLOW_PARAM}=AAAA.BBBBBBBBBBBB")
    valid = parse_uri(f"sip:127.0.0.3:5;lr;{FLOW_PARAM}={make_flow_token(SECRET, good)}")
    plain = parse_uri("sip:127.0.0.3:5;lr")
    assert isinstance(forged, SipUri) and isinstance(valid, SipUri) and isinstance(plain, SipUri)
    assert route_flow(SECRET, [plain, forged, valid]) == good
    assert route_flow(SECRET, [plain, forged]) is None


def test_parse_node_uri() -> None:
    assert parse_node_uri("sip:127.0.0.2:25060") == NodeAddress("127.0.0.2", 25060, "udp")
    assert parse_node_uri("sip:Node-B.example.com;transport=TCP") == NodeAddress("Node-B.example.com", 5060, "tcp")
    assert parse_node_uri("sip:[2001:db8::1]:5070").host == "2001:db8::1"
    for bad in ("http://x", "sip:user@host:5060", "sip:host;transport=tls", "nonsense"):
        with pytest.raises(ValueError):
            parse_node_uri(bad)


def test_node_address_uri_and_id() -> None:
    assert NodeAddress("2001:db8::1", 5070).uri() == "sip:[2001:db8::1]:5070;lr"
    assert NodeAddress("h", 1, "tcp").uri(";x=1") == "sip:h:1;transport=tcp;lr;x=1"
    assert node_id("[2001:DB8::1]", 5070) == "2001:db8::1:5070"


def test_copy_route_params_repeats_the_dialog_signature() -> None:
    rr = "<sip:127.0.0.2:5060;lr;onf=abc;ons=SIG>, <sip:other;lr>"
    assert copy_route_params(rr, ("onf", "ons")) == ";onf=abc;ons=SIG"
    assert copy_route_params("<sip:127.0.0.2;lr;ons=X>", ("onf", "ons")) == ";ons=X"
    assert copy_route_params(None, ("ons",)) == ""
    assert copy_route_params("garbage<<", ("ons",)) == ""
