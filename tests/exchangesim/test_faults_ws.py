"""Injected socket faults over real sockets: drops (close, reset, stall), refused connections for a while, and
corrupted frames (malformed, duplicated, reordered).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import aiohttp
import websockets
from websockets.exceptions import ConnectionClosedError, ConnectionClosedOK

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.control_client import frame_ids, post_json, sim_status, streaming, try_connect, until_closed


# -- socket faults --------------------------------------------------------------------------------------
async def test_ws_drop_close() -> None:
    """POST /_sim/ws/drop mode=close closes every market socket cleanly (close frame 1001)."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
    ):
        await asyncio.wait_for(ws.recv(), 3)
        status, body = await post_json(http, f"{sim.url}/_sim/ws/drop", {"mode": "close"})
        assert status == 200
        assert body == {"ok": True, "mode": "close", "sockets": 1, "seconds": 0, "reject_seconds": 0}
        assert isinstance(await until_closed(ws), ConnectionClosedOK)
        assert ws.close_code == 1001
        assert (await sim_status(http, sim))["faults_injected"]["ws_close"] == 1


async def test_ws_drop_reset() -> None:
    """mode=reset aborts the TCP connection: the client gets no close frame (an abnormal close, 1006)."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws,
    ):
        await asyncio.wait_for(ws.recv(), 3)
        status, body = await post_json(http, f"{sim.url}/_sim/ws/drop", {"mode": "reset"})
        assert (status, body["sockets"]) == (200, 1)
        closed = await until_closed(ws)
        assert isinstance(closed, ConnectionClosedError)
        assert closed.rcvd is None, "a reset sends no close frame"
        assert ws.close_code == 1006
        # the simulator itself is fine: a new connection streams again
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as again:
            assert json.loads(await asyncio.wait_for(again.recv(), 3))["e"] == "trade"


async def test_ws_drop_stall() -> None:
    """mode=stall with seconds=N: the socket stays open but gets no data and no pings for N seconds, then
    data and pings resume."""
    async with (
        Simulator(sim_config(ping_interval=0.3, pong_timeout=0.6)) as sim,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{sim.ws_url}/ws/btcusdt@trade", autoping=False) as ws,
    ):
        data: list[float] = []
        pings: list[float] = []
        stall_at = resume_by = 0.0

        async def read(until: float) -> None:
            while time.monotonic() < until:
                try:
                    msg = await ws.receive(timeout=max(0.01, until - time.monotonic()))
                except TimeoutError:
                    return
                assert msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.PING), msg
                if msg.type == aiohttp.WSMsgType.PING:
                    pings.append(time.monotonic())
                    await ws.pong(msg.data)
                else:
                    data.append(time.monotonic())

        await read(time.monotonic() + 0.7)
        assert data, "data flows before the stall"
        assert pings, "pings flow before the stall"
        asked = time.monotonic()
        status, body = await post_json(http, f"{sim.url}/_sim/ws/drop", {"mode": "stall", "seconds": 1.0})
        stall_at = time.monotonic()
        assert (status, body["mode"], body["sockets"]) == (200, "stall", 1)
        resume_by = asked + 1.0
        await read(resume_by + 0.9)
        quiet = [t for t in data + pings if stall_at + 0.1 < t < resume_by - 0.05]
        assert quiet == [], "nothing may arrive during the stall"
        assert [t for t in data if t >= resume_by - 0.05], "data resumes after the stall"
        assert [t for t in pings if t >= resume_by - 0.05], "pings resume after the stall"
        assert not ws.closed


async def test_ws_reject_seconds() -> None:
    """reject_seconds refuses new connections (HTTP 503) while it lasts and accepts them afterwards."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            status, body = await post_json(http, f"{sim.url}/_sim/ws/drop", {"mode": "close", "reject_seconds": 1})
            started = time.monotonic()
            assert (status, body["reject_seconds"], body["sockets"]) == (200, 1, 1)
            assert isinstance(await until_closed(ws), ConnectionClosedOK)
        assert await try_connect(f"{sim.ws_url}/ws/btcusdt@trade") == 503
        refused = 1
        while True:
            assert time.monotonic() - started < 3, "connections are still refused long after reject_seconds"
            frame = await try_connect(f"{sim.ws_url}/stream?streams=btcusdt@trade")
            if not isinstance(frame, int):
                break
            assert frame == 503
            refused += 1
            await asyncio.sleep(0.05)
        accepted_after = time.monotonic() - started
        assert frame["stream"] == "btcusdt@trade"
        assert 0.85 <= accepted_after < 2.0, accepted_after
        assert (await sim_status(http, sim))["faults_injected"]["ws_rejected"] == refused


