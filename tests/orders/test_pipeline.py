"""The pipeline runs on its own inside the stream: each closed candle is decided by the strategy (the signal
listener), every BUY and SELL goes through the risk check to the paper executor (the trading listener), and what
changed is pushed to the live pages."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

import pytest
from channels.layers import get_channel_layer
from django.core.management import call_command

from exchangesim.server import Simulator, running_in_thread
from live.wiring import stream_listeners
from markets.exchanges.binance import BinanceRest
from markets.exchanges.binance.stream import BinanceStream
from markets.live import Publisher
from markets.services import candles_upsert
from markets.stream import ListenerContext, StreamConfig, TradeStream
from markets.stream.listeners import Listeners
from orders.executors.paper import PaperExecutor
from orders.listener import TradingListener
from orders.live import ORDERS_EVENT, ORDERS_GROUP
from orders.models import Order, Position, RiskDecision
from orders.trader import Trader, trader_for
from signals.candles import replay_candles
from signals.indicators import DEFAULT_WINDOW
from signals.listener import SignalListener
from signals.rules import Decision
from signals.services import live_evaluator
from tests.conftest import sim_config
from tests.signals.walks import random_walk

MINUTE = timedelta(minutes=1)
WARM = DEFAULT_WINDOW - 1  # candles before the first one decided, so its indicators are complete
WALK_DAY = 60 * 24 * 100  # the walk's first candle, in minutes after tests.signals.walks.T0


@pytest.fixture
def sim(settings: Any) -> Iterator[Simulator]:
    with running_in_thread(sim_config(rate=5.0, history_days=1.0)) as s:
        settings.BINANCE_REST_URL = s.url
        yield s


def _unused(*args: Any) -> Future[Any]:
    raise AssertionError("the test runs the trading listener's jobs itself")


class _Changed:
    """A trader with one change to push."""

    def drain(self) -> dict[str, Any]:
        return {"positions": [{"id": "p1"}], "orders": []}


@pytest.mark.django_db
def test_closed_candles_become_signals_then_risk_decisions_then_paper_positions(sim: Simulator) -> None:
    """240 closed candles go through the stream one at a time: each is decided by the strategy, every BUY and
    SELL gets a risk decision at the candle's close (long only, one position), and each approved BUY becomes a
    paper position filled at the live price plus slippage, announced by the trader."""
    call_command("seed_instruments", "--exchange", "binance", "--symbols", "BTCUSDT", stdout=io.StringIO())
    # Stored candles of a seeded walk the strategy acts on (SELL when flat, BUY, SELL, BUY when long, ...), not
    # the simulator's market of the day, on which 240 minutes may hold no BUY or SELL at all. Its own day, so
    # that no other test's stored candles or signals are in its window.
    walk = random_walk(WARM + 240, seed=6, first=WALK_DAY)
    candles_upsert(candles=walk)
    start, end = walk[WARM].open_time, walk[-1].open_time + MINUTE
    bars = replay_candles(
        exchange="binance", symbol="BTCUSDT", interval="1m", start=start, end=end, fetch=False
    ).in_range
    assert bars == walk[WARM:]
    trader = Trader(PaperExecutor("binance", cash=Decimal(10000)))
    announced: list[tuple[str, dict[str, Any]]] = []
    trading = TradingListener(trader)
    trading.attach(
        ListenerContext("binance", ("BTCUSDT",), lambda group, event: announced.append((group, event)), _unused)
    )
    passes: list[dict[str, list[Decision]]] = []
    signals = SignalListener([lambda decided, now: passes.append(dict(decided))])
    stream = TradeStream(
        StreamConfig("binance", ("BTCUSDT",)),
        BinanceStream(sim.ws_url, ("BTCUSDT",)),
        lambda: BinanceRest(sim.url),
        [signals],
    )
    signals.evaluators["BTCUSDT"] = live_evaluator(exchange="binance", symbol="BTCUSDT", now=start, fetch=False)
    acted = []
    for bar in bars:  # each minute closes in turn; the live price is the candle's close
        now = bar.open_time + MINUTE + timedelta(seconds=3)
        trading.prices["BTCUSDT"] = bar.close
        stream._storage.candles["BTCUSDT"].restored([bar])
        stream._storage.candles_write(now)  # the stream's candle pass, with its signal listener
        decided = passes.pop()
        trading.act(decided, now)  # the job the trading listener's thread runs
        acted += [(d, bar.close) for d in decided["BTCUSDT"] if d.action != "HOLD"]
    assert {d.action for d, _ in acted} == {"BUY", "SELL"}
    decisions = {r.candle_open_time: r for r in RiskDecision.objects.all()}
    assert sorted(decisions) == [d.open_time for d, _ in acted]
    holding = False  # long only, one position: a BUY opens when flat, a SELL closes when long
    for d, close in acted:
        row = decisions[d.open_time]
        assert row.approved == (holding if d.action == "SELL" else not holding), (d.action, row.reasons)
        assert row.reasons
        assert row.price == close
        holding = holding if not row.approved else d.action == "BUY"
    positions = list(Position.objects.order_by("opened_at"))
    verdicts = [
        f"{d.open_time:%H:%M} {d.action} "
        + ("approved" if decisions[d.open_time].approved else f"rejected ({decisions[d.open_time].rejection})")
        for d, _ in acted
    ]
    print(
        f"\n{len(bars)} candles, {len(acted)} signals: {', '.join(verdicts)}; {len(positions)} positions, "
        f"{Order.objects.count()} orders"
    )
    assert len(positions) == sum(1 for d, _ in acted if d.action == "BUY" and decisions[d.open_time].approved)
    for p in positions:  # filled at the live price (the candle's close) plus the default 5 bps of slippage
        assert p.risk_decision is not None
        assert p.entry_price == p.risk_decision.price * Decimal("1.0005")
        assert p.qty == p.risk_decision.qty
    assert {group for group, _ in announced} == {ORDERS_GROUP}
    assert {event["type"] for _, event in announced} == {ORDERS_EVENT}
    assert {p["id"] for _, event in announced for p in event["data"]["positions"]} == {str(p.pk) for p in positions}


@pytest.mark.django_db
def test_changes_reach_the_orders_group() -> None:
    """The trading listener's last changes, pushed as it stops, reach the orders group through the stream's
    publisher, from the listener's own thread."""

    async def main() -> dict[str, Any]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(ORDERS_GROUP, channel)
        db = ThreadPoolExecutor(1)
        listeners = Listeners("binance", ("BTCUSDT",), [TradingListener(cast(Trader, _Changed()))], db)
        listeners.bind(asyncio.get_running_loop(), Publisher(layer, "binance"))
        await listeners.stop()
        db.shutdown()
        message = await asyncio.wait_for(layer.receive(channel), 5)
        await layer.group_discard(ORDERS_GROUP, channel)
        return message

    assert asyncio.run(main()) == {"type": "orders.update", "data": {"positions": [{"id": "p1"}], "orders": []}}


