"""A month's data.binance.vision files are the concatenation of its days' files.

A whole past month needs up to 62 days of history; at 0.002 trades/s (about 5,000 aggregate trades a month) the
files stay small, but every minute of the month is still a block to read: about ten seconds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp

from exchangesim.engine.aggregate import DAY
from exchangesim.server import Simulator
from tests.conftest import sim_config
from tests.exchangesim.vision_client import (
    agg_path,
    fetch_zip,
    file_aggs,
    file_klines,
    kline_path,
    rest_klines,
    status_of,
    today_ms,
)


async def test_a_month_is_its_days() -> None:
    config = sim_config(
        symbols=("BTCUSDT",), venue_symbols={"coinbase": (), "kraken": ()}, history_days=62, rate=0.002, vision_delay=0
    )
    async with Simulator(config) as sim, aiohttp.ClientSession() as http:
        # the month before the simulator's first day's month: whole, over, and inside 62 days of history whatever
        # the date (from the 1st of last month to the 31st of this one is 61 days)
        first_of_this = datetime.fromtimestamp(today_ms(sim) / 1000, UTC).replace(day=1)
        last_day = first_of_this - timedelta(days=1)
        month = last_day.strftime("%Y-%m")
        days = [f"{month}-{d:02d}" for d in range(1, last_day.day + 1)]
        month_end = int(first_of_this.timestamp()) * 1000
        month_start = month_end - len(days) * DAY
        assert sim.market.tapes["BTCUSDT"].first_time <= month_start

        _, monthly = await fetch_zip(http, sim, agg_path("monthly", month))
        daily = [(await fetch_zip(http, sim, agg_path("daily", d)))[1] for d in days]
        assert monthly == "".join(daily)
        aggs = file_aggs(monthly)
        assert len(aggs) > 1000
        assert [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[-1]["a"] + 1))

        _, monthly_1d = await fetch_zip(http, sim, kline_path("monthly", "1d", month))
        daily_1d = [(await fetch_zip(http, sim, kline_path("daily", "1d", d)))[1] for d in days]
        assert monthly_1d == "".join(daily_1d)
        assert len(monthly_1d.splitlines()) == len(days)
        _, monthly_1h = await fetch_zip(http, sim, kline_path("monthly", "1h", month))
        assert file_klines(monthly_1h) == await rest_klines(http, sim, "1h", month_start, month_end)

        # with a delay of 62 days, last month's files are not out yet (built already, they are still not served)
        sim.binance.vision.delay_ms = 62 * DAY
        assert await status_of(http, sim, agg_path("monthly", month)) == 404
        assert await status_of(http, sim, kline_path("monthly", "1h", month) + ".CHECKSUM") == 404
