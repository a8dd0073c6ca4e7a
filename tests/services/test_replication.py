"""Worker processes: the shared messages (services/replication.py) and Location's two sides
(its own changes queued for Redis, other workers' changes applied to the local copy)."""

from __future__ import annotations

from onenumber.model import Binding
from onenumber.services.location import Location
from onenumber.services.replication import (
    decode_auth,
    decode_binding,
    decode_changes,
    encode_auth,
    encode_binding,
    encode_changes,
    field,
    flow_prefix,
    flow_worker,
    split_field,
)


def binding(account: str = "1000", contact: str = "sip:a@127.0.0.1:5070", **kw: object) -> Binding:
    base: dict[str, object] = dict(account=account, auth_username=account, contact=contact, expires_at=1000.0,
                                   transport="udp", source=("127.0.0.1", 5070), local=("127.0.0.1", 5060))
    base.update(kw)
    return Binding(**base)  # type: ignore[arg-type]


def test_binding_round_trips_every_field() -> None:
    b = binding(instance="<urn:uuid:1>", reg_id=2, flow="w1.tcp-3", path=("<sip:p;lr>",), user_agent="UA",
                call_id="c", cseq=7, q=0.5, outbound=True, params=";+sip.ice", transport="tcp")
    assert decode_binding(encode_binding(b)) == b


def test_changes_and_auth_messages_round_trip() -> None:
    b = binding()
    assert decode_changes(encode_changes(3, [b], [("1001", "k")])) == (3, [b], [("1001", "k")])
    assert decode_auth(encode_auth(1, True, "127.0.0.2", "1000", 12.5)) == (1, True, "127.0.0.2", "1000", 12.5)
    assert decode_auth(encode_auth(0, False, "::1", "a b", 1.0).encode()) == (0, False, "::1", "a b", 1.0)


def test_field_and_flow_names() -> None:
    assert split_field(field("1000", "sip:x@h;transport=udp")) == ("1000", "sip:x@h;transport=udp")
    assert flow_worker(flow_prefix(12) + "tcp-4") == 12
    assert flow_worker("tcp-4") is None and flow_worker(None) is None and flow_worker("wx.tcp-1") is None


def test_own_changes_are_queued_for_the_shared_store() -> None:
    loc = Location(None)
    loc.replicate = True
    woken = []
    loc.on_outgoing = lambda: woken.append(1)
    b = binding()
    loc.apply([b], [])
    assert loc.outgoing_up == {("1000", b.key): b} and woken
    loc.apply([], [b])
    assert loc.outgoing_up == {} and loc.outgoing_del == {("1000", b.key)}


def test_other_workers_changes_are_applied_without_echo_or_events() -> None:
    loc = Location(None)
    loc.replicate = True
    told: list[str] = []
    loc.listeners.append(told.append)
    b = binding()
    loc.apply_remote([b], [])
    assert loc.get("1000") == [b] and told == ["1000"]
    assert loc.find_contact(b.contact) == b
    assert not loc.outgoing_up and not loc._pending_up  # that worker shares and persists it
    loc.apply_remote([], [("1000", b.key)])
    assert loc.get("1000") == [] and not loc.outgoing_del and not loc._pending_del
    loc.apply_remote([], [("1000", "unknown")])  # an unknown removal is no error


def test_a_binding_on_another_workers_connection_survives_a_local_close_of_the_same_number() -> None:
    loc = Location(None)
    remote = binding(transport="tcp", flow="w1.tcp-1")
    loc.apply_remote([remote], [])
    assert loc.drop_flow("w0.tcp-1") == 0
    assert loc.get("1000") == [remote]


def test_expiry_of_another_workers_binding_is_left_to_it_unless_janitor() -> None:
    for janitor in (False, True):
        loc = Location(None)
        loc.replicate = True
        loc.janitor = janitor
        mine, theirs = binding(contact="sip:mine@h", expires_at=10.0), binding(contact="sip:theirs@h", expires_at=10.0)
        loc.apply([mine], [])
        loc.apply_remote([theirs], [])
        loc.outgoing_up.clear()
        assert loc.expire(20.0) == 2  # both gone from the local copy
        assert loc.get("1000") == []
        expected = {("1000", mine.key), ("1000", theirs.key)} if janitor else {("1000", mine.key)}
        assert loc.outgoing_del == expected  # shared (and written to the database) by its owner only
        assert set(loc._pending_del) == expected
