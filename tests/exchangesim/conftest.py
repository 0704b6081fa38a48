"""Fixtures shared by the simulator's tests (the simulator itself is tests/conftest.py's ``sim``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.kraken_client import Kr, unlimited


@pytest.fixture
async def kr() -> AsyncIterator[Kr]:
    """A simulator and a client session, with Kraken's call counter lifted."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        await unlimited(http, sim)
        yield sim, http
