"""The backtest: the strategy's decisions over past candles, traded as live trading trades them — through the risk
check (:func:`orders.risk.assess`) and the paper executor's arithmetic (:mod:`orders.paper`). Pure: no Django.
:func:`orders.backtest_run.backtest_run` feeds it stored candles and the strategy's decisions.

Start flat with ``cash`` (10,000 of the quote asset) and walk the candles in open-time order. On each candle:

1. **An open position's stop-loss and take-profit, before anything else** (from the candle after its entry: it
   opens at a close). The live paper executor fills them at the first trade at or past a level; a candle keeps
   only its open, high, low and close, so its path is taken as *open, low, high*: the order that is worse for us
   whenever a candle reaches both levels — **the stop-loss is taken first**.
   :func:`orders.paper.first_hit` walks that path. The level is filled at the level itself (the trade that reached
   it was at the level or a little past it; the candle does not say how far), unless the candle *opened* past it (a
   gap: its first trade was already beyond): then at the open. That price then gets the executor's slippage and fee
   (``PaperTerms.fill_price("SELL", price)``, ``exit_pnl``), so a stop at 99.91 with 5 bps fills at 99.860045.
2. **The candle's decision**, made when the candle closes (at open time + interval, as the live stream makes it),
   with its close as the live price:

   - BUY: the account as ``orders.services.account_book`` builds it — equity = cash + the position at the close,
     available = cash, day-start equity = equity less today's PnL (PnL realised since 00:00 UTC of the decision's
     day plus the open position's unrealised PnL, i.e. the starting cash plus the PnL realised before that day),
     the open symbol — goes to ``assess(Proposal("BUY", symbol, close, ATR 14 of the decision))``. Approved: buy
     the verdict's quantity at ``fill_price("BUY", close)`` paying ``fee_of`` it, protected by the verdict's stop
     and take-profit; unless, as the paper executor refuses it, its cost with the fee exceeds the cash
     (rejected ``paper_balance``). Rejected: the verdict's reason is counted (``position_open`` while long,
     ``daily_drawdown`` after the day's losses, ...).
   - SELL: ``assess(Proposal("SELL", ...))`` with the held quantity: approved while long, the position is sold at
     the close (exit reason ``signal``, with slippage and fee); rejected ``no_position`` while flat (a stop or a
     take-profit earlier in the candle may have closed it: as live, the SELL then finds nothing to sell).
3. **Equity at the close**: cash + quantity × close. Cash moves as the paper executor's: each entry costs
   quantity × fill + fee, each exit returns quantity × fill − fee.

A position still open after the last candle is marked to the last close, not sold: reported with exit reason
``open`` and its unrealised PnL (quantity × (last close − entry fill) − the entry fee, as the executor marks an
open position); it is not counted in the win rate. Every trade's ``pnl`` (realised, or unrealised when open) adds
up to the final equity less the starting cash.

Buy-and-hold, for comparison, spends all the cash at the first candle's close with the same slippage and fee
(quantity = cash ÷ (fill × (1 + fee))) and holds to the end. Max drawdown is the largest fall of equity from its
running peak, in % of that peak; the win rate is the share of closed trades with a positive PnL (fees included).

All money is ``Decimal``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from markets.exchanges.base import CandleBar
from markets.intervals import interval_delta
from signals.rules import Action, Decision

from .paper import PaperTerms, first_hit
from .risk import Book, Filters, Proposal, RiskParams, assess, day_start

DEFAULT_CASH = Decimal(10000)
# The filters of an instrument that is not stored (Binance's BTCUSDT: 0.01 tick, 0.00001 step, no minimum notional).
FALLBACK_FILTERS = Filters(tick_size=Decimal("0.01"), step_size=Decimal("0.00001"), min_notional=Decimal(0))
PAPER_BALANCE = "paper_balance"  # the paper executor's own refusal: the cost with the fee exceeds the cash
HUNDRED = Decimal(100)
ZERO = Decimal(0)


class ExitReason(StrEnum):
    """How a trade ended (the values of ``orders.models.Position.ExitReason``, plus ``open``)."""

    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    SIGNAL = "signal"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class Trade:
    """One position: prices are fills (slippage included); ``fees`` are the entry fee, plus the exit fee once
    closed; ``pnl`` is realised (unrealised at the last close while ``exit_reason`` is ``open``). Times are the
    open times of the entry candle and of the candle the exit happened in."""

    entry_time: datetime
    entry_price: Decimal
    qty: Decimal
    stop_price: Decimal
    take_profit_price: Decimal
    fees: Decimal
    pnl: Decimal = ZERO
    exit_reason: ExitReason = ExitReason.OPEN
    exit_time: datetime | None = None
    exit_price: Decimal | None = None

    @property
    def closed(self) -> bool:
        return self.exit_reason is not ExitReason.OPEN


@dataclass(frozen=True, slots=True)
class Check:
    """A BUY or SELL signal through the risk check (and the paper executor): approved, or why not."""

    time: datetime
    action: Action
    price: Decimal
    approved: bool
    rejection: str | None
    reasons: tuple[str, ...]


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
    trades: list[Trade]
    checks: list[Check]
    curve: list[Point]
    cash: Decimal
    terms: PaperTerms
    params: RiskParams
    filters: Filters

    @property
    def fee(self) -> Decimal:
        return self.terms.fee

    @property
    def buys(self) -> int:
        return sum(1 for c in self.checks if c.action is Action.BUY)

    @property
    def sells(self) -> int:
        return sum(1 for c in self.checks if c.action is Action.SELL)

    @property
    def approved(self) -> Counter[str]:
        """Signals the risk check approved (and the paper executor filled), by action."""
        return Counter(str(c.action) for c in self.checks if c.approved)

    @property
    def rejected(self) -> Counter[str]:
        """Signals rejected, by reason (``orders.risk.Rejection`` values, or ``paper_balance``)."""
        return Counter(c.rejection or "" for c in self.checks if not c.approved)

    @property
    def exits(self) -> Counter[ExitReason]:
        """Trades by exit reason (``open``: still open at the end)."""
        return Counter(t.exit_reason for t in self.trades)

    @property
    def closed_trades(self) -> list[Trade]:
        return [t for t in self.trades if t.closed]

    @property
    def open_trades(self) -> int:
        return len(self.trades) - len(self.closed_trades)

    @property
    def fees(self) -> Decimal:
        return sum((t.fees for t in self.trades), ZERO)

    @property
    def return_pct(self) -> Decimal:
        return _pct(self.curve[-1].equity / self.cash - 1) if self.curve else ZERO

    @property
    def hold_return_pct(self) -> Decimal:
        return _pct(self.curve[-1].hold / self.cash - 1) if self.curve else ZERO

    @property
    def max_drawdown_pct(self) -> Decimal:
        return max_drawdown_pct(p.equity for p in self.curve)

    @property
    def win_rate_pct(self) -> Decimal | None:
        closed = self.closed_trades
        if not closed:
            return None
        return _pct(Decimal(sum(1 for t in closed if t.pnl > 0)) / len(closed))


def _pct(ratio: Decimal) -> Decimal:
    return ratio * HUNDRED


def max_drawdown_pct(equity: Iterable[Decimal]) -> Decimal:
    """The largest fall from a running peak, in % of that peak (0 when equity never falls)."""
    peak: Decimal | None = None
    worst = ZERO
    for e in equity:
        peak = e if peak is None or e > peak else peak
        if peak > 0:
            worst = max(worst, (peak - e) / peak)
    return _pct(worst)


def protection_exit(trade: Trade, bar: CandleBar) -> tuple[ExitReason, Decimal] | None:
    """Whether ``bar`` reaches the stop-loss or take-profit of ``trade``, and at which price (before slippage):
    the path open, low, high (the stop first when both are reached), filled at the level, or at the open when
    the candle opened past it."""
    path = ((True, bar.open), (False, bar.low), (False, bar.high))
    hit = first_hit(trade.stop_price, trade.take_profit_price, path, price_of=lambda p: p[1])
    if hit is None:
        return None
    purpose, (at_open, price) = hit
    reason = ExitReason(purpose)
    if at_open:
        return reason, price
    return reason, trade.stop_price if reason is ExitReason.STOP_LOSS else trade.take_profit_price


def _atr(decision: Decision | None) -> Decimal | None:
    value = decision.indicators.get("atr14") if decision is not None else None
    return Decimal(str(value)) if value is not None and math.isfinite(value) else None


class _Account:
    """The paper account of one symbol while the walk goes on: cash, the open trade, what was realised when."""

    def __init__(self, cash: Decimal, terms: PaperTerms) -> None:
        self.start = cash
        self.cash = cash
        self.terms = terms
        self.trade: Trade | None = None
        self.trades: list[Trade] = []
        self.realised: list[tuple[datetime, Decimal]] = []  # (when, PnL) of each closed trade

    def equity(self, price: Decimal) -> Decimal:
        return self.cash + (self.trade.qty * price if self.trade else ZERO)

    def book(self, symbol: str, price: Decimal, now: datetime) -> Book:
        """As ``orders.services.account_book``: the day's start is the equity less today's PnL."""
        since = day_start(now)
        today = sum((pnl for when, pnl in self.realised if when >= since), ZERO)
        equity = self.equity(price)
        if self.trade is not None:
            today += self.trade.qty * (price - self.trade.entry_price) - self.trade.fees
        held = self.trade.qty if self.trade else ZERO
        return Book(
            equity=equity,
            available=self.cash,
            day_start_equity=equity - today,
            open_symbols=frozenset({symbol}) if self.trade else frozenset(),
            held=held,
        )

    def open(self, at: datetime, price: Decimal, qty: Decimal, stop: Decimal, take_profit: Decimal) -> bool:
        """Buy ``qty`` at ``price`` as the paper executor does; False when the cash cannot pay it."""
        fill = self.terms.fill_price("BUY", price)
        fee = self.terms.fee_of(qty, fill)
        if qty * fill + fee > self.cash:
            return False
        self.cash -= qty * fill + fee
        self.trade = Trade(at, fill, qty, stop, take_profit, fee)
        return True

    def close(self, at: datetime, when: datetime, reason: ExitReason, price: Decimal) -> None:
        """Sell the open trade at ``price`` (slippage and fee applied); ``when``: the moment, for the day's PnL."""
        assert self.trade is not None
        t = self.trade
        fill = self.terms.fill_price("SELL", price)
        fee, pnl = self.terms.exit_pnl(t.qty, t.entry_price, t.fees, fill)
        self.cash += t.qty * fill - fee
        self.trades.append(replace(t, fees=t.fees + fee, pnl=pnl, exit_reason=reason, exit_time=at, exit_price=fill))
        self.realised.append((when, pnl))
        self.trade = None

    def finish(self, last: Decimal) -> list[Trade]:
        """The trades, the one still open marked to ``last``."""
        if self.trade is None:
            return self.trades
        t = self.trade
        return [*self.trades, replace(t, pnl=t.qty * (last - t.entry_price) - t.fees)]


