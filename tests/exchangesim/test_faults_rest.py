"""Injected REST faults over real sockets: an error status (for a count of requests, or for one method only)
and a delay alone.
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.control_client import post_json, sim_status


# -- REST faults ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code", "msg_start", "retry_after"),
    [
        (429, -1003, "Too much request weight used; current limit is ", 7),
        (429, -1003, "Too much request weight used; current limit is ", None),
        (418, -1003, "Way too much request weight used; IP banned until ", 30),
        (500, -1000, "An unknown error occurred while processing the request.", None),
        (503, -1008, "Server is currently overloaded", None),
    ],
)
async def test_rest_fault_status(status: int, code: int, msg_start: str, retry_after: int | None) -> None:
    """POST /_sim/rest/fault answers the next request under the prefix with the status and Binance's error
    body; 418 and 429 always carry Retry-After (as Binance does); the next request succeeds again."""
    fault: dict[str, Any] = {"status": status, "path_prefix": "/api/v3/time"}
    if retry_after is not None:
        fault["retry_after"] = retry_after
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, body = await post_json(http, f"{sim.url}/_sim/rest/fault", fault)
        assert st == 200
        assert body["ok"] is True
        assert len(body["pending"]) == 1
        async with http.get(f"{sim.url}/api/v3/ping") as r:  # another path is not affected
            assert (r.status, await r.json()) == (200, {})
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == status
            err = await r.json()
            assert list(err) == ["code", "msg"]
            assert err["code"] == code
            assert err["msg"].startswith(msg_start), err
            assert "X-MBX-USED-WEIGHT-1M" in r.headers
            if status in (418, 429):
                assert int(r.headers["Retry-After"]) == (retry_after if retry_after is not None else 1)
            else:
                assert "Retry-After" not in r.headers
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == 200
            assert isinstance((await r.json())["serverTime"], int)
        stat = await sim_status(http, sim)
    assert stat["faults_injected"][f"rest_{status}"] == 1


async def test_rest_fault_count() -> None:
    """count=N fails exactly the next N matching requests; request N+1 succeeds."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, _ = await post_json(http, f"{sim.url}/_sim/rest/fault", {"status": 503, "count": 3})
        assert st == 200
        seen = []
        for _ in range(5):
            async with http.get(f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"}) as r:
                seen.append(r.status)
                body = await r.json()
        assert seen == [503, 503, 503, 200, 200]
        assert body["bids"]
        assert body["asks"]
        stat = await sim_status(http, sim)
    assert stat["faults_injected"]["rest_503"] == 3


async def test_rest_fault_of_one_method() -> None:
    """method="POST" fails only POSTs under the prefix: a GET of the same path is served and spends nothing."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        fault = {"status": 400, "path_prefix": "/api/v3/ping", "method": "POST"}
        st, body = await post_json(http, f"{sim.url}/_sim/rest/fault", fault)
        assert (st, body["pending"][0]["method"]) == (200, "POST")
        async with http.get(f"{sim.url}/api/v3/ping") as r:
            assert r.status == 200
        async with http.post(f"{sim.url}/api/v3/ping") as r:
            assert (r.status, (await r.json())["code"]) == (400, -1000)
        async with http.post(f"{sim.url}/api/v3/ping") as r:
            assert r.status == 405  # the fault is spent: the route itself answers
        assert (await sim_status(http, sim))["faults_injected"]["rest_400"] == 1


async def test_rest_fault_delay_only() -> None:
    """delay_ms without a status delays the response, which is still the correct one."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, body = await post_json(http, f"{sim.url}/_sim/rest/fault", {"delay_ms": 400, "path_prefix": "/api/v3/time"})
        assert st == 200
        assert body["pending"][0]["status"] is None
        before_ms = time.time_ns() // 1_000_000
        t0 = time.monotonic()
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == 200
            server_time = (await r.json())["serverTime"]
        took = time.monotonic() - t0
        assert took >= 0.4, took
        assert before_ms - 5 <= server_time <= time.time_ns() // 1_000_000 + 5
        t0 = time.monotonic()
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert r.status == 200
        assert time.monotonic() - t0 < 0.3, "only one request is delayed"
        assert (await sim_status(http, sim))["faults_injected"]["rest_delay"] == 1
