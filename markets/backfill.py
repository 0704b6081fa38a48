"""Backfill: fetch from the exchange what MongoDB lacks for a time range, and nothing else.

Resumable and idempotent by construction: what is missing is worked out from what is stored, each
page is stored as it arrives, and storage ignores duplicates; an interrupted run loses at most the
page in flight and a rerun starts where the data stops. The live stream's gap recovery and the
Celery safety net fill trade-id holes through :func:`trade_ids_fill`; :func:`gap_backfill` is the safety net's
whole fill of one hole (its Gap, its candles, and candles from another venue for what the exchange lacks).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bson import Int64

from . import bulk, metrics
from . import intervals as iv
from .exchanges.base import RestAdapter
from .exchanges.binance_vision_download import OnBytes
from .gaps import hole_size, id_holes
from .history import get_price_history
from .id_pages import ids_fill_pipelined, pipelined
from .models import Candle, Gap, Tick
from .rebuild import candles_from_ticks, candles_of_stored
from .reconcile import candles_from_other_venues
from .selectors import hole_span, stored_id_holes
from .services import gap_close, gap_record, gap_touch, ticks_ingest
from .store import collection
from .types import TradeTick

Progress = Callable[[int], None]
ONE_MS = timedelta(milliseconds=1)
TOUCH_SECONDS = 10.0  # a running fill refreshes its Gap this often, so that scans see it as busy


@dataclass(frozen=True, slots=True)
class BackfillSummary:
    """What a backfill found and did. ``expected`` counts trade ids (or one-minute candles) in the range;
    ``candles`` the 1m candles a trades backfill built from the stored ticks (``quiet`` of them flat)."""

    what: str
    exchange: str
    symbol: str
    start: datetime
    end: datetime
    expected: int
    already_present: int
    fetched: int
    written: int
    still_missing: int
    requests: int
    seconds: float
    candles: int = 0
    quiet: int = 0
    from_files: int = 0  # trades read from bulk files (``fetched`` counts those from REST)
    files: int = 0
    file_bytes: int = 0
    unpublished: int = 0  # whole days wanted from files but not published: taken from REST
    candle_seconds: float = 0.0  # of ``seconds``, building the 1m candles


@dataclass(frozen=True, slots=True)
class FillResult:
    """Trades fetched for an id range, how many were new, and the ids the exchange did not return."""

    fetched: int
    written: int
    unreturned: list[tuple[int, int]]


def trade_ids_fill(
    *,
    adapter: RestAdapter,
    exchange: str,
    symbol: str,
    first_id: int,
    last_id: int,
    progress: Progress | None = None,
    since: datetime | None = None,
) -> FillResult:
    """Fetch trades ``first_id..last_id`` by id pages and store them; ids the exchange skips are reported.
    ``since`` is the exchange time of the trade before ``first_id`` (read from storage when not given): what an
    exchange that pages only by time (Kraken) starts from."""
    if pipelined(adapter):  # a few pages at once (markets/id_pages.py)
        return FillResult(
            *ids_fill_pipelined(
                adapter=adapter,
                symbol=symbol,
                first_id=first_id,
                last_id=last_id,
                store=lambda page: ticks_ingest(ticks=page).written,
                progress=progress,
            )
        )
    fetched = written = 0
    unreturned: list[tuple[int, int]] = []
    next_id = first_id
    if since is None:
        since = _time_before(exchange, symbol, first_id)
    while next_id <= last_id:
        page = [
            t
            for t in adapter.trades_from_id(symbol, next_id, limit=adapter.capabilities.max_trades, since=since)
            if t.trade_id <= last_id
        ]
        if not page:
            break
        result = ticks_ingest(ticks=page)
        fetched += len(page)
        written += result.written
        unreturned += id_holes((t.trade_id for t in page), next_id, page[-1].trade_id)
        next_id, since = page[-1].trade_id + 1, page[-1].ts
        if progress:
            progress(len(page))
    if next_id <= last_id:
        unreturned.append((next_id, last_id))
    return FillResult(fetched, written, unreturned)


def gap_backfill(*, adapter: RestAdapter, exchange: str, symbol: str, first_id: int, last_id: int) -> Gap:
    """Fill what is still missing of ids ``first_id..last_id``, rebuild the candles of the minutes they
    span (from the stored tick before them to the one after: the minutes a scan leaves to this fill), and
    record the outcome on the range's Gap (``markets.tasks.backfill_range``)."""
    began = time.monotonic()
    gap = gap_record(exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)
    touch = _toucher(gap)
    for a, b in stored_id_holes(exchange, symbol, first_id, last_id):
        trade_ids_fill(adapter=adapter, exchange=exchange, symbol=symbol, first_id=a, last_id=b, progress=touch)
    still = hole_size(stored_id_holes(exchange, symbol, first_id, last_id))
    span = hole_span(exchange, symbol, first_id, last_id)
    if span:  # the minutes from the stored tick before the hole to the one after, both included
        quiet = adapter.capabilities.ids_contiguous
        candles_from_ticks(exchange=exchange, symbol=symbol, start=span[0], end=span[1] + ONE_MS, quiet=quiet)
    gap = gap_close(gap=gap, recovered=gap.missing - still, unreturned=still)
    metrics.gap_fill_seconds.labels(exchange).observe(time.monotonic() - began)
    if still and span:  # what the exchange no longer has: the minutes inside come from another venue, so marked
        candles_from_other_venues(exchange=exchange, symbol=symbol, start=span[0], end=span[1])
    return gap


