"""History served over REST is one consistent record: klines equal the klines computed from the
aggregate trades, aggregate trades equal the trades they group, ids are contiguous, paging has no gap
or duplicate, closed WebSocket klines equal REST klines, runs with one seed share their history, and
the load mode delivers the rate asked for."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchangesim.engine.aggregate import INTERVAL_MS
from exchangesim.server import Simulator, running_in_thread
from tests.conftest import sim_config

SYMBOL = "BTCUSDT"
INTERVALS = ["1s", "1m", "3m", "5m", "15m", "30m", "1h"]


# -- helpers: a synchronous client (hypothesis drives plain functions) -------------------------------------
def _get(base: str, path: str, **params: Any) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _d8(x: Decimal) -> str:
    return f"{x:.8f}"


def agg_pages_by_id(base: str, first_id: int, end_ms: int) -> list[dict[str, Any]]:
    """aggTrades from ``first_id`` while ``T <= end_ms``, paged with fromId (python-binance style)."""
    out: list[dict[str, Any]] = []
    nxt = first_id
    while True:
        page = _get(base, "/api/v3/aggTrades", symbol=SYMBOL, fromId=nxt, limit=1000)
        keep = [a for a in page if a["T"] <= end_ms]
        out.extend(keep)
        if len(keep) < len(page) or len(page) < 1000:
            return out
        nxt = page[-1]["a"] + 1


def agg_pages_by_time(base: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    """aggTrades with ``start_ms <= T <= end_ms``, paged with startTime/endTime (ccxt style), de-duplicated
    by id because each next page starts at the last time seen."""
    out: list[dict[str, Any]] = []
    seen = -1
    start = start_ms
    while True:
        page = _get(base, "/api/v3/aggTrades", symbol=SYMBOL, startTime=start, endTime=end_ms, limit=1000)
        out.extend(a for a in page if a["a"] > seen)
        if len(page) < 1000:
            return out
        seen = page[-1]["a"]
        start = page[-1]["T"]


def klines_from_aggs(aggs: list[dict[str, Any]], opens: list[int], step: int, prev_close: str) -> list[list[Any]]:
    """Binance kline rows computed from aggregate trades (each holds one price, so quote volume is exact)."""
    rows = []
    by_open: dict[int, list[dict[str, Any]]] = {}
    for a in aggs:
        by_open.setdefault(a["T"] // step * step, []).append(a)
    prev = Decimal(prev_close)
    zero = _d8(Decimal(0))
    for o in opens:
        group = by_open.get(o, [])
        if not group:
            rows.append([o, _d8(prev), _d8(prev), _d8(prev), _d8(prev), zero, o + step - 1, zero, 0, zero, zero, "0"])
            continue
        prices = [Decimal(a["p"]) for a in group]
        qtys = [Decimal(a["q"]) for a in group]
        buys = [(p, q) for p, q, a in zip(prices, qtys, group, strict=True) if not a["m"]]
        rows.append(
            [
                o,
                _d8(prices[0]),
                _d8(max(prices)),
                _d8(min(prices)),
                _d8(prices[-1]),
                _d8(sum(qtys, Decimal(0))),
                o + step - 1,
                _d8(sum((p * q for p, q in zip(prices, qtys, strict=True)), Decimal(0))),
                group[-1]["l"] - group[0]["f"] + 1,
                _d8(sum((q for _, q in buys), Decimal(0))),
                _d8(sum((p * q for p, q in buys), Decimal(0))),
                "0",
            ]
        )
        prev = prices[-1]
    return rows


def _norm(rows: list[list[Any]]) -> list[list[Any]]:
    """REST rows with decimal strings normalised to 8 places (they already are; this guards the compare)."""
    return [[_d8(Decimal(v)) if isinstance(v, str) and i != 11 else v for i, v in enumerate(r)] for r in rows]


def _price_before(base: str, t_ms: int) -> str:
    page = _get(base, "/api/v3/aggTrades", symbol=SYMBOL, endTime=t_ms - 1, limit=1)
    assert page, "the window starts after the first trade of the history"
    return page[-1]["p"]


def _check_contiguous(aggs: list[dict[str, Any]]) -> None:
    for prev, nxt in itertools.pairwise(aggs):
        assert nxt["a"] == prev["a"] + 1
        assert nxt["f"] == prev["l"] + 1
        assert nxt["T"] >= prev["T"]
    for a in aggs:
        assert a["f"] <= a["l"]


# -- the property --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def slow_sim() -> Iterator[Simulator]:
    """A thread-hosted simulator at 5 trades/s (so hour klines page through few aggTrades), paused so the
    newest kline stays put while a test compares."""
    with running_in_thread(sim_config(rate=5.0, seed=7)) as s:
        yield s


@pytest.fixture(scope="module")
def window_bounds(slow_sim: Simulator) -> tuple[int, int]:
    status = _get(slow_sim.url, "/_sim/status")
    info = status["symbols"][SYMBOL]
    return info["history_from_ms"], status["started_ms"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    interval=st.sampled_from(INTERVALS),
    n=st.integers(1, 40),
    frac=st.floats(0.001, 0.999),
    jitter=st.integers(0, 10**9),
    by_id=st.booleans(),
)
def test_klines_equal_klines_of_agg_trades(
    slow_sim: Simulator, window_bounds: tuple[int, int], interval: str, n: int, frac: float, jitter: int, by_id: bool
) -> None:
    """For a random past window: REST klines (startTime/endTime/limit) equal klines computed from the REST
    aggTrades of the window (OHLC, volume, quote volume to 8 decimals, count from f/l, taker-buy volumes,
    close time; empty klines flat at the previous close), aggTrades ids are contiguous and
    historicalTrades regroup into exactly those aggTrades."""
    base = slow_sim.url
    lo, hi = window_bounds
    step = INTERVAL_MS[interval]
    n = min(n, max(1, 7_200_000 // step))  # keep the aggTrades to page through small
    span = n * step
    first_open = (lo + step + int((hi - lo - span - 2 * step) * frac)) // step * step
    start = first_open - step + 1 + jitter % step  # anywhere inside the kline before: ceil() gives first_open
    end = first_open + span - 1 - (jitter // step) % step  # inside the last kline
    opens = [first_open + i * step for i in range(n)]

    rest = _get(base, "/api/v3/klines", symbol=SYMBOL, interval=interval, startTime=start, endTime=end, limit=1000)
    assert [r[0] for r in rest] == opens
    ui = _get(base, "/api/v3/uiKlines", symbol=SYMBOL, interval=interval, startTime=start, endTime=end, limit=1000)
    assert ui == rest

    # start/end/limit rules
    if n > 1:
        only_start = _get(base, "/api/v3/klines", symbol=SYMBOL, interval=interval, startTime=start, limit=n - 1)
        assert only_start == rest[: n - 1], "startTime only: the oldest klines from startTime"
        only_end = _get(base, "/api/v3/klines", symbol=SYMBOL, interval=interval, endTime=end, limit=n - 1)
        assert only_end == rest[1:], "endTime only: the newest klines up to endTime"
        capped = _get(
            base, "/api/v3/klines", symbol=SYMBOL, interval=interval, startTime=start, endTime=end, limit=n - 1
        )
        assert capped == rest[: n - 1], "both: like startTime, capped by limit"

    window_end = first_open + span - 1
    if by_id:
        head = _get(base, "/api/v3/aggTrades", symbol=SYMBOL, startTime=first_open, endTime=window_end, limit=1)
        aggs = agg_pages_by_id(base, head[0]["a"], window_end) if head else []
    else:
        aggs = agg_pages_by_time(base, first_open, window_end)
    _check_contiguous(aggs)
    assert all(first_open <= a["T"] <= window_end for a in aggs)
    expected = klines_from_aggs(aggs, opens, step, _price_before(base, first_open))
    assert _norm(rest) == expected

    # trades regroup into the aggregate trades
    if aggs:
        sample = aggs[:300]
        trades = _get(base, "/api/v3/historicalTrades", symbol=SYMBOL, fromId=sample[0]["f"], limit=1000)
        trades = [t for t in trades if t["id"] <= sample[-1]["l"]]
        assert [t["id"] for t in trades] == list(range(sample[0]["f"], sample[-1]["l"] + 1))
        by_id_map = {t["id"]: t for t in trades}
        for a in sample:
            members = [by_id_map[i] for i in range(a["f"], a["l"] + 1)]
            assert {(t["price"], t["time"], t["isBuyerMaker"]) for t in members} == {(a["p"], a["T"], a["m"])}
            assert sum(Decimal(t["qty"]) for t in members) == Decimal(a["q"])
            assert all(Decimal(t["quoteQty"]) == Decimal(t["price"]) * Decimal(t["qty"]) for t in members)


def test_paging_klines_and_agg_trades_across_pages(slow_sim: Simulator, window_bounds: tuple[int, int]) -> None:
    """python-binance's get_historical_klines walk (startTime = last open + 1 interval, 1000 rows a page)
    and fromId paging of aggTrades cover a window with no gap and no duplicate."""
    base = slow_sim.url
    lo, _ = window_bounds
    start = (lo // 60_000 + 5) * 60_000
    end = start + 3_500_000  # 3500 one-second klines: four pages
    rows: list[list[Any]] = []
    nxt = start
    while nxt <= end:
        page = _get(base, "/api/v3/klines", symbol=SYMBOL, interval="1s", startTime=nxt, endTime=end, limit=1000)
        if not page:
            break
        rows.extend(page)
        nxt = page[-1][0] + 1000
    assert [r[0] for r in rows] == list(range(start, end + 1, 1000))
    minutes = _get(base, "/api/v3/klines", symbol=SYMBOL, interval="1m", startTime=start, endTime=start + 3_000_000 - 1)
    assert len(minutes) == 50
    for i, m in enumerate(minutes):  # sixty 1s klines make each 1m kline
        secs = rows[i * 60 : (i + 1) * 60]
        assert m[8] == sum(r[8] for r in secs)
        assert Decimal(m[5]) == sum(Decimal(r[5]) for r in secs)

    by_time = agg_pages_by_time(base, start, end + 999)  # through the close of the last 1s kline
    first = by_time[0]["a"]
    by_id = agg_pages_by_id(base, first, end + 999)
    assert len(by_id) > 2000, "the window spans several aggTrades pages"
    assert by_id == by_time
    _check_contiguous(by_id)
    assert sum(r[8] for r in rows) == by_id[-1]["l"] - by_id[0]["f"] + 1


# -- live: WebSocket klines --------------------------------------------------------------------------------
async def test_closed_ws_klines_equal_rest(sim: Simulator) -> None:
    """Closed ``@kline_1s`` frames (x=true) equal the REST kline with the same open time and the kline
    computed from the REST aggTrades of that second (first/last trade ids included)."""
    closed: list[dict[str, Any]] = []
    async with websockets.connect(f"{sim.ws_url}/ws/btcusdt@kline_1s") as ws:
        deadline = time.monotonic() + 8
        while len(closed) < 3:
            raw = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
            k = json.loads(raw)["k"]
            if k["x"]:
                closed.append(k)
    async with aiohttp.ClientSession() as s:
        for k in closed:
            async with s.get(
                f"{sim.url}/api/v3/klines", params={"symbol": SYMBOL, "interval": "1s", "startTime": k["t"], "limit": 1}
            ) as r:
                (row,) = await r.json()
            as_rest = [k["t"], k["o"], k["h"], k["l"], k["c"], k["v"], k["T"], k["q"], k["n"], k["V"], k["Q"], "0"]
            assert row == as_rest
            async with s.get(
                f"{sim.url}/api/v3/aggTrades",
                params={"symbol": SYMBOL, "startTime": k["t"], "endTime": k["T"], "limit": 1000},
            ) as r:
                aggs = await r.json()
            async with s.get(
                f"{sim.url}/api/v3/aggTrades", params={"symbol": SYMBOL, "endTime": k["t"] - 1, "limit": 1}
            ) as r:
                prev = (await r.json())[-1]["p"]
            assert _norm([row]) == klines_from_aggs(aggs, [k["t"]], 1000, prev)
            if aggs:
                assert (k["f"], k["L"]) == (aggs[0]["f"], aggs[-1]["l"])


async def test_klines_without_times_are_the_newest(sim: Simulator) -> None:
    """With neither startTime nor endTime, klines are the newest ``limit`` ones, ending with the open one."""
    tape = sim.market.tapes[SYMBOL]
    async with aiohttp.ClientSession() as s:
        # the engine's clock, not the server's: a minute's kline is out from the engine's first tick in it, which
        # comes up to a tick after the minute began
        before = tape.emitted_ms
        async with s.get(f"{sim.url}/api/v3/klines", params={"symbol": SYMBOL, "interval": "1m", "limit": 5}) as r:
            rows = await r.json()
        after = tape.emitted_ms
    opens = [row[0] for row in rows]
    assert opens[-1] in {before // 60_000 * 60_000, after // 60_000 * 60_000}
    assert opens == [opens[-1] - (4 - i) * 60_000 for i in range(5)]


# -- determinism ------------------------------------------------------------------------------------------
async def _history_sample(sim: Simulator, s: aiohttp.ClientSession) -> tuple[Any, Any, Any]:
    async with s.get(f"{sim.url}/_sim/status") as r:
        lo = (await r.json())["symbols"]["ETHUSDT"]["history_from_ms"]
    start = lo + 3_600_000
    q = {"symbol": "ETHUSDT", "startTime": start, "endTime": start + 300_000}
    async with s.get(f"{sim.url}/api/v3/klines", params={**q, "interval": "1m"}) as r:
        kl = await r.json()
    async with s.get(f"{sim.url}/api/v3/aggTrades", params={**q, "limit": 1000}) as r:
        ag = await r.json()
    async with s.get(f"{sim.url}/api/v3/klines", params={**q, "interval": "1s", "limit": 300}) as r:
        ks = await r.json()
    return kl, ag, ks


async def test_same_seed_same_history_other_seed_differs() -> None:
    """Two simulators with one seed, started on the same day, serve identical past klines and aggTrades;
    another seed serves a different past."""
    async with (
        Simulator(sim_config(seed=42)) as a,
        Simulator(sim_config(seed=42)) as b,
        Simulator(sim_config(seed=43)) as c,
        aiohttp.ClientSession() as s,
    ):
        sa, sb, sc = await _history_sample(a, s), await _history_sample(b, s), await _history_sample(c, s)
    assert len(sa[0]) == 6
    assert len(sa[1]) == 1000
    assert sa == sb
    assert sa[0] != sc[0]
    assert sa[1] != sc[1]


# -- load mode --------------------------------------------------------------------------------------------
async def test_load_mode_rate() -> None:
    """``POST /_sim/market {"rate": 20000}`` puts the market in load mode, where every trade emitted is a new
    contiguous id. (That it trades about 20000 times a second is pinned in test_engine: a live market measured
    for two seconds trades with the day's volatility and bursts.)"""
    async with Simulator(sim_config(history_days=0.0)) as sim, aiohttp.ClientSession() as s:
        async with s.post(f"{sim.url}/_sim/market", json={"rate": 20000}) as r:
            assert (await r.json())["rate"] == 20000
        async with s.get(f"{sim.url}/_sim/status") as r:
            before = await r.json()
        after = before
        while after["server_time"] - before["server_time"] < 2000:  # two seconds of load
            await asyncio.sleep(0.1)
            async with s.get(f"{sim.url}/_sim/status") as r:
                after = await r.json()
    assert after["rate"] == 20000
    for sym in ("BTCUSDT", "ETHUSDT"):
        made = after["symbols"][sym]["trades_emitted"] - before["symbols"][sym]["trades_emitted"]
        assert made > 0, sym
        ids = after["symbols"][sym]["last_trade_id"] - before["symbols"][sym]["last_trade_id"]
        assert ids == made, "every trade emitted is a new contiguous id"


async def test_warmed_history_serves_the_same_klines() -> None:
    """Warming the history in the background caches every past minute and changes no answer."""
    from exchangesim.server import Simulator as Sim

    async with (
        Sim(sim_config(history_days=0.05, warm_history=True)) as warm,
        Sim(sim_config(history_days=0.05)) as cold,
    ):
        task = warm.market._warm_task
        assert task is not None
        await asyncio.wait_for(task, 60)
        tape = warm.market.tapes["BTCUSDT"]
        first = tape.first_time
        assert all(m in tape._minutes for m in range(first, warm.market.started_ms // 60_000 * 60_000, 60_000))
        params = {"symbol": "BTCUSDT", "interval": "1h", "startTime": str(first), "endTime": str(first + 3_600_000)}
        async with aiohttp.ClientSession() as http:
            got = [await (await http.get(f"{s.url}/api/v3/klines", params=params)).json() for s in (warm, cold)]
        assert got[0] == got[1]
        assert got[0]
