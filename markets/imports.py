"""Bulk imports of Binance's public files (data.binance.vision) into MongoDB.

Every write goes through :func:`markets.services.ticks_ingest` or :func:`markets.services.candles_upsert`
in batches, so an import is idempotent (a file imported twice stores nothing new the second time) and
an interrupted import can simply be run again. What each kind becomes:

- klines → candles of the file's interval (source "exchange");
- aggTrades → ticks (a Binance tick is an aggregate trade, ARCHITECTURE §5), then the 1m candles of the minutes
  they cover built from the stored ticks, quiet minutes flat (:func:`markets.rebuild.candles_of_stored`);
- trades → 1m candles built from the raw trades (source "trades"). Raw trade ids are another id space
  than aggregate ids, so raw trades are never stored as ticks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from .candles import stream_candles
from .exchanges.base import CandleBar, TradeTick
from .exchanges.binance_vision import BulkFile, Kind, bulk_files, read_agg_trades, read_klines, read_trades
from .rebuild import candles_of_stored
from .services import WriteResult, candles_upsert, ticks_ingest

Progress = Callable[[int], None]  # called with the number of rows read since the last call

BATCH = 5000  # records per write
PROGRESS_EVERY = 1000  # rows between progress reports

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What importing one file did: ``rows`` read from it, records ``written`` (new) and ``already_present``.

    ``stored_as`` says what the rows became ("ticks", or "candles 1m" and the like); for a raw trades
    file ``written``/``already_present`` count candles, not rows. ``candles`` counts the 1m candles an aggTrades
    file's ticks were turned into (traded and quiet minutes; stored before or not).
    """

    path: Path
    kind: str
    symbol: str
    stored_as: str
    rows: int
    written: int
    already_present: int
    candles: int = 0


def binance_files_import(
    *, paths: Iterable[Path | str], symbol: str | None = None, progress: Progress | None = None
) -> list[ImportSummary]:
    """Import Binance bulk files (a directory stands for the .zip/.csv files in it), one after another.

    ``symbol`` overrides the symbol in the file names. Every path is checked before anything is
    written; a file that cannot be read raises ValueError naming it (and the line and column), and what
    was stored before (earlier files, whole batches of this one) stays stored.
    """
    return [_file_import(f, progress) for f in bulk_files(paths, symbol=symbol)]


def _file_import(file: BulkFile, progress: Progress | None) -> ImportSummary:
    try:
        return _read_and_write(file, progress)
    except ValueError as exc:  # the readers name the file; the candle builder does not
        if str(file.path) in str(exc):
            raise
        raise ValueError(f"{file.path}: {exc}") from exc


def _read_and_write(file: BulkFile, progress: Progress | None) -> ImportSummary:
    rows = _RowCounter(progress)
    received_at = datetime.now(UTC)
    candles = 0
    if file.kind is Kind.AGG_TRADES:
        stored_as = "ticks"
        span = _Span()
        result = _write_ticks(span.watch(rows.count(read_agg_trades(file, received_at=received_at))))
        if span.first is not None and span.last is not None:
            candles = candles_of_stored(
                exchange=span.exchange, symbol=span.symbol, first=span.first, last=span.last
            ).candles
    elif file.kind is Kind.KLINES:
        stored_as = f"candles {file.interval}"
        result = _write_candles(rows.count(read_klines(file)))
    else:
        stored_as = "candles 1m"
        trades = rows.count(read_trades(file, received_at=received_at))
        result = _write_candles(stream_candles(trades, "1m", source="trades"))
    rows.flush()
    return ImportSummary(file.path, str(file.kind), file.symbol, stored_as, rows.total, *result, candles)


def _write_ticks(ticks: Iterable[TradeTick]) -> tuple[int, int]:
    return _totals(ticks_ingest(ticks=batch) for batch in _batches(ticks))


def _write_candles(candles: Iterable[CandleBar]) -> tuple[int, int]:
    return _totals(candles_upsert(candles=batch) for batch in _batches(candles))


def _totals(results: Iterable[WriteResult]) -> tuple[int, int]:
    written = present = 0
    for r in results:
        written += r.written
        present += r.duplicates
    return written, present


def _batches(items: Iterable[T]) -> Iterator[list[T]]:
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


class _Span:
    """The exchange, symbol and earliest and latest time of the ticks passing through :meth:`watch`."""

    def __init__(self) -> None:
        self.exchange = self.symbol = ""
        self.first: datetime | None = None
        self.last: datetime | None = None

    def watch(self, ticks: Iterable[TradeTick]) -> Iterator[TradeTick]:
        for t in ticks:
            if self.first is None or self.last is None:
                self.exchange, self.symbol, self.first, self.last = t.exchange, t.symbol, t.ts, t.ts
            elif t.ts < self.first:
                self.first = t.ts
            elif t.ts > self.last:
                self.last = t.ts
            yield t


class _RowCounter:
    """Counts the rows read and reports them to ``progress`` every ``PROGRESS_EVERY`` rows."""

    def __init__(self, progress: Progress | None) -> None:
        self.total = 0
        self._progress = progress
        self._reported = 0

    def count(self, items: Iterable[T]) -> Iterator[T]:
        for item in items:
            self.total += 1
            if self._progress is not None and self.total - self._reported >= PROGRESS_EVERY:
                self.flush()
            yield item

    def flush(self) -> None:
        if self._progress is not None and self.total > self._reported:
            self._progress(self.total - self._reported)
        self._reported = self.total
