"""Deciding a range of stored candles: the one code path of ``evaluate_stored`` and ``manage.py backtest``
(:mod:`orders.backtest_run`). Pure: no Django, no I/O.

**Warm-up.** The candles of a range are decided as a live stream would decide them: each value is computed
over the ``window`` candles ending at its candle (:mod:`signals.indicators`), so a replay holds the candles of
the ``window - 1`` intervals before ``start`` (:func:`warmup_start`) besides those of the range. With the same
stored candles, a replay, a live stream warmed from storage and a restarted one give identical decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from markets.exchanges.base import CandleBar
from markets.intervals import ceil, interval_delta

from .evaluator import Evaluator
from .indicators import DEFAULT_WINDOW
from .rules import Action, Decision, VoteParams


def warmup_start(start: datetime, interval: str, window: int = DEFAULT_WINDOW) -> datetime:
    """The open time of the first candle a replay from ``start`` needs: ``window - 1`` intervals before it."""
    return ceil(start, interval) - (window - 1) * interval_delta(interval)


def replay(
    bars: Sequence[CandleBar],
    *,
    start: datetime,
    params: VoteParams | None = None,
    window: int = DEFAULT_WINDOW,
    signals: Iterable[tuple[datetime, Action]] = (),
) -> list[Decision]:
    """The decisions for the closed candles of ``bars`` that open at ``start`` or later, oldest first.

    ``bars`` holds the range and its warm-up (any order; candles still open are left out: only closed candles
    are decided). ``signals`` are the BUY/SELL signals emitted before ``start`` (their cooldown carries on);
    a backtest gives none and starts with no cooldown.
    """
    closed = [b for b in bars if b.closed]
    if not closed:
        return []
    first = closed[0]
    ev = Evaluator(
        first.exchange, first.symbol, first.interval, params=params, window=window, keep=len(closed), signals=signals
    )
    ev.warm(closed)
    return ev.decide_from(start)
