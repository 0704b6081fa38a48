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


class TradingListener(StreamListener):
    """Runs one exchange's ``Trader`` on the stream's events; see the module docstring."""

    name = "trade"  # its thread: stream-trade
    thread = ListenerThread.OWN

    def __init__(self, trader: Trader) -> None:
        self.trader = trader
        self.prices: dict[str, Decimal] = {}  # each symbol's last stored price; written on this listener's thread
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
        """Keep each symbol's last price, and watch the open positions' stops on every trade of ``batch``."""
        self.prices.update({t.symbol: t.price for t in batch})
        self.trader.on_ticks(batch, now)
        self._push()

    def on_decisions(self, decisions: Mapping[str, list[Decision]], now: datetime) -> None:
        """The strategy's decisions of one candle pass, by symbol (from any thread): queued on this listener's
        thread behind the batches already handed over."""
        if self._context is None:
            raise RuntimeError("the trading listener is not attached to a stream")
        self._context.submit(self.act, decisions, now)

    def act(self, decisions: Mapping[str, list[Decision]], now: datetime) -> None:
        """On this listener's thread: closed candle → signal → risk → executor → stored, at each symbol's last
        price; then the changes go out."""
        for symbol, made in decisions.items():
            self.trader.on_decisions(made, {symbol: self.prices.get(symbol)}, now)
        self._push()

    def stop(self) -> None:
        """The trader's last changes go out."""
        self._push()

    def _push(self) -> None:
        changes = self.trader.drain()
        if changes and self._context is not None:
            self._context.announce(ORDERS_GROUP, {"type": ORDERS_EVENT, "data": changes})
