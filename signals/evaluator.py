"""One strategy run over one (exchange, symbol, interval): indicators, rules and the cooldown's memory.
Pure: no Django, no I/O — the live stream, a restarted stream and the backtest all drive this same class.

- live: ``warm(stored history)``, then ``feed(bar)`` on every candle close; a backfill that rewrites or fills
  an earlier candle is fed the same way and gets the decisions of that candle and of every later one again
  (store them idempotently, one per strategy and candle);
- restart: a new evaluator, warmed from stored history (at least ``window - 1`` candles, see
  :mod:`signals.indicators`) and given the signals emitted so far (``signals=``: only the last
  ``cooldown + 1`` candles' worth matter), decides the next candles exactly as the old one would have;
- backtest: ``warm`` with the history before the start and the candles to replay, then ``decide_from(start)``.

The cooldown before a candle is derived from the signals emitted before it (the last BUY and the last
SELL), so a recomputation from an earlier candle forgets the signals at and after it and decides them again.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from datetime import datetime

from markets.exchanges.base import CandleBar

from .indicators import DEFAULT_KEEP, DEFAULT_WINDOW, IndicatorWindow, Reading
from .rules import Action, CooldownState, Decision, VoteParams, decide

MAX_SIGNALS = 1000  # emitted signals remembered (the cooldown needs only the last one per direction)


class Evaluator:
    """The strategy's decisions on the closed candles of one (exchange, symbol, interval)."""

    def __init__(
        self,
        exchange: str,
        symbol: str,
        interval: str,
        *,
        params: VoteParams | None = None,
        window: int = DEFAULT_WINDOW,
        keep: int = DEFAULT_KEEP,
        signals: Iterable[tuple[datetime, Action]] = (),
    ) -> None:
        self.params = params or VoteParams()
        self.indicators = IndicatorWindow(exchange, symbol, interval, window=window, keep=keep)
        self._signals: list[tuple[datetime, Action]] = sorted(
            (t, Action(a)) for t, a in signals if Action(a) is not Action.HOLD
        )

    @property
    def signals(self) -> list[tuple[datetime, Action]]:
        """The BUY/SELL signals emitted (restored and new), oldest first."""
        return list(self._signals)

    def warm(self, bars: Iterable[CandleBar]) -> None:
        """Load stored candles without deciding them."""
        self.indicators.warm(bars)

    def feed(self, bar: CandleBar) -> list[Decision]:
        """Take one closed candle; the decisions for it and every later candle held, oldest first."""
        return self._decide(self.indicators.feed(bar))

    def decide_from(self, start: datetime) -> list[Decision]:
        """The decisions for every held candle from ``start`` on (a backtest's replay), oldest first."""
        return self._decide(self.indicators.readings_from(start))

    def state_before(self, t: datetime) -> CooldownState:
        """The cooldown state for deciding candle ``t``: the last BUY and SELL emitted before it."""
        last: dict[Action, datetime] = {}
        for i in range(bisect_left(self._signals, (t,)) - 1, -1, -1):
            when, action = self._signals[i]
            last.setdefault(action, when)
            if len(last) == 2:
                break
        return CooldownState(last.get(Action.BUY), last.get(Action.SELL))

    def _decide(self, readings: list[Reading]) -> list[Decision]:
        if not readings:
            return []
        start = readings[0].open_time
        del self._signals[bisect_left(self._signals, (start,)) :]
        state = self.state_before(start)
        out = []
        for reading in readings:
            decision, state = decide(reading, state, self.params)
            if decision.action is not Action.HOLD:
                self._signals.append((decision.open_time, decision.action))
            out.append(decision)
        del self._signals[:-MAX_SIGNALS]
        return out
