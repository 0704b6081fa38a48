"""1m candles from the stored ticks of any range of minutes, however old: the one path every writer of ticks ends
with (the import of aggTrades files, ``manage.py backfill --what trades``, ``backfill_history``, the safety net's
``backfill_range``) and what ``manage.py rebuild_candles`` runs for operators.

For ``[start, end)`` widened to whole minutes:

- every minute holding stored ticks gets the candle built from all of them (:class:`markets.candles.
  CandleAccumulator`: open and close by trade id, exact sums), closed once the minute is over plus the grace;
- on a venue whose trade ids have no holes, the minutes between two traded minutes whose trades have consecutive ids
  (the highest id of the earlier one, the lowest of the later one; the stored ticks just outside the range count
  too) get the flat zero-volume ``synthetic`` candle of :func:`markets.candles.quiet_candles` at the earlier one's
  close. Minutes in an id hole (missing data) and minutes after the last stored tick get nothing.

Ticks are read a window of minutes at a time on the time index (any order within it: a window's minutes are whole
when it ends), stretches without ticks are skipped with one indexed look-up, and candles are written in bulk
upserts of ``WRITE``: memory stays constant over a range of years. Idempotent: a second run writes the same
documents; a stored candle that disagrees with the ticks is replaced. Candles of other minutes are left alone.
Higher intervals are aggregated from the 1m candles when read, so they follow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .candles import CandleAccumulator, quiet_candles
from .documents import as_decimal, as_utc, tick_of
from .intervals import ceil, floor
from .models import Tick
from .services import CANDLE_GRACE, candles_upsert
from .store import collection
from .types import CandleBar
from .venues import rest_adapter

Progress = Callable[[int], None]  # told of every n minutes of the range done

ONE_MINUTE = timedelta(minutes=1)
WINDOW = 60  # minutes of ticks read per query
CHUNK = 5000  # ticks per round trip; minutes per piece of a long quiet stretch
WRITE = 1000  # candles per bulk write

Before = tuple[int, datetime, Decimal]  # the last trade before a stretch: id, time, price
After = tuple[int, datetime]  # the first trade after it: id, time


@dataclass(frozen=True, slots=True)
class RebuildSummary:
    """What one rebuild did over ``[start, end)`` (whole minutes): ``ticks`` read, candles built from them
    (``traded``) and flat ones (``quiet``); of those written, how many were ``new`` (the rest replaced a stored
    candle of the same minute, most often with the same values)."""

    exchange: str
    symbol: str
    start: datetime
    end: datetime
    minutes: int
    ticks: int
    traded: int
    quiet: int
    new: int

    @property
    def candles(self) -> int:
        return self.traded + self.quiet


def ids_contiguous(exchange: str) -> bool:
    """Whether ``exchange``'s trade ids have no holes (its adapter's declared capability; nothing is sent)."""
    adapter = rest_adapter(exchange)
    try:
        return adapter.capabilities.ids_contiguous
    finally:
        adapter.close()


def candles_from_ticks(
    *,
    exchange: str,
    symbol: str,
    start: datetime,
    end: datetime,
    now: datetime | None = None,
    quiet: bool | None = None,
    progress: Progress | None = None,
) -> RebuildSummary:
    """Build and store the 1m candles of the minutes ``[floor(start), ceil(end))`` from the stored ticks (see the
    module docstring). ``quiet`` None asks the exchange's capability whether flat candles may be made; ``now``
    (default: the clock) decides which minutes are closed. ValueError names a bad range."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError(f"start and end must be UTC-aware (got {start.isoformat()} and {end.isoformat()})")
    lo, hi = floor(start, "1m"), ceil(end, "1m")
    if hi <= lo:
        raise ValueError(f"start {start.isoformat()} must be before end {end.isoformat()}")
    now = now or datetime.now(UTC)
    flat = ids_contiguous(exchange) if quiet is None else quiet
    key = {"exchange": exchange, "symbol": symbol}
    out = _Writer()
    ticks = traded = 0
    prev: Before | None = _before(key, lo) if flat else None
    t = lo
    while t < hi:
        w_end = min(t + WINDOW * ONE_MINUTE, hi)
        minutes: dict[datetime, CandleAccumulator] = {}
        for tick in _ticks(key, t, w_end):
            ticks += 1
            acc = minutes.get(m := floor(tick.ts, "1m"))
            if acc is None:
                minutes[m] = CandleAccumulator.start(tick)
            else:
                acc.add(tick)
        for m in sorted(minutes):
            acc = minutes[m]
            if prev is not None:
                out.add_all(_quiet(exchange, symbol, prev, (acc.open_id, m), lo, hi, now))
            out.add(acc.bar(source="trades", closed=m + ONE_MINUTE + CANDLE_GRACE <= now))
            traded += 1
            prev = (acc.close_id, m, acc.close) if flat else None
        # No tick in this window: jump to the minute of the next one (the stretch between is one look-up).
        nxt = w_end if minutes else min(hi, _next_minute(key, w_end, hi))
        if progress:
            progress(int((nxt - t) / ONE_MINUTE))
        t = nxt
    if prev is not None and (after := _after(key, hi)) is not None:
        out.add_all(_quiet(exchange, symbol, prev, after, lo, hi, now))
    out.flush()
    minutes_total = int((hi - lo) / ONE_MINUTE)
    return RebuildSummary(exchange, symbol, lo, hi, minutes_total, ticks, traded, out.quiet, out.new)


