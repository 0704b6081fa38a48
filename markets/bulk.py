"""Trades from a venue's public bulk files: the files step of :func:`markets.backfill.trades_backfill`.

Binance publishes every symbol's aggregate trades as one zip per UTC day and per month (data.binance.vision; the
venue registry's ``bulk_files`` says which venues do and which setting holds the base URL). One download carries a
day's trades, where REST pages them a thousand at a time against the request-weight budget, so a backfill takes:

1. the whole UTC days of its range, before today, that hold missing trades: those a hole in the stored ids
   (:func:`hole_spans`) falls in. A month whose every day is wanted and that has ended is asked for as one monthly
   file first; a period not published (404) is left to REST;
2. each file downloaded to a temporary folder and checked against its CHECKSUM
   (:class:`markets.exchanges.binance_vision_download.VisionDownloader`), read by the bulk-file reader
   (:func:`markets.exchanges.binance_vision.read_agg_trades`) and stored idempotently in batches, then deleted;
3. REST by id for what is still missing (the head and tail of the range, days not published yet): the caller
   works out the holes again from the stored ids, so the ids are contiguous across every file/REST boundary.

The 1m candles of the range are built afterwards by the backfill, from the stored ticks, once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from bson import Int64
from django.conf import settings

from .exchanges.binance_vision import describe, read_agg_trades
from .exchanges.binance_vision_download import OnBytes, VisionDownloader, daily_url, monthly_url
from .exchanges.errors import ExchangeError, ExchangeUnavailable
from .exchanges.registry import venue
from .models import Tick
from .services import ticks_ingest
from .store import collection
from .types import TradeTick

SOURCES = ("auto", "files", "rest")  # auto: files where the venue publishes them, REST for the rest
BATCH = 5000  # ticks per write
ONE_DAY = timedelta(days=1)

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class FilesResult:
    """What the files step did: ``files`` imported, the ``rows`` read from them and how many were ``written`` (new),
    the zip ``bytes`` and HTTP ``requests`` it took, and the wanted days that were ``unpublished`` (left to REST)."""

    files: int = 0
    rows: int = 0
    written: int = 0
    bytes: int = 0
    requests: int = 0
    unpublished: tuple[date, ...] = ()


def uses_files(exchange: str, source: str) -> bool:
    """Whether a backfill from ``source`` (:data:`SOURCES`) of ``exchange`` takes whole days from bulk files.
    ValueError for another source, or ``files`` on a venue that publishes none."""
    if source not in SOURCES:
        raise ValueError(f"source {source!r}: use one of {', '.join(SOURCES)}")
    published = venue(exchange).bulk_files is not None
    if source == "files" and not published:
        raise ValueError(f"{exchange} publishes no bulk files of its trades: use source rest (or auto)")
    return source != "rest" and published


def data_url(exchange: str) -> str:
    """The configured base URL of ``exchange``'s bulk files (its registry default while the setting is absent)."""
    files = venue(exchange).bulk_files
    if files is None:
        raise ValueError(f"{exchange} publishes no bulk files of its trades")
    url: str = getattr(settings, files.url_setting, "") or files.default_url
    return url.rstrip("/")


def files_step(
    *,
    exchange: str,
    symbol: str,
    holes: list[tuple[int, int]],
    first: int,
    last: int,
    start: datetime,
    end: datetime,
    source: str = "auto",
    progress: Progress | None = None,
    on_bytes: OnBytes | None = None,
    now: datetime | None = None,
) -> FilesResult:
    """Store from bulk files the trades of the whole days of ``[start, end)`` (before ``now``'s day) in which the id
    ``holes`` of ``first..last`` lie; nothing when ``source`` says REST or the venue publishes no files."""
    if not holes or not uses_files(exchange, source):
        return FilesResult()
    today = (now or datetime.now(UTC)).date()
    days = wanted_days(hole_spans(exchange, symbol, holes, first, last, start, end), start, end, today)
    if not days:
        return FilesResult()
    return files_fill(
        exchange=exchange,
        symbol=symbol,
        days=days,
        ids=(first, last),
        progress=progress,
        on_bytes=on_bytes,
        today=today,
    )


