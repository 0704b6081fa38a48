"""The strategy inside a stream process: each closed 1m candle the stream writes is decided, stored and announced.

``SignalListener`` is a ``markets.stream.StreamListener`` on the stream's database thread (deciding a candle is
cheap database work, and it must see the candles in the order they were written). On start it warms an
evaluator per symbol (``live_evaluator``: stored candles, else fetched; that runs on the stream's REST thread,
before the socket opens). On every candle pass it feeds the closed candles to their symbol's evaluator, stores the
decisions (``signals_store``), announces the BUY and SELL ones to the symbol's live page (``market.signals``) and
hands all of them, by symbol, to its subscribers (the trader). A symbol whose strategy fails is logged; its trades
are recorded all the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from markets.exchanges.base import CandleBar
from markets.live import market_group
from markets.stream import ListenerContext, ListenerThread, StreamListener

from .evaluator import Evaluator
from .live import SIGNALS_EVENT, signal_data
from .rules import Decision
from .services import live_evaluator, signals_store

log = logging.getLogger(__name__)
DecisionsSubscriber = Callable[[Mapping[str, list[Decision]], datetime], None]


class SignalListener(StreamListener):
    """Decides the strategy's signals on every closed candle of one stream; see the module docstring.
    ``subscribers`` are called on the database thread with each pass's decisions by symbol: keep them quick."""

    name = "signals"
    thread = ListenerThread.DATABASE

    def __init__(self, subscribers: Sequence[DecisionsSubscriber] = ()) -> None:
        self.evaluators: dict[str, Evaluator] = {}  # per symbol; used on the database thread only
        self._subscribers = list(subscribers)
        self._context: ListenerContext | None = None

    def attach(self, context: ListenerContext) -> None:
        """Keep the stream's context (its exchange and symbols, and the way to announce)."""
        self._context = context

    def start(self, now: datetime) -> None:
        """An evaluator per symbol, warmed with the window of candles before now (stored, else fetched) and the
        signals stored within the cooldown; each symbol is warmed up to the moment its turn comes."""
        assert self._context is not None, "attached by the stream before it starts"
        for symbol in self._context.symbols:
            try:
                self.evaluators[symbol] = live_evaluator(
                    exchange=self._context.exchange, symbol=symbol, now=datetime.now(UTC)
                )
            except Exception:  # no signals for this symbol, but its trades are recorded all the same
                log.exception("%s %s: the strategy could not be warmed up; no signals", self._context.exchange, symbol)

    def candles_written(self, written: Mapping[str, Sequence[CandleBar]], now: datetime) -> None:
        """Decide and store the closed candles of ``written``, announce the BUY and SELL decisions, and hand every
        decision to the subscribers."""
        exchange = self._context.exchange if self._context is not None else ""
        decided: dict[str, list[Decision]] = {}
        for symbol, bars in written.items():
            evaluator = self.evaluators.get(symbol)
            closed = [b for b in bars if b.closed]
            if evaluator is None or not closed:
                continue
            try:  # the record goes on whatever the strategy does
                decisions = [d for b in closed for d in evaluator.feed(b)]
                signals_store(decisions=decisions)
            except Exception:
                log.exception(
                    "%s %s: signals not decided for %s",
                    exchange,
                    symbol,
                    ", ".join(f"{b.open_time:%H:%M}" for b in closed),
                )
                continue
            decided[symbol] = decisions
            self._announce(symbol, decisions)
        if not decided:
            return
        for subscriber in self._subscribers:
            try:
                subscriber(decided, now)
            except Exception:  # one subscriber's failure is its own
                log.exception("%s: a subscriber of the signals failed", exchange)

    def _announce(self, symbol: str, decisions: Sequence[Decision]) -> None:
        """The BUY and SELL decisions to the symbol's live page (a HOLD is stored, not announced)."""
        data = [signal_data(d) for d in decisions if d.action != "HOLD"]
        if data and self._context is not None:
            self._context.announce(
                market_group(self._context.exchange, symbol), {"type": SIGNALS_EVENT, "data": {"signals": data}}
            )
