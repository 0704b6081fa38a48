"""The simulator bans (418) a client that ignores a 429's Retry-After, as Binance does, and never one that waits.

Counted in ``/_sim/status`` ``faults_injected``: ``backoff_violation`` (a request let through although it came
before Retry-After had passed) and ``ban_418`` (every 418 answered because of a ban).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from exchangesim.server import Simulator
from tests.conftest import sim_config


async def _fault(http: aiohttp.ClientSession, sim: Simulator, **body: Any) -> None:
    async with http.post(f"{sim.url}/_sim/rest/fault", json=body) as r:
        assert r.status == 200, await r.text()


async def _injected(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, int]:
    async with http.get(f"{sim.url}/_sim/status") as r:
        return (await r.json())["faults_injected"]


@pytest.mark.parametrize("ban_after", [2, 5])
async def test_client_ignoring_retry_after_is_banned(ban_after: int) -> None:
    """After a 429 with Retry-After 5, the next ``ban_after`` requests sent at once still get through; the one
    after them is answered 418 (Retry-After = ban_seconds), and the ban covers every endpoint."""
    async with Simulator(sim_config(ban_after=ban_after, ban_seconds=30)) as sim, aiohttp.ClientSession() as http:
        await _fault(http, sim, status=429, retry_after=5, path_prefix="/api/v3/time")
        statuses = []
        for _ in range(ban_after + 2):
            async with http.get(f"{sim.url}/api/v3/time") as r:
                statuses.append(r.status)
                body = await r.json()
                headers = r.headers
        assert statuses == [429, *[200] * ban_after, 418]
        assert headers["Retry-After"] == "30"
        assert body["code"] == -1003
        assert body["msg"].startswith("Way too much request weight used; IP banned until ")
        async with http.get(f"{sim.url}/api/v3/ping") as r:
            assert r.status == 418
        injected = await _injected(http, sim)
    assert injected == {"rest_429": 1, "backoff_violation": ban_after, "ban_418": 2}


async def test_client_that_waits_is_never_banned() -> None:
    """A client that sleeps each Retry-After before trying again gets its answer and is never counted early,
    even with ban_after 0."""
    async with Simulator(sim_config(ban_after=0)) as sim, aiohttp.ClientSession() as http:
        await _fault(http, sim, status=429, count=2, retry_after=1, path_prefix="/api/v3/time")
        statuses = []
        while not statuses or statuses[-1] != 200:
            async with http.get(f"{sim.url}/api/v3/time") as r:
                statuses.append(r.status)
                retry = float(r.headers.get("Retry-After", 0))
            await asyncio.sleep(retry)  # what the exchange asked for: that is the behaviour under test
        assert statuses == [429, 429, 200]
        injected = await _injected(http, sim)
    assert injected == {"rest_429": 2}


async def test_injected_418_must_be_waited_out_too() -> None:
    """An injected 418's Retry-After binds like a 429's: hammering through it leads to a real ban."""
    async with Simulator(sim_config(ban_after=1)) as sim, aiohttp.ClientSession() as http:
        await _fault(http, sim, status=418, retry_after=10, path_prefix="/api/v3/depth")
        statuses = []
        for _ in range(3):
            async with http.get(f"{sim.url}/api/v3/ping") as r:
                statuses.append(r.status)
            if len(statuses) == 1:
                async with http.get(f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT"}) as r:
                    statuses.append(r.status)
        assert statuses == [200, 418, 200, 418]
        injected = await _injected(http, sim)
    assert injected == {"rest_418": 1, "backoff_violation": 1, "ban_418": 1}


async def test_ban_ends_after_ban_seconds() -> None:
    """Once the ban has run out the client is served again, with a clean record."""
    async with Simulator(sim_config(ban_after=0, ban_seconds=1)) as sim, aiohttp.ClientSession() as http:
        await _fault(http, sim, status=429, retry_after=3, path_prefix="/api/v3/time")
        for expected in (429, 418, 418):
            async with http.get(f"{sim.url}/api/v3/time") as r:
                assert r.status == expected
                retry = int(r.headers["Retry-After"])
        assert retry == 1
        await asyncio.sleep(retry + 0.05)  # waiting out the ban is the behaviour under test
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == 200
        injected = await _injected(http, sim)
    assert injected == {"rest_429": 1, "ban_418": 2}


async def test_reset_lifts_a_ban() -> None:
    """POST /_sim/reset clears bans and pending back-offs with the weight counters."""
    async with Simulator(sim_config(ban_after=0)) as sim, aiohttp.ClientSession() as http:
        await _fault(http, sim, status=429, retry_after=60, path_prefix="/api/v3/time")
        for expected in (429, 418):
            async with http.get(f"{sim.url}/api/v3/time") as r:
                assert r.status == expected
        async with http.post(f"{sim.url}/_sim/reset") as r:
            assert r.status == 200
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == 200