# -- corrupted frames -----------------------------------------------------------------------------------
def _anomaly(raw: list[str]) -> int | None:
    """Index of the first frame that is not valid JSON, repeats its predecessor or goes back in ids."""
    prev: int | None = None
    for i, text in enumerate(raw):
        try:
            tid = json.loads(text)["t"]
        except json.JSONDecodeError:
            return i
        if prev is not None and tid <= prev:
            return i
        prev = tid
    return None


async def _corrupted(kind: str) -> tuple[list[str], dict[str, Any]]:
    """Raw @trade frames around one corruption of ``kind`` (20 more after it), and the status afterwards."""
    async with (
        Simulator(sim_config(rate=300)) as sim,
        aiohttp.ClientSession() as http,
        streaming(sim, "/ws/btcusdt@trade") as reader,
    ):
        await reader.wait(lambda: len(reader.frames) >= 5)
        st, body = await post_json(http, f"{sim.url}/_sim/ws/corrupt", {"kind": kind})
        assert (st, body) == (200, {"ok": True, "kind": kind, "count": 1})
        await reader.wait(lambda: _anomaly([t for _, t in reader.frames]) is not None)
        n = len(reader.frames)
        await reader.wait(lambda: len(reader.frames) >= n + 20)
        return [t for _, t in reader.frames], await sim_status(http, sim)


def _parsed(raw: list[str]) -> list[dict[str, Any] | None]:
    out: list[dict[str, Any] | None] = []
    for t in raw:
        try:
            out.append(json.loads(t))
        except json.JSONDecodeError:
            out.append(None)
    return out


async def test_ws_corrupt_malformed() -> None:
    """kind=malformed sends one frame that is not valid JSON in place of a trade; the rest are intact."""
    raw, stat = await _corrupted("malformed")
    frames = _parsed(raw)
    bad = [i for i, f in enumerate(frames) if f is None]
    assert len(bad) == 1
    i = bad[0]
    assert 0 < i < len(frames) - 1
    before, after = frames[i - 1], frames[i + 1]
    assert before is not None
    assert after is not None
    assert after["t"] == before["t"] + 2, "the malformed frame took the place of one trade"
    assert raw[i].startswith('{"e":"trade"')
    good = [f for f in frames if f is not None]
    assert sum(b["t"] != a["t"] + 1 for a, b in itertools.pairwise(good)) == 1
    assert stat["faults_injected"]["ws_malformed"] == 1


async def test_ws_corrupt_duplicate() -> None:
    """kind=duplicate sends one frame twice in a row."""
    raw, stat = await _corrupted("duplicate")
    dups = [i for i in range(1, len(raw)) if raw[i] == raw[i - 1]]
    assert len(dups) == 1
    ids = frame_ids([f for f in _parsed(raw) if f is not None])
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids)) + 1
    assert sorted(set(ids)) == list(range(ids[0], ids[-1] + 1))
    assert stat["faults_injected"]["ws_duplicate"] == 1


async def test_ws_corrupt_reorder() -> None:
    """kind=reorder swaps two neighbouring frames; nothing is lost or repeated."""
    raw, stat = await _corrupted("reorder")
    ids = frame_ids([f for f in _parsed(raw) if f is not None])
    assert len(ids) == len(raw)
    swaps = [i for i in range(1, len(ids)) if ids[i] < ids[i - 1]]
    assert len(swaps) == 1
    i = swaps[0]
    assert ids[i - 1] == ids[i] + 1, "two neighbours swapped"
    assert sorted(ids) == list(range(ids[0] if ids[0] < ids[1] else ids[1], ids[0] + len(ids) - (ids[0] > ids[1])))
    assert stat["faults_injected"]["ws_reorder"] == 1


async def test_ws_drop_close_for_seconds_keeps_the_venue_down() -> None:
    """mode=close (or reset) with seconds=N closes the sockets and refuses reconnects for those N seconds,
    so the outage really lasts N seconds; no trade is lost from the truth meanwhile."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
            before = json.loads(await asyncio.wait_for(ws.recv(), 3))["t"]
            status, _ = await post_json(http, f"{sim.url}/_sim/ws/drop", {"mode": "reset", "seconds": 0.8})
            started = time.monotonic()
            assert status == 200
            await until_closed(ws)
        assert await try_connect(f"{sim.ws_url}/ws/btcusdt@trade") == 503
        while isinstance(frame := await try_connect(f"{sim.ws_url}/ws/btcusdt@trade"), int):
            assert frame == 503
            assert time.monotonic() - started < 3, "still refused long after the outage"
            await asyncio.sleep(0.05)
        assert time.monotonic() - started >= 0.7
        after = frame["t"]
        truth = await (
            await http.get(
                f"{sim.url}/_sim/truth",
                params={"symbol": "BTCUSDT", "kind": "trades", "from_id": before, "to_id": after},
            )
        ).text()
        ids = [json.loads(line)["id"] for line in truth.splitlines()]
        assert ids == list(range(before, after + 1))
