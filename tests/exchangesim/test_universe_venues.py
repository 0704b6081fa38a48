"""A universe served: every venue's instrument lists hold its symbols, and for a busy, a quiet and a silent
symbol of each venue ``/_sim/truth``, the venue's REST trades and its WebSocket agree, silences included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import numpy as np
import pytest

from exchangesim.engine.aggregate import MINUTE
from exchangesim.engine.synthetic import HOUR
from exchangesim.kraken import pairs
from exchangesim.server import Simulator
from exchangesim.universe import Member
from tests.conftest import sim_config
from tests.exchangesim.control_client import post_json, sim_status, streaming
from tests.exchangesim.kraken_client import kr_get, unlimited
from tests.exchangesim.test_coinbase import cb_get, truth
from tests.exchangesim.test_coinbase_feed import feed
from tests.exchangesim.test_kraken_ws import client, sub

Sim = tuple[Simulator, aiohttp.ClientSession]


@pytest.fixture
async def uni() -> AsyncIterator[Sim]:
    """A 20-symbol universe trading 200 trades/s on Binance, with a few hours of history."""
    async with Simulator(sim_config(universe=20, rate=200.0, history_days=0.1)) as sim, aiohttp.ClientSession() as http:
        await unlimited(http, sim)
        yield sim, http


def picks(sim: Simulator, venue: str) -> tuple[Member, Member, Member]:
    """The venue's busiest universe symbol, its quietest symbol without silences, and its first silent one."""
    assert sim.universe is not None
    members = sim.universe.members[venue]
    busy = members[2]
    quiet = [m for m in members if not m.silent][-1]
    silent = next(m for m in members if m.silent)
    return busy, quiet, silent


def window(sim: Simulator, venue: str) -> tuple[int, int, int, int]:
    """The venue's first silent symbol's stretch in the last whole UTC hour before the simulator started (in its
    history), and three minutes either side of it: ``(start, lo, hi, end)``."""
    silent = picks(sim, venue)[2]
    assert silent.listing.params is not None
    assert silent.listing.params.silences is not None
    hour = sim.market.started_ms // HOUR - 1
    lo, hi = (int(x[0]) for x in silent.listing.params.silences.stretches(np.array([hour])))
    return lo - 3 * MINUTE, lo, hi, hi + 3 * MINUTE


# -- instrument lists and status ----------------------------------------------------------------------------
async def test_instrument_lists_and_status_hold_the_universe(uni: Sim) -> None:
    """exchangeInfo, Coinbase's products and Kraken's AssetPairs list every symbol of the venue, listed ones and
    the universe's, with their assets; /_sim/status gives the universe's size and counts."""
    sim, http = uni
    assert sim.universe is not None
    members = sim.universe.members
    async with http.get(f"{sim.url}/api/v3/exchangeInfo") as r:
        info = await r.json()
    assert {(s["symbol"], s["baseAsset"], s["quoteAsset"]) for s in info["symbols"]} == {
        (m.symbol, m.listing.spec.base, m.listing.spec.quote) for m in members["binance"]
    }
    _, products, _ = await cb_get(http, sim, "/products")
    assert {p["id"] for p in products} == {m.symbol for m in members["coinbase"]}
    _, pairs = await kr_get(http, sim, "AssetPairs")
    assert {p["wsname"] for p in pairs["result"].values()} == {m.symbol for m in members["kraken"]}
    for m in members["kraken"][2:]:
        _, one = await kr_get(http, sim, "AssetPairs", pair=m.symbol.replace("/", ""))
        assert [p["wsname"] for p in one["result"].values()] == [m.symbol]
    st = await sim_status(http, sim)
    assert st["universe"] == sim.universe.status()
    assert st["universe"]["venues"]["kraken"] == {"symbols": 22, "silent": 5}
    assert len(st["venues"]["coinbase"]["symbols"]) == 22