def candles_of_minutes(*, exchange: str, symbol: str, minutes: Iterable[datetime]) -> int:
    """The candles of the given minutes (open times) rebuilt from their stored ticks, each run of consecutive
    minutes in one pass (what the gap scan queues for minutes with ticks but no closed candle; it makes the
    quiet ones itself). Returns how many candles were built from ticks."""
    runs: list[list[datetime]] = []
    for m in sorted({floor(m, "1m") for m in minutes}):
        if runs and m - runs[-1][1] == ONE_MINUTE:
            runs[-1][1] = m
        else:
            runs.append([m, m])
    return sum(
        candles_from_ticks(exchange=exchange, symbol=symbol, start=a, end=b + ONE_MINUTE, quiet=False).traded
        for a, b in runs
    )


def candles_of_stored(
    *,
    exchange: str,
    symbol: str,
    first: datetime,
    last: datetime,
    now: datetime | None = None,
    quiet: bool | None = None,
) -> RebuildSummary:
    """What a writer of ticks calls once they are stored: the candles of the minutes from ``first`` to ``last``
    (the times of its first and last tick; their minutes must hold every trade, as a bulk file's or a fill by
    whole minutes do), widened over the quiet stretches either side that the stored ticks vouch for (the
    minutes between the last trade stored before and the first one written, when their ids are consecutive).
    ``quiet`` as for :func:`candles_from_ticks`."""
    lo, hi = floor(first, "1m"), floor(last, "1m") + ONE_MINUTE
    flat = ids_contiguous(exchange) if quiet is None else quiet
    if flat:
        key = {"exchange": exchange, "symbol": symbol}
        before, opening = _before(key, lo), _edge(key, {"$gte": lo}, 1)
        if before and opening and int(opening["trade_id"]) == before[0] + 1:
            lo = min(lo, floor(before[1], "1m") + ONE_MINUTE)
        after, closing = _after(key, hi), _edge(key, {"$lt": hi}, -1)
        if after and closing and int(closing["trade_id"]) == after[0] - 1:
            hi = max(hi, floor(after[1], "1m"))
    return candles_from_ticks(exchange=exchange, symbol=symbol, start=lo, end=hi, now=now, quiet=flat)


class _Writer:
    """Candles upserted ``WRITE`` at a time, counted."""

    def __init__(self) -> None:
        self.batch: list[CandleBar] = []
        self.new = self.quiet = 0

    def add(self, bar: CandleBar) -> None:
        self.batch.append(bar)
        self.quiet += bar.synthetic
        if len(self.batch) >= WRITE:
            self.flush()

    def add_all(self, bars: Iterator[CandleBar]) -> None:
        for bar in bars:
            self.add(bar)

    def flush(self) -> None:
        if self.batch:
            self.new += candles_upsert(candles=self.batch).written
            self.batch = []


def _quiet(
    exchange: str, symbol: str, before: Before, after: After, lo: datetime, hi: datetime, now: datetime
) -> Iterator[CandleBar]:
    """The flat candles between ``before`` and ``after`` that fall in ``[lo, hi)``, made ``CHUNK`` minutes at a
    time (a quiet stretch of months is not held at once). Nothing when their ids are not consecutive."""
    first_id, first_ts, price = before
    next_id, next_ts = after
    if next_id != first_id + 1:
        return
    a = max(floor(first_ts, "1m") + ONE_MINUTE, lo)  # first quiet minute in range
    b = min(floor(next_ts, "1m"), hi)  # end of the quiet stretch in range
    while a < b:
        piece_end = min(a + CHUNK * ONE_MINUTE, b)
        yield from quiet_candles(
            exchange, symbol, (first_id, a - ONE_MINUTE, price), (next_id, piece_end), now=now, grace=CANDLE_GRACE
        )
        a = piece_end


def _ticks(key: dict[str, str], start: datetime, end: datetime) -> Iterator[Any]:
    """The stored ticks of ``[start, end)``, in no particular order, streamed ``CHUNK`` at a time."""
    cursor = collection(Tick).find({**key, "ts": {"$gte": start, "$lt": end}}, {"_id": 0}).batch_size(CHUNK)
    return (tick_of(d) for d in cursor)


def _next_minute(key: dict[str, str], start: datetime, end: datetime) -> datetime:
    """The minute of the first stored tick in ``[start, end)``, or ``end`` when there is none."""
    doc = collection(Tick).find_one({**key, "ts": {"$gte": start, "$lt": end}}, {"ts": 1}, sort=[("ts", 1)])
    return floor(as_utc(doc["ts"]), "1m") if doc else end


def _before(key: dict[str, str], lo: datetime) -> Before | None:
    """The last stored trade before ``lo`` (latest time, then highest id): where a quiet stretch at the start of
    the range begins."""
    doc = _edge(key, {"$lt": lo}, -1)
    return (int(doc["trade_id"]), as_utc(doc["ts"]), as_decimal(doc["price"])) if doc else None


def _after(key: dict[str, str], hi: datetime) -> After | None:
    """The first stored trade at or after ``hi`` (earliest time, then lowest id)."""
    doc = _edge(key, {"$gte": hi}, 1)
    return (int(doc["trade_id"]), as_utc(doc["ts"])) if doc else None


def _edge(key: dict[str, str], ts: dict[str, datetime], direction: int) -> dict[str, Any] | None:
    ticks = collection(Tick)
    edge = ticks.find_one({**key, "ts": ts}, {"ts": 1}, sort=[("ts", direction)])
    if edge is None:
        return None
    fields = {"trade_id": 1, "ts": 1, "price": 1}
    doc: dict[str, Any] | None = ticks.find_one({**key, "ts": edge["ts"]}, fields, sort=[("trade_id", direction)])
    return doc
