"""Price history from the venues that differ: Coinbase leaves quiet minutes out of its candles (they become flat
``synthetic`` candles, not holes); Kraken serves only its last 720 minutes (older minutes come from another
venue of the same base, marked with its name)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.core.management import call_command

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.history import get_price_history
from tests.conftest import sim_config

MINUTE = timedelta(minutes=1)


@pytest.fixture
def thin_sim(settings: Any) -> Iterator[Simulator]:
    """A thin market (Coinbase trades at half the rate: about one trade a minute there), a day of history."""
    with running_in_thread(sim_config(rate=0.04, history_days=1.0)) as s:
        settings.BINANCE_REST_URL, settings.COINBASE_REST_URL = s.url, s.venue_url("coinbase")
        settings.KRAKEN_REST_URL = s.venue_url("kraken")
        yield s


def traded_minutes(sim: Simulator, venue: str, symbol: str, start: datetime, end: datetime) -> set[datetime]:
    resp = requests.get(
        f"{sim.url}/_sim/truth",
        timeout=60,
        params={
            "venue": venue,
            "symbol": symbol,
            "start_ms": int(start.timestamp() * 1000),
            "end_ms": int(end.timestamp() * 1000) - 1,
        },
    )
    resp.raise_for_status()
    return {
        iv.floor(datetime.fromtimestamp(json.loads(line)["time_ms"] / 1000, UTC), "1m")
        for line in resp.text.splitlines()
        if line
    }


@pytest.mark.django_db
def test_coinbase_quiet_minutes_are_synthetic_candles_not_holes(thin_sim: Simulator) -> None:
    end = iv.floor(datetime.now(UTC), "1m") - 10 * MINUTE
    start = end - timedelta(hours=2)
    history = get_price_history("BTC-USD", start, end, exchange="coinbase")
    traded = traded_minutes(thin_sim, "coinbase", "BTC-USD", start, end)
    candles = {c.open_time: c for c in history.candles}
    inner = {m for m in candles if min(traded) <= m <= max(traded)}
    quiet = {m for m in inner if candles[m].synthetic}
    print(f"\n{len(traded)} minutes with Coinbase trades, {len(quiet)} quiet ones between them made synthetic")
    assert quiet, "the thin market had no quiet minute"
    assert {m for m in inner if not candles[m].synthetic} == traded
    assert all(candles[m].volume == 0 and candles[m].open == candles[m].close for m in quiet)
    assert not [m for m in history.missing if min(traded) <= m[0] < max(traded)]


@pytest.mark.django_db
def test_kraken_minutes_past_its_720_come_from_another_venue(thin_sim: Simulator) -> None:
    call_command("seed_instruments", "--exchange", "binance", "--symbols", "BTCUSDT", stdout=io.StringIO())
    end = iv.floor(datetime.now(UTC), "1m") - 14 * 60 * MINUTE
    start = end - 30 * MINUTE
    history = get_price_history("XBTUSD", start, end, exchange="kraken")
    sources = {c.source for c in history.candles}
    print(f"\n{len(history.candles)} Kraken minutes older than its 720: sources {sorted(sources)}")
    assert sources == {"binance"}
    assert len(history.candles) == 30
    assert history.complete
