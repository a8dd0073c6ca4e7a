"""One log line per call event with its Call-ID; JSON lines when asked."""

from __future__ import annotations

import json
import logging

import pytest

from onenumber.services.eventlog import EventLog, JsonFormatter

from .sipnet import invite, reply, requests_to
from .test_calls import D0, TRUNK, two_devices


def test_each_call_event_is_one_line_with_the_call_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="onenumber.calls")
    net, _ = two_devices()
    EventLog(net.core.events)
    req = invite("1000", TRUNK)
    out = net.send(req, TRUNK)
    net.send(reply(requests_to(out, D0, "INVITE")[0], 200, "OK", tag="a", contact="sip:1000@127.0.0.1:31000"),
             ("127.0.0.1", D0))
    records = [r for r in caplog.records if r.name == "onenumber.calls" and r.event.startswith("Call")]  # type: ignore[attr-defined]
    assert [r.event for r in records] == ["CallStarted", "CallAnswered"]  # type: ignore[attr-defined]
    assert all(r.call_id == req.call_id for r in records)  # type: ignore[attr-defined]
    assert f"call_id={req.call_id}" in records[0].getMessage()
    line = json.loads(JsonFormatter().format(records[1]))
    assert line["call_id"] == req.call_id and line["event"] == "CallAnswered" and line["level"] == "info"
    assert line["fields"]["device"] == "1000" and line["logger"] == "onenumber.calls"
    assert line["ts"].endswith("Z")


def test_event_log_costs_nothing_when_info_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="onenumber.calls")
    net, _ = two_devices()
    before = net.core.events.wanted
    EventLog(net.core.events)
    assert net.core.events.wanted == before


def test_json_formatter_plain_record_and_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec = logging.LogRecord("onenumber.x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info())
    line = json.loads(JsonFormatter().format(rec))
    assert line["msg"] == "failed here" and "call_id" not in line and "ValueError: boom" in line["exc"]