# -- REST against truth, around a silent stretch of the history ---------------------------------------------
async def test_binance_rest_agg_trades_equal_truth(uni: Sim) -> None:
    """For a busy, a quiet and a silent symbol, aggTrades by time and by id equal the truth's aggregate trades
    around the silent symbol's stretch, whose ids run on; the stretch itself holds none, in truth or REST."""
    sim, http = uni
    a, lo, hi, b = window(sim, "binance")
    for m in picks(sim, "binance"):
        rows = await truth(http, sim, symbol=m.symbol, kind="aggTrades", start_ms=a, end_ms=b - 1)
        assert rows, m
        assert [r["a"] for r in rows] == list(range(rows[0]["a"], rows[0]["a"] + len(rows)))
        by_time = await _binance_aggs(http, sim, symbol=m.symbol, startTime=a, endTime=b - 1, limit=1000)
        assert by_time == rows[:1000]
        n = min(10, len(rows))
        by_id = await _binance_aggs(http, sim, symbol=m.symbol, fromId=rows[-n]["a"], limit=n)
        assert by_id == rows[-n:]
        if m.silent:
            assert not [r for r in rows if lo <= r["T"] < hi]
            assert await truth(http, sim, symbol=m.symbol, kind="trades", start_ms=lo, end_ms=hi - 1) == []
            assert await _binance_aggs(http, sim, symbol=m.symbol, startTime=lo, endTime=hi - 1) == []


async def _binance_aggs(http: aiohttp.ClientSession, sim: Simulator, **params: object) -> list[dict[str, Any]]:
    async with http.get(f"{sim.url}/api/v3/aggTrades", params={k: str(v) for k, v in params.items()}) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def test_coinbase_rest_trades_equal_truth(uni: Sim) -> None:
    """For a busy, a quiet and a silent product, a page of REST trades equals the truth's trades of those ids
    around the silent product's stretch, whose ids run on; the stretch itself holds no trade."""
    sim, http = uni
    a, lo, hi, b = window(sim, "coinbase")
    for m in picks(sim, "coinbase"):
        rows = await truth(http, sim, venue="coinbase", symbol=m.symbol, start_ms=a, end_ms=b - 1)
        assert rows, m
        assert [r["trade_id"] for r in rows] == list(range(rows[0]["trade_id"], rows[0]["trade_id"] + len(rows)))
        n = min(100, len(rows))
        _, page, _ = await cb_get(http, sim, f"/products/{m.symbol}/trades", after=rows[-1]["trade_id"] + 1, limit=n)
        assert page == [{k: v for k, v in r.items() if k not in ("taker_side", "time_ms")} for r in rows[-n:]][::-1]
        if m.silent:
            assert not [r for r in rows if lo <= r["time_ms"] < hi]


async def test_kraken_rest_trades_equal_truth(uni: Sim) -> None:
    """For a busy, a quiet and a silent pair, Trades since the window's first trade equals the truth's trades
    around the silent pair's stretch, whose ids run on; the stretch itself holds no trade."""
    sim, http = uni
    a, lo, hi, b = window(sim, "kraken")
    fields = ("price", "qty", "time", "side", "ord_type", "misc", "trade_id")
    for m in picks(sim, "kraken"):
        rows = await truth(http, sim, venue="kraken", symbol=m.symbol, start_ms=a, end_ms=b - 1)
        assert rows, m
        assert [r["trade_id"] for r in rows] == list(range(rows[0]["trade_id"], rows[0]["trade_id"] + len(rows)))
        since = int(rows[0]["time_ns"]) - 1
        status, body = await kr_get(http, sim, "Trades", pair=m.symbol, since=since, count=min(1000, len(rows)))
        assert (status, body["error"]) == (200, []), body
        (got,) = [v for k, v in body["result"].items() if k != "last"]
        assert got == [[r[f] for f in fields] for r in rows[:1000]]
        if m.silent:
            assert not [r for r in rows if lo <= r["time_ms"] < hi]


