"""Missing versus quiet: a minute without trades between two consecutive trade ids was quiet and gets a flat
zero-volume candle flagged ``synthetic``; a minute inside an id hole is missing and is backfilled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from django.db import connection

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.candles import quiet_candles
from markets.exchanges.base import Source, TradeTick
from markets.exchanges.binance.stream import BinanceStream
from markets.models import Candle, Tick
from markets.scan import ScanConfig
from markets.services import candles_rebuild
from markets.stream import StreamConfig, TradeStream
from markets.tasks import gap_backfill, gaps_scan
from markets.venues import rest_adapter
from tests.conftest import sim_config
from tests.markets.test_backfill import backfill, stored_ids

MINUTE = timedelta(minutes=1)
GRACE = timedelta(seconds=2)
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_consecutive_ids_over_empty_minutes_make_flat_synthetic_candles() -> None:
    before = (41, T0 + timedelta(seconds=50), Decimal("64000.10"))
    bars = quiet_candles(
        "binance", "BTCUSDT", before, (42, T0 + 3 * MINUTE + timedelta(seconds=1)), now=T0 + 10 * MINUTE, grace=GRACE
    )
    assert [b.open_time for b in bars] == [T0 + MINUTE, T0 + 2 * MINUTE]
    bar = bars[0]
    assert (bar.open, bar.high, bar.low, bar.close) == (Decimal("64000.10"),) * 4
    assert (bar.volume, bar.trades, bar.synthetic, bar.closed, bar.source) == (0, 0, True, True, "trades")
    assert bar.close_time == T0 + 2 * MINUTE - timedelta(milliseconds=1)


def test_an_id_hole_is_not_quiet_and_unfinished_minutes_wait() -> None:
    before = (41, T0, Decimal("1"))
    assert quiet_candles("binance", "BTCUSDT", before, (43, T0 + 5 * MINUTE), now=T0 + 10 * MINUTE, grace=GRACE) == []
    assert quiet_candles("binance", "BTCUSDT", before, (42, T0 + MINUTE), now=T0 + 10 * MINUTE, grace=GRACE) == []
    # the next trade is known, but the clock says minute 2 is not over plus the grace: it waits
    later = (42, T0 + 4 * MINUTE)
    almost = T0 + 3 * MINUTE + GRACE - timedelta(milliseconds=1)
    assert [b.open_time for b in quiet_candles("binance", "BTCUSDT", before, later, now=almost, grace=GRACE)] == [
        T0 + MINUTE
    ]
    assert (
        len(quiet_candles("binance", "BTCUSDT", before, later, now=almost + timedelta(milliseconds=1), grace=GRACE))
        == 2
    )


# A thin market written out minute by minute, so the test holds on any day: ``x`` traded (at :00, :20 and :40),
# ``.`` quiet. Four quiet stretches; every gap but the quiet ones is 20 s, so the replay's loop is exactly the
# pattern's 30 minutes and its history (the loop before the simulator's start) keeps the minute grid.
PATTERN = "xxxxx..xxxxx.xxxx...xxxx.xxxxx"


@pytest.fixture
def quiet_sim(settings: Any, tmp_path: Path) -> Iterator[Simulator]:
    """The configured Binance replays ``PATTERN`` (a data.binance.vision aggTrades file): the half hour before
    the simulator's start is its history."""
    origin = int(T0.timestamp() * 1000)
    rows, agg = [], 1000
    for minute, mark in enumerate(PATTERN):
        for second in (0, 20, 40) if mark == "x" else ():
            price = f"{64000 + agg % 7}.10"
            rows.append(
                f"{agg},{price},0.01000000,{agg},{agg},{origin + (minute * 60 + second) * 1000},{agg % 2 == 0},True"
            )
            agg += 1
    path = tmp_path / "BTCUSDT-aggTrades-2026-11-24.csv"
    path.write_text("\n".join(rows) + "\n")
    with running_in_thread(sim_config(replay=(path,))) as sim:
        settings.BINANCE_REST_URL = sim.url
        yield sim


def truth_times(sim: Simulator, start: datetime, end: datetime) -> dict[int, datetime]:
    resp = requests.get(
        f"{sim.url}/_sim/truth",
        timeout=60,
        params={
            "symbol": "BTCUSDT",
            "kind": "aggTrades",
            "start_ms": int(start.timestamp() * 1000),
            "end_ms": int(end.timestamp() * 1000) - 1,
        },
    )
    resp.raise_for_status()
    rows = [json.loads(line) for line in resp.text.splitlines() if line]
    return {r["a"]: datetime.fromtimestamp(r["T"] / 1000, UTC) for r in rows}


