"""Binance market streams over real sockets: payload shapes (aggTrade, trade, kline, bookTicker, miniTicker).
Control messages are in test_ws_subscriptions.py, keep-alive and limits in test_ws_keepalive.py.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from decimal import Decimal
from typing import Any

import aiohttp
import websockets

from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.ws_frames import DEC8, KLINE_KEYS, check_agg, check_trade, collect, is_int, recv_json


async def test_combined_agg_trade_frames() -> None:
    """/stream?streams=a/b wraps each aggTrade as {"stream","data"}; data has exactly Binance's keys in
    order (e,E,s,a,p,q,f,l,T,m,M) and types; aggregate ids and the trade ids they cover are contiguous."""
    async with (
        Simulator(sim_config()) as sim,
        websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@aggTrade/ethusdt@aggTrade") as ws,
    ):
        frames = await collect(
            ws,
            lambda fs: min(sum(f["stream"] == s for f in fs) for s in ("btcusdt@aggTrade", "ethusdt@aggTrade")) >= 20,
        )
    last: dict[str, dict[str, Any]] = {}
    for f in frames:
        assert list(f) == ["stream", "data"]
        assert f["stream"] in ("btcusdt@aggTrade", "ethusdt@aggTrade")
        d = f["data"]
        check_agg(d, f["stream"].split("@")[0].upper())
        prev = last.get(f["stream"])
        if prev is not None:
            assert d["a"] == prev["a"] + 1, "aggregate ids must be contiguous"
            assert d["f"] == prev["l"] + 1, "aggregates must cover contiguous trade ids"
            assert d["T"] >= prev["T"]
        last[f["stream"]] = d


async def test_raw_trade_frames() -> None:
    """/ws/btcusdt@trade sends unwrapped trade payloads with keys e,E,s,t,p,q,T,m,M and contiguous ids."""
    async with Simulator(sim_config()) as sim, websockets.connect(f"{sim.ws_url}/ws/btcusdt@trade") as ws:
        frames = await collect(ws, lambda fs: len(fs) >= 30)
    for prev, d in itertools.pairwise(frames):
        assert d["t"] == prev["t"] + 1
    for d in frames:
        check_trade(d, "BTCUSDT")


async def test_kline_1s_open_and_closed() -> None:
    """btcusdt@kline_1s sends open (x false) and closed (x true) klines with Binance's fields; a closed
    kline's OHLCV, trade count and first/last ids match the trades of its second."""
    async with (
        Simulator(sim_config()) as sim,
        websockets.connect(f"{sim.ws_url}/stream?streams=btcusdt@kline_1s/btcusdt@trade") as ws,
    ):

        def enough(fs: list[Any]) -> bool:
            # an open kline, and a closed one whose trades were all received: it opened after the first
            # trade tick, and a trade of a later tick came (its own tick's trades follow it)
            ks = [f["data"] for f in fs if f["stream"] == "btcusdt@kline_1s"]
            ts = [f["data"] for f in fs if f["stream"] == "btcusdt@trade"]
            return (
                any(not k["k"]["x"] for k in ks)
                and bool(ts)
                and any(k["k"]["x"] and k["k"]["t"] > ts[0]["E"] and ts[-1]["E"] > k["E"] for k in ks)
            )

        frames = await collect(ws, enough, within=5)
    trades = [f["data"] for f in frames if f["stream"] == "btcusdt@trade"]
    klines = [f["data"] for f in frames if f["stream"] == "btcusdt@kline_1s"]
    for d in klines:
        assert list(d) == ["e", "E", "s", "k"]
        assert d["e"] == "kline"
        assert d["s"] == "BTCUSDT"
        assert is_int(d["E"])
        k = d["k"]
        assert list(k) == KLINE_KEYS
        assert k["i"] == "1s"
        assert k["s"] == "BTCUSDT"
        assert k["t"] % 1000 == 0
        assert k["T"] == k["t"] + 999
        assert isinstance(k["x"], bool)
        for key in ("o", "c", "h", "l", "v", "q", "V", "Q"):
            assert DEC8.match(k[key]), (key, k[key])
        assert Decimal(k["l"]) <= min(Decimal(k["o"]), Decimal(k["c"]))
        assert Decimal(k["h"]) >= max(Decimal(k["o"]), Decimal(k["c"]))
        if k["x"]:
            assert d["E"] > k["T"], "a kline is closed only after its close time"
    closed = next(d["k"] for d in klines if d["k"]["x"] and d["k"]["t"] > trades[0]["E"])
    mine = [t for t in trades if closed["t"] <= t["T"] <= closed["T"]]
    assert closed["n"] == len(mine)
    if mine:
        assert (closed["f"], closed["L"]) == (mine[0]["t"], mine[-1]["t"])
        prices = [Decimal(t["p"]) for t in mine]
        assert Decimal(closed["o"]) == prices[0]
        assert Decimal(closed["c"]) == prices[-1]
        assert (Decimal(closed["h"]), Decimal(closed["l"])) == (max(prices), min(prices))
        assert Decimal(closed["v"]) == sum(Decimal(t["q"]) for t in mine)
        assert Decimal(closed["V"]) == sum(Decimal(t["q"]) for t in mine if not t["m"])
    else:
        assert (closed["f"], closed["L"], closed["v"]) == (-1, -1, "0.00000000")


