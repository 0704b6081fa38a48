"""The control API over real sockets besides faults: market steering (rate, pause), status, input errors, truth."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.control_client import contiguous, frame_ids, post_json, sim_status, sim_truth, streaming


# -- market steering ------------------------------------------------------------------------------------
async def test_market_rate_change() -> None:
    """POST /_sim/market rate sets the market's trade rate; the stream goes on with ids contiguous across the
    change. (How many trades a second follow is the engine's: test_engine pins it, as a live market measured
    for a second trades with the day's volatility and bursts.)"""
    async with (
        Simulator(sim_config(rate=5)) as sim,
        aiohttp.ClientSession() as http,
        streaming(sim, "/ws/btcusdt@trade") as reader,
    ):
        st, body = await post_json(http, f"{sim.url}/_sim/market", {"rate": 400})
        changed_ms = time.time_ns() // 1_000_000
        assert (st, body) == (200, {"ok": True, "rate": 400.0, "paused": False})
        await reader.wait(lambda: any(f["T"] > changed_ms for f in reader.data()))
        assert contiguous(frame_ids(reader.data()))
        assert (await sim_status(http, sim))["rate"] == 400.0


async def test_market_pause_and_resume() -> None:
    """paused=true stops all trades (stream and status counters still), paused=false brings them back, and
    trade ids stay contiguous across the pause; status reports the last ids exactly."""
    async with (
        Simulator(sim_config(rate=100)) as sim,
        aiohttp.ClientSession() as http,
        streaming(sim, "/ws/btcusdt@trade") as reader,
    ):
        await reader.wait(lambda: len(reader.frames) >= 3)
        st, body = await post_json(http, f"{sim.url}/_sim/market", {"paused": True})
        assert (st, body["paused"]) == (200, True)
        paused_ms = time.time_ns() // 1_000_000
        first = await sim_status(http, sim)
        assert first["paused"] is True
        last_id = first["symbols"]["BTCUSDT"]["last_trade_id"]
        await reader.wait(lambda: reader.data()[-1]["t"] == last_id)  # everything before the pause arrived
        n = len(reader.frames)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 0.6:  # nothing new while paused, for a while
            await asyncio.sleep(0.05)
            assert len(reader.frames) == n
        again = await sim_status(http, sim)
        assert again["symbols"]["BTCUSDT"]["trades_emitted"] == first["symbols"]["BTCUSDT"]["trades_emitted"]
        assert again["symbols"]["BTCUSDT"]["last_trade_id"] == last_id
        assert all(f["T"] <= paused_ms for f in reader.data())

        st, body = await post_json(http, f"{sim.url}/_sim/market", {"paused": False})
        assert (st, body["paused"]) == (200, False)
        await reader.wait(lambda: len(reader.frames) >= n + 10)
        ids = frame_ids(reader.data())
        assert contiguous(ids), "no id is skipped across the pause"
        assert ids[n] == last_id + 1


async def test_status_fields() -> None:
    """GET /_sim/status reports request counts per path, weight used, open sockets and their subscriptions,
    trades emitted and the last trade/aggregate ids (equal to what a client saw once the market is paused)."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        streaming(sim, "/stream?streams=btcusdt@trade/btcusdt@aggTrade") as reader,
    ):
        first_ms = time.time_ns() // 1_000_000  # weight counts restart each minute: see the end
        used = []
        for _ in range(3):
            async with http.get(f"{sim.url}/api/v3/time") as r:
                assert r.status == 200
                used.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
        async with http.get(f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "100"}) as r:
            assert r.status == 200
            used.append(int(r.headers["X-MBX-USED-WEIGHT-1M"]))
        await reader.wait(lambda: len(reader.frames) >= 10)
        await post_json(http, f"{sim.url}/_sim/market", {"paused": True})
        stat = await sim_status(http, sim)
        btc = stat["symbols"]["BTCUSDT"]

        def seen(stream: str, key: str) -> int | None:
            got = [f["data"][key] for f in reader.data() if f["stream"] == stream]
            return got[-1] if got else None

        await reader.wait(
            lambda: (
                (seen("btcusdt@trade", "t"), seen("btcusdt@aggTrade", "a"))
                == (btc["last_trade_id"], btc["last_agg_id"])
            )
        )
    venue = stat["venues"]["binance"]
    assert venue["requests"]["/api/v3/time"] == 3
    assert venue["requests"]["/api/v3/depth"] == 1
    assert venue["requests"]["/stream"] == 1
    if first_ms // 60_000 == stat["server_time"] // 60_000:  # one minute's window from the first request on
        assert used == [1, 2, 3, 3 * 1 + 5]
        assert venue["weight_used"] == {"127.0.0.1": 3 * 1 + 5}
    else:  # a minute began in between: each answer adds its weight to the one before, or starts again from it
        assert all(b in (a + w, w) for a, b, w in zip([0, *used[:-1]], used, [1, 1, 1, 5], strict=True)), used
        assert venue["weight_used"]["127.0.0.1"] in (0, used[-1])
    assert venue["open_sockets"] == 1
    assert venue["subscriptions"] == ["btcusdt@aggTrade", "btcusdt@trade"]
    assert stat["paused"] is True
    assert stat["rate"] == 50.0
    assert set(stat["symbols"]) == {"BTCUSDT", "ETHUSDT"}
    assert btc["kind"] == "synthetic"
    trade_ids = [f["data"]["t"] for f in reader.data() if f["stream"] == "btcusdt@trade"]
    assert btc["trades_emitted"] >= len(trade_ids) > 0
    assert btc["last_trade_id"] == trade_ids[-1]
    assert btc["last_price"] == [f["data"]["p"] for f in reader.data() if f["stream"] == "btcusdt@trade"][-1]
    assert isinstance(stat["server_time"], int)
    assert stat["started_ms"] <= stat["server_time"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/_sim/ws/drop", {"mode": "explode"}, "'mode'"),
        ("/_sim/ws/drop", {"mode": "stall", "seconds": -1}, "'seconds'"),
        ("/_sim/ws/drop", {"reject_seconds": "2"}, "'reject_seconds'"),
        ("/_sim/ws/drop", {"mode": "close", "reject_second": 2}, "'reject_second'"),
        ("/_sim/rest/fault", {"status": 200}, "'status'"),
        ("/_sim/rest/fault", {"status": 429, "count": 0}, "'count'"),
        ("/_sim/rest/fault", {"status": 429, "retry_after": True}, "'retry_after'"),
        ("/_sim/rest/fault", {"delay_ms": -5}, "'delay_ms'"),
        ("/_sim/rest/fault", {"path_prefix": "/api/"}, "'status'"),
        ("/_sim/rest/fault", {"status": 429, "path_prefix": "api"}, "'path_prefix'"),
        ("/_sim/rest/fault", {"status": 400, "method": "post"}, "'method'"),
        ("/_sim/ws/corrupt", {}, "'kind'"),
        ("/_sim/ws/corrupt", {"kind": "scramble"}, "'kind'"),
        ("/_sim/ws/corrupt", {"kind": "duplicate", "count": 1.5}, "'count'"),
        ("/_sim/market", {"rate": -1}, "'rate'"),
        ("/_sim/market", {"paused": "yes"}, "'paused'"),
        ("/_sim/market", {"rate": 10, "venue": "bitstamp"}, "venue"),
        ("/_sim/config", {"weight_limit": 0}, "'weight_limit'"),
        ("/_sim/market", "{not json", "JSON"),
        ("/_sim/market", "[1, 2]", "JSON object"),
    ],
)
async def test_bad_control_input(path: str, body: Any, field: str) -> None:
    """Bad control input is answered 400 with a JSON error naming the field, and changes nothing."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, reply = await post_json(http, f"{sim.url}{path}", body)
        assert st == 400
        assert list(reply) == ["error"]
        assert field in reply["error"], reply
        stat = await sim_status(http, sim)
        assert stat["rate"] == 50.0
        assert stat["paused"] is False
        assert stat["faults_injected"] == {}
        assert sim.faults.rest == []
        assert sim.faults.corrupt == {}
        assert sim.faults.reject_until_ms == {}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"symbol": "NOPEUSDT"}, "symbol"),
        ({"symbol": "BTCUSDT", "kind": "klines"}, "'kind'"),
        ({"symbol": "BTCUSDT", "from_id": "abc"}, "'from_id'"),
        ({"symbol": "BTCUSDT", "end_ms": "-3"}, "'end_ms'"),
        ({"symbol": "BTCUSDT", "from_id": "1", "start_ms": "1"}, "start_ms"),
        ({"symbol": "BTCUSDT", "venue": "bitstamp"}, "venue"),
        ({"symbol": "BTCUSDT", "fromId": "5"}, "'fromId'"),
    ],
)
async def test_bad_truth_query(query: dict[str, str], field: str) -> None:
    """A bad /_sim/truth query is answered 400 with a JSON error naming the parameter."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        http.get(f"{sim.url}/_sim/truth", params=query) as r,
    ):
        assert r.status == 400
        reply = await r.json()
        assert field in reply["error"], reply


# -- truth ----------------------------------------------------------------------------------------------
def _complete_ticks(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames without the last tick's, which may have been cut off when the client stopped."""
    last_e = frames[-1]["E"]
    return [f for f in frames if f["E"] != last_e]


