"""The listeners through a database failure: the signal listener keeps the decisions its store refused (and the
closed candles it could not decide before its warm-up) and stores them later, in order, exactly as a replay decides
them; the trading listener hands the trader again the trades and decisions a failure kept, oldest first."""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from pymongo.errors import AutoReconnect

import signals.listener as signal_listener
from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.exchanges.base import CandleBar, Source, TradeTick
from markets.exchanges.binance import BinanceRest
from markets.exchanges.binance.stream import BinanceStream
from markets.stream import StreamConfig, TradeStream
from orders.listener import TradingListener
from signals.candles import replay_candles
from signals.listener import SignalListener
from signals.models import Signal
from signals.rules import Decision
from signals.services import evaluate_stored
from tests.conftest import sim_config

MINUTE = timedelta(minutes=1)
NOW = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def sim(settings: Any) -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=5.0, history_days=1.0)) as s:
        settings.BINANCE_REST_URL = s.url
        yield s


def failing_first(real: Any, times: int) -> Any:
    calls: list[int] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise AutoReconnect("connection refused (injected)")
        return real(*args, **kwargs)

    return call


def closing_one_by_one(sim: Simulator, listener: SignalListener, bars: Sequence[CandleBar]) -> None:
    """The listener starts (its ``datetime.now`` frozen at the first bar), then each bar closes in turn, as the
    stream's candle pass (on its database thread) writes it."""
    stream = TradeStream(
        StreamConfig("binance", ("BTCUSDT",)),
        BinanceStream(sim.ws_url, ("BTCUSDT",)),
        lambda: BinanceRest(sim.url),
        [listener],
    )
    listener.start(bars[0].open_time)
    for bar in bars:
        stream._storage.candles["BTCUSDT"].restored([bar])
        stream._storage.candles_write(bar.open_time + MINUTE + timedelta(seconds=3))


def history(minutes: int) -> tuple[datetime, datetime, list[CandleBar]]:
    call_command("seed_instruments", "--exchange", "binance", "--symbols", "BTCUSDT", stdout=io.StringIO())
    end = iv.floor(datetime.now(UTC), "1m") - 2 * MINUTE
    start = end - minutes * MINUTE
    bars = list(
        replay_candles(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end, fetch=True).in_range
    )
    assert len(bars) == minutes
    return start, end, bars


def as_replayed(start: datetime, end: datetime, live: Sequence[Decision]) -> None:
    replayed = evaluate_stored(exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end)
    assert [(d.open_time, d.action, d.confidence) for d in replayed.decisions] == [
        (d.open_time, d.action, d.confidence) for d in live
    ]


@pytest.mark.django_db
def test_decisions_the_store_refused_are_stored_with_the_next_pass(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The signal store fails on three passes in a row: those candles' decisions are kept, stored with the fourth,
    and handed to the subscribers in order; every candle ends with its one row, as a replay decides it."""
    start, end, bars = history(20)
    monkeypatch.setattr(signal_listener, "signals_store", failing_first(signal_listener.signals_store, 3))
    live: list[Decision] = []
    listener = SignalListener([lambda decided, now: live.extend(decided["BTCUSDT"])])
    monkeypatch.setattr(signal_listener, "datetime", _Frozen(start))
    closing_one_by_one(sim, listener, bars)
    assert [d.open_time for d in live] == [b.open_time for b in bars]
    assert Signal.objects.filter(symbol="BTCUSDT").count() == 20
    assert caplog.text.count("not stored (AutoReconnect") == 1
    assert "3 signals stored late" in caplog.text
    as_replayed(start, end, live)


@pytest.mark.django_db
def test_a_strategy_warmed_late_decides_the_candles_that_waited(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The warm-up fails at start (the database down): the closed candles wait, and the evaluator warmed later as
    of the first of them decides them all, as a replay does."""
    start, end, bars = history(20)
    monkeypatch.setattr(signal_listener, "live_evaluator", failing_first(signal_listener.live_evaluator, 1))
    monkeypatch.setattr(signal_listener, "WARM_RETRY_SECONDS", 0.0)
    live: list[Decision] = []
    listener = SignalListener([lambda decided, now: live.extend(decided["BTCUSDT"])])
    monkeypatch.setattr(signal_listener, "datetime", _Frozen(start))
    closing_one_by_one(sim, listener, bars)
    assert [d.open_time for d in live] == [b.open_time for b in bars]
    as_replayed(start, end, live)


class _Frozen:
    """``datetime`` for the listener's start: ``now()`` is the start of the history, as a stream started then."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self, tz: Any = None) -> datetime:
        return self._at


class FakeTrader:
    """A trader whose database fails on its first ``fails`` calls of each kind; notes what it was handed."""

    exchange = "binance"

    def __init__(self, fails: int) -> None:
        self.fails = {"ticks": fails, "decisions": fails}
        self.watched: list[int] = []
        self.acted: list[datetime] = []

    def _maybe_fail(self, kind: str) -> None:
        if self.fails[kind]:
            self.fails[kind] -= 1
            raise AutoReconnect("connection refused (injected)")

    def on_ticks(self, batch: Sequence[TradeTick], now: datetime) -> None:
        self._maybe_fail("ticks")
        self.watched += [t.trade_id for t in batch]

    def on_decisions(self, decisions: Sequence[Decision], prices: Mapping[str, Any], now: datetime) -> None:
        self._maybe_fail("decisions")
        self.acted += [d.open_time for d in decisions]

    def drain(self) -> None:
        return None


def tick(trade_id: int) -> TradeTick:
    ts = NOW + timedelta(seconds=trade_id)
    return TradeTick(
        "binance", "BTCUSDT", trade_id, Decimal(10), Decimal(1), "buy", ts, ts, Source.WS, trade_id, trade_id
    )


def test_the_trader_is_handed_again_what_a_failure_kept(caplog: pytest.LogCaptureFixture) -> None:
    """Two batches the trader's database refused are watched with the third, oldest first; decisions it could not
    act on are acted on with the next job. Each failure is said once, and its end."""
    trader = FakeTrader(fails=2)
    listener = TradingListener(trader)  # type: ignore[arg-type]
    for first in (1, 3, 5):
        listener.ticks_stored([tick(first), tick(first + 1)], NOW)
    assert trader.watched == [1, 2, 3, 4, 5, 6]
    decision: Any = type("D", (), {"open_time": NOW, "symbol": "BTCUSDT", "action": "BUY"})()
    listener.act({"BTCUSDT": [decision]}, NOW)
    listener.act({"BTCUSDT": [decision]}, NOW)
    assert trader.acted == []
    listener.ticks_stored([tick(7)], NOW)
    assert trader.acted == [NOW, NOW]
    assert caplog.text.count("the trader failed") == 2
    assert caplog.text.count("the trader works again") == 2
