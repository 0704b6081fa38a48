"""The trader's gate (the trading lease's fence on a leased stream worker): nothing that can send an order runs
while it is shut; it is checked again before each signal acted on; what the last holder left is reconciled when it
opens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from live.wiring import stream_listeners, traded
from markets.exchanges.base import TradeTick
from markets.stream import ListenerContext
from orders import trader as trader_module
from orders.executors.paper import PaperExecutor
from orders.trader import Trader

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Counting(PaperExecutor):
    """The paper executor, counting the calls that can send an order."""

    def __init__(self) -> None:
        super().__init__("binance")
        self.calls: list[str] = []

    def reconcile(self, now: datetime) -> list[Any]:
        self.calls.append("reconcile")
        return []

    def watch(self, symbol: str, prices: Sequence[Any], now: datetime) -> list[Any]:
        self.calls.append(f"watch {symbol}")
        return []


def decision(symbol: str, action: str = "BUY") -> Any:
    return SimpleNamespace(symbol=symbol, action=action, open_time=NOW)


@pytest.mark.django_db
def test_nothing_is_sent_while_the_gate_is_shut_and_it_is_checked_before_each_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    acted: list[str] = []
    monkeypatch.setattr(trader_module, "act_on_signal", lambda d, *a, **k: acted.append(d.symbol))
    gate = {"open": False}
    executor = Counting()
    trader = Trader(executor, gate=lambda: gate["open"])
    trader.start(NOW)
    trader.on_decisions([decision("BTCUSDT")], {"BTCUSDT": None}, NOW)
    tick = TradeTick("binance", "BTCUSDT", 1, Decimal(1), Decimal(1), "buy", NOW, NOW, "ws", 1, 1)
    trader.on_ticks([tick], NOW)
    assert (executor.calls, acted) == ([], [])
    gate["open"] = True  # the lease taken: what the previous holder left is settled first, once
    trader.on_decisions([decision("BTCUSDT"), decision("ETHUSDT", "SELL")], {}, NOW)
    assert (executor.calls, acted) == (["reconcile"], ["BTCUSDT", "ETHUSDT"])
    checks = iter([True, True, False])  # open when asked, open for the first order, shut before the second
    trader.gate = lambda: next(checks)
    trader.on_decisions([decision("SOLUSDT"), decision("XRPUSDT")], {}, NOW)
    assert acted == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


def test_the_stream_wiring_gates_the_trader_and_hands_it_the_traded_symbols_only(settings: Any) -> None:
    """``live.wiring``: the gate given (a leased worker's trading lease) becomes the trader's; with
    ``TRADING_SYMBOLS`` the trader is handed the decisions of those symbols only (all of them without it)."""
    settings.BINANCE_API_KEY = settings.BINANCE_API_SECRET = ""
    settings.TRADING_SYMBOLS = frozenset({"BTCUSDT"})

    def gate() -> bool:
        return False

    signals, trading = stream_listeners("binance", trading_gate=gate)
    assert trading.trader.gate is gate
    jobs: list[Any] = []
    trading.attach(ListenerContext("binance", (), lambda *a: None, lambda fn, *args: jobs.append(args)))
    (subscriber,) = signals._subscribers
    subscriber({"BTCUSDT": [decision("BTCUSDT")], "ETHUSDT": [decision("ETHUSDT")]}, NOW)
    assert [sorted(decided) for decided, _ in jobs] == [["BTCUSDT"]]
    assert traded(("BTCUSDT", "ETHUSDT")) == {"BTCUSDT"}
    settings.TRADING_SYMBOLS = frozenset()
    assert traded(("BTCUSDT", "ETHUSDT")) == {"BTCUSDT", "ETHUSDT"}
