"""Store fixtures: an open, migrated Store on each backend (see tests/conftest.py's db_url)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from onenumber.store import Store


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    opened = await Store.open(db_url)
    try:
        yield opened
    finally:
        await opened.close()
