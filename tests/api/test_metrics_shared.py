"""/metrics across workers: each worker's values in prometheus-client's multiprocess files,
merged in worker 0's answer (sums for counters and live counts, the worst for loop lag, the
largest copy for bindings); a dead worker's live gauges leave, its counters stay."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from onenumber.api.metrics import MetricsSource, OneNumberCollector, metrics_router
from onenumber.api.metrics_shared import MergedCollector, RecentMax, SharedMetrics, process_dead, reset_dir
from tests.api.test_metrics import scrape_source


class Fake(Collector):
    def __init__(self, invites: int, active: int, lag: float, bindings: int) -> None:
        self.invites, self.active, self.lag, self.bindings = invites, active, lag, bindings

    def collect(self) -> Iterator[Metric]:
        req = CounterMetricFamily("onenumber_sip_requests", "SIP requests received, by method", labels=["method"])
        req.add_metric(["INVITE"], self.invites)
        yield req
        yield GaugeMetricFamily("onenumber_calls_active", "calls", value=self.active)
        yield GaugeMetricFamily("onenumber_loop_lag_seconds", "lag", value=self.lag)
        b = GaugeMetricFamily("onenumber_bindings", "bindings", labels=["transport"])
        b.add_metric(["udp"], self.bindings)
        yield b


def scrape(collector: Collector) -> str:
    app = FastAPI()
    app.include_router(metrics_router(collector))
    return TestClient(app, client=("127.0.0.1", 40000)).get("/metrics").text


def value(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} missing in\n{text}"
    return float(m.group(1))


def test_two_workers_merge_into_one_answer(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics"
    reset_dir(path)
    w0_numbers = Fake(invites=3, active=1, lag=0.01, bindings=5)
    w0 = SharedMetrics(w0_numbers, path, pid=1000)
    w1 = SharedMetrics(Fake(invites=4, active=2, lag=0.2, bindings=5), path, pid=1001)
    w1.export()  # worker 1 on its own clock; worker 0 writes at the scrape
    text = scrape(MergedCollector(w0))
    assert value(text, 'onenumber_sip_requests_total{method="INVITE"}') == 7
    assert value(text, "onenumber_calls_active") == 3  # livesum
    assert value(text, "onenumber_loop_lag_seconds") == 0.2  # livemax: the worst worker
    assert value(text, 'onenumber_bindings{transport="udp"}') == 5  # copies of one set: not 10
    assert "pid=" not in text
    w0_numbers.invites = 5  # worker 0's own numbers are read at the scrape
    assert value(scrape(MergedCollector(w0)), 'onenumber_sip_requests_total{method="INVITE"}') == 9

    # worker 1 dies: its live gauges leave at once, its counters stay in the totals
    w1.close()
    process_dead(path, 1001)
    text = scrape(MergedCollector(w0))
    assert value(text, "onenumber_calls_active") == 1
    assert value(text, "onenumber_loop_lag_seconds") == 0.01
    assert value(text, 'onenumber_sip_requests_total{method="INVITE"}') == 9
    # its replacement starts from zero in files of its own: the total does not go down
    SharedMetrics(Fake(invites=1, active=0, lag=0.0, bindings=5), path, pid=1002).export()
    assert value(scrape(MergedCollector(w0)), 'onenumber_sip_requests_total{method="INVITE"}') == 10
    reset_dir(path)  # the next run starts empty
    assert list(path.iterdir()) == []


def test_the_real_collector_round_trips_through_the_files(tmp_path: Path) -> None:
    source = scrape_source()
    direct = scrape(OneNumberCollector(source))
    merged = scrape(MergedCollector(SharedMetrics(OneNumberCollector(source), tmp_path, pid=7)))
    for name in ('onenumber_sip_requests_total{method="INVITE"}', "onenumber_calls_answered_total",
                 "onenumber_calls_active", 'onenumber_bindings{transport="udp"}',
                 'onenumber_requests_shed_total{method="INVITE"}', "onenumber_overloaded"):
        assert value(merged, name) == value(direct, name), name


def test_dialogs_gauge() -> None:
    source = scrape_source()
    source.dialogs = lambda: 4
    assert value(scrape(OneNumberCollector(source)), "onenumber_dialogs") == 4
    assert isinstance(source, MetricsSource)


def test_recent_max_keeps_the_peak_for_the_window() -> None:
    now = [0.0]
    takes = iter([0.5, 0.1, 0.2, 0.0])
    peak = RecentMax(lambda: next(takes), window=15.0, clock=lambda: now[0])
    assert peak() == 0.5
    now[0] = 10.0
    assert peak() == 0.5  # still within the window, although the reading was reset
    now[0] = 16.0
    assert peak() == 0.2  # the 0.5 of t=0 left the window
    now[0] = 40.0
    assert peak() == 0.0