def _toucher(gap: Gap) -> Progress:
    """A progress callback that refreshes the Gap every TOUCH_SECONDS while pages arrive."""
    last = time.monotonic()

    def touch(_: int) -> None:
        nonlocal last
        if time.monotonic() - last >= TOUCH_SECONDS:
            gap_touch(gap=gap)
            last = time.monotonic()

    return touch


def trades_backfill(
    *,
    adapter: RestAdapter,
    exchange: str,
    symbol: str,
    start: datetime,
    end: datetime,
    progress: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
    candles: bool = True,
    source: str = "rest",
    on_bytes: OnBytes | None = None,
) -> BackfillSummary:
    """Every trade of ``[start, end)`` stored once: the id range is found from the exchange, the ids
    already stored are skipped, and each hole is fetched by id pages. ``on_plan(n)`` is told how many
    trades will be fetched before the first page. Then the 1m candles of the whole minutes of the range are
    built from the stored ticks, with the quiet minutes around them (:func:`markets.rebuild.candles_of_stored`;
    a minute that ``start`` or ``end`` cuts is left out: its trades outside the range may not be stored); not with
    ``candles`` False (a caller that builds them itself). ``source`` (:data:`markets.bulk.SOURCES`): ``auto`` and
    ``files`` take the whole days holding holes from the venue's bulk files first (:func:`markets.bulk.files_step`;
    ``on_bytes`` hears the downloads; REST then fetches what they did not hold); ``rest``, the default, pages REST
    only."""
    bulk.uses_files(exchange, source)  # a bad source refused before any request
    began, requests_before = time.monotonic(), adapter.requests
    bounds = _id_bounds(adapter, symbol, start, end)
    if bounds is None:
        return BackfillSummary(
            "trades",
            exchange,
            symbol,
            start,
            end,
            0,
            0,
            0,
            0,
            0,
            adapter.requests - requests_before,
            time.monotonic() - began,
        )
    first, last = bounds
    holes = id_holes(_stored_ids(exchange, symbol, first, last), first, last)
    expected, missing = last - first + 1, hole_size(holes)
    if on_plan:
        on_plan(missing)
    files = bulk.files_step(
        exchange=exchange,
        symbol=symbol,
        holes=holes,
        first=first,
        last=last,
        start=start,
        end=end,
        source=source,
        progress=progress,
        on_bytes=on_bytes,
    )
    fetched, written, still = 0, files.written, 0
    for a, b in holes if not files.rows else id_holes(_stored_ids(exchange, symbol, first, last), first, last):
        fill = trade_ids_fill(
            adapter=adapter, exchange=exchange, symbol=symbol, first_id=a, last_id=b, progress=progress
        )
        fetched += fill.fetched
        written += fill.written
        still += hole_size(fill.unreturned)
    whole, candles_began = (iv.ceil(start, "1m"), iv.floor(end, "1m")), time.monotonic()
    built = (
        candles_of_stored(
            exchange=exchange,
            symbol=symbol,
            first=whole[0],
            last=whole[1] - ONE_MS,
            quiet=adapter.capabilities.ids_contiguous,
        )
        if candles and whole[0] < whole[1]
        else None
    )
    ended = time.monotonic()
    return BackfillSummary(
        "trades",
        exchange,
        symbol,
        start,
        end,
        expected,
        expected - missing,
        fetched,
        written,
        still,
        adapter.requests - requests_before,
        ended - began,
        built.candles if built else 0,
        built.quiet if built else 0,
        files.rows,
        files.files,
        files.bytes,
        len(files.unpublished),
        ended - candles_began,
    )


