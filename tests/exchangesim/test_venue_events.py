"""Per-venue control: outliers, stale windows, forgotten REST history (Coinbase and Binance), REST faults
and live settings on Coinbase, and the 400s of bad input."""

from __future__ import annotations

import asyncio
import time
from statistics import median
from typing import Any

import aiohttp
import pytest

from exchangesim.engine.aggregate import MINUTE
from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.test_coinbase import cb_get, truth
from tests.exchangesim.test_coinbase_feed import SUB, feed


async def _post(http: aiohttp.ClientSession, sim: Simulator, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(f"{sim.url}{path}", json=body) as r:
        return r.status, await r.json()


async def test_outlier_prices_one_venue_off_and_truth_shows_it() -> None:
    """For its window, Coinbase BTC-USD prints about 200 bps above Binance, in the feed and in the truth; before
    and after it, the venues agree within a few bps; ids stay contiguous."""
    async with Simulator(sim_config(rate=100.0)) as sim, aiohttp.ClientSession() as http, feed(sim) as f:
        await f.wait(lambda: len(f.of("match")) > 5)
        st, w = await _post(
            http, sim, "/_sim/venue/outlier", {"venue": "coinbase", "symbol": "BTC-USD", "bps": 200, "seconds": 1.0}
        )
        assert st == 200
        assert w["ticks"] > 0
        await f.wait(lambda: f.of("match")[-1]["time"] > _iso(w["until_ms"] + 500), within=5)
        cb = await truth(
            http, sim, venue="coinbase", symbol="BTC-USD", start_ms=w["from_ms"] - 3000, end_ms=w["until_ms"] + 500
        )
        bn = await truth(http, sim, symbol="BTCUSDT", start_ms=w["from_ms"] - 3000, end_ms=w["until_ms"] + 500)
    ref = median(float(r["price"]) for r in bn)
    inside = [float(r["price"]) for r in cb if w["from_ms"] <= r["time_ms"] < w["until_ms"]]
    outside = [float(r["price"]) for r in cb if not w["from_ms"] <= r["time_ms"] < w["until_ms"]]
    assert inside
    assert outside
    assert 150 < (median(inside) / ref - 1) * 1e4 < 250
    assert abs(median(outside) / ref - 1) * 1e4 < 30
    sent = {m["trade_id"]: float(m["price"]) for m in f.of("match")}
    assert all(sent[r["trade_id"]] == float(r["price"]) for r in cb if r["trade_id"] in sent)
    ids = [r["trade_id"] for r in cb]
    assert ids == list(range(ids[0], ids[0] + len(ids)))


def _iso(t_ms: int) -> str:
    from exchangesim.coinbase.wire import iso_us

    return iso_us(t_ms)


async def test_stale_venue_prints_nothing_but_keeps_the_socket() -> None:
    """A stale window silences one venue symbol: no match and no trade in the truth for its seconds while
    heartbeats go on with the same last trade id; then trading resumes with the next id. Binance is unaffected."""
    async with Simulator(sim_config(rate=100.0)) as sim, aiohttp.ClientSession() as http, feed(sim) as f:
        await f.wait(lambda: len(f.of("match")) > 5)
        st, body = await _post(
            http, sim, "/_sim/venue/stale", {"venue": "coinbase", "symbol": "BTC-USD", "seconds": 1.5}
        )
        assert st == 200
        until = body["until_ms"]
        start = until - 1500
        await f.wait(lambda: any(m["time"] > _iso(until) for m in f.of("match")), within=5)
        cb = await truth(http, sim, venue="coinbase", symbol="BTC-USD", start_ms=start - 2000, end_ms=until + 300)
        bn = await truth(http, sim, symbol="BTCUSDT", start_ms=start, end_ms=until - 1)
        assert not f.ws.closed
    assert not [r for r in cb if start < r["time_ms"] < until]
    assert set(sim.market.stale_until) == {"coinbase:BTC-USD"}, "only that venue symbol went quiet"
    assert bn, "Binance kept trading"
    ids = [r["trade_id"] for r in cb]
    assert ids == list(range(ids[0], ids[0] + len(ids))), "the silence skips no id"
    quiet_beats = [m for m in f.of("heartbeat") if _iso(start + 300) < m["time"] < _iso(until - 100)]
    assert quiet_beats, "heartbeats continue"
    assert len({m["last_trade_id"] for m in quiet_beats}) == 1


async def test_forget_coinbase_history() -> None:
    """Forgotten trades are skipped by the cursors (pages are filled from beyond the hole) and their candles
    are gone, while the truth still has them; /_sim/reset brings them back."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        end = sim.market.started_ms // MINUTE * MINUTE
        a, b = end - 20 * MINUTE + 15_000, end - 17 * MINUTE - 1
        st, body = await _post(
            http, sim, "/_sim/rest/forget", {"venue": "coinbase", "symbol": "BTC-USD", "start_ms": a, "end_ms": b}
        )
        assert (st, body["forgotten"]) == (200, [[a, b]])
        hole = await truth(http, sim, venue="coinbase", symbol="BTC-USD", start_ms=a, end_ms=b)
        assert len(hole) > 10, "the hole is wider than the pages that skip it look"
        first, last = hole[0]["trade_id"], hole[-1]["trade_id"]
        _, page, headers = await cb_get(http, sim, "/products/BTC-USD/trades", after=last + 11, limit=20)
        assert [r["trade_id"] for r in page] == [*range(last + 10, last, -1), *range(first - 1, first - 11, -1)]
        assert headers["CB-AFTER"] == str(first - 10)
        _, page, _ = await cb_get(http, sim, "/products/BTC-USD/trades", before=first + 5, limit=5)
        assert [r["trade_id"] for r in page] == list(range(last + 5, last, -1))
        _, candles, _ = await cb_get(
            http,
            sim,
            "/products/BTC-USD/candles",
            granularity=60,
            start=(end - 30 * MINUTE) // 1000,
            end=(end - MINUTE) // 1000,
        )
        times = {c[0] * 1000 for c in candles}
        assert times.isdisjoint({end - 20 * MINUTE, end - 19 * MINUTE, end - 18 * MINUTE})
        assert {end - 21 * MINUTE, end - 17 * MINUTE} <= times
        assert await truth(http, sim, venue="coinbase", symbol="BTC-USD", start_ms=a, end_ms=b) == hole
        assert (await _post(http, sim, "/_sim/reset", {}))[0] == 200
        _, page, _ = await cb_get(http, sim, "/products/BTC-USD/trades", after=first + 1, limit=1)
        assert page[0]["trade_id"] == first


async def test_forget_binance_history() -> None:
    """On Binance, aggTrades?fromId= inside the forgotten range skips past it (the first page starts after
    the hole), trades by time and historicalTrades leave it out, and its klines are omitted."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        end = sim.market.started_ms // MINUTE * MINUTE
        a, b = end - 10 * MINUTE, end - 8 * MINUTE - 1
        st, _ = await _post(http, sim, "/_sim/rest/forget", {"symbol": "BTCUSDT", "start_ms": a, "end_ms": b})
        assert st == 200
        hole = await truth(http, sim, symbol="BTCUSDT", kind="aggTrades", start_ms=a, end_ms=b)
        after = await truth(http, sim, symbol="BTCUSDT", kind="aggTrades", start_ms=b + 1, end_ms=end)

        async def get(path: str, **params: object) -> Any:
            async with http.get(f"{sim.url}/api/v3/{path}", params={k: str(v) for k, v in params.items()}) as r:
                assert r.status == 200
                return await r.json()

        page = await get("aggTrades", symbol="BTCUSDT", fromId=hole[5]["a"], limit=10)
        assert page == after[:10]
        before_hole = await get("aggTrades", symbol="BTCUSDT", fromId=hole[0]["a"] - 3, limit=6)
        assert [x["a"] for x in before_hole] == [*range(hole[0]["a"] - 3, hole[0]["a"]), *(x["a"] for x in after[:3])]
        by_time = await get("aggTrades", symbol="BTCUSDT", startTime=a - 1000, endTime=b + 1000, limit=1000)
        assert by_time
        assert all(not a <= x["T"] <= b for x in by_time)
        trades = await get("historicalTrades", symbol="BTCUSDT", fromId=hole[0]["f"], limit=5)
        assert trades[0]["id"] == after[0]["f"]
        klines = await get("klines", symbol="BTCUSDT", interval="1m", startTime=end - 12 * MINUTE, endTime=end - 1)
        assert [k[0] for k in klines] == [end - 12 * MINUTE, end - 11 * MINUTE, *range(end - 8 * MINUTE, end, MINUTE)]


async def test_coinbase_rest_faults_and_clock() -> None:
    """REST faults aimed at venue coinbase answer {"message"} with their status (path_prefix with or without
    /coinbase), a delay delays; Binance is untouched; clock_offset_ms moves /time; weight_limit is refused."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, _ = await _post(
            http, sim, "/_sim/rest/fault", {"venue": "coinbase", "path_prefix": "/products", "status": 503, "count": 1}
        )
        assert st == 200
        assert (await cb_get(http, sim, "/time"))[0] == 200
        assert (await cb_get(http, sim, "/products"))[:2] == (503, {"message": "Service Unavailable"})
        await _post(
            http, sim, "/_sim/rest/fault", {"venue": "coinbase", "path_prefix": "/coinbase/time", "status": 429}
        )
        async with http.get(f"{sim.venue_url('coinbase')}/time") as r:
            assert (r.status, r.headers["Retry-After"], await r.json()) == (
                429,
                "1",
                {"message": "Public rate limit exceeded"},
            )
        await _post(http, sim, "/_sim/rest/fault", {"venue": "coinbase", "delay_ms": 400})
        t0 = time.monotonic()
        assert (await cb_get(http, sim, "/time"))[0] == 200
        assert time.monotonic() - t0 >= 0.4
        st, body = await _post(http, sim, "/_sim/config", {"venue": "coinbase", "clock_offset_ms": 3_600_000})
        assert (st, body) == (200, {"ok": True, "clock_offset_ms": 3_600_000})
        assert (await cb_get(http, sim, "/time"))[1]["epoch"] - time.time() == pytest.approx(3600, abs=5)
        st, body = await _post(http, sim, "/_sim/config", {"venue": "coinbase", "weight_limit": 10})
        assert st == 400
        assert "weight_limit" in body["error"]
        async with http.get(f"{sim.url}/api/v3/time") as r:
            assert abs((await r.json())["serverTime"] / 1000 - time.time()) < 5


@pytest.mark.parametrize(
    ("path", "body", "word"),
    [
        ("/_sim/venue/outlier", {"venue": "coinbase", "symbol": "BTC-USD", "bps": 0, "seconds": 1}, "'bps'"),
        ("/_sim/venue/outlier", {"venue": "coinbase", "symbol": "BTC-USD", "bps": 50}, "'seconds'"),
        ("/_sim/venue/outlier", {"venue": "coinbase", "symbol": "BTCUSDT", "bps": 50, "seconds": 1}, "symbol"),
        ("/_sim/venue/outlier", {"venue": "bitstamp", "symbol": "BTC-USD", "bps": 50, "seconds": 1}, "venue"),
        ("/_sim/venue/stale", {"venue": "coinbase", "symbol": "BTC-USD", "seconds": 0}, "'seconds'"),
        ("/_sim/venue/stale", {"symbol": "BTC-USD", "seconds": 1}, "symbol"),
        ("/_sim/venue/stale", {"venue": "coinbase", "seconds": 1}, "'symbol'"),
        ("/_sim/rest/forget", {"venue": "coinbase", "symbol": "BTC-USD", "start_ms": 5, "end_ms": 4}, "'end_ms'"),
        ("/_sim/rest/forget", {"venue": "coinbase", "symbol": "BTC-USD", "start_ms": "5", "end_ms": 9}, "'start_ms'"),
        ("/_sim/rest/forget", {"symbol": "BTCUSDT", "start_ms": 1, "end_ms": 2, "extra": 1}, "'extra'"),
        ("/_sim/ws/drop", {"venue": "coinbase", "mode": "explode"}, "'mode'"),
    ],
)
async def test_bad_venue_control_input(path: str, body: dict[str, Any], word: str) -> None:
    """Bad input to the venue controls is a 400 naming the field, and changes nothing."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        st, reply = await _post(http, sim, path, body)
        assert st == 400
        assert word in reply["error"], reply
        assert sim.faults.forgotten == {}
        assert sim.market.stale_until == {}
        assert all(not t.offsets for t in sim.market.tapes.values())


async def test_truth_kinds_per_venue() -> None:
    """Truth for Coinbase has one kind (trades); aggTrades there, or a Binance symbol name, is a 400."""
    async with Simulator(sim_config()) as sim, aiohttp.ClientSession() as http:
        for q in (
            {"venue": "coinbase", "symbol": "BTC-USD", "kind": "aggTrades"},
            {"venue": "coinbase", "symbol": "BTCUSDT"},
            {"symbol": "BTC-USD"},
        ):
            async with http.get(f"{sim.url}/_sim/truth", params=q) as r:
                assert r.status == 400
        await asyncio.sleep(0)
        async with feed(sim, SUB) as f:
            await f.wait(lambda: f.of("match"))
