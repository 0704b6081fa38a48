"""The strategy inside a stream process: each closed 1m candle the stream writes is decided, stored and announced.

``SignalListener`` is a ``markets.stream.StreamListener`` on the stream's database thread (deciding a candle is
cheap database work, and it must see the candles in the order they were written). On start it warms an
evaluator per symbol (``live_evaluator``: stored candles, else fetched; that runs on the stream's REST thread,
before the socket opens). On every candle pass it feeds the closed candles to their symbol's evaluator, stores the
decisions (``signals_store``), announces the BUY and SELL ones to the symbol's live page (``market.signals``) and
hands all of them, by symbol, to its subscribers (the trader). A symbol whose strategy fails is logged; its trades
are recorded all the same.

Nothing is lost to a database failure here. Decisions the store refused are kept (up to ``MAX_UNSTORED`` a symbol)
and stored, announced and handed to the subscribers with the next pass that brings the symbol's candles (acting
twice on one signal acts once). A symbol whose evaluator could not be warmed (the database down at start) is
warmed again at most every ``WARM_RETRY_SECONDS``, as of its first closed candle it missed, and that candle and
the ones after it are then decided. Each failure is logged once, with what is kept; its end is logged too.
"""

from __future__ import annotations

import logging
import time
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
MAX_UNSTORED = 10_000  # decisions of one symbol kept while the store fails (a week of 1m candles)
WARM_RETRY_SECONDS = 30.0
MAX_WAITING = 1_000  # closed candles of one symbol kept while its evaluator cannot be warmed
DecisionsSubscriber = Callable[[Mapping[str, list[Decision]], datetime], None]


class SignalListener(StreamListener):
    """Decides the strategy's signals on every closed candle of one stream; see the module docstring.
    ``subscribers`` are called on the database thread with each pass's decisions by symbol: keep them quick."""

    name = "signals"
    thread = ListenerThread.DATABASE

    def __init__(self, subscribers: Sequence[DecisionsSubscriber] = ()) -> None:
        self.evaluators: dict[str, Evaluator] = {}  # per symbol; used on the database thread only
        self.unstored: dict[str, list[Decision]] = {}  # per symbol: decided, the store failed, retried
        self._waiting: dict[str, list[CandleBar]] = {}  # per symbol without an evaluator: its closed candles
        self._warm_tried: dict[str, float] = {}
        self._subscribers = list(subscribers)
        self._context: ListenerContext | None = None

    @property
    def exchange(self) -> str:
        return self._context.exchange if self._context is not None else ""

    def attach(self, context: ListenerContext) -> None:
        """Keep the stream's context (its exchange and symbols, and the way to announce)."""
        self._context = context

    def start(self, now: datetime) -> None:
        """An evaluator per symbol, warmed with the window of candles before now (stored, else fetched) and the
        signals stored within the cooldown; each symbol is warmed up to the moment its turn comes."""
        assert self._context is not None, "attached by the stream before it starts"
        for symbol in self._context.symbols:
            self._warm(symbol, datetime.now(UTC))

    def _warm(self, symbol: str, now: datetime) -> bool:
        first = symbol not in self._warm_tried
        self._warm_tried[symbol] = time.monotonic()
        try:
            self.evaluators[symbol] = live_evaluator(exchange=self.exchange, symbol=symbol, now=now)
        except Exception as exc:  # no signals for this symbol yet, but its trades are recorded all the same
            if first:
                log.exception(
                    "%s %s: the strategy could not be warmed up (%s); its closed candles are kept and decided once "
                    "it is (retried every %.0f s)",
                    self.exchange,
                    symbol,
                    type(exc).__name__,
                    WARM_RETRY_SECONDS,
                )
            return False
        if not first:
            log.warning("%s %s: the strategy is warmed up, as of %s", self.exchange, symbol, f"{now:%H:%M}")
        return True

    def _closed(self, symbol: str, bars: Sequence[CandleBar]) -> tuple[Evaluator | None, list[CandleBar]]:
        """The symbol's evaluator and the closed candles it is to decide: those of ``bars``, and, once an evaluator
        could be warmed late, the ones that waited for it."""
        closed = [b for b in bars if b.closed]
        evaluator = self.evaluators.get(symbol)
        if evaluator is not None:
            return evaluator, closed
        waiting = self._waiting.setdefault(symbol, [])
        waiting += closed
        del waiting[:-MAX_WAITING]
        if not waiting or time.monotonic() - self._warm_tried.get(symbol, 0.0) < WARM_RETRY_SECONDS:
            return None, []
        if not self._warm(symbol, waiting[0].open_time):
            return None, []
        return self.evaluators[symbol], self._waiting.pop(symbol)

    def candles_written(self, written: Mapping[str, Sequence[CandleBar]], now: datetime) -> None:
        """Decide and store the closed candles of ``written`` (and what an earlier pass could not store), announce
        the BUY and SELL decisions, and hand every decision to the subscribers."""
        decided: dict[str, list[Decision]] = {}
        for symbol, bars in written.items():
            evaluator, closed = self._closed(symbol, bars)
            if evaluator is None or not (closed or symbol in self.unstored):
                continue
            try:  # the record goes on whatever the strategy does
                decisions = [d for b in closed for d in evaluator.feed(b)]
            except Exception:
                log.exception("%s %s: signals not decided for %s", self.exchange, symbol, _minutes(closed))
                continue
            late = self.unstored.pop(symbol, [])
            todo = late + decisions
            try:
                signals_store(decisions=todo)
            except Exception as exc:
                self._unstored(symbol, todo, closed, exc, first=not late)
                continue
            if late:
                log.warning(
                    "%s %s: %d signals stored late (candles %s)",
                    self.exchange,
                    symbol,
                    len(late),
                    _minutes(late),
                )
            decided[symbol] = todo
            self._announce(symbol, todo)
        if not decided:
            return
        for subscriber in self._subscribers:
            try:
                subscriber(decided, now)
            except Exception:  # one subscriber's failure is its own
                log.exception("%s: a subscriber of the signals failed", self.exchange)

    def _unstored(
        self, symbol: str, todo: list[Decision], closed: Sequence[CandleBar], exc: Exception, *, first: bool
    ) -> None:
        """Keep what the store refused for the next pass; said once per failure, with what is kept."""
        self.unstored[symbol] = todo[-MAX_UNSTORED:]
        if len(todo) > MAX_UNSTORED:
            log.error("%s %s: %d older unstored signals dropped", self.exchange, symbol, len(todo) - MAX_UNSTORED)
        if first:
            log.warning(
                "%s %s: signals of %s not stored (%s: %s); kept, and stored and acted on with the next pass",
                self.exchange,
                symbol,
                _minutes(closed),
                type(exc).__name__,
                str(exc)[:200],
            )

    def _announce(self, symbol: str, decisions: Sequence[Decision]) -> None:
        """The BUY and SELL decisions to the symbol's live page (a HOLD is stored, not announced)."""
        data = [signal_data(d) for d in decisions if d.action != "HOLD"]
        if data and self._context is not None:
            self._context.announce(
                market_group(self._context.exchange, symbol), {"type": SIGNALS_EVENT, "data": {"signals": data}}
            )


def _minutes(items: Sequence[CandleBar | Decision]) -> str:
    """The candles' minutes, for a log line: "12:01, 12:02" (the first and last of a long list)."""
    times = sorted({f"{i.open_time:%H:%M}" for i in items})
    return ", ".join(times) if len(times) <= 4 else f"{times[0]}..{times[-1]} ({len(times)} candles)"