def simulate(
    bars: Sequence[CandleBar],
    decisions: Iterable[Decision],
    *,
    filters: Filters = FALLBACK_FILTERS,
    params: RiskParams | None = None,
    terms: PaperTerms | None = None,
    cash: Decimal = DEFAULT_CASH,
) -> BacktestResult:
    """Trade ``decisions`` (matched to ``bars`` by open time) over ``bars`` (one symbol, open-time order) through
    the risk check with ``filters`` and ``params`` and paper fills on ``terms``; see the module docstring."""
    params = params or RiskParams()
    terms = terms or PaperTerms()
    if cash <= 0:
        raise ValueError(f"cash must be positive, got {cash}")
    by_time = {d.open_time: d for d in decisions}
    account = _Account(cash, terms)
    hold_qty = cash / (terms.fill_price("BUY", bars[0].close) * (1 + terms.fee)) if bars else ZERO
    checks: list[Check] = []
    curve: list[Point] = []
    for b in bars:
        if account.trade is not None:
            hit = protection_exit(account.trade, b)
            if hit is not None:
                account.close(b.open_time, b.open_time, *hit)
        decision = by_time.get(b.open_time)
        action = decision.action if decision is not None else Action.HOLD
        if action is not Action.HOLD:
            checks.append(_act(account, b, action, _atr(decision), filters, params))
        curve.append(Point(b.open_time, b.close, account.equity(b.close), hold_qty * b.close))
    return BacktestResult(
        candles=len(bars),
        trades=account.finish(bars[-1].close if bars else ZERO),
        checks=checks,
        curve=curve,
        cash=cash,
        terms=terms,
        params=params,
        filters=filters,
    )


def _act(
    account: _Account, b: CandleBar, action: Action, atr: Decimal | None, filters: Filters, params: RiskParams
) -> Check:
    """A BUY or SELL at the close of ``b``: the risk check, then the paper fill."""
    decided = b.open_time + interval_delta(b.interval)
    book = account.book(b.symbol, b.close, decided)
    verdict = assess(Proposal(str(action), b.symbol, b.close, atr), book, filters, params)
    if not verdict.approved:
        return Check(b.open_time, action, b.close, False, str(verdict.rejection), verdict.reasons)
    assert verdict.qty is not None
    if action is Action.SELL:
        account.close(b.open_time, decided, ExitReason.SIGNAL, b.close)
    else:
        assert verdict.stop_price is not None
        assert verdict.take_profit_price is not None
        if not account.open(b.open_time, b.close, verdict.qty, verdict.stop_price, verdict.take_profit_price):
            return Check(
                b.open_time,
                action,
                b.close,
                False,
                PAPER_BALANCE,
                (*verdict.reasons, f"the paper account's cash {account.cash} does not pay it with the fee"),
            )
    return Check(b.open_time, action, b.close, True, None, verdict.reasons)
