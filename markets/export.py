"""Taking stored history out: the ticks or candles of a range as CSV or Parquet, streamed in constant memory.

Rows are the ones the JSON API answers for the same query: ticks as ``/api/v1/ticks`` pages them (trade-id
order, exchange time in ``[start, end)``), candles as ``/api/v1/candles?fetch=false`` (open times in
``[start, end)`` widened to whole candles of the interval; 1m read as stored, wider intervals from the API's own
read, :func:`markets.history.get_price_history` without fetching, a chunk of whole candles at a time). Columns and
their order are the API's JSON fields (``TickOut``, ``CandleOut``).

- CSV: a header row; times ISO-8601 UTC with ``Z`` to the millisecond; prices and quantities by
  :func:`markets.numbers.plain` with the instrument's tick (prices, quote amounts) or step (base quantities)
  places; booleans ``true``/``false``.
- Parquet: times ``timestamp[ms, tz=UTC]``; prices and quantities ``decimal128(38, 18)``, the stored fields' own
  precision (``models.PRICE``), so every stored value fits exactly whatever its tick (a candle filled from another
  venue may be finer than this instrument's tick; a value that would not fit is an error, never rounded); ids and
  counts int64; booleans bool; strings string. One row group per batch. The schema metadata holds what, exchange,
  symbol, interval, start, end, tick_size and step_size.

Memory is bounded by one batch: a pymongo cursor with a projection (MongoDB turns decimals and times into text
or epoch milliseconds) regrouped into column batches of ``size`` rows, each written before the next is read. The file
is written beside its name as ``.<name>.<pid>.part`` and renamed over it only when complete, so an interrupted
export (an error, Ctrl+C) never leaves a half file under the name.
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from . import intervals as iv
from .api.serializers import utc_iso
from .history import get_price_history
from .models import Candle, Instrument, Tick
from .numbers import places, plain
from .reads import CANDLE_FIELDS, TICK_FIELDS
from .selectors import TICK_INDEX, id_count, tick_edge, tick_filter
from .store import collection
from .types import CandleBar
from .venues import KNOWN_EXCHANGES

TIMES = frozenset({"ts", "received_at", "open_time", "close_time"})
PRICES = frozenset({"price", "open", "high", "low", "close", "quote_volume", "taker_buy_quote_volume"})  # tick places
QUANTITIES = frozenset({"qty", "volume", "taker_buy_volume"})  # step places
INTS = frozenset({"trade_id", "first_trade_id", "last_trade_id", "trades"})
BOOLS = frozenset({"closed", "synthetic"})
DECIMAL = pa.decimal128(38, 18)  # models.PRICE: 38 digits, 18 places
TIMESTAMP = pa.timestamp("ms", tz="UTC")
WHAT = ("ticks", "candles")
FORMATS = ("csv", "parquet")
BATCH = 50_000
CURSOR_BATCH = 2_000  # documents per server round trip: pymongo decodes a whole one at once
ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%LZ"  # MongoDB's $dateToString for utc_iso's form
MS = timedelta(milliseconds=1)

Batch = dict[str, list[Any]]  # column -> values; decimals as decimal text, times as ISO text or epoch ms
Times = Literal["iso", "ms"]


class ExportError(ValueError):
    """A bad input, named by its command-line option (``option``, without the dashes)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(f"--{option} {message}")
        self.option = option


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What to export: ``what`` ("ticks" or "candles") of one instrument over ``[start, end)``."""

    what: str
    exchange: str
    symbol: str
    start: datetime
    end: datetime
    interval: str | None  # candles only
    tick_size: Decimal | None
    step_size: Decimal | None

    @property
    def columns(self) -> tuple[str, ...]:
        return TICK_FIELDS if self.what == "ticks" else CANDLE_FIELDS

    @property
    def opens(self) -> tuple[datetime, datetime]:
        """The candles' open-time range, widened to whole candles as the API does."""
        interval = self.interval or iv.BASE_INTERVAL
        return iv.ceil(self.start, interval), iv.ceil(self.end, interval)


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export wrote: ``rows`` data rows (no header), ``size`` bytes, in ``seconds``."""

    rows: int
    size: int
    seconds: float
    path: Path | None  # None for a stream (stdout)


def export_plan(
    *, what: str, exchange: str, symbol: str, start: datetime, end: datetime, interval: str | None = None
) -> ExportPlan:
    """The plan of an export, checked: an unknown ``what``, exchange, instrument or interval is an ExportError
    naming its option. Times are whole milliseconds (rounded up, as the API does): MongoDB keeps no finer."""
    if what not in WHAT:
        raise ExportError("what", f"{what!r} is neither ticks nor candles")
    if exchange not in KNOWN_EXCHANGES:
        raise ExportError("exchange", f"{exchange!r} is not a known exchange; known: {', '.join(KNOWN_EXCHANGES)}")
    symbol = symbol.strip().upper()
    instrument = Instrument.objects.filter(exchange=exchange, symbol=symbol).first() if symbol else None
    if instrument is None:
        raise ExportError(
            "symbol", f"{symbol!r} is not a stored instrument of {exchange} (see manage.py instruments list)"
        )
    if what == "ticks" and interval is not None:
        raise ExportError("interval", "applies to candles only")
    if what == "candles":
        interval = interval or iv.BASE_INTERVAL
        if interval not in iv.INTERVALS:
            raise ExportError("interval", f"{interval!r} is not an interval; use one of {', '.join(iv.INTERVALS)}")
    start, end = _whole_ms(start), _whole_ms(end)
    if start >= end:
        raise ExportError("start", f"must be before --end (got {utc_iso(start)} and {utc_iso(end)})")
    return ExportPlan(what, exchange, symbol, start, end, interval, instrument.tick_size, instrument.step_size)


def export_total(plan: ExportPlan) -> int:
    """How many rows the export will have, for a progress bar: the stored 1m candles of the range, the wider
    candles it can hold, or the ticks stored with ids between its first and last (a count on an index; exact
    when ids follow time)."""
    if plan.what == "candles":
        if plan.interval != iv.BASE_INTERVAL:
            return iv.count(*plan.opens, plan.interval or iv.BASE_INTERVAL)
        return collection(Candle).count_documents(_minute_query(plan))
    ids = _tick_ids(plan)
    return id_count(plan.exchange, plan.symbol, *ids) if ids else 0


def export_batches(plan: ExportPlan, *, times: Times, size: int = BATCH) -> Iterator[Batch]:
    """The rows of ``plan`` as column batches of at most ``size`` rows (never an empty one), in order."""
    if plan.what == "ticks":
        return _tick_batches(plan, times, size)
    if plan.interval == iv.BASE_INTERVAL:
        return _minute_batches(plan, times, size)
    return _aggregated_batches(plan, times, size)


def _tick_batches(plan: ExportPlan, times: Times, size: int) -> Iterator[Batch]:
    """Ticks as the API reads them (``selectors.tick_filter``): time bounds turned into id bounds, the id index
    walked."""
    query = tick_filter(exchange=plan.exchange, symbol=plan.symbol, start=plan.start, end=plan.end)
    if query is None:
        return
    cursor = collection(Tick).find(query, _projection(TICK_FIELDS, times)).sort("trade_id", 1).hint(TICK_INDEX)
    yield from _columns(cursor.batch_size(min(size, CURSOR_BATCH)), TICK_FIELDS, size)


def _minute_batches(plan: ExportPlan, times: Times, size: int) -> Iterator[Batch]:
    """The stored 1m candles, read as the API reads them for 1m (by open time on the candle index)."""
    cursor = collection(Candle).find(_minute_query(plan), _projection(CANDLE_FIELDS, times)).sort("open_time", 1)
    yield from _columns(cursor.batch_size(min(size, CURSOR_BATCH)), CANDLE_FIELDS, size)


def _aggregated_batches(plan: ExportPlan, times: Times, size: int) -> Iterator[Batch]:
    """Wider candles as the API reads them (its one aggregation, not a second), a chunk of whole candles at a time
    within one request's limits (``MAX_CANDLES``, ``MAX_SPAN``): each candle is aggregated whole, as in one read
    of the full range."""
    interval = plan.interval or iv.BASE_INTERVAL
    width = iv.INTERVALS[interval]
    lo, hi = plan.opens
    step = width * max(1, min(size, iv.MAX_CANDLES, iv.MAX_SPAN // width))
    t = lo
    while t < hi:
        chunk = get_price_history(plan.symbol, t, min(t + step, hi), interval, plan.exchange, fetch=False)
        if chunk.candles:
            yield _bar_columns(chunk.candles, times)
        t += step


def _minute_query(plan: ExportPlan) -> dict[str, Any]:
    """The stored 1m candles of the plan's range."""
    lo, hi = plan.opens
    return {
        "exchange": plan.exchange,
        "symbol": plan.symbol,
        "interval": iv.BASE_INTERVAL,
        "open_time": {"$gte": lo, "$lt": hi},
    }


