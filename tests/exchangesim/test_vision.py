"""The simulator's data.binance.vision files: paths, CHECKSUMs, publication, and rows equal to REST and truth.

A day's aggTrades file equals ``/api/v3/aggTrades`` over the day and ``/_sim/truth`` (every id, price, quantity,
time and flag); a klines file equals ``/api/v3/klines``; files of days not published yet, outside the history or of
an unknown symbol answer 404 as S3 does.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import aiohttp
import numpy as np
import pytest

from exchangesim.binance import vision_files, wire
from exchangesim.engine.aggregate import DAY
from exchangesim.engine.batch import AggBatch
from exchangesim.server import Simulator
from exchangesim.symbols import SymbolSpec
from tests.conftest import sim_config
from tests.exchangesim.vision_client import (
    SYMBOL,
    agg_path,
    day_of,
    fetch_zip,
    file_aggs,
    file_klines,
    kline_path,
    rest_aggs,
    rest_klines,
    status_of,
    today_ms,
    truth_aggs,
)


@pytest.fixture
async def vis() -> AsyncIterator[tuple[Simulator, aiohttp.ClientSession]]:
    """Three whole days of history at 0.2 trades/s (about 17,000 a day), files published at once."""
    config = sim_config(symbols=(SYMBOL, "ETHUSDT"), history_days=3, rate=0.2, vision_delay=0)
    async with Simulator(config) as sim, aiohttp.ClientSession() as http:
        yield sim, http


async def test_daily_agg_trades_equal_rest_and_truth(vis: tuple[Simulator, aiohttp.ClientSession]) -> None:
    sim, http = vis
    start = today_ms(sim) - 2 * DAY
    _, text = await fetch_zip(http, sim, agg_path("daily", day_of(start)))
    from_file = file_aggs(text)
    assert len(from_file) > 1000
    assert all(start <= a["T"] < start + DAY for a in from_file)
    assert [a["a"] for a in from_file] == list(range(from_file[0]["a"], from_file[-1]["a"] + 1))
    assert from_file == await rest_aggs(http, sim, start, start + DAY)
    assert from_file == await truth_aggs(http, sim, start, start + DAY)


async def test_consecutive_days_meet(vis: tuple[Simulator, aiohttp.ClientSession]) -> None:
    """The first day of the history and the last published one (yesterday) join their neighbours by id."""
    sim, http = vis
    days = [today_ms(sim) - n * DAY for n in (3, 2, 1)]
    files = [file_aggs((await fetch_zip(http, sim, agg_path("daily", day_of(d))))[1]) for d in days]
    for before, after in itertools.pairwise(files):
        assert after[0]["a"] == before[-1]["a"] + 1
        assert after[0]["f"] == before[-1]["l"] + 1
    async with http.get(  # the next aggregate trade over REST is today's
        sim.url + "/api/v3/aggTrades", params={"symbol": SYMBOL, "fromId": str(files[-1][-1]["a"] + 1), "limit": "1"}
    ) as r:
        assert all(a["T"] >= today_ms(sim) for a in await r.json())


@pytest.mark.parametrize("interval", ["1m", "1h", "1d"])
async def test_daily_klines_equal_rest(vis: tuple[Simulator, aiohttp.ClientSession], interval: str) -> None:
    sim, http = vis
    start = today_ms(sim) - DAY
    _, text = await fetch_zip(http, sim, kline_path("daily", interval, day_of(start)))
    from_file = file_klines(text)
    assert len(from_file) == {"1m": 1440, "1h": 24, "1d": 1}[interval]
    assert from_file == await rest_klines(http, sim, interval, start, start + DAY)


async def test_a_file_built_again_is_the_same(vis: tuple[Simulator, aiohttp.ClientSession]) -> None:
    """A second request is served from the cache; after the cache dropped it, the file built again has the
    same bytes (and so the same CHECKSUM)."""
    sim, http = vis
    path = agg_path("daily", day_of(today_ms(sim) - DAY))
    cache = sim.binance.vision.cache
    first, _ = await fetch_zip(http, sim, path)
    builds = cache.builds
    assert (await fetch_zip(http, sim, path))[0] == first
    assert cache.builds == builds
    cache.close()
    assert (await fetch_zip(http, sim, path))[0] == first
    assert cache.builds == builds + 1
    async with http.get(sim.url + "/_sim/status") as r:
        vision = (await r.json())["venues"]["binance"]["vision"]
    assert vision == {"delay_seconds": 0, "files_built": builds + 1, "cache_bytes": len(first)}


async def test_what_is_not_published_is_404(vis: tuple[Simulator, aiohttp.ClientSession]) -> None:
    sim, http = vis
    today = today_ms(sim)
    yesterday, before_history = day_of(today - DAY), day_of(today - 4 * DAY)
    assert await status_of(http, sim, agg_path("daily", yesterday)) == 200
    missing = [
        agg_path("daily", before_history),
        agg_path("daily", before_history) + ".CHECKSUM",
        kline_path("daily", "1m", before_history),
        agg_path("daily", yesterday, symbol="NOSUCHCOIN"),
        kline_path("daily", "1m", yesterday, symbol="NOSUCHCOIN"),
        kline_path("daily", "1w", yesterday),  # only intervals that divide a day
        kline_path("daily", "7m", yesterday),
        agg_path("daily", "2026-02-30"),
        agg_path("monthly", day_of(today)[:7]),  # the month under way
        agg_path("daily", yesterday).replace("aggTrades-", "trades-"),
        agg_path("daily", yesterday).replace(".zip", ".csv"),
        agg_path("daily", yesterday).replace(f"{SYMBOL}-", "ETHUSDT-"),
        agg_path("daily", yesterday[:7]),  # a month's name under daily
    ]
    for path in missing:
        assert await status_of(http, sim, path) == 404, path
    async with http.get(sim.url + missing[0]) as r:
        assert "<Code>NoSuchKey</Code>" in await r.text()

    sim.binance.vision.delay_ms = 3600_000  # today, then, appears at 01:00 tomorrow; yesterday at 01:00 today
    assert await status_of(http, sim, agg_path("daily", day_of(today))) == 404
    sim.binance.vision.delay_ms = 2 * DAY
    assert await status_of(http, sim, agg_path("daily", yesterday)) == 404
    assert await status_of(http, sim, kline_path("daily", "1h", yesterday) + ".CHECKSUM") == 404


@pytest.mark.parametrize(("price_dp", "qty_dp"), [(2, 5), (4, 6), (6, 6), (0, 8), (8, 0), (10, 3)])
def test_fast_rows_are_written_as_rest_writes_them(price_dp: int, qty_dp: int) -> None:
    """pyarrow's rows equal Python's ``wire.fmt`` rows; values below 0.000001 or with more than 8 decimals take
    Python's path (the first three cases take the fast one)."""
    spec = SymbolSpec("XUSDT", "X", "USDT", price_dp, qty_dp, 1.0, 1, 1)
    n = 7
    aggs = AggBatch(
        agg_ids=np.arange(10, 10 + n, dtype=np.int64),
        prices=np.array([1, 5, 99, 100, 123_456_789, 10**12, 7], dtype=np.int64),
        qtys=np.array([1, 10, 1000, 99_999, 3, 10**9, 42], dtype=np.int64),
        first_ids=np.arange(100, 100 + n, dtype=np.int64),
        last_ids=np.arange(100, 100 + n, dtype=np.int64) + np.array([0, 0, 1, 0, 2, 0, 0]),
        times=np.arange(n, dtype=np.int64) + 1_796_428_805_172,
        buyer_maker=np.array([True, False, True, True, False, False, True]),
    )
    for us in (False, True):
        fast = vision_files.agg_rows(spec, aggs, us).decode()
        assert fast == vision_files._agg_rows_python(spec, aggs, us).decode()
        assert [r.split(",")[1:3] for r in fast.splitlines()] == [[r["p"], r["q"]] for r in wire.rest_aggs(spec, aggs)]
