"""Shared fixtures: simulators started in-process on free ports, and the recorded data folder."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from exchangesim.config import SimConfig
from exchangesim.server import Simulator, running_in_thread

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
API_KEY = "simKey123"
API_SECRET = "simSecret456"


def shared_file(relative: str) -> Path:
    """A file from ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"recorded data {path} is absent (../shared/data is not beside this checkout)")
    return path


def sim_config(**overrides: object) -> SimConfig:
    """A quick simulator: free port, one day of history, keys configured."""
    base: dict[str, object] = {"port": 0, "history_days": 1.0, "api_keys": {API_KEY: API_SECRET}}
    base.update(overrides)
    return SimConfig(**base)  # type: ignore[arg-type]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A synthetic BTCUSDT/ETHUSDT simulator in the test's event loop."""
    async with Simulator(sim_config()) as s:
        yield s


@pytest.fixture
def sim_thread() -> Iterator[Simulator]:
    """A simulator on its own loop in a thread, for synchronous clients."""
    with running_in_thread(sim_config()) as s:
        yield s