async def test_truth_matches_received_agg_trades() -> None:
    """/_sim/truth kind=aggTrades, by ids and by times, equals exactly what a client received over
    @aggTrade for a few seconds (ids, prices, quantities, first/last trade ids, times, sides)."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        streaming(sim, "/ws/btcusdt@aggTrade") as reader,
    ):
        t0 = time.monotonic()
        await reader.wait(lambda: time.monotonic() - t0 > 2.5, within=4)
        got = _complete_ticks(reader.data())
        assert len(got) > 5  # the synthetic rate swings with volatility: calm seconds are quiet
        by_id = await sim_truth(
            http, sim, venue="binance", symbol="BTCUSDT", kind="aggTrades", from_id=got[0]["a"], to_id=got[-1]["a"]
        )
        by_time = await sim_truth(
            http, sim, symbol="BTCUSDT", kind="aggTrades", start_ms=got[0]["T"], end_ms=got[-1]["T"]
        )
    expected = [{k: f[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")} for f in got]
    assert by_id == expected
    assert by_time == expected


async def test_truth_matches_received_trades() -> None:
    """/_sim/truth kind=trades, by ids and by times, equals exactly what a client received over @trade."""
    async with (
        Simulator(sim_config()) as sim,
        aiohttp.ClientSession() as http,
        streaming(sim, "/stream?streams=ethusdt@trade") as reader,
    ):
        t0 = time.monotonic()
        await reader.wait(lambda: time.monotonic() - t0 > 2.5, within=4)
        got = _complete_ticks([f["data"] for f in reader.data()])
        assert len(got) > 5
        by_id = await sim_truth(http, sim, symbol="ETHUSDT", kind="trades", from_id=got[0]["t"], to_id=got[-1]["t"])
        by_time = await sim_truth(http, sim, symbol="ETHUSDT", kind="trades", start_ms=got[0]["T"], end_ms=got[-1]["T"])
        default_kind = await sim_truth(http, sim, symbol="ETHUSDT", from_id=got[0]["t"], to_id=got[0]["t"])
    expected = [{"id": f["t"], "price": f["p"], "qty": f["q"], "time": f["T"], "isBuyerMaker": f["m"]} for f in got]
    for rows in (by_id, by_time):
        assert [{k: r[k] for k in ("id", "price", "qty", "time", "isBuyerMaker")} for r in rows] == expected
        assert all(r["isBestMatch"] is True for r in rows)
        assert all(list(r) == ["id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"] for r in rows)
    assert default_kind == by_id[:1]
