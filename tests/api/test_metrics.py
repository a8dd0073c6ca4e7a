"""/metrics: Prometheus text read from a live (sans-IO) core; loopback or bearer token only."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from onenumber.api.metrics import MetricsSource, metrics_router
from onenumber.services.callstats import CallStats
from tests.services.sipnet import invite, reply, requests_to
from tests.services.test_calls import D0, D1, TRUNK, two_devices


def scrape_source() -> MetricsSource:
    net, _ = two_devices()
    calls = CallStats(net.core.events)
    out = net.send(invite("1000", TRUNK), TRUNK)  # answered
    net.send(reply(requests_to(out, D0, "INVITE")[0], 200, "OK", tag="a", contact="sip:1000@127.0.0.1:31000"),
             ("127.0.0.1", D0))
    out = net.send(invite("1000", TRUNK), TRUNK)  # busy everywhere
    for port in (D0, D1):
        for inv in requests_to(out, port, "INVITE"):
            net.send(reply(inv, 486, "Busy Here", tag="b"), ("127.0.0.1", port))
    assert net.core.overload is not None
    for _ in range(3):  # a loop that keeps running late
        net.core.overload.sample(net.now, lag=0.5)
    net.send(invite("1000", TRUNK), TRUNK)  # shed
    return MetricsSource(net.stack, net.location, calls, net.core.gate, net.core.overload, lambda: 0.75,
                         clock=lambda: net.now)


def client(source: MetricsSource, host: str, token: str | None = None) -> TestClient:
    app = FastAPI()
    app.include_router(metrics_router(source, token=token))
    return TestClient(app, client=(host, 40000))


def value(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} missing in\n{text}"
    return float(m.group(1))


def test_metrics_say_what_the_server_did() -> None:
    r = client(scrape_source(), "127.0.0.1").get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert value(text, 'onenumber_sip_requests_total{method="INVITE"}') == 3
    assert value(text, 'onenumber_sip_responses_total{method="INVITE",status="200"}') == 1
    assert value(text, 'onenumber_sip_responses_total{method="INVITE",status="503"}') == 1
    assert value(text, "onenumber_calls_started_total") == 2
    assert value(text, "onenumber_calls_answered_total") == 1
    assert value(text, "onenumber_calls_active") == 1
    assert value(text, 'onenumber_bindings{transport="udp"}') == 2
    assert value(text, 'onenumber_bindings{transport="tcp"}') == 0
    assert value(text, 'onenumber_requests_shed_total{method="INVITE"}') == 1
    assert value(text, "onenumber_overloaded") == 1
    assert value(text, "onenumber_loop_lag_seconds") == 0.5
    assert value(text, "onenumber_loop_lag_max_seconds") == 0.75
    assert value(text, 'onenumber_transactions{side="server"}') >= 2
    assert value(text, 'onenumber_calls_failed_total{cause="busy"}') == 1
    assert value(text, "onenumber_auth_failures_total") == 0
    assert "# TYPE onenumber_calls_failed_total counter" in text


def test_metrics_are_for_this_machine_or_the_token_holder() -> None:
    src = scrape_source()
    assert client(src, "192.0.2.7").get("/metrics").status_code == 403
    other = client(src, "192.0.2.7", token="s3cret")
    assert other.get("/metrics").status_code == 403
    assert other.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert other.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client(src, "::1").get("/metrics").status_code == 200