async def test_book_ticker_has_no_event_fields() -> None:
    """btcusdt@bookTicker frames carry exactly u,s,b,B,a,A (no e/E), with u rising and bid below ask."""
    async with Simulator(sim_config()) as sim, websockets.connect(f"{sim.ws_url}/ws/btcusdt@bookTicker") as ws:
        frames = await collect(ws, lambda fs: len(fs) >= 5)
    for prev, d in itertools.pairwise(frames):
        assert d["u"] > prev["u"]
    for d in frames:
        assert list(d) == ["u", "s", "b", "B", "a", "A"]
        assert is_int(d["u"])
        assert d["s"] == "BTCUSDT"
        for key in ("b", "B", "a", "A"):
            assert DEC8.match(d[key]), (key, d[key])
        assert Decimal(d["b"]) < Decimal(d["a"])


async def test_mini_ticker() -> None:
    """btcusdt@miniTicker frames carry exactly e,E,s,c,o,h,l,v,q, about once a second, with l <= c <= h."""
    async with Simulator(sim_config()) as sim, websockets.connect(f"{sim.ws_url}/ws/btcusdt@miniTicker") as ws:
        frames = await collect(ws, lambda fs: len(fs) >= 2, within=4)
    assert frames[1]["E"] - frames[0]["E"] >= 1000
    for d in frames:
        assert list(d) == ["e", "E", "s", "c", "o", "h", "l", "v", "q"]
        assert d["e"] == "24hrMiniTicker"
        assert d["s"] == "BTCUSDT"
        assert is_int(d["E"])
        for key in ("c", "o", "h", "l", "v", "q"):
            assert DEC8.match(d[key]), (key, d[key])
        assert Decimal(d["l"]) <= Decimal(d["c"]) <= Decimal(d["h"])
        assert Decimal(d["v"]) > 0


async def test_book_ticker_matches_depth() -> None:
    """bookTicker's u is the id depth reports as lastUpdateId at the same moment, with the same best
    bid and ask, so a client can join the two the way it does on Binance."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        sim.market.set_flow(paused=True)  # hold the book still
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@bookTicker") as ws:
            sim.market.set_flow(paused=False)
            ticker = await recv_json(ws)
            sim.market.set_flow(paused=True)
            while True:  # the last frame before the pause
                try:
                    ticker = json.loads(await asyncio.wait_for(ws.recv(), 0.3))
                except TimeoutError:
                    break
        async with http.get(f"{sim.url}/api/v3/depth", params={"symbol": "BTCUSDT", "limit": "5"}) as r:
            depth = await r.json()
    assert depth["lastUpdateId"] == ticker["u"]
    assert depth["bids"][0][0] == ticker["b"]
    assert depth["asks"][0][0] == ticker["a"]


async def test_kline_stream_starts_fresh_after_idle() -> None:
    """A kline stream subscribed again after every socket closed starts at the current kline, without a
    burst of stale closed klines from the idle time."""
    async with Simulator(sim_config()) as sim:
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_1s") as ws:
            await recv_json(ws)
        await asyncio.sleep(2.5)  # idle: no socket open for a few 1 s klines
        async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_1s") as ws:
            frames = await collect(ws, lambda fs: any(f["k"]["x"] for f in fs), within=4)
    closed = [f for f in frames if f["k"]["x"]]
    assert len(closed) == 1
    assert closed[0]["E"] - closed[0]["k"]["T"] < 1000
