"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from exchangesim.server import Simulator, running_in_thread
from tests.conftest import sim_config


@pytest.fixture
def fast_sim() -> Iterator[Simulator]:
    """A simulator with 200 synthetic trades/s per symbol."""
    with running_in_thread(sim_config(rate=200.0)) as sim:
        yield sim
