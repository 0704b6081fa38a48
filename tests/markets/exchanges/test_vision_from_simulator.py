"""The project's reader of Binance's bulk files reads the simulator's files, to the same values REST serves."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import aiohttp

from exchangesim.engine.aggregate import DAY
from exchangesim.server import Simulator
from markets.exchanges.binance_vision import describe, read_agg_trades, read_klines
from tests.conftest import sim_config
from tests.exchangesim.vision_client import (
    agg_path,
    day_of,
    fetch_zip,
    kline_path,
    rest_aggs,
    rest_klines,
    today_ms,
)


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


async def test_the_reader_reads_the_simulators_files(tmp_path: Path) -> None:
    config = sim_config(symbols=("BTCUSDT",), history_days=2, rate=0.1, vision_delay=0)
    async with Simulator(config) as sim, aiohttp.ClientSession() as http:
        start = today_ms(sim) - DAY
        day = day_of(start)
        saved = {}
        for path in (agg_path("daily", day), kline_path("daily", "1m", day)):
            body, _ = await fetch_zip(http, sim, path)
            saved[path] = tmp_path / path.rsplit("/", 1)[1]
            saved[path].write_bytes(body)
        rest_trades = await rest_aggs(http, sim, start, start + DAY)
        rest_candles = await rest_klines(http, sim, "1m", start, start + DAY)

    ticks = list(read_agg_trades(describe(saved[agg_path("daily", day)])))
    assert len(ticks) == len(rest_trades) > 1000
    for tick, a in zip(ticks, rest_trades, strict=True):
        assert (tick.trade_id, tick.price, tick.qty) == (a["a"], Decimal(a["p"]), Decimal(a["q"]))
        assert (tick.first_trade_id, tick.last_trade_id, tick.ts) == (a["f"], a["l"], _at(a["T"]))
        assert tick.taker_side == ("sell" if a["m"] else "buy")

    candles = list(read_klines(describe(saved[kline_path("daily", "1m", day)])))
    assert len(candles) == len(rest_candles) == 1440
    for bar, k in zip(candles, rest_candles, strict=True):
        assert (bar.open_time, bar.close_time) == (_at(k[0]), _at(k[6]))
        assert (bar.open, bar.high, bar.low, bar.close) == tuple(Decimal(v) for v in k[1:5])
        assert (bar.volume, bar.quote_volume, bar.trades) == (Decimal(k[5]), Decimal(k[7]), k[8])
        assert (bar.taker_buy_volume, bar.taker_buy_quote_volume) == (Decimal(k[9]), Decimal(k[10]))
