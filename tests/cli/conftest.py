"""Fixtures of the `relmgr` command's tests: fresh settings, free ports, a clean environment."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from relmgr.settings import get_settings


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker of tests that take several seconds."""
    config.addinivalue_line("markers", "slow: takes several seconds (starts real processes)")


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test reads RELMGR_* afresh, without any the developer's shell may have set."""
    for name in list(os.environ):
        if name.startswith("RELMGR_"):
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
