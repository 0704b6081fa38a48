"""Binance market streams' keep-alive and limits over real sockets: pings and pongs, the connection age limit,
and too many incoming messages.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import aiohttp
import websockets
from websockets.exceptions import ConnectionClosedError

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.ws_frames import check_trade, next_reply, until_closed


async def test_server_pings_and_answered_pongs_keep_the_socket() -> None:
    """The server pings every ping_interval; a client echoing each ping's payload stays connected well past
    pong_timeout."""
    async with (
        Simulator(sim_config(ping_interval=0.3, pong_timeout=0.6)) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{sim.ws_url}/ws/btcusdt@aggTrade", autoping=False) as ws,
    ):
        pings: list[float] = []
        opened = time.monotonic()
        while time.monotonic() - opened < 1.6:
            msg = await ws.receive(timeout=1)
            assert msg.type not in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
            if msg.type == aiohttp.WSMsgType.PING:
                pings.append(time.monotonic())
                assert msg.data, "Binance pings carry a payload"
                await ws.pong(msg.data)
        assert not ws.closed
        status = await (await http.get(f"{sim.url}/_sim/status")).json()
    assert len(pings) >= 4
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert all(0.2 <= g <= 0.6 for g in gaps), gaps
    assert status["faults_injected"].get("ws_pong_timeouts", 0) == 0


async def test_client_not_answering_pings_is_disconnected() -> None:
    """A client that never answers pings is closed after pong_timeout, while a websockets client (which
    answers them) stays connected and keeps receiving data."""
    async with (
        Simulator(sim_config(ping_interval=0.2, pong_timeout=0.6)) as sim,
        aiohttp.ClientSession() as http,
        websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as good,
    ):
        # the good client must keep reading: websockets stops reading the socket (pongs included) once
        # its queue of unread messages is full, and then it would rightly be timed out too
        good_frames: list[tuple[float, Any]] = []

        async def read_good() -> None:
            async for text in good:
                good_frames.append((time.monotonic(), json.loads(text)))

        reading = asyncio.create_task(read_good())
        async with http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade", autoping=False) as bad:
            opened = time.monotonic()
            pinged = False
            while True:
                msg = await bad.receive(timeout=3)
                pinged |= msg.type == aiohttp.WSMsgType.PING
                if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    break
            closed_at = time.monotonic()
            assert pinged
            assert bad.close_code == 1008
            assert 0.6 <= closed_at - opened < 2.0, closed_at - opened
        # the good client outlives the bad one by a few pong timeouts, receiving all along
        deadline = closed_at + 3
        while not good_frames or good_frames[-1][0] < closed_at + 1.2:
            assert not reading.done(), reading
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        reading.cancel()
        status = await (await http.get(f"{sim.url}/_sim/status")).json()
        assert status["venues"]["binance"]["open_sockets"] == 1
        for _, f in good_frames:
            check_trade(f, "BTCUSDT")
    assert status["faults_injected"]["ws_pong_timeouts"] == 1


async def test_connection_age_limit_closes_the_socket() -> None:
    """A connection older than max_connection_age is closed by the server (code 1000)."""
    async with (
        Simulator(sim_config(max_connection_age=1.0)) as sim,
        websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
    ):
        opened = time.monotonic()
        frames, _ = await until_closed(ws)
        age = time.monotonic() - opened
        assert frames
        for f in frames:
            check_trade(f, "BTCUSDT")
        assert ws.close_code == 1000
        assert 0.9 <= age < 2.5, age


async def test_too_many_incoming_messages_closes_the_socket() -> None:
    """ws_max_incoming_per_s messages within a second are fine; one more closes the connection (1008)."""
    async with Simulator(sim_config(ws_max_incoming_per_s=5)) as sim, websockets.connect(f"{sim.ws_url}/ws/0") as ws:
        for i in range(5):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        assert [await next_reply(ws) for _ in range(5)] == [{"result": [], "id": i} for i in range(5)]
        await asyncio.sleep(1.05)  # the one-second window must pass; there is no event to wait for
        for i in range(6):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 10 + i}))
        replies, closed = await until_closed(ws)
        assert isinstance(closed, ConnectionClosedError)
        assert replies == [{"result": [], "id": 10 + i} for i in range(5)]
        assert ws.close_code == 1008
