"""What a stream client can learn of a socket it hears nothing on: every venue answers a WebSocket ping with its
pong, except during a stall (a stalled socket answers nothing, as a dead TCP connection would), and every venue
counts the stream connections it accepted (``connections_opened`` in /_sim/status; refused ones are not)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.control_client import post_json, sim_status

# venue -> (socket path, what it sends first: a subscription, so the socket is a real client's)
SOCKETS = {
    "binance": ("/ws/btcusdt@aggTrade", ()),
    "coinbase": (
        "/coinbase/ws",
        ('{"type":"subscribe","product_ids":["BTC-USD"],"channels":["matches","heartbeat"]}',),
    ),
    "kraken": (
        "/kraken/v2",
        ('{"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD"]},"req_id":1}',),
    ),
}


async def answered(ws: websockets.ClientConnection, within: float) -> bool:
    """Whether a ping sent now is answered with its pong within ``within`` seconds."""
    waiter = await ws.ping()
    try:
        await asyncio.wait_for(waiter, within)
    except TimeoutError:
        return False
    return True


@pytest.mark.parametrize("venue", list(SOCKETS))
async def test_a_stalled_socket_answers_no_ping_and_answers_again_after(venue: str) -> None:
    """A ping is answered; during a stall it is not (nor is anything else sent); after the stall it is again."""
    path, first = SOCKETS[venue]
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        websockets.connect(f"{sim.ws_url}{path}", ping_interval=None, max_queue=None) as ws,
    ):
        for text in first:
            await ws.send(text)
        assert await answered(ws, 2.0), "a live socket answers a ping"
        status, _ = await post_json(http, f"{sim.url}/_sim/ws/drop", {"venue": venue, "mode": "stall", "seconds": 2})
        stalled_at = time.monotonic()
        assert status == 200
        assert not await answered(ws, 1.0), "a stalled socket answers no ping"
        await asyncio.sleep(max(0.0, stalled_at + 2.2 - time.monotonic()))
        assert await answered(ws, 2.0), "once the stall is over pings are answered again"


async def test_each_venue_counts_the_stream_connections_it_accepted() -> None:
    """``connections_opened`` goes up by one per accepted socket of its venue, whether it is still open or not; a
    connection refused during a drop's ``reject_seconds`` is not counted."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        before = await sim_status(http, sim)
        assert {v: before["venues"][v]["connections_opened"] for v in SOCKETS} == dict.fromkeys(SOCKETS, 0)
        opened = {"binance": 2, "coinbase": 1, "kraken": 1}
        for venue, times in opened.items():
            for _ in range(times):
                async with websockets.connect(f"{sim.ws_url}{SOCKETS[venue][0]}") as ws:
                    assert await answered(ws, 2.0)
        status, _ = await post_json(http, f"{sim.url}/_sim/ws/drop", {"mode": "close", "reject_seconds": 5})
        assert status == 200
        with pytest.raises(InvalidStatus):
            async with websockets.connect(f"{sim.ws_url}{SOCKETS['binance'][0]}"):
                pass
        after = await sim_status(http, sim)
        assert {v: after["venues"][v]["connections_opened"] for v in SOCKETS} == opened
