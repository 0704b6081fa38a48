"""What keeps history work off the event loop bounded: the cache of generated blocks holds at most its budget of
trades, aggregating history keeps no trades, and work in flight gives up once the market stops or its client
leaves."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import aiohttp
import numpy as np
import pytest

from exchangesim.engine.batch import TradeBatch
from exchangesim.engine.market import Market
from exchangesim.engine.offload import BlockCache, Offload, Stopped
from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.markets.stream.test_outage import eventually

MINUTE = 60_000
# 00:30 UTC: with history_days=0.01 the history runs from 23:45:36 the day before, 45 whole minutes.
T0 = int(datetime(2026, 3, 2, 0, 30, tzinfo=UTC).timestamp() * 1000)


def batch(n: int) -> TradeBatch:
    i = np.arange(n, dtype=np.int64)
    return TradeBatch(i, i, i, i, np.zeros(n, dtype=bool))


def test_block_cache_holds_at_most_its_budget_of_trades() -> None:
    """Blocks are dropped least recently used first once the trades held pass the budget; a block bigger than the
    whole budget is held alone."""
    cache = BlockCache(max_trades=1000)
    for k in range(5):
        cache.put(k, batch(300))
    assert cache.held <= 1000
    assert cache.get(0) is None
    assert cache.get(4) is not None
    assert cache.get(2) is not None  # now the most recently used of 2, 3, 4
    cache.put(5, batch(300))
    assert cache.get(3) is None
    assert cache.get(2) is not None
    cache.put(6, batch(5000))
    assert len(cache) == 1
    assert cache.held == 5000


def test_aggregating_history_keeps_no_trades() -> None:
    """Klines over half an hour of history aggregate every minute (cached as minute aggregates) and leave the cache
    of generated blocks as it was."""
    market = Market(symbols=("BTCUSDT",), rate=200.0, seed=1, history_days=0.01, start_ms=T0)
    tape = market.tapes["BTCUSDT"]
    held = market.cache.held
    opens = tape.kline_opens("1m", tape.first_time, None, 30)
    rows = tape.klines("1m", opens)
    assert len(rows) == 30
    assert all(agg is not None and agg.count > 0 for _, agg, _ in rows)
    assert all(o in tape._minutes for o in opens)
    assert market.cache.held == held


async def test_history_work_in_flight_gives_up_when_the_market_stops() -> None:
    """A klines answer over 45 minutes at 20,000 trades/s (54 million trades) runs on a history worker; once the
    market stops, it ends with Stopped at its next minute instead of running on, and no new work is taken."""
    market = Market(symbols=("BTCUSDT",), rate=20_000.0, seed=1, history_days=0.01, start_ms=T0)
    tape = market.tapes["BTCUSDT"]
    opens = tape.kline_opens("1m", tape.first_time, None, 45)
    work = asyncio.ensure_future(market.offload.run(tape.klines, "1m", opens))
    await eventually(lambda: len(tape._minutes) > 0, 60)
    t0 = time.monotonic()
    await market.stop()
    with pytest.raises(Stopped):
        await asyncio.wait_for(work, 30)
    print(f"stopped after {len(tape._minutes)} of 45 minutes, {time.monotonic() - t0:.2f} s after the stop")
    assert len(tape._minutes) < 45
    with pytest.raises(Stopped):
        await market.offload.run(tape.klines, "1m", opens)


async def test_offload_runs_work_on_a_worker_thread() -> None:
    """The answer of ``run`` is the function's, computed off the loop's thread."""
    import threading

    offload = Offload()
    try:
        name = await offload.run(lambda: threading.current_thread().name)
        assert name.startswith("exchangesim-trades")
    finally:
        offload.close()


async def test_a_cold_klines_request_whose_client_left_is_given_up() -> None:
    """A client asks for 1,000 cold one-minute candles at 2,000 trades/s (about ten minutes aggregated a second)
    and gives up after a second: the work for it stops soon after (the minutes aggregated stop growing, far short
    of the thousand)."""
    async with Simulator(sim_config(rate=2_000.0)) as sim, aiohttp.ClientSession() as http:
        tape = sim.market.tapes["BTCUSDT"]
        params = {
            "symbol": "BTCUSDT",
            "interval": "1m",
            "limit": "1000",
            "endTime": str(sim.market.started_ms - 3_600_000),
        }
        with pytest.raises(TimeoutError):
            await http.get(f"{sim.url}/api/v3/klines", params=params, timeout=aiohttp.ClientTimeout(total=1))
        counts = [len(tape._minutes)]

        async def settled() -> bool:
            await asyncio.sleep(1.0)
            counts.append(len(tape._minutes))
            return counts[-1] == counts[-2]

        async with asyncio.timeout(30):
            while not await settled():
                pass
        print(f"given up after {counts[-1]} of 1000 minutes")
        assert 0 < counts[-1] < 300