# -- WebSocket against truth, live ----------------------------------------------------------------------------
async def _settle(http: aiohttp.ClientSession, sim: Simulator, venue: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Status now, then again once the market has run two seconds more and paused: the venue's symbols' last ids
    before and after (all sent by then)."""
    before = (await sim_status(http, sim))["venues"][venue]["symbols"]
    start, ran = next(iter(sim.market.tapes.values())).emitted_ms, asyncio.Event()

    def on_tick(t_ms: int, _emissions: object) -> None:  # the market's clock, not the test's
        if t_ms >= start + 2000:
            ran.set()

    sim.market.listeners.append(on_tick)
    await asyncio.wait_for(ran.wait(), 10)
    sim.market.listeners.remove(on_tick)
    assert (await post_json(http, f"{sim.url}/_sim/market", {"paused": True}))[0] == 200
    after = (await sim_status(http, sim))["venues"][venue]["symbols"]
    return before, after


async def test_binance_streams_equal_truth(uni: Sim) -> None:
    """The aggTrade streams of a busy, a quiet and a silent symbol on one socket carry exactly the truth's
    aggregate trades between two statuses (none for a symbol that did not trade)."""
    sim, http = uni
    chosen = picks(sim, "binance")
    path = "/stream?streams=" + "/".join(f"{m.symbol.lower()}@aggTrade" for m in chosen)
    async with streaming(sim, path) as reader:
        await reader.wait(lambda: len(reader.frames) > 0)
        before, after = await _settle(http, sim, "binance")
        assert after[chosen[0].symbol]["last_agg_id"] > before[chosen[0].symbol]["last_agg_id"], "the busy one traded"
        done = {m.symbol: after[m.symbol]["last_agg_id"] for m in chosen if after[m.symbol] != before[m.symbol]}
        await reader.wait(lambda: all(_binance_got(reader.data(), s, done[s]) for s in done))
    for m in chosen:
        lo, hi = before[m.symbol]["last_agg_id"], after[m.symbol]["last_agg_id"]
        got = [f["data"] for f in reader.data() if f["data"]["s"] == m.symbol and lo < f["data"]["a"] <= hi]
        want = await truth(http, sim, symbol=m.symbol, kind="aggTrades", from_id=lo + 1, to_id=hi) if hi > lo else []
        assert [{k: f[k] for k in ("a", "p", "q", "f", "l", "T", "m", "M")} for f in got] == want, m


def _binance_got(frames: list[dict[str, Any]], symbol: str, last: int | None) -> bool:
    return last is None or any(f["data"]["s"] == symbol and f["data"]["a"] >= last for f in frames)


async def test_coinbase_feed_equals_truth(uni: Sim) -> None:
    """The matches of a busy, a quiet and a silent product on one feed are exactly the truth's trades between two
    statuses."""
    sim, http = uni
    chosen = picks(sim, "coinbase")
    sub_msg = {"type": "subscribe", "product_ids": [m.symbol for m in chosen], "channels": ["matches"]}
    async with feed(sim, sub_msg) as f:
        await f.wait(lambda: bool(f.of("subscriptions")))
        before, after = await _settle(http, sim, "coinbase")
        assert after[chosen[0].symbol]["last_trade_id"] > before[chosen[0].symbol]["last_trade_id"]
        for m in chosen:
            last = after[m.symbol]["last_trade_id"]
            if last != before[m.symbol]["last_trade_id"]:
                await f.wait(
                    lambda s=m.symbol, n=last: any(x["product_id"] == s and x["trade_id"] >= n for x in f.of("match"))
                )
    for m in chosen:
        lo, hi = before[m.symbol]["last_trade_id"], after[m.symbol]["last_trade_id"]
        got = [x for x in f.of("match") if x["product_id"] == m.symbol and lo < x["trade_id"] <= hi]
        want = await truth(http, sim, venue="coinbase", symbol=m.symbol, from_id=lo + 1, to_id=hi) if hi > lo else []
        assert [(x["trade_id"], x["time"], x["side"], x["size"], Decimal(x["price"])) for x in got] == [
            (r["trade_id"], r["time"], r["side"], r["size"], Decimal(r["price"])) for r in want
        ], m


async def test_kraken_socket_equals_truth(uni: Sim) -> None:
    """The v2 trade updates of a busy, a quiet and a silent pair on one socket are exactly the truth's trades
    between two statuses."""
    sim, http = uni
    chosen = picks(sim, "kraken")
    v2 = {pairs.names(m.listing.spec).v2: m for m in chosen}
    async with client(sim, sub(symbols=tuple(v2))) as c:
        await c.wait(lambda: len(c.answers("subscribe")) >= 3)
        before, after = await _settle(http, sim, "kraken")
        assert after[chosen[0].symbol]["last_trade_id"] > before[chosen[0].symbol]["last_trade_id"]
        for name, m in v2.items():
            last = after[m.symbol]["last_trade_id"]
            if last != before[m.symbol]["last_trade_id"]:
                await c.wait(lambda s=name, n=last: any(t["symbol"] == s and t["trade_id"] >= n for t in c.trades()))
    for name, m in v2.items():
        lo, hi = before[m.symbol]["last_trade_id"], after[m.symbol]["last_trade_id"]
        got = [t for t in c.trades() if t["symbol"] == name and lo < t["trade_id"] <= hi]
        want = await truth(http, sim, venue="kraken", symbol=m.symbol, from_id=lo + 1, to_id=hi) if hi > lo else []
        assert [(t["trade_id"], t["price"], t["qty"], t["side"]) for t in got] == [
            (r["trade_id"], Decimal(r["price"]), Decimal(r["qty"]), r["taker_side"]) for r in want
        ], m
