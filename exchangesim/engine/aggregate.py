"""Kline arithmetic: aggregates of trades, combining them, and Binance's interval calendar."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from .batch import TradeBatch

MINUTE = 60_000
DAY = 86_400_000
# Binance's kline intervals (case-sensitive). "1M" is a calendar month and has no fixed length.
INTERVAL_MS: dict[str, int] = {
    "1s": 1000,
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": 60 * MINUTE,
    "2h": 120 * MINUTE,
    "4h": 240 * MINUTE,
    "6h": 360 * MINUTE,
    "8h": 480 * MINUTE,
    "12h": 720 * MINUTE,
    "1d": DAY,
    "3d": 3 * DAY,
    "1w": 7 * DAY,
    "1M": 0,
}
_MONDAY_OFFSET = 4 * DAY  # 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00 UTC


@dataclass(frozen=True, slots=True)
class Agg:
    """OHLCV of a set of trades. Prices in ticks, volumes in steps, quote volumes in ticks*steps."""

    open: int
    high: int
    low: int
    close: int
    volume: int
    quote: int
    count: int
    taker_buy_volume: int
    taker_buy_quote: int
    first_id: int
    last_id: int


def aggregate(trades: TradeBatch) -> Agg | None:
    """The aggregate of a batch, or None when it is empty. Sums are exact Python ints."""
    n = len(trades)
    if n == 0:
        return None
    notional = trades.prices * trades.qtys  # fits int64: ticks * steps per trade
    buy = ~trades.buyer_maker
    return Agg(
        open=int(trades.prices[0]),
        high=int(trades.prices.max()),
        low=int(trades.prices.min()),
        close=int(trades.prices[-1]),
        volume=int(trades.qtys.sum()),
        quote=int(notional.sum(dtype=np.int64)) if n < 100_000 else sum(int(x) for x in notional),
        count=n,
        taker_buy_volume=int(trades.qtys[buy].sum()),
        taker_buy_quote=int(notional[buy].sum(dtype=np.int64)),
        first_id=int(trades.ids[0]),
        last_id=int(trades.ids[-1]),
    )


def combine(aggs: list[Agg | None]) -> Agg | None:
    """The aggregate of consecutive aggregates (oldest first); None entries are empty stretches."""
    present = [a for a in aggs if a is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]
    return Agg(
        open=present[0].open,
        high=max(a.high for a in present),
        low=min(a.low for a in present),
        close=present[-1].close,
        volume=sum(a.volume for a in present),
        quote=sum(a.quote for a in present),
        count=sum(a.count for a in present),
        taker_buy_volume=sum(a.taker_buy_volume for a in present),
        taker_buy_quote=sum(a.taker_buy_quote for a in present),
        first_id=present[0].first_id,
        last_id=present[-1].last_id,
    )


def interval_floor(t_ms: int, interval: str) -> int:
    """Open time of the ``interval`` kline containing ``t_ms``."""
    if interval == "1M":
        d = datetime.fromtimestamp(t_ms / 1000, tz=UTC)
        return calendar.timegm((d.year, d.month, 1, 0, 0, 0)) * 1000
    step = INTERVAL_MS[interval]
    if interval == "1w":
        return (t_ms - _MONDAY_OFFSET) // step * step + _MONDAY_OFFSET
    return t_ms // step * step


def interval_next(open_ms: int, interval: str) -> int:
    """Open time of the kline after the one opening at ``open_ms``."""
    if interval == "1M":
        d = datetime.fromtimestamp(open_ms / 1000, tz=UTC)
        year, month = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
        return calendar.timegm((year, month, 1, 0, 0, 0)) * 1000
    return open_ms + INTERVAL_MS[interval]


def interval_ceil(t_ms: int, interval: str) -> int:
    """Open time of the first kline opening at or after ``t_ms``."""
    start = interval_floor(t_ms, interval)
    return start if start == t_ms else interval_next(start, interval)
