"""Price history against the simulator: MongoDB first, only what is missing is fetched, on a real mongod."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.db import connection

from exchangesim.server import Simulator
from markets import intervals as iv
from markets.history import InvalidRequest, Span, get_price_history
from markets.models import Candle, Gap, Instrument


def sim_requests(sim: Simulator) -> dict[str, int]:
    """The simulator's per-path request counters for Binance."""
    status: dict[str, Any] = requests.get(f"{sim.url}/_sim/status", timeout=5).json()
    return status["venues"]["binance"]["requests"]


@pytest.fixture
def binance_sim(sim_thread: Simulator, settings: Any) -> Simulator:
    """The simulator as the configured Binance."""
    settings.BINANCE_REST_URL = sim_thread.url
    return sim_thread


def two_hours_ago() -> tuple[datetime, datetime]:
    end = iv.floor(datetime.now(UTC), "1m") - timedelta(minutes=10)
    return end - timedelta(hours=2), end


@pytest.mark.django_db
def test_history_first_from_exchange_then_from_mongodb_then_only_the_hole(binance_sim: Simulator) -> None:
    """The first call for 2 hours of 1m candles fetches and stores 120; the same call again sends nothing
    to the exchange; after deleting 10 candles in the middle exactly that range is fetched again."""
    start, end = two_hours_ago()
    first = get_price_history("BTCUSDT", start, end)
    assert len(first.candles) == 120
    assert first.complete
    assert [c.open_time for c in first.candles] == list(iv.opens(start, end, "1m"))
    assert first.spans == [Span(start, end, "exchange")]
    assert Candle.objects.filter(symbol="BTCUSDT", interval="1m").count() == 120
    assert Instrument.objects.filter(exchange="binance", symbol="BTCUSDT").exists()

    before = sim_requests(binance_sim)
    second = get_price_history("BTCUSDT", start, end)
    assert sim_requests(binance_sim) == before, "an identical second call must not reach the exchange"
    assert second.exchange_requests == 0
    assert second.complete
    assert second.spans == [Span(start, end, "mongodb")]
    assert second.candles == first.candles

    hole = (start + timedelta(minutes=50), start + timedelta(minutes=60))
    deleted, _ = Candle.objects.filter(symbol="BTCUSDT", open_time__gte=hole[0], open_time__lt=hole[1]).delete()
    assert deleted == 10
    before = sim_requests(binance_sim)
    third = get_price_history("BTCUSDT", start, end)
    after = sim_requests(binance_sim)
    assert third.exchange_requests == 1
    assert after["/api/v3/klines"] - before["/api/v3/klines"] == 1
    assert third.spans == [Span(start, hole[0], "mongodb"), Span(*hole, "exchange"), Span(hole[1], end, "mongodb")]
    assert third.complete
    assert third.candles == first.candles


@pytest.mark.django_db
def test_higher_intervals_aggregate_stored_minutes_like_the_exchange(binance_sim: Simulator) -> None:
    """5m, 15m and 1h candles aggregated in MongoDB from stored 1m candles equal the exchange's own klines."""
    end = iv.floor(datetime.now(UTC), "1h") - timedelta(hours=1)
    start = end - timedelta(hours=3)
    for interval in ("5m", "15m", "1h"):
        got = get_price_history("ETHUSDT", start, end, interval)
        assert got.complete
        assert len(got.candles) == iv.count(start, end, interval)
        rows = requests.get(
            f"{binance_sim.url}/api/v3/klines",
            timeout=5,
            params={
                "symbol": "ETHUSDT",
                "interval": interval,
                "startTime": int(start.timestamp() * 1000),
                "endTime": int(end.timestamp() * 1000) - 1,
            },
        ).json()
        assert len(rows) == len(got.candles)
        for bar, row in zip(got.candles, rows, strict=True):
            assert int(bar.open_time.timestamp() * 1000) == row[0]
            assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades) == (
                Decimal(row[1]),
                Decimal(row[2]),
                Decimal(row[3]),
                Decimal(row[4]),
                Decimal(row[5]),
                row[8],
            )
    # the 1m candles were fetched once, by the first (5m) call
    assert Candle.objects.filter(symbol="ETHUSDT", interval="1m").count() == 180


@pytest.mark.django_db
def test_range_into_the_future_is_not_complete(binance_sim: Simulator) -> None:
    """A range reaching past now returns what exists, marks the open candle, and says it is not complete."""
    # The exchange's now: the engine makes a minute's candle public at its first tick in it, which lags the clock
    # by up to a tick (in the clock's minute's first milliseconds the exchange has no candle for it yet).
    now = datetime.fromtimestamp(binance_sim.market.tapes["BTCUSDT"].emitted_ms / 1000, UTC)
    minute = iv.floor(now, "1m")
    got = get_price_history("BTCUSDT", now - timedelta(minutes=5), now + timedelta(minutes=5))
    assert not got.complete
    assert got.spans[-1].source == "future"
    assert all(c.closed for c in got.candles[:-1])
    if iv.floor(datetime.now(UTC), "1m") == minute:  # the clock was in the exchange's minute all through the call
        assert not got.missing
        assert got.candles[-1].open_time == minute
        assert got.candles[-1].closed is False
    # Otherwise the clock was a tick ahead of the exchange or its minute ended during the call: the new minute's
    # candle may not exist yet and the last one may have come closed, so only the lines above are guaranteed.


