"""Paper trading end to end: the stream runs against the simulator with the trading pipeline; a BUY signal is
approved by the risk check and filled at the live price; the simulator's market then jumps through the
take-profit (or falls through the stop-loss), the stream sees it trade by trade, and the position closes. The PnL
is worked out here by hand from the stored trades: the first trade past a level after the entry is the exit."""

from __future__ import annotations

import asyncio
import io
import json
import time
import urllib.request
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection

from exchangesim.server import Simulator
from markets import intervals as iv
from markets.exchanges.binance import BinanceRest
from markets.exchanges.binance.stream import BinanceStream
from markets.models import Tick
from markets.stream import StreamConfig, TradeStream
from orders.executors.paper import PaperExecutor
from orders.listener import TradingListener
from orders.models import Fill, Order, Position, RiskDecision
from orders.risk import RiskParams
from orders.services import SignalRef
from orders.trader import Trader

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SYMBOL = "BTCUSDT"
SLIP, FEE = D("0.0005"), D("0.001")


def control(sim: Simulator, path: str, body: dict[str, Any]) -> dict[str, Any]:
    req = urllib.request.Request(
        f"{sim.url}{path}", data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def ticks_after(trade_id: int) -> list[tuple[int, D]]:
    docs = connection.database[Tick._meta.db_table].find(
        {"exchange": "binance", "symbol": SYMBOL, "trade_id": {"$gt": trade_id}},
        {"trade_id": 1, "price": 1},
        sort=[("trade_id", 1)],
    )
    return [(int(d["trade_id"]), d["price"].to_decimal()) for d in docs]


def max_stored_id() -> int:
    doc = connection.database[Tick._meta.db_table].find_one(
        {"exchange": "binance", "symbol": SYMBOL}, sort=[("trade_id", -1)]
    )
    return int(doc["trade_id"]) if doc else 0


def run_trade(sim: Simulator, bps: int) -> tuple[Position, int, D]:
    """Stream with a paper trader, act on a BUY at the live price, move the market ``bps``; returns the position
    once closed, the last trade id stored before the entry, and the live price the entry was decided at."""
    call_command("seed_instruments", "--exchange", "binance", "--symbols", SYMBOL, stdout=io.StringIO())
    trader = Trader(PaperExecutor("binance", cash=D(10000), fee=FEE, slippage=SLIP), RiskParams())
    trading = TradingListener(trader)  # no signal listener: the test hands the trader its BUY itself
    stream = TradeStream(
        StreamConfig("binance", (SYMBOL,), stall_seconds=5),
        BinanceStream(sim.ws_url, (SYMBOL,)),
        lambda: BinanceRest(sim.url),
        [trading],
    )
    buy = SignalRef("ta-vote", "binance", SYMBOL, "1m", iv.floor(datetime.now(UTC), "1m"), "BUY")

    def act() -> tuple[int, D]:  # on the trading listener's thread, as after a candle pass
        price = trading.prices.get(SYMBOL)
        assert price is not None
        before = max_stored_id()
        trader.on_decisions([buy], {SYMBOL: price}, datetime.now(UTC))
        return before, price

    async def main() -> tuple[int, D]:
        task = asyncio.create_task(stream.run())
        deadline = time.monotonic() + 15
        while trading.prices.get(SYMBOL) is None or not await asyncio.to_thread(max_stored_id):
            assert time.monotonic() < deadline, "no trade streamed"
            await asyncio.sleep(0.1)
        assert trading._context is not None
        before, price = await asyncio.wrap_future(trading._context.submit(act))
        assert await asyncio.to_thread(Position.objects.filter(status="open").count) == 1
        await asyncio.to_thread(
            control, sim, "/_sim/venue/outlier", {"venue": "binance", "symbol": SYMBOL, "bps": bps, "seconds": 3}
        )
        deadline = time.monotonic() + 15
        while await asyncio.to_thread(Position.objects.filter(status="open").count):
            assert time.monotonic() < deadline, "the position was not closed"
            await asyncio.sleep(0.2)
        stream.stop()
        await asyncio.wait_for(task, 30)
        return before, price

    before, price = asyncio.run(main())
    return Position.objects.get(), before, price


def check_by_hand(position: Position, before: int, price: D, reason: str) -> D:
    decision = RiskDecision.objects.get()
    assert decision.approved, decision.reasons
    # 10 % of 10,000 at the live price (the risk of a 3 % stop would allow more), rounded down to 0.00001.
    qty = (D(1000) / price).quantize(D("0.00001"), rounding="ROUND_DOWN")
    entry = price * (1 + SLIP)
    entry_fee = (qty * entry * FEE).quantize(D("0.00000001"))
    stop = (price * D("0.97")).quantize(D("0.01"), rounding="ROUND_DOWN")
    take_profit = (price * D("1.06")).quantize(D("0.01"), rounding="ROUND_UP")
    assert (position.qty, position.entry_price, position.stop_price, position.take_profit_price) == (
        qty,
        entry,
        stop,
        take_profit,
    )
    # The first stored trade after the entry at or past a level closes the position at its price (less slippage).
    trigger_id, trigger = next((i, p) for i, p in ticks_after(before) if p <= stop or p >= take_profit)
    assert (trigger >= take_profit) == (reason == "take_profit"), (trigger, stop, take_profit)
    exit_ = trigger * (1 - SLIP)
    exit_fee = (qty * exit_ * FEE).quantize(D("0.00000001"))
    pnl = qty * (exit_ - entry) - entry_fee - exit_fee
    assert (position.exit_reason, position.exit_price, position.realised_pnl) == (reason, exit_, pnl)
    orders = {o.purpose: o for o in Order.objects.filter(position=position)}
    other = "stop_loss" if reason == "take_profit" else "take_profit"
    assert (orders["entry"].status, orders[reason].status, orders[other].status) == ("FILLED", "FILLED", "EXPIRED")
    assert [f.price for f in Fill.objects.filter(order=orders[reason])] == [exit_]
    print(
        f"\n{reason}: BUY {qty} {SYMBOL} at {price} (filled {entry:.6f}, fee {entry_fee}); stop {stop}, "
        f"take-profit {take_profit}; trade {trigger_id} at {trigger} closed it (filled {exit_:.6f}, fee "
        f"{exit_fee}): PnL {pnl:.8f}"
    )
    return pnl


def test_take_profit(sim_thread: Simulator, settings: Any) -> None:
    settings.BINANCE_REST_URL = sim_thread.url
    position, before, price = run_trade(sim_thread, +800)
    assert check_by_hand(position, before, price, "take_profit") > 0


def test_stop_loss(sim_thread: Simulator, settings: Any) -> None:
    settings.BINANCE_REST_URL = sim_thread.url
    position, before, price = run_trade(sim_thread, -500)
    assert check_by_hand(position, before, price, "stop_loss") < 0