def hole_spans(
    exchange: str, symbol: str, holes: list[tuple[int, int]], first: int, last: int, start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The exchange times each id hole of ``first..last`` lies within: from the stored trade just before it (or
    ``start`` for a hole at ``first``) to the one just after it (or ``end``). Trade times never decrease with the id,
    so every missing trade is inside its hole's span."""
    key = {"exchange": exchange, "symbol": symbol}
    coll = collection(Tick)

    def time_of(trade_id: int, default: datetime) -> datetime:
        doc = coll.find_one({**key, "trade_id": Int64(trade_id)}, {"_id": 0, "ts": 1})
        return doc["ts"].replace(tzinfo=UTC) if doc else default

    return [(time_of(a - 1, start) if a > first else start, time_of(b + 1, end) if b < last else end) for a, b in holes]


def wanted_days(spans: list[tuple[datetime, datetime]], start: datetime, end: datetime, today: date) -> list[date]:
    """The whole UTC days inside ``[start, end)`` and before ``today`` that meet one of ``spans``, in order."""
    lo = start.astimezone(UTC).date() + (ONE_DAY if _midnight(start) < start else timedelta(0))
    hi = min(end.astimezone(UTC).date(), today)  # the day of `end` is not inside [start, end), nor is today
    days: list[date] = []
    day = lo
    while day < hi:
        d0 = _midnight_of(day)
        if any(a < d0 + ONE_DAY and b >= d0 for a, b in spans):
            days.append(day)
        day += ONE_DAY
    return days


def periods(days: list[date]) -> Iterator[tuple[date, list[date]]]:
    """``days`` grouped by month, in order: (the month's first day, its wanted days)."""
    month: list[date] = []
    for day in days:
        if month and (day.year, day.month) != (month[0].year, month[0].month):
            yield month[0].replace(day=1), month
            month = []
        month.append(day)
    if month:
        yield month[0].replace(day=1), month


def files_fill(
    *,
    exchange: str,
    symbol: str,
    days: list[date],
    ids: tuple[int, int] | None = None,
    progress: Progress | None = None,
    on_bytes: OnBytes | None = None,
    today: date | None = None,
) -> FilesResult:
    """Download, verify and store the aggTrades files of ``days`` (monthly files for whole ended months, daily files
    otherwise), one at a time through a temporary folder. Days whose file is not published are returned as such.
    ``ids``: the exchange's first and last id of the range the days lie in; a file holding another id is refused
    before that row is stored (files from another exchange than REST's: the base URL settings disagree)."""
    base, today = data_url(exchange), today or datetime.now(UTC).date()
    files = rows = written = 0
    unpublished: list[date] = []
    with TemporaryDirectory(prefix="bulk-trades-") as tmp, closing(VisionDownloader(exchange, on_bytes=on_bytes)) as dl:
        folder = Path(tmp)

        def take(url: str) -> bool:
            nonlocal files, rows, written
            path = dl.fetch(url, folder)
            if path is None:
                return False
            try:
                got = _store(path, symbol, ids, progress)
            except ValueError as exc:
                raise ExchangeUnavailable(exchange, f"{url}: {exc}", url=url) from None
            except _ForeignId as exc:
                raise ExchangeError(exchange, f"{url}: {exc}{_settings_hint(exchange)}") from None
            finally:
                path.unlink(missing_ok=True)
            files, rows, written = files + 1, rows + got[0], written + got[1]
            return True

        for month, wanted in periods(days):
            if _whole_month(month, wanted, today) and take(monthly_url(base, symbol, month)):
                continue
            unpublished += [day for day in wanted if not take(daily_url(base, symbol, day))]
        return FilesResult(files, rows, written, dl.bytes, dl.requests, tuple(unpublished))


class _ForeignId(Exception):
    """A file's trade id outside the exchange's ids for the range."""


def _store(path: Path, symbol: str, ids: tuple[int, int] | None, progress: Progress | None) -> tuple[int, int]:
    """The rows read from the aggTrades file at ``path`` and how many of them were new, stored in batches; each id
    checked to lie in ``ids`` first."""
    rows = written = 0
    batch: list[TradeTick] = []

    def flush() -> None:
        nonlocal written
        written += ticks_ingest(ticks=batch).written
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for tick in read_agg_trades(describe(path, symbol=symbol)):
        if ids is not None and not ids[0] <= tick.trade_id <= ids[1]:
            raise _ForeignId(
                f"aggregate trade id {tick.trade_id:,} is not among the exchange's ids of the range "
                f"({ids[0]:,}..{ids[1]:,}); nothing stored from this file"
                + (f" beyond its first {rows:,} rows" if rows else "")
            )
        batch.append(tick)
        rows += 1
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return rows, written


def _settings_hint(exchange: str) -> str:
    v = venue(exchange)
    files = v.bulk_files.url_setting if v.bulk_files else ""
    return f" (do {files} and {v.rest_url_setting} point at the same exchange?)"


def _whole_month(month: date, wanted: list[date], today: date) -> bool:
    """Whether ``wanted`` is every day of ``month`` and the month has ended before ``today``."""
    following = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
    return following <= today and len(wanted) == (following - month).days


def _midnight_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _midnight(t: datetime) -> datetime:
    return _midnight_of(t.astimezone(UTC).date())
