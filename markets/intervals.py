"""Candle intervals and the arithmetic of time ranges over them. Pure: no Django.

Times are UTC-aware datetimes; a range is half-open ``[start, end)``. A candle belongs to a range
when its open time is in it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "1d": timedelta(days=1),
}
BASE_INTERVAL = "1m"  # stored and fetched; higher intervals are aggregated from it
MAX_CANDLES = 5000  # candles one history request may return
MAX_SPAN = timedelta(days=31)  # widest range one history request may cover (44,640 one-minute candles)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def interval_delta(interval: str) -> timedelta:
    """The length of ``interval``; ValueError naming the supported ones otherwise."""
    try:
        return INTERVALS[interval]
    except KeyError:
        raise ValueError(f"unknown interval {interval!r}; use one of {', '.join(INTERVALS)}") from None


def floor(t: datetime, interval: str) -> datetime:
    """The open time of the ``interval`` candle that contains ``t`` (candles are aligned to the epoch)."""
    step = interval_delta(interval)
    return EPOCH + ((t - EPOCH) // step) * step


def ceil(t: datetime, interval: str) -> datetime:
    """The first candle open time at or after ``t``."""
    f = floor(t, interval)
    return f if f == t else f + interval_delta(interval)


def opens(start: datetime, end: datetime, interval: str) -> Iterator[datetime]:
    """Open times of the ``interval`` candles whose open is in ``[start, end)``."""
    step = interval_delta(interval)
    t = ceil(start, interval)
    while t < end:
        yield t
        t += step


def count(start: datetime, end: datetime, interval: str) -> int:
    """How many ``interval`` candles open in ``[start, end)``."""
    first, step = ceil(start, interval), interval_delta(interval)
    return 0 if first >= end else (end - first - timedelta.resolution) // step + 1


def missing_ranges(
    start: datetime, end: datetime, interval: str, present: Iterable[datetime]
) -> list[tuple[datetime, datetime]]:
    """The sub-ranges of ``[start, end)`` whose candles are not in ``present``, merged and in order."""
    have = set(present)
    step = interval_delta(interval)
    out: list[tuple[datetime, datetime]] = []
    for t in opens(start, end, interval):
        if t in have:
            continue
        if out and out[-1][1] == t:
            out[-1] = (out[-1][0], t + step)
        else:
            out.append((t, t + step))
    return out


def pages(start: datetime, end: datetime, interval: str, size: int) -> Iterator[tuple[datetime, datetime]]:
    """``[start, end)`` cut into consecutive ranges of at most ``size`` candles each."""
    width = interval_delta(interval) * size
    t = start
    while t < end:
        yield t, min(t + width, end)
        t += width


def subtract(
    ranges: Iterable[tuple[datetime, datetime]], holes: Iterable[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """``ranges`` with every part covered by ``holes`` removed (both lists of half-open ranges)."""
    out = list(ranges)
    for h0, h1 in holes:
        nxt: list[tuple[datetime, datetime]] = []
        for r0, r1 in out:
            if h1 <= r0 or r1 <= h0:
                nxt.append((r0, r1))
                continue
            if r0 < h0:
                nxt.append((r0, h0))
            if h1 < r1:
                nxt.append((h1, r1))
        out = nxt
    return out
