"""A range the exchange can no longer serve: the simulator's Binance REST forgets ten minutes of BTCUSDT trades
that we never stored. The hole's backfill ends ``unrecoverable``, and the candles of those minutes come from
Coinbase's BTC-USD, marked ``source: coinbase`` in storage and in the API, never passed off as Binance's."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.test import Client

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.exchanges.coinbase.rest import CoinbaseRest
from markets.models import Candle, Gap, Tick
from markets.scan import ScanConfig
from markets.services import candles_rebuild
from markets.tasks import gap_backfill, gaps_scan
from markets.venues import rest_adapter
from tests.conftest import sim_config
from tests.markets.test_backfill import backfill

MINUTE = timedelta(minutes=1)


@pytest.fixture
def sim(settings: Any) -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=20.0, history_days=0.1)) as s:
        settings.BINANCE_REST_URL = s.url
        settings.COINBASE_REST_URL = s.venue_url("coinbase")
        yield s


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def lose_ten_minutes(sim: Simulator) -> tuple[datetime, datetime, list[datetime]]:
    """Half an hour of BTCUSDT stored by REST, minus ten minutes of it that the simulator's Binance then forgets
    (what a stream misses during an outage longer than the exchange keeps); the Coinbase BTC-USD instrument
    is stored too. Returns the half hour and the lost minutes."""
    for exchange, symbol in (("binance", "BTCUSDT"), ("coinbase", "BTC-USD")):
        call_command("seed_instruments", "--exchange", exchange, "--symbols", symbol, stdout=io.StringIO())
    end = iv.floor(datetime.now(UTC), "1m") - 5 * MINUTE
    start = end - 30 * MINUTE
    lost_from, lost_to = start + 10 * MINUTE, start + 20 * MINUTE
    backfill("--what", "trades", "--symbol", "BTCUSDT", "--start", start.isoformat(), "--end", end.isoformat())
    ticks = connection.database[Tick._meta.db_table]
    assert ticks.delete_many({"symbol": "BTCUSDT", "ts": {"$gte": lost_from, "$lt": lost_to}}).deleted_count > 1000
    # the backfill built their candles too; a stream that missed those minutes leaves none
    connection.database[Candle._meta.db_table].delete_many({"symbol": "BTCUSDT", "open_time": {"$gte": lost_from}})
    candles_rebuild(
        exchange="binance", symbol="BTCUSDT", minutes=[start + k * MINUTE for k in range(30)], now=datetime.now(UTC)
    )
    lost = [lost_from + k * MINUTE for k in range(10)]
    assert not Candle.objects.filter(symbol="BTCUSDT", open_time__in=lost).exists()
    requests.post(
        f"{sim.url}/_sim/rest/forget",
        timeout=5,
        json={
            "venue": "binance",
            "symbol": "BTCUSDT",
            "start_ms": ms(lost_from),
            "end_ms": ms(lost_to) - 1,
        },
    ).raise_for_status()
    return start, end, lost


def fill_the_hole() -> Gap:
    """What the gap scan and its backfill task do with the hole."""
    (scan,) = gaps_scan(config=ScanConfig(lookback=timedelta(hours=1)), now=datetime.now(UTC))
    assert len(scan.holes.fill) == 1
    first_id, last_id = scan.holes.fill[0]
    adapter = rest_adapter("binance")
    try:
        return gap_backfill(adapter=adapter, exchange="binance", symbol="BTCUSDT", first_id=first_id, last_id=last_id)
    finally:
        adapter.close()


@pytest.mark.django_db
def test_an_unrecoverable_hole_gets_its_candles_from_another_venue_marked_as_such(sim: Simulator) -> None:
    start, end, lost = lose_ten_minutes(sim)
    lost_from, lost_to = lost[0], lost[-1] + MINUTE
    gap = fill_the_hole()
    assert (gap.state, gap.recovered) == (Gap.State.UNRECOVERABLE, 0)
    assert "did not return" in gap.reason

    with CoinbaseRest(sim.venue_url("coinbase")) as coinbase:
        theirs = {b.open_time: b for b in coinbase.klines("BTC-USD", "1m", lost_from, lost_to)}
    filled = {c.open_time: c for c in Candle.objects.filter(exchange="binance", symbol="BTCUSDT", open_time__in=lost)}
    assert sorted(filled) == sorted(theirs) == lost, "every lost minute comes from Coinbase (it traded in each)"
    for minute, c in filled.items():
        t = theirs[minute]
        assert (c.source, c.synthetic, c.closed) == ("coinbase", False, True)
        assert (c.open, c.high, c.low, c.close, c.volume) == (t.open, t.high, t.low, t.close, t.volume)
    others = Candle.objects.filter(exchange="binance", symbol="BTCUSDT").exclude(open_time__in=lost)
    assert set(others.values_list("source", flat=True)) == {"trades"}

    resp = Client().get(
        "/api/v1/candles",
        {"exchange": "binance", "symbol": "BTCUSDT", "start": ms(start), "end": ms(end), "fetch": "false"},
    )
    assert resp.status_code == 200
    sources = {c["open_time"]: c["source"] for c in resp.json()["candles"]}
    print(
        f"\n{len(lost)} minutes Binance no longer serves came from Coinbase; API sources: "
        f"{sorted(set(sources.values()))}"
    )
    assert [s for s in sources.values() if s == "coinbase"] == ["coinbase"] * len(lost)
