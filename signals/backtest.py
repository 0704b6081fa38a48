"""A long-only paper position driven by the strategy's decisions over past candles. Pure: no Django.

Rules of the simulation (deliberately simple, until the risk module and the paper executor exist):

- start flat with ``cash`` (10,000 of the quote asset);
- on a BUY while flat, buy with all the cash at the signal candle's close (the decision is known when the
  candle closes; its close is the last traded price); a BUY while long is ignored;
- on a SELL while long, sell the whole position at that close; a SELL while flat is ignored (no shorting);
- each fill pays ``fee`` of its notional (default 0.001 = 0.1 %, Binance's base spot taker fee), in the quote
  asset: a buy gets ``cash * (1 - fee) / price``, a sell pays ``qty * price * (1 - fee)``;
- equity is marked at every candle's close: ``cash + qty * close``; a position still open at the end is marked,
  not sold (reported as open, not counted in the win rate);
- buy-and-hold, for comparison, buys at the first candle's close with the same fee and holds to the end;
- max drawdown is the largest fall of equity from its running peak, in % of that peak; the win rate is the
  share of closed trades whose exit proceeds beat their entry cost, fees included.

All money is ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from markets.exchanges.base import CandleBar

from .rules import Action, Decision

DEFAULT_FEE = Decimal("0.001")
DEFAULT_CASH = Decimal(10000)
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Trade:
    """One round trip; ``exit_time``/``exit_price``/``pnl`` are None while it is still open."""

    entry_time: datetime
    entry_price: Decimal
    qty: Decimal
    cost: Decimal
    exit_time: datetime | None = None
    exit_price: Decimal | None = None
    pnl: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Point:
    """The equity of the strategy and of buy-and-hold at one candle's close."""

    time: datetime
    close: Decimal
    equity: Decimal
    hold: Decimal


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """What a backtest did and how it fared (see the module docstring for the definitions)."""

    candles: int
    buys: int
    sells: int
    trades: list[Trade]
    curve: list[Point]
    markers: list[tuple[datetime, Action, Decimal]]
    fee: Decimal
    cash: Decimal

    @property
    def closed_trades(self) -> list[Trade]:
        return [t for t in self.trades if t.pnl is not None]

    @property
    def open_trades(self) -> int:
        return len(self.trades) - len(self.closed_trades)

    @property
    def return_pct(self) -> Decimal:
        return _pct(self.curve[-1].equity / self.cash - 1) if self.curve else Decimal(0)

    @property
    def hold_return_pct(self) -> Decimal:
        return _pct(self.curve[-1].hold / self.cash - 1) if self.curve else Decimal(0)

    @property
    def max_drawdown_pct(self) -> Decimal:
        return max_drawdown_pct(p.equity for p in self.curve)

    @property
    def win_rate_pct(self) -> Decimal | None:
        closed = self.closed_trades
        if not closed:
            return None
        return _pct(Decimal(sum(1 for t in closed if t.pnl is not None and t.pnl > 0)) / len(closed))


def _pct(ratio: Decimal) -> Decimal:
    return ratio * HUNDRED


def max_drawdown_pct(equity: Iterable[Decimal]) -> Decimal:
    """The largest fall from a running peak, in % of that peak (0 when equity never falls)."""
    peak: Decimal | None = None
    worst = Decimal(0)
    for e in equity:
        peak = e if peak is None or e > peak else peak
        if peak > 0:
            worst = max(worst, (peak - e) / peak)
    return _pct(worst)


def simulate(
    bars: Sequence[CandleBar],
    decisions: Iterable[Decision],
    *,
    fee: Decimal = DEFAULT_FEE,
    cash: Decimal = DEFAULT_CASH,
) -> BacktestResult:
    """Run the paper position over ``bars`` (open-time order) acting on ``decisions`` (matched by open time)."""
    if not Decimal(0) <= fee < 1:
        raise ValueError(f"fee must be a fraction from 0 to below 1 (0.001 is 0.1 %), got {fee}")
    if cash <= 0:
        raise ValueError(f"cash must be positive, got {cash}")
    by_time = {d.open_time: d.action for d in decisions}
    free, qty = cash, Decimal(0)
    hold_qty = cash * (1 - fee) / bars[0].close if bars else Decimal(0)
    trades: list[Trade] = []
    curve: list[Point] = []
    markers: list[tuple[datetime, Action, Decimal]] = []
    for b in bars:
        action = by_time.get(b.open_time, Action.HOLD)
        if action is not Action.HOLD:
            markers.append((b.open_time, action, b.close))
        if action is Action.BUY and qty == 0:
            qty = free * (1 - fee) / b.close
            trades.append(Trade(b.open_time, b.close, qty, free))
            free = Decimal(0)
        elif action is Action.SELL and qty > 0:
            free = qty * b.close * (1 - fee)
            entry = trades[-1]
            trades[-1] = Trade(entry.entry_time, entry.entry_price, entry.qty, entry.cost, b.open_time, b.close,
                               free - entry.cost)
            qty = Decimal(0)
        curve.append(Point(b.open_time, b.close, free + qty * b.close, hold_qty * b.close))
    return BacktestResult(
        candles=len(bars),
        buys=sum(1 for _, a, _ in markers if a is Action.BUY),
        sells=sum(1 for _, a, _ in markers if a is Action.SELL),
        trades=trades,
        curve=curve,
        markers=markers,
        fee=fee,
        cash=cash,
    )