def _tick_ids(plan: ExportPlan) -> tuple[int, int] | None:
    """The first and last trade id of the range (None when it has no tick)."""
    first = tick_edge(plan.exchange, plan.symbol, {"$gte": plan.start}, 1)
    last = tick_edge(plan.exchange, plan.symbol, {"$lt": plan.end}, -1)
    if first is None or last is None or first[0] > last[0]:
        return None
    return first[0], last[0]


def _projection(columns: tuple[str, ...], times: Times) -> dict[str, Any]:
    """The stored fields as the writers want them, converted by MongoDB: decimals to text, times to ISO text or
    epoch ms, a candle without ``synthetic`` as not synthetic."""
    out: dict[str, Any] = {"_id": 0}
    for c in columns:
        if c in TIMES:
            date = f"${c}"
            out[c] = (
                {"$dateToString": {"date": date, "format": ISO_FORMAT, "timezone": "UTC"}}
                if times == "iso"
                else {"$toLong": date}
            )
        elif c in PRICES or c in QUANTITIES:
            out[c] = {"$toString": f"${c}"}
        elif c == "synthetic":
            out[c] = {"$ifNull": ["$synthetic", False]}
        else:
            out[c] = 1
    return out


def _columns(docs: Iterable[dict[str, Any]], columns: tuple[str, ...], size: int) -> Iterator[Batch]:
    """Documents regrouped as column batches of ``size`` rows."""
    batch: Batch = {c: [] for c in columns}
    appends = [(c, batch[c].append) for c in columns]
    n = 0
    for d in docs:
        for c, append in appends:
            append(d[c])
        n += 1
        if n == size:
            yield batch
            batch = {c: [] for c in columns}
            appends = [(c, batch[c].append) for c in columns]
            n = 0
    if n:
        yield batch