def candles_backfill(
    *,
    adapter: RestAdapter,
    exchange: str,
    symbol: str,
    start: datetime,
    end: datetime,
    progress: Progress | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> BackfillSummary:
    """Every one-minute candle of ``[start, end)`` stored, through :func:`get_price_history` in chunks."""
    began, requests_before = time.monotonic(), adapter.requests
    lo = iv.ceil(start, iv.BASE_INTERVAL)
    hi = min(iv.ceil(end, iv.BASE_INTERVAL), iv.floor(datetime.now(UTC), iv.BASE_INTERVAL))
    present = _stored_candles(exchange, symbol, lo, hi) if lo < hi else 0
    expected = iv.count(lo, hi, iv.BASE_INTERVAL) if lo < hi else 0
    if on_plan:
        on_plan(expected - present)
    fetched = 0

    def counted(n: int) -> None:
        nonlocal fetched
        fetched += n
        if progress:
            progress(n)

    still = 0
    for c0, c1 in iv.pages(lo, hi, iv.BASE_INTERVAL, iv.MAX_CANDLES):
        got = get_price_history(symbol, c0, c1, iv.BASE_INTERVAL, exchange, adapter=adapter, progress=counted)
        still += iv.count(c0, c1, iv.BASE_INTERVAL) - sum(1 for c in got.candles if c.closed)
    written = (_stored_candles(exchange, symbol, lo, hi) if lo < hi else 0) - present
    return BackfillSummary(
        "candles",
        exchange,
        symbol,
        start,
        end,
        expected,
        present,
        fetched,
        written,
        still,
        adapter.requests - requests_before,
        time.monotonic() - began,
    )


def _id_bounds(adapter: RestAdapter, symbol: str, start: datetime, end: datetime) -> tuple[int, int] | None:
    """The first and last trade id with exchange time in ``[start, end)``, or None when there is none."""
    first = _first_at_or_after(adapter, symbol, start, end)
    if first is None:
        return None
    after = _first_at_or_after(adapter, symbol, end, datetime.now(UTC) + timedelta(minutes=1))
    if after is not None:
        last = after.trade_id - 1
    else:  # nothing after `end` yet: the last trade before it is among the latest ones
        before_end = [
            t.trade_id for t in adapter.latest_trades(symbol, limit=adapter.capabilities.max_trades) if t.ts < end
        ]
        last = max(before_end, default=first.trade_id)
    return (first.trade_id, last) if last >= first.trade_id else None


def _first_at_or_after(adapter: RestAdapter, symbol: str, start: datetime, end: datetime) -> TradeTick | None:
    """The first trade in ``[start, end)``, searched one allowed window at a time."""
    window = adapter.capabilities.trades_time_window or (end - start)
    for w0, w1 in _windows(start, end, window):
        page = adapter.trades_by_time(symbol, w0, w1, limit=1)
        if page:
            return page[0]
    return None


def _windows(start: datetime, end: datetime, width: timedelta) -> Iterator[tuple[datetime, datetime]]:
    t = start
    while t < end:
        yield t, min(t + width, end)
        t += width


def _stored_ids(exchange: str, symbol: str, first: int, last: int) -> Iterator[int]:
    """Stored trade ids in ``[first, last]``, ascending, read in batches from the unique index."""
    cursor = (
        collection(Tick)
        .find(
            {"exchange": exchange, "symbol": symbol, "trade_id": {"$gte": Int64(first), "$lte": Int64(last)}},
            {"trade_id": 1, "_id": 0},
        )
        .sort("trade_id", 1)
        .batch_size(50_000)
    )
    return (int(d["trade_id"]) for d in cursor)


def _stored_candles(exchange: str, symbol: str, lo: datetime, hi: datetime) -> int:
    return collection(Candle).count_documents(
        {
            "exchange": exchange,
            "symbol": symbol,
            "interval": iv.BASE_INTERVAL,
            "open_time": {"$gte": lo, "$lt": hi},
            "closed": True,
        }
    )


def _time_before(exchange: str, symbol: str, trade_id: int) -> datetime | None:
    """The exchange time of the stored trade with the highest id below ``trade_id``, if any."""
    doc = collection(Tick).find_one(
        {"exchange": exchange, "symbol": symbol, "trade_id": {"$lt": Int64(trade_id)}},
        {"_id": 0, "ts": 1},
        sort=[("trade_id", -1)],
    )
    return doc["ts"].replace(tzinfo=UTC) if doc else None