def test_trading_follows_the_settings(settings: Any) -> None:
    settings.BINANCE_API_KEY = settings.BINANCE_API_SECRET = ""
    trader = trader_for("binance")
    assert trader is not None
    assert trader.executor.mode == "paper"
    assert trader_for("kraken") is None  # TRADING_EXCHANGES is binance by default
    settings.TRADING_ENABLED = False
    assert trader_for("binance") is None
    settings.TRADING_ENABLED, settings.TRADING_MODE = True, "mainnet"
    with pytest.raises(ValueError, match="TRADING_MODE must be 'testnet' or 'live', got 'mainnet'"):
        trader_for("binance")


def test_the_stream_command_attaches_the_signals_then_the_trader(settings: Any) -> None:
    """``live.wiring``: the signal listener (on the database thread) hands its decisions to the trading listener
    (on its own thread) where trading is on for the exchange; only the signals elsewhere; the trader alone
    without signals."""
    settings.BINANCE_API_KEY = settings.BINANCE_API_SECRET = ""
    signals, trading = stream_listeners("binance")
    assert isinstance(signals, SignalListener)
    assert isinstance(trading, TradingListener)
    assert (signals.thread, trading.thread) == ("database", "own")
    assert signals._subscribers == [trading.on_decisions]
    assert trading.trader.executor.mode == "paper"
    (only,) = stream_listeners("kraken")  # TRADING_EXCHANGES is binance by default
    assert isinstance(only, SignalListener)
    assert only._subscribers == []
    assert [type(listener) for listener in stream_listeners("binance", signals=False)] == [TradingListener]
    settings.TRADING_ENABLED = False
    assert stream_listeners("binance", signals=False) == []