def _bar_columns(bars: list[CandleBar], times: Times) -> Batch:
    """Candles as a column batch of the same shape as the projected documents'."""
    batch: Batch = {}
    for c in CANDLE_FIELDS:
        values = [getattr(b, c) for b in bars]
        if c in TIMES:
            batch[c] = [utc_iso(t) for t in values] if times == "iso" else [(t - iv.EPOCH) // MS for t in values]
        elif c in PRICES or c in QUANTITIES:
            batch[c] = [str(v) for v in values]
        else:
            batch[c] = values
    return batch


def csv_write(plan: ExportPlan, batches: Iterable[Batch], out: IO[str], progress: Callable[[int], None]) -> int:
    """The header and every row of ``batches`` as CSV to ``out``; returns the rows written."""
    price, qty = places(plan.tick_size), places(plan.step_size)

    def shape(column: str, values: list[Any]) -> Iterable[Any]:
        if column in PRICES:
            return [plain(v, price) for v in values]
        if column in QUANTITIES:
            return [plain(v, qty) for v in values]
        if column in BOOLS:
            return ["true" if v else "false" for v in values]
        return values

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(plan.columns)
    rows = 0
    for batch in batches:
        writer.writerows(zip(*(shape(c, batch[c]) for c in plan.columns), strict=True))
        n = len(batch[plan.columns[0]])
        rows += n
        del batch  # before the next is read: one batch in memory, not two
        progress(n)
    return rows


def parquet_schema(plan: ExportPlan) -> pa.Schema:
    """The Parquet schema of ``plan``'s columns, with what, exchange, symbol, interval and range as metadata."""

    def kind(column: str) -> pa.DataType:
        if column in TIMES:
            return TIMESTAMP
        if column in PRICES or column in QUANTITIES:
            return DECIMAL
        if column in INTS:
            return pa.int64()
        return pa.bool_() if column in BOOLS else pa.string()

    meta = {
        "what": plan.what,
        "exchange": plan.exchange,
        "symbol": plan.symbol,
        "interval": plan.interval or "",
        "start": utc_iso(plan.start),
        "end": utc_iso(plan.end),
        "tick_size": plain(plan.tick_size) or "",
        "step_size": plain(plan.step_size) or "",
    }
    return pa.schema([pa.field(c, kind(c), nullable=False) for c in plan.columns], metadata=meta)


def parquet_write(plan: ExportPlan, batches: Iterable[Batch], path: Path, progress: Callable[[int], None]) -> int:
    """Every row of ``batches`` to a Parquet file at ``path``, one row group per batch; returns the rows."""
    schema = parquet_schema(plan)
    rows = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd") as writer:
        for batch in batches:
            arrays = []
            for f in schema:
                values = batch[f.name]
                if f.type == DECIMAL:
                    arrays.append(_decimals(f.name, values))
                else:
                    arrays.append(pa.array(values, f.type))
            table = pa.Table.from_arrays(arrays, schema=schema)
            n = table.num_rows
            writer.write_table(table, row_group_size=n)
            rows += n
            del batch, values, arrays, table  # before the next is read: one batch in memory, not two
            progress(n)
    return rows


def _decimals(column: str, values: list[str]) -> pa.Array:
    """Decimal text as exact decimal128(38, 18) (Arrow refuses, rather than rounds, a value that does not fit)."""
    try:
        return pa.array(values, pa.string()).cast(DECIMAL)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ValueError(f"{column}: a stored value does not fit decimal128(38, 18) exactly: {exc}") from exc


def history_export(
    *,
    plan: ExportPlan,
    fmt: str,
    out: Path | IO[str],
    force: bool = False,
    size: int = BATCH,
    progress: Callable[[int], None] = lambda n: None,
) -> ExportSummary:
    """Write ``plan``'s rows as ``fmt`` ("csv" or "parquet") to the file ``out`` (or, CSV only, to the text
    stream ``out``), ``size`` rows at a time, telling ``progress(n)`` of every batch written. A file is written
    whole or not at all; an existing one is replaced only with ``force``. ExportError names a bad ``--out``."""
    if fmt not in FORMATS:
        raise ExportError("format", f"{fmt!r} is neither csv nor parquet")
    if size < 1:
        raise ExportError("batch", f"must be at least 1 (got {size})")
    began = time.monotonic()
    if not isinstance(out, Path):
        if fmt != "csv":
            raise ExportError("out", "- (stdout) is for csv only; give a file for parquet")
        rows = csv_write(plan, export_batches(plan, times="iso", size=size), out, progress)
        return ExportSummary(rows, 0, time.monotonic() - began, None)
    with _whole_file(out, force=force) as part:
        if fmt == "csv":
            with part.open("w", encoding="utf-8", newline="", buffering=1 << 20) as stream:
                rows = csv_write(plan, export_batches(plan, times="iso", size=size), stream, progress)
        else:
            rows = parquet_write(plan, export_batches(plan, times="ms", size=size), part, progress)
    return ExportSummary(rows, out.stat().st_size, time.monotonic() - began, out)


@contextmanager
def _whole_file(out: Path, *, force: bool) -> Iterator[Path]:
    """A fresh ``.<name>.<pid>.part`` beside ``out`` to write; renamed to ``out`` when the block ends normally,
    removed when it raises (KeyboardInterrupt included)."""
    if out.is_dir():
        raise ExportError("out", f"{out} is a directory; give a file name")
    if out.exists() and not force:
        raise ExportError("out", f"{out} exists; pass --force to replace it")
    part = out.parent / f".{out.name}.{os.getpid()}.part"
    try:
        os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666))
    except FileNotFoundError:
        raise ExportError("out", f"{out}: the directory {out.parent} does not exist") from None
    except OSError as exc:
        raise ExportError("out", f"{out}: cannot write in {out.parent} ({exc.strerror})") from None
    try:
        yield part
        if out.exists() and not force:  # appeared while exporting
            raise ExportError("out", f"{out} exists; pass --force to replace it")
        part.replace(out)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _whole_ms(t: datetime) -> datetime:
    """``t`` rounded up to a whole millisecond."""
    return t if t.microsecond % 1000 == 0 else t + timedelta(microseconds=1000 - t.microsecond % 1000)
