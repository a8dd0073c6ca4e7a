"""schemathesis against the real server's /api/openapi.json with an admin API token: no 5xx,
responses that match the schema (body, status code, content type). Bounded: a few examples per
operation, so the whole run stays well under two minutes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .harness import LOOPBACK, Server, add_accounts
from .wsua import wait_http

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
EXAMPLES = 20


@pytest.fixture(scope="module")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(Path(tmp_path_factory.mktemp("schemathesis")) / "server")
    srv.start()
    try:
        add_accounts(srv, [("1000", "Alice", 2), ("1001", "Bob", 1)])
        srv.cli("trunk", "add", "pstn", "--host", "192.0.2.10", "--prefix", "0")
        wait_http(srv)
        yield srv
    finally:
        srv.stop()


def test_api_conforms_to_its_schema(api_server: Server) -> None:
    base = f"http://{LOOPBACK}:{api_server.http_port}"
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    headers = {"Authorization": f"Bearer {api_server.api_token}"}
    failures: list[str] = []
    tested = 0
    calls = [0]
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.method.upper() == "DELETE" and operation.path == "/api/tokens/{token_id}":
            continue  # could revoke the test's own token; tests/api covers it
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                      derandomize=True, database=None)
            def run(case: schemathesis.Case) -> None:
                calls[0] += 1
                case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=10)

            try:
                run()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.path  # nothing to get wrong (no parameters)
            except (Exception, BaseExceptionGroup) as exc:  # collect them all, then fail once with the list
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"[:3000])
        tested += 1
    assert tested >= 30 and calls[0] >= 20 * tested, (tested, calls)
    print(f"schemathesis: {tested} operations, {calls[0]} requests")
    assert not failures, "\n\n".join(failures)
