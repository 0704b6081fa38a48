"""The trader inside a stream process: ``TradingListener`` hands the stream's events to ``orders.trader.Trader``.

A ``markets.stream.StreamListener`` on a thread of its own (an executor may call the exchange and wait on it,
which must never hold up storing the record); its jobs run in the order they were handed over:

- ``start``: the trader settles what a crash left unfinished (``Trader.start``), before the socket opens;
- ``ticks_stored``: each symbol's last price is kept, and the batch goes to ``Trader.on_ticks`` (stop-loss and
  take-profit on every stored trade);
- ``on_decisions``: called by the signal listener (on the stream's database thread) with each candle pass's
  decisions; queued here, then ``Trader.on_decisions`` acts on them at each symbol's last price.

After each job, what the trader changed (``Trader.drain``) is announced to every live page as one
``orders.update`` event (``orders.live``); at stop, the last changes go out.

When the database fails under the trader (it reads the open positions before watching), the trades whose stops
were not watched (up to ``MAX_HELD_TICKS``) and the decisions not acted on are kept and handed over again, oldest
first, with the next job (acting twice on one signal acts once). The failure is logged once, with what is kept,
and so is its end. The stream hands over only stored trades, so during an outage there is nothing to watch yet:
the backlog comes afterwards, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from markets.exchanges.base import TradeTick
from markets.selectors import recent_ticks
from markets.stream import ListenerContext, ListenerThread, StreamListener
from signals.rules import Decision

from .live import ORDERS_EVENT, ORDERS_GROUP
from .trader import Trader

log = logging.getLogger(__name__)
MAX_HELD_TICKS = 100_000  # trades kept for the stops while the trader's database fails (the oldest go first)


class TradingListener(StreamListener):
    """Runs one exchange's ``Trader`` on the stream's events; see the module docstring."""

    name = "trade"  # its thread: stream-trade
    thread = ListenerThread.OWN

    def __init__(self, trader: Trader) -> None:
        self.trader = trader
        self.prices: dict[str, Decimal] = {}  # each symbol's last stored price; written on this listener's thread
        self._held: list[TradeTick] = []  # trades whose stops were not watched (the database failed)
        self._unacted: dict[str, list[Decision]] = {}  # decisions not acted on (the database failed)
        self._failing = False
        self._context: ListenerContext | None = None

    def attach(self, context: ListenerContext) -> None:
        """Keep the stream's context (its exchange and symbols, announce, and this listener's thread)."""
        self._context = context

    def start(self, now: datetime) -> None:
        """The last stored price of each symbol (the prices before the first batch), then ``Trader.start``."""
        if self._context is not None:
            for symbol in self._context.symbols:
                try:
                    last = recent_ticks(exchange=self._context.exchange, symbol=symbol, limit=1)
                except Exception:  # no price until the first stored batch: the trader still starts
                    log.exception("%s %s: the last stored price could not be read", self._context.exchange, symbol)
                    continue
                if last:
                    self.prices[symbol] = last[-1].price
        self.trader.start(now)
        self._push()

    def ticks_stored(self, batch: Sequence[TradeTick], now: datetime) -> None:
        """Keep each symbol's last price, and watch the open positions' stops on every trade of ``batch`` (and of
        the batches an earlier failure kept)."""
        self.prices.update({t.symbol: t.price for t in batch})
        ticks = [*self._held, *batch] if self._held else batch
        try:
            self.trader.on_ticks(ticks, now)
        except Exception as exc:
            self._held = list(ticks[-MAX_HELD_TICKS:])
            self._failed("watching the stops", exc, f"the stops are watched on these {len(self._held)} trades")
            return
        self._held = []
        self._recovered()
        if self._unacted:
            self.act({}, now)
        self._push()

    def on_decisions(self, decisions: Mapping[str, list[Decision]], now: datetime) -> None:
        """The strategy's decisions of one candle pass, by symbol (from any thread): queued on this listener's
        thread behind the batches already handed over."""
        if self._context is None:
            raise RuntimeError("the trading listener is not attached to a stream")
        self._context.submit(self.act, decisions, now)

    def act(self, decisions: Mapping[str, list[Decision]], now: datetime) -> None:
        """On this listener's thread: closed candle → signal → risk → executor → stored, at each symbol's last
        price (with the decisions an earlier failure kept first); then the changes go out."""
        todo = {symbol: list(made) for symbol, made in self._unacted.items()}
        for symbol, made in decisions.items():
            todo.setdefault(symbol, []).extend(made)
        try:
            for symbol, made in todo.items():
                self.trader.on_decisions(made, {symbol: self.prices.get(symbol)}, now)
        except Exception as exc:
            self._unacted = todo
            count = sum(len(m) for m in todo.values())
            self._failed("acting on the signals", exc, f"these {count} decisions are acted on with the next job")
            return
        self._unacted = {}
        self._recovered()
        self._push()

    def stop(self) -> None:
        """The trader's last changes go out."""
        self._push()

    def _failed(self, what: str, exc: Exception, kept: str) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "%s: the trader failed %s (%s: %s); %s, retried with the next job",
                self.trader.exchange,
                what,
                type(exc).__name__,
                str(exc)[:200],
                kept,
            )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.warning("%s: the trader works again; what it kept was handed over", self.trader.exchange)

    def _push(self) -> None:
        changes = self.trader.drain()
        if changes and self._context is not None:
            self._context.announce(ORDERS_GROUP, {"type": ORDERS_EVENT, "data": changes})
