"""Fixtures for end-to-end tests: a running server per test, real peers required."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .harness import Server

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A fresh server on free ports with an empty SQLite database."""
    srv = Server(tmp_path / "server")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session", autouse=True)
def _peers_installed() -> None:
    missing = [p for p in ("sipp", "sipsak", "baresip") if shutil.which(p) is None]
    if missing:
        pytest.fail(f"test peers missing: {', '.join(missing)}; run 'make test' (scripts/install-peers.sh)")
