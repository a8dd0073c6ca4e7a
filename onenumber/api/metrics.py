"""`/metrics` in the Prometheus text format (prometheus-client), read from the live server.

The hot path only bumps plain counters (the stack's `requests_in` / `responses_out`, the
gate's and the overload state's counts, `CallStats`); this collector turns them into metric
families when Prometheus scrapes, in a registry of its own (no global state).

Who may read it: a client on the server itself (loopback), or one that sends
`Authorization: Bearer <token>` when a token is set (`ONENUMBER_METRICS_TOKEN`).
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from ..services.callstats import CallStats
from ..services.gate import Gate
from ..services.keepalive import Keepalive
from ..services.location import Location
from ..sip.overload import Overload
from ..sip.stack import Stack


@dataclass
class MetricsSource:
    """What the collector reads; every part but the stack is optional."""

    stack: Stack
    location: Location | None = None
    calls: CallStats | None = None
    gate: Gate | None = None
    overload: Overload | None = None
    max_lag: Callable[[], float] | None = None  # the worst loop lag since the last scrape (resets)
    keepalive: Keepalive | None = None
    dialogs: Callable[[], int] | None = None  # calls whose dialog state is held (services/dialogs.py)
    extra: dict[str, Callable[[], float]] = field(default_factory=dict)  # more gauges by name
    clock: Callable[[], float] = time.time


class OneNumberCollector(Collector):
    def __init__(self, source: MetricsSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        s = self.source
        stack = s.stack
        req = CounterMetricFamily("onenumber_sip_requests", "SIP requests received, by method", labels=["method"])
        for method, n in sorted(stack.requests_in.items()):
            req.add_metric([method], n)
        yield req
        resp = CounterMetricFamily("onenumber_sip_responses", "SIP responses sent (ours and relayed), "
                                   "by method and status", labels=["method", "status"])
        for (method, status), n in sorted(stack.responses_out.items()):
            resp.add_metric([method, str(status)], n)
        yield resp
        txns = GaugeMetricFamily("onenumber_transactions", "live SIP transactions (also those waiting out "
                                 "their timers)", labels=["side"])
        txns.add_metric(["server"], len(stack.server_txns))
        txns.add_metric(["client"], len(stack.client_txns))
        yield txns
        yield GaugeMetricFamily("onenumber_requests_in_progress", "requests accepted and not answered yet",
                                value=stack.pending)
        if s.calls is not None:
            c = s.calls
            yield CounterMetricFamily("onenumber_calls_started", "calls routed", value=c.started)
            yield CounterMetricFamily("onenumber_calls_answered", "calls answered", value=c.answered)
            yield CounterMetricFamily("onenumber_calls_ended", "answered calls that ended", value=c.ended)
            failed = CounterMetricFamily("onenumber_calls_failed", "calls ended without an answer, by cause",
                                         labels=["cause"])
            for cause, n in sorted(c.failed.items()):
                failed.add_metric([cause], n)
            yield failed
            yield GaugeMetricFamily("onenumber_calls_active", "calls ringing or in conversation", value=c.active)
        if s.dialogs is not None:
            yield GaugeMetricFamily("onenumber_dialogs", "calls whose dialog state is held (set up or answered, "
                                    "not ended yet)", value=s.dialogs())
        if s.location is not None:
            by = s.location.count_by_transport()
            bindings = GaugeMetricFamily("onenumber_bindings", "registered contacts, by transport",
                                         labels=["transport"])
            for transport in sorted(set(by) | {"udp", "tcp", "tls", "ws", "wss"}):
                bindings.add_metric([transport], by.get(transport, 0))
            yield bindings
        if s.overload is not None:
            ov = s.overload
            yield GaugeMetricFamily("onenumber_loop_lag_seconds", "how late the event loop ran its last "
                                    "sampling timer", value=ov.lag)
            if s.max_lag is not None:
                yield GaugeMetricFamily("onenumber_loop_lag_max_seconds", "the worst loop lag since the "
                                        "previous scrape", value=s.max_lag())
            yield GaugeMetricFamily("onenumber_udp_receive_queue_bytes", "bytes waiting in the UDP receive "
                                    "queue (last sample)", value=ov.queue)
            yield GaugeMetricFamily("onenumber_udp_queue_delay_seconds", "the UDP receive queue in seconds of work "
                                    "at the rate messages are being handled (last sample)", value=ov.queue_delay)
            yield GaugeMetricFamily("onenumber_overloaded", "1 while new INVITEs and REGISTERs are refused "
                                    "with 503", value=1 if ov.overloaded(s.clock(), stack.pending) else 0)
            shed = CounterMetricFamily("onenumber_requests_shed", "requests refused with 503 under overload, "
                                       "by method", labels=["method"])
            for method in ("INVITE", "REGISTER"):
                shed.add_metric([method], ov.shed.get(method, 0))
            yield shed
        if s.gate is not None:
            g = s.gate.stats
            yield CounterMetricFamily("onenumber_auth_failures", "digest authentications that failed "
                                      "(wrong credentials or unknown user)", value=g["auth_failures"])
            yield CounterMetricFamily("onenumber_auth_blocks", "addresses or (address, user) pairs blocked "
                                      "after repeated failures", value=g["auth_blocks"])
            yield CounterMetricFamily("onenumber_auth_blocked_requests", "requests refused while blocked",
                                      value=g["auth_blocked"])
        if s.keepalive is not None:
            k = s.keepalive.stats
            yield CounterMetricFamily("onenumber_keepalive_pings", "OPTIONS keepalive pings sent to UDP bindings",
                                      value=k["pings"])
            yield CounterMetricFamily("onenumber_keepalive_dropped", "UDP bindings dropped: keepalive pings "
                                      "unanswered", value=k["dropped"])
        for name, read in sorted(s.extra.items()):
            yield GaugeMetricFamily(name, name.replace("_", " "), value=read())


def allowed(request: Request, token: str | None) -> bool:
    host = request.client.host if request.client else ""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return False


def metrics_router(source: MetricsSource | Collector, *, token: str | None = None) -> APIRouter:
    """`GET /metrics`: loopback clients, or any client with the bearer token when one is set.
    `source` is this process's numbers, or a collector of its own (several workers:
    `metrics_shared.MergedCollector`)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OneNumberCollector(source) if isinstance(source, MetricsSource) else source)
    router = APIRouter()

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        if not allowed(request, token):
            raise HTTPException(403, detail="/metrics answers on the server itself, or with the bearer token "
                                            "set in ONENUMBER_METRICS_TOKEN")
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
