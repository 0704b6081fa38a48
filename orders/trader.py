"""The trading pipeline inside a stream process: closed candle → signal → risk → executor → stored → pushed.

``orders.listener.TradingListener`` calls it on a thread of its own (never the stream's thread that stores trades:
an executor may wait on the exchange), one job after another:

- ``start`` once before streaming: the executor settles what a crash left unfinished (``reconcile``);
- ``on_decisions`` with the strategy's decisions on each closed candle and the live prices: every BUY and SELL
  goes through ``orders.services.act_on_signal``;
- ``on_ticks`` with every stored batch of trades: the prices of the symbols holding an open position go to the
  executor's ``watch`` (stop-loss and take-profit on every trade).

A ``gate`` (default: always open) says whether this process may trade now; with stream workers sharing the
instruments it is the trading lease's fence (``markets.stream.leased.LeasedSource.trading``, passed in by
``live``). It is checked before anything that can send an order: each signal acted on, each symbol's stops
watched, each reconcile. While it is shut nothing is sent (decisions are dropped: the worker holding the lease
acts on its own); when it opens, what the previous holder left unfinished is reconciled first.

It keeps what changed for the listener to push (``drain``): closed and opened positions and their orders at once,
the unrealised PnL of open ones at most once a second. A failure here is logged and never stops the record.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings

from markets.exchanges.base import TradeTick

from .executors import executor_for
from .executors.base import Executor, PricePoint
from .live import order_data, position_data
from .models import Position
from .risk import RiskParams
from .selectors import open_positions, position_orders
from .services import act_on_signal, risk_params

log = logging.getLogger(__name__)
REFRESH_SECONDS = 1.0  # how stale the set of symbols with open positions (and pushed unrealised PnL) may be
RECONCILE_SECONDS = 60.0  # how often orders left PENDING (an answer lost) and unprotected positions are settled


class Trader:
    """Acts on one exchange's signals through ``executor``; see the module docstring."""

    def __init__(
        self, executor: Executor, params: RiskParams | None = None, gate: Callable[[], bool] | None = None
    ) -> None:
        self.executor = executor
        self.params = params
        self.gate: Callable[[], bool] = gate or (lambda: True)
        self._trading = False  # the gate was open at the last check
        self._watched: frozenset[str] = frozenset()
        self._watched_at = 0.0
        self._lock = threading.Lock()
        self._positions: dict[Any, dict[str, Any]] = {}
        self._orders: dict[Any, dict[str, Any]] = {}
        self._pushed_at: dict[Any, float] = {}
        self._reconciled_at = 0.0

    @property
    def exchange(self) -> str:
        return self.executor.exchange

    def start(self, now: datetime) -> None:
        self.may_trade(now)  # reconciles when the gate is open
        self._refresh(force=True)

    def may_trade(self, now: datetime) -> bool:
        """Whether the gate is open; when it has just opened, what was left unfinished is reconciled first."""
        if not self.gate():
            if self._trading:
                self._trading = False
                log.warning("%s %s: the trading gate shut: no order is sent here", self.exchange, self.executor.mode)
            return False
        if not self._trading:
            self._trading = True
            self.reconcile(now)
        return True

    def reconcile(self, now: datetime) -> None:
        """Settle what an earlier failure left unfinished (see ``Executor.reconcile``); at the start, then every
        ``RECONCILE_SECONDS`` while trades flow. Nothing while the gate is shut."""
        if not self.gate():
            return
        self._reconciled_at = time.monotonic()
        try:
            for order in self.executor.reconcile(now):
                self._note_orders([order])
        except Exception:
            log.exception("%s %s: reconciling orders failed", self.exchange, self.executor.mode)

    def on_decisions(self, decisions: Iterable[Any], prices: Mapping[str, Decimal | None], now: datetime) -> None:
        if not self.may_trade(now):
            return
        for d in decisions:
            if str(d.action) not in ("BUY", "SELL"):
                continue
            if not self.gate():  # checked before every order: the fence may lapse between two
                log.warning(
                    "%s %s: the %s signal of %s not acted on: the trading gate shut",
                    self.exchange,
                    d.symbol,
                    d.action,
                    d.open_time,
                )
                break
            try:
                acted = act_on_signal(d, self.executor, price=prices.get(d.symbol), now=now, params=self.params)
            except Exception:
                log.exception(
                    "%s %s: acting on the %s signal of %s failed", self.exchange, d.symbol, d.action, d.open_time
                )
                continue
            if acted is not None and acted.position is not None:
                self._note_position(acted.position, force=True)
            log.info(
                "%s %s %s %s: %s",
                self.executor.mode,
                self.exchange,
                d.symbol,
                d.action,
                "; ".join(acted.decision.reasons) if acted else "-",
            )
        self._refresh(force=True)

    def on_ticks(self, batch: Sequence[TradeTick], now: datetime) -> None:
        if not self.may_trade(now):
            return
        if time.monotonic() - self._reconciled_at > RECONCILE_SECONDS:
            self.reconcile(now)
        self._refresh()
        if not self._watched:
            return
        by_symbol: dict[str, list[PricePoint]] = {}
        for t in batch:
            if t.symbol in self._watched:
                by_symbol.setdefault(t.symbol, []).append(PricePoint(t.price, t.ts))
        closed = False
        for symbol, prices in by_symbol.items():
            if not self.gate():
                break
            try:
                for position in self.executor.watch(symbol, prices, now):
                    closed |= position.status == Position.Status.CLOSED
                    self._note_position(position, force=position.status == Position.Status.CLOSED)
            except Exception:
                log.exception("%s %s: watching the protective orders failed", self.exchange, symbol)
        if closed:
            self._refresh(force=True)

    def drain(self) -> dict[str, list[dict[str, Any]]] | None:
        """What changed since the last drain, for the live page; None when nothing did."""
        with self._lock:
            if not self._positions and not self._orders:
                return None
            out = {"positions": list(self._positions.values()), "orders": list(self._orders.values())}
            self._positions, self._orders = {}, {}
        return out

    # -- internals ----------------------------------------------------------------------------
    def _refresh(self, force: bool = False) -> None:
        if force or time.monotonic() - self._watched_at > REFRESH_SECONDS:
            self._watched = frozenset(p.symbol for p in open_positions(mode=self.executor.mode, exchange=self.exchange))
            self._watched_at = time.monotonic()

    def _note_position(self, position: Position, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now - self._pushed_at.get(position.pk, 0.0) < REFRESH_SECONDS:
            return
        self._pushed_at[position.pk] = now
        with self._lock:
            self._positions[position.pk] = position_data(position)
        if force:
            self._note_orders(position_orders(position))

    def _note_orders(self, orders: Iterable[Any]) -> None:
        with self._lock:
            for o in orders:
                self._orders[o.pk] = order_data(o)


def trader_for(exchange: str) -> Trader | None:
    """The trader of ``exchange``'s stream, or None when trading is off or not for that exchange."""
    if not settings.TRADING_ENABLED or exchange not in settings.TRADING_EXCHANGES:
        return None
    if settings.TRADING_MODE not in ("testnet", "live"):
        raise ValueError(f"TRADING_MODE must be 'testnet' or 'live', got {settings.TRADING_MODE!r}")
    executor, params = executor_for(exchange), risk_params()
    if executor.mode == "paper":  # the balance cap leaves room for the fee paper fills actually charge
        params = replace(params, fee=settings.PAPER_FEE)
    return Trader(executor, params)
