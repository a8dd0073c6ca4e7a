"""Which SIP core a test run exercises: `make test` runs the pure one, then `make test-compiled`
runs tests/sip against a mypyc build (docs/compiled.md). ONENUMBER_EXPECT_CORE says which the
run means to test, so a build that silently fell back (or a stray in-place build) fails here."""

from __future__ import annotations

import os

import pytest

from onenumber.sip import message, sip_core, stack


def test_the_core_under_test_is_the_one_expected() -> None:
    expected = os.environ.get("ONENUMBER_EXPECT_CORE")
    if expected is None:
        pytest.skip("ONENUMBER_EXPECT_CORE not set (make test / make test-compiled set it)")
    assert sip_core() == expected, (message.__file__, stack.__file__)


def test_sip_core_names_the_modules_it_runs() -> None:
    core = sip_core()
    assert core.startswith("compiled") == (not (message.__file__ or "").endswith(".py"))
