"""The stream's signal listener decides the strategy's signal on every closed 1m candle: warmed from history when it
starts, it decides each candle exactly as ``evaluate_stored`` (and so a restart or a backtest) does on the same
candles, stores one row per candle, and the live page's first view carries the newest BUY/SELL signals."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command

from exchangesim.server import Simulator, running_in_thread
from live.consumers import snapshot
from markets import intervals as iv
from markets.exchanges.binance import BinanceRest
from markets.exchanges.binance.stream import BinanceStream
from markets.stream import StreamConfig, TradeStream
from signals.candles import replay_candles
from signals.listener import SignalListener
from signals.models import Signal
from signals.rules import Decision
from signals.services import evaluate_stored, live_evaluator
from tests.conftest import sim_config

MINUTE = timedelta(minutes=1)


@pytest.fixture
def sim(settings: Any) -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=5.0, history_days=1.0)) as s:
        settings.BINANCE_REST_URL = s.url
        yield s


@pytest.mark.django_db
def test_the_stream_decides_each_closed_candle_as_a_replay_does(sim: Simulator) -> None:
    call_command("seed_instruments", "--exchange", "binance", "--symbols", "BTCUSDT", stdout=io.StringIO())
    end = iv.floor(datetime.now(UTC), "1m") - 2 * MINUTE
    start = end - 120 * MINUTE
    bars = [
        b
        for b in replay_candles(
            exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end, fetch=True
        ).in_range
    ]  # stores the window before start and the range
    assert len(bars) == 120
    live: list[Decision] = []
    listener = SignalListener([lambda decided, now: live.extend(decided["BTCUSDT"])])
    stream = TradeStream(
        StreamConfig("binance", ("BTCUSDT",)),
        BinanceStream(sim.ws_url, ("BTCUSDT",)),
        lambda: BinanceRest(sim.url),
        [listener],
    )
    listener.evaluators["BTCUSDT"] = live_evaluator(exchange="binance", symbol="BTCUSDT", now=start)
    for bar in bars:  # each minute closes in turn, as the stream's candle pass (on its database thread) sees it
        stream._storage.candles["BTCUSDT"].restored([bar])
        stream._storage.candles_write(bar.open_time + MINUTE + timedelta(seconds=3))
    assert [d.open_time for d in live] == [b.open_time for b in bars]
    acted = [d for d in live if d.action != "HOLD"]
    print(
        f"\n{len(live)} closed candles decided live: {len(acted)} signals "
        + ", ".join(f"{d.open_time:%H:%M} {d.action} {d.confidence}" for d in acted)
    )
    assert Signal.objects.filter(symbol="BTCUSDT").count() == 120

    replayed = evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end)
    assert [(d.open_time, d.action, d.confidence, d.reasons) for d in replayed.decisions] == [
        (d.open_time, d.action, d.confidence, d.reasons) for d in live
    ]
    assert (replayed.stored.created, replayed.stored.replaced) == (0, 120), "the replay replaced the live rows"

    first_view = snapshot("binance", "BTCUSDT")
    assert first_view is not None
    assert [s["time"] for s in first_view["signals"]] == [int(d.open_time.timestamp() * 1000) for d in acted][-20:]
