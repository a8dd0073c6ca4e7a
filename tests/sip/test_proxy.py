"""Proxy helpers (onenumber.sip.proxy): what they remember must be what parsing gives."""

from __future__ import annotations

import pytest

from onenumber.sip.headers import Via
from onenumber.sip.proxy import via_value


@pytest.mark.parametrize(("transport", "host"), [("udp", "127.0.0.1"), ("tcp", "[2001:db8::1]"), ("ws", "pbx.example")])
def test_via_value_remembers_what_parse_gives(transport: str, host: str) -> None:
    value = via_value(transport, host, 5070, "z9hG4bKon1234.abcd")
    assert Via.parse(value) == Via._parse(value)
    assert Via.parse(value).branch == "z9hG4bKon1234.abcd"
