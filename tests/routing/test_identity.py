"""The caller identity (routing/identity.py): the account, never the device."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from onenumber.routing.identity import caller_identity
from onenumber.routing.model import Account
from onenumber.sip.headers import NameAddr


def test_internal_calls_show_the_number_external_the_cli_then_did() -> None:
    a = Account("1000", "Alice", dids=("+3225550100",), custom_cli="0612345678")
    assert caller_identity(a, external=False).number == "1000"
    assert caller_identity(a, external=True).number == "0612345678"
    assert caller_identity(Account("1000", "A", dids=("+3225550100",)), external=True).number == "+3225550100"
    assert caller_identity(Account("1000", "A"), external=True).number == "1000"


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40))
def test_any_display_name_makes_a_valid_name_addr(name: str) -> None:
    ident = caller_identity(Account("1000", name), external=False)
    na = NameAddr.parse(ident.name_addr("pbx.example.com"))
    assert str(na.uri) == "sip:1000@pbx.example.com"
    assert na.display is not None