@pytest.mark.django_db
def test_fetch_false_reads_only_mongodb(binance_sim: Simulator) -> None:
    """With fetch=False nothing is asked of the exchange and the hole is reported, not filled."""
    Instrument.objects.create(exchange="binance", symbol="BTCUSDT", canonical="BTC-USDT", base="BTC", quote="USDT")
    start, end = two_hours_ago()
    before = sim_requests(binance_sim)
    got = get_price_history("BTCUSDT", start, end, fetch=False)
    assert sim_requests(binance_sim) == before
    assert got.candles == []
    assert not got.complete
    assert got.missing == [(start, end)]
    assert got.spans == [Span(start, end, "missing")]


@pytest.mark.django_db
def test_minutes_the_exchange_cannot_give_become_an_unrecoverable_gap(binance_sim: Simulator) -> None:
    """Before the exchange's first trade there are no candles: the range is reported missing, recorded as
    an unrecoverable gap once, and not asked for again."""
    status = requests.get(f"{binance_sim.url}/_sim/status", timeout=5).json()
    first = datetime.fromtimestamp(status["symbols"]["BTCUSDT"]["history_from_ms"] / 1000, UTC)
    start, end = iv.floor(first, "1m") - timedelta(minutes=30), iv.floor(first, "1m") + timedelta(minutes=30)
    got = get_price_history("BTCUSDT", start, end)
    assert not got.complete
    assert got.missing[0][0] == start
    gap = Gap.objects.get(symbol="BTCUSDT", kind="candles")
    assert gap.state == Gap.State.UNRECOVERABLE
    assert "no 1m candles" in gap.reason
    before = sim_requests(binance_sim)
    again = get_price_history("BTCUSDT", start, end)
    assert sim_requests(binance_sim) == before
    assert Gap.objects.filter(symbol="BTCUSDT", kind="candles").count() == 1
    assert gap.start == int(start.timestamp() * 1000)
    assert gap.end == int(got.missing[0][1].timestamp() * 1000)
    assert again.missing == got.missing
    assert again.candles == got.candles


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"exchange": "nyse"}, "exchange"),
        ({"symbol": "btc/usdt"}, "symbol"),
        ({"interval": "2m"}, "interval"),
        ({"start": datetime(2024, 1, 1)}, "start"),  # noqa: DTZ001 - the naive time is the bad input
        ({"start": datetime(2024, 1, 2, tzinfo=UTC)}, "start"),
        ({"end": datetime(2024, 3, 1, tzinfo=UTC)}, "end"),
        ({"end": datetime(2024, 1, 10, tzinfo=UTC)}, "end"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, Any], field: str) -> None:
    """Each bad argument raises InvalidRequest naming it, before anything is read or fetched."""
    args: dict[str, Any] = {
        "symbol": "BTCUSDT",
        "start": datetime(2024, 1, 1, 12, tzinfo=UTC),
        "end": datetime(2024, 1, 2, tzinfo=UTC),
        "interval": "1m",
        "exchange": "binance",
    }
    args.update(kwargs)
    with pytest.raises(InvalidRequest) as err:
        get_price_history(args.pop("symbol"), args.pop("start"), args.pop("end"), **args)
    assert err.value.field == field


@pytest.mark.django_db
def test_unknown_symbol_is_asked_of_the_exchange_and_refused(binance_sim: Simulator) -> None:
    """A symbol the exchange does not list is a clear InvalidRequest on the symbol, nothing stored."""
    start, end = two_hours_ago()
    with pytest.raises(InvalidRequest) as err:
        get_price_history("NOPEUSDT", start, end)
    assert err.value.field == "symbol"
    assert "NOPEUSDT" in str(err.value)
    assert connection.database[Candle._meta.db_table].count_documents({"symbol": "NOPEUSDT"}) == 0


@pytest.mark.django_db
def test_range_wholly_in_the_future_is_one_future_span(binance_sim: Simulator) -> None:
    """A range that starts after now has no candles, nothing missing, and one "future" span covering it."""
    start = iv.floor(datetime.now(UTC), "1m") + timedelta(hours=1)
    end = start + timedelta(minutes=30)
    before = sim_requests(binance_sim)
    got = get_price_history("BTCUSDT", start, end)
    assert got.candles == []
    assert got.missing == []
    assert not got.complete
    assert got.spans == [Span(start, end, "future")]
    assert sim_requests(binance_sim).get("/api/v3/klines", 0) == before.get("/api/v3/klines", 0)