@pytest.mark.django_db
def test_quiet_minutes_become_synthetic_candles_and_a_hole_is_backfilled_first(quiet_sim: Simulator) -> None:
    """Half an hour of a thin market, stored by REST, with the two trades around a quiet stretch deleted: the
    scan finds the id hole and makes synthetic candles only for the quiet minutes outside it; the hole's
    backfill brings its trades back and then its quiet minutes get theirs. In the end every minute from the
    first trade to the last has a candle, synthetic exactly where the simulator had no trade."""
    now = datetime.now(UTC)
    end = datetime.fromtimestamp(quiet_sim.market.replays["BTCUSDT"].t0 / 1000, UTC)  # the replay's history ends
    start = end - len(PATTERN) * MINUTE
    backfill("--what", "trades", "--symbol", "BTCUSDT", "--start", start.isoformat(), "--end", end.isoformat())
    truth = truth_times(quiet_sim, start, end)
    ids = stored_ids("BTCUSDT")
    assert ids == sorted(truth)
    traded = {iv.floor(t, "1m") for t in truth.values()}
    first, last = iv.floor(truth[ids[0]], "1m"), iv.floor(truth[ids[-1]], "1m")
    span = [first + k * MINUTE for k in range(int((last - first) / MINUTE) + 1)]
    quiet = {m for m in span if m not in traded}
    assert [m in traded for m in span] == [mark == "x" for mark in PATTERN]

    # the trades on both sides of the middle quiet stretch go missing: that stretch is now inside an id hole
    stretches = [
        i for i in range(1, len(ids)) if iv.floor(truth[ids[i]], "1m") - iv.floor(truth[ids[i - 1]], "1m") > MINUTE
    ]
    k = stretches[len(stretches) // 2]
    hole = (ids[k - 1], ids[k])
    hole_minutes = {m for m in quiet if truth[ids[k - 2]] < m < truth[ids[k + 1]]}
    connection.database[Tick._meta.db_table].delete_many(
        {"symbol": "BTCUSDT", "trade_id": {"$gte": hole[0], "$lte": hole[1]}}
    )
    # the backfill built the candles, quiet ones too: gone, so that the scan is what this part tests
    connection.database[Candle._meta.db_table].delete_many({"symbol": "BTCUSDT"})
    candles_rebuild(exchange="binance", symbol="BTCUSDT", minutes=traded, now=now)

    (scan,) = gaps_scan(config=ScanConfig(lookback=timedelta(hours=4)), now=now)
    assert scan.holes.fill == [hole]
    synthetic = set(Candle.objects.filter(symbol="BTCUSDT", synthetic=True).values_list("open_time", flat=True))
    assert scan.quiet == len(synthetic)
    assert len(hole_minutes) == 3  # the third stretch, "..."
    assert synthetic == quiet - hole_minutes, "a minute in the id hole was called quiet, or a quiet one was missed"

    adapter = rest_adapter("binance")
    try:
        gap = gap_backfill(adapter=adapter, exchange="binance", symbol="BTCUSDT", first_id=hole[0], last_id=hole[1])
    finally:
        adapter.close()
    assert (gap.state, gap.recovered) == ("filled", hole[1] - hole[0] + 1)
    assert stored_ids("BTCUSDT") == ids
    candles = {c.open_time: c for c in Candle.objects.filter(symbol="BTCUSDT", interval="1m")}
    assert {m for m, c in candles.items() if c.synthetic} == quiet
    assert set(span) <= candles.keys(), "a minute between the first and the last trade has no candle"
    for m in quiet:
        c = candles[m]
        assert (c.volume, c.trades, c.open, c.close) == (0, 0, c.high, c.low)


def test_the_live_stream_marks_quiet_minutes_between_consecutive_ids() -> None:
    """The stream sees the next id arrive minutes later: it queues the synthetic candles of the minutes between
    for its database thread, which counts them into the live candles to be written and pushed like any other."""
    stream = TradeStream(
        StreamConfig("binance", ("BTCUSDT",)),
        BinanceStream("ws://unused", ("BTCUSDT",)),
        lambda: rest_adapter("binance"),
    )

    def tick(trade_id: int, ts: datetime, price: str) -> TradeTick:
        return TradeTick(
            "binance", "BTCUSDT", trade_id, Decimal(price), Decimal(1), "buy", ts, ts, Source.WS, trade_id, trade_id
        )

    stream._take(tick(7, T0 + timedelta(seconds=59), "10.5"))
    stream._take(tick(8, T0 + timedelta(seconds=61), "10.6"))  # the next minute: nothing quiet
    assert stream._quiet == []
    stream._take(tick(9, T0 + 4 * MINUTE, "10.7"))
    assert [(b.open_time, b.close, b.synthetic) for b in stream._quiet] == [
        (T0 + m * MINUTE, Decimal("10.6"), True) for m in (2, 3)
    ]
    live = stream._storage.candles["BTCUSDT"]
    stream._storage.count([], {}, stream._quiet)
    assert [(b.open_time, b.synthetic) for b in live.due(T0 + 10 * MINUTE)] == [
        (T0 + 2 * MINUTE, True),
        (T0 + 3 * MINUTE, True),
    ]
