"""Candles for a replay (``evaluate_stored``, ``orders.backtest_run``): the range and its warm-up, read through
:func:`markets.history.get_price_history` a page at a time (one call may cover at most ``MAX_CANDLES`` candles and
``MAX_SPAN``), MongoDB first and, with ``fetch``, the exchange for what is missing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from markets import intervals as iv
from markets.exchanges.base import CandleBar
from markets.exchanges.retry import RetryPolicy
from markets.history import InvalidRequest, get_price_history

from .indicators import DEFAULT_WINDOW
from .replay import warmup_start


@dataclass(frozen=True, slots=True)
class ReplayCandles:
    """The candles of ``[warm_from, end)`` in open-time order; those before ``start`` are the warm-up."""

    start: datetime
    end: datetime
    warm_from: datetime
    bars: list[CandleBar]
    exchange_requests: int

    @property
    def in_range(self) -> list[CandleBar]:
        """The closed candles of ``[start, end)`` (the ones a replay decides)."""
        return [b for b in self.bars if b.closed and self.start <= b.open_time < self.end]

    @property
    def warm_up(self) -> int:
        """How many closed candles before ``start`` there are to warm up with."""
        return sum(1 for b in self.bars if b.closed and b.open_time < self.start)


def page_bounds(start: datetime, end: datetime, interval: str) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` cut at whole candles of ``interval`` into pieces one history call accepts."""
    width = iv.interval_delta(interval)
    size = min(iv.MAX_CANDLES, iv.MAX_SPAN // width) * width
    lo, hi = iv.floor(start, interval), iv.ceil(end, interval)
    out = []
    while lo < hi:
        out.append((lo, min(lo + size, hi)))
        lo += size
    return out


def replay_candles(
    *,
    exchange: str,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    fetch: bool,
    window: int = DEFAULT_WINDOW,
    policy: RetryPolicy | None = None,
    on_pages: Callable[[int], None] | None = None,
    on_page: Callable[[int], None] | None = None,
) -> ReplayCandles:
    """The candles a replay of ``[start, end)`` needs (see the module docstring).

    Raises :class:`markets.history.InvalidRequest` naming a bad argument and
    :class:`markets.exchanges.errors.ExchangeError` when the exchange fails. ``on_pages(n)`` is told how many
    history calls there will be, ``on_page(k)`` the candles each one returned.
    """
    if interval not in iv.INTERVALS:
        raise InvalidRequest("interval", f"unknown interval {interval!r}; use one of {', '.join(iv.INTERVALS)}")
    if start >= end:  # checked here: the warm-up would make a reversed range look valid to get_price_history
        raise InvalidRequest("start", f"must be before end (start={start.isoformat()}, end={end.isoformat()})")
    warm_from = warmup_start(start, interval, window)
    pages = page_bounds(warm_from, end, interval)
    if on_pages:
        on_pages(len(pages))
    bars: list[CandleBar] = []
    requests = 0
    for lo, hi in pages:
        history = get_price_history(symbol, lo, hi, interval, exchange, fetch=fetch, policy=policy)
        bars += history.candles
        requests += history.exchange_requests
        if on_page:
            on_page(len(history.candles))
    return ReplayCandles(start=start, end=end, warm_from=warm_from, bars=bars, exchange_requests=requests)
