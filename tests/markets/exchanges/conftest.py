"""Fixtures of the adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from markets.exchanges import limiter


@pytest.fixture(autouse=True)
def _limiters_forgotten() -> Iterator[None]:
    """A Retry-After a test provoked (a 418 asking for 300 s) holds no later test: the process's venue limiters and
    their shared entries are forgotten after each test (a later simulator may get the same port)."""
    yield
    limiter.reset()
