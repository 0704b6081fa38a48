"""The arithmetic of the periodic gap scan (``markets.services.gaps_scan``, run by ``markets.tasks.scan_gaps``).
Pure: no Django; the reads it works on are ``markets.selectors``'.

Stored trade ids of one (exchange, symbol) are checked by counting, not by reading them: a range whose
count equals its width has no hole, so only ranges with a hole are halved until they are small enough to
read. Over a day of a busy symbol (millions of ids) a scan with no hole costs one indexed count.

Ranges of ids are inclusive ``(first, last)`` pairs (as in :mod:`markets.gaps`); times are UTC-aware.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .gaps import hole_size, id_holes
from .intervals import floor

IdRange = tuple[int, int]
ONE_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class ScanConfig:
    """How far back a scan looks, and what it leaves to the live stream.

    ``settle``: ticks newer than this are not scanned yet (a live stream records a hole it has just seen
    within milliseconds; the next scan looks again). ``busy``: a hole overlapping a Gap in state
    ``filling`` updated within this long is being filled by someone else. ``grace``: a minute's candle is
    closed this long after the minute ends (``services.CANDLE_GRACE``).
    """

    lookback: timedelta = timedelta(hours=24)
    settle: timedelta = timedelta(seconds=30)
    busy: timedelta = timedelta(seconds=30)
    grace: timedelta = timedelta(seconds=2)
    leaf: int = 4096  # a range this small is read rather than halved again


@dataclass(frozen=True, slots=True)
class HolePlan:
    """The holes of one symbol sorted by what to do with them."""

    fill: list[IdRange] = field(default_factory=list)  # queue a backfill
    busy: list[IdRange] = field(default_factory=list)  # a live stream (or a running task) is on it
    unrecoverable: list[IdRange] = field(default_factory=list)  # the exchange already said it lacks them
    held: list[tuple[int, int, str]] = field(default_factory=list)  # a running backfill holds them: (first, last, who)


@dataclass(frozen=True, slots=True)
class SymbolScan:
    """What one scan found for one (exchange, symbol): its holes sorted by plan, the closed minutes whose 1m
    candle is to be rebuilt from stored ticks, and how many quiet minutes got a synthetic candle."""

    exchange: str
    symbol: str
    holes: HolePlan
    minutes: list[datetime]
    quiet: int = 0


def summarize(scans: Iterable[SymbolScan]) -> dict[str, int]:
    """Counts over a scan, for its log line and its task result."""
    scans = list(scans)
    found = [h for s in scans for h in (*s.holes.fill, *s.holes.busy, *s.holes.unrecoverable)]
    found += [(a, b) for s in scans for a, b, _ in s.holes.held]
    return {
        "symbols": len(scans),
        "holes": len(found),
        "missing_ids": hole_size(found),
        "queued": sum(len(s.holes.fill) for s in scans),
        "busy": sum(len(s.holes.busy) for s in scans),
        "unrecoverable": sum(len(s.holes.unrecoverable) for s in scans),
        "held": sum(len(s.holes.held) for s in scans),
        "minutes": sum(len(s.minutes) for s in scans),
        "quiet": sum(s.quiet for s in scans),
    }


def holes_by_count(
    count: Callable[[int, int], int],
    ids: Callable[[int, int], Iterable[int]],
    first: int,
    last: int,
    *,
    leaf: int = 4096,
) -> list[IdRange]:
    """The holes of ``[first, last]``: ``count(a, b)`` says how many distinct ids of ``[a, b]`` are stored,
    ``ids(a, b)`` lists them ascending. Complete ranges are skipped, empty ones are one hole, others are
    halved until at most ``leaf`` wide and then read. Holes are merged across halves, in order."""
    if leaf < 1:
        raise ValueError(f"leaf must be at least 1, got {leaf}")
    found: list[IdRange] = []

    def walk(a: int, b: int) -> None:
        width = b - a + 1
        n = count(a, b)
        if n >= width:
            return
        if n == 0:
            found.append((a, b))
        elif width <= leaf:
            found.extend(id_holes(ids(a, b), a, b))
        else:
            mid = (a + b) // 2
            walk(a, mid)
            walk(mid + 1, b)

    if first <= last:
        walk(first, last)
    merged: list[IdRange] = []
    for a, b in found:
        if merged and merged[-1][1] + 1 == a:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def overlaps(r: IdRange, others: Iterable[IdRange]) -> bool:
    """Whether ``r`` shares an id with any of ``others``."""
    return any(a <= r[1] and r[0] <= b for a, b in others)


def within(r: IdRange, others: Iterable[IdRange]) -> bool:
    """Whether ``r`` lies wholly inside one of ``others``."""
    return any(a <= r[0] and r[1] <= b for a, b in others)


def plan_holes(
    holes: Iterable[IdRange],
    *,
    busy: Iterable[IdRange] = (),
    unrecoverable: Iterable[IdRange] = (),
    held: Callable[[int, int], str | None] | None = None,
) -> HolePlan:
    """Holes inside a range the exchange could not return are left (asking again every minute would
    only spend request weight); holes overlapping a range being filled are left to that filler, and so are
    those a running backfill holds (``held(first, last)`` names its holder, None when none holds them); the
    rest are to be filled."""
    busy, unrecoverable = list(busy), list(unrecoverable)
    plan = HolePlan()
    for h in holes:
        if within(h, unrecoverable):
            plan.unrecoverable.append(h)
        elif overlaps(h, busy):
            plan.busy.append(h)
        elif held is not None and (holder := held(*h)) is not None:
            plan.held.append((h[0], h[1], holder))
        else:
            plan.fill.append(h)
    return plan


def minute_span(first: datetime, last: datetime) -> list[datetime]:
    """Open times of the 1m candles from the one holding ``first`` to the one holding ``last``."""
    out, t, end = [], floor(first, "1m"), floor(last, "1m")
    while t <= end:
        out.append(t)
        t += ONE_MINUTE
    return out


def closed_until(now: datetime, grace: timedelta) -> datetime:
    """The open time of the first minute that is not closed at ``now``: a minute ``m`` is closed once
    ``m + 1 min + grace <= now``."""
    return floor(now - ONE_MINUTE - grace, "1m") + ONE_MINUTE


def minutes_to_rebuild(
    tick_minutes: Iterable[datetime],
    candle_minutes: Iterable[datetime],
    *,
    now: datetime,
    grace: timedelta,
    exclude: Iterable[datetime] = (),
) -> list[datetime]:
    """Closed minutes that have stored ticks but no closed 1m candle, ascending, without ``exclude`` (the
    minutes a queued backfill rebuilds itself once its trades are in: rebuilt earlier from a partial
    minute, a candle could land after the complete one)."""
    cut = closed_until(now, grace)
    have, skip = set(candle_minutes), set(exclude)
    return sorted({m for m in tick_minutes if m < cut and m not in have and m not in skip})


def rebuild_until(
    *, now: datetime, grace: timedelta, last: tuple[int, datetime], after: tuple[int, datetime] | None
) -> datetime:
    """The end (exclusive) of the minutes a scan may rebuild candles for: closed minutes whose trades are
    all in the id range it checked, which ends at ``last`` (id, time). ``after`` is the next stored tick
    beyond it, if any. When that is the very next id, the minute holding ``last`` is complete once the next
    tick is in a later minute; when ids are missing in between (a hole the live stream owns), the minute
    holding ``last`` may lack trades and waits for a later scan."""
    cut = closed_until(now, grace)
    if after is None:
        return cut  # nothing stored beyond: what is stored is the whole story so far
    if after[0] == last[0] + 1:
        return min(cut, floor(after[1], "1m"))
    return min(cut, floor(last[1], "1m"))


def hole_minutes(spans: Iterable[tuple[datetime, datetime]]) -> set[datetime]:
    """Every minute touched by the time spans (from the tick before a hole to the tick after it)."""
    return {m for a, b in spans for m in minute_span(a, b)}
