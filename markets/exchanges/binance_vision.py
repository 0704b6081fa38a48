"""Binance's public bulk files (https://data.binance.vision), read as normalized records. Pure: no Django.

A file is a zip holding one CSV, or the bare CSV, named ``SYMBOL-KIND-PERIOD``:
``BTCUSDT-1m-2024-08-08.zip`` (klines of an interval), ``BTCUSDT-trades-2024-08-08.zip`` (raw
trades), ``BTCUSDT-aggTrades-2024-08.zip`` (aggregate trades of a month). Rows are read one at a
time, so a file of any size streams in constant memory. Most files have no header row; some
(futures) do: a first row whose first cell starts with a letter is skipped as the header.

Columns (a trailing ``ignore``/``is_best_match`` may be absent):

- klines: open_time, open, high, low, close, volume, close_time, quote_volume, trades,
  taker_buy_base, taker_buy_quote, ignore → :class:`CandleBar` (source "exchange", closed);
- aggTrades: agg_trade_id, price, quantity, first_trade_id, last_trade_id, transact_time,
  is_buyer_maker, is_best_match → :class:`TradeTick` (source import);
- trades: id, price, qty, quote_qty, time, is_buyer_maker, is_best_match → :class:`TradeTick` whose
  ``trade_id`` is a *raw* trade id. A Binance tick in this project is an aggregate trade, so these
  ticks must never be stored as ticks (another id space): they are for building candles.

Timestamps: spot files from 2025 on carry microseconds, older ones milliseconds. Each value is read on
its own: ``>= 10**14`` is microseconds, anything smaller milliseconds. The rule cannot misread a real
time: 10**14 ms is the year 5138, and 10**14 µs is 1973-03-03, before any exchange existed. Times are
then truncated to the millisecond, the precision every tick and candle is stored with.

``is_buyer_maker`` is True/False in any case; a buyer-maker trade was sold into, so its taker sold.
A row that cannot be read raises ValueError naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import NoReturn, TextIO

from ..intervals import EPOCH, INTERVALS, floor
from .base import CandleBar, Source, TradeTick

EXCHANGE = "binance"
MICROSECONDS_FROM = 10**14  # a timestamp at or above this is in µs, below it in ms (see the module docstring)
SUFFIXES = (".zip", ".csv")

_NAME = re.compile(r"(?P<symbol>[A-Za-z0-9]+)-(?P<kind>[A-Za-z0-9]+)-(?P<period>\d{4}-\d{2}(?:-\d{2})?)")
_SYMBOL = re.compile(r"[A-Za-z0-9]+")
_INTERVAL_LIKE = re.compile(r"\d+[a-zA-Z]+")


class Kind(StrEnum):
    """What a bulk file holds."""

    KLINES = "klines"
    TRADES = "trades"
    AGG_TRADES = "aggTrades"


COLUMNS: dict[Kind, tuple[str, ...]] = {
    Kind.KLINES: (
        "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trades",
        "taker_buy_base", "taker_buy_quote", "ignore",
    ),
    Kind.TRADES: ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    Kind.AGG_TRADES: (
        "agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id", "transact_time", "is_buyer_maker",
        "is_best_match",
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class BulkFile:
    """A bulk file and what its name says: kind, symbol (upper case), interval (klines only), period."""

    path: Path
    kind: Kind
    symbol: str
    interval: str | None
    period: str


def describe(path: Path | str, *, symbol: str | None = None) -> BulkFile:
    """What ``path`` holds, from its name; ``symbol`` overrides the name's symbol.

    ValueError (naming the file) for a name that is not Binance's, a kind not supported, or a klines
    interval outside :data:`markets.intervals.INTERVALS`.
    """
    path = Path(path)
    stem, suffix = path.name[: -len(path.suffix)] if path.suffix else path.name, path.suffix.lower()
    match = _NAME.fullmatch(stem)
    if suffix not in SUFFIXES or match is None:
        raise ValueError(
            f"{path}: not a Binance bulk file name; expected SYMBOL-1m-YYYY-MM-DD.zip, SYMBOL-trades-YYYY-MM-DD.zip "
            "or SYMBOL-aggTrades-YYYY-MM-DD.zip (or YYYY-MM, or .csv)"
        )
    if symbol is not None and not _SYMBOL.fullmatch(symbol):
        raise ValueError(f"symbol {symbol!r}: use the exchange's symbol, letters and digits only (BTCUSDT)")
    raw_kind, interval = match["kind"], None
    if raw_kind in (Kind.TRADES, Kind.AGG_TRADES):
        kind = Kind(raw_kind)
    elif _INTERVAL_LIKE.fullmatch(raw_kind):
        if raw_kind not in INTERVALS:
            raise ValueError(
                f"{path}: klines interval {raw_kind!r} is not supported; use one of {', '.join(INTERVALS)}"
            )
        kind, interval = Kind.KLINES, raw_kind
    else:
        raise ValueError(f"{path}: files of kind {raw_kind!r} are not supported; use klines, trades or aggTrades")
    return BulkFile(path, kind, (symbol or match["symbol"]).upper(), interval, match["period"])


def bulk_files(paths: Iterable[Path | str], *, symbol: str | None = None) -> list[BulkFile]:
    """The bulk files named by ``paths``, in the given order; a directory stands for the .zip and .csv
    files directly inside it, sorted by name. Every name is checked before anything is returned:
    ValueError naming the first path that is missing, an empty directory, or a name :func:`describe` refuses.
    """
    out: list[BulkFile] = []
    for p in map(Path, paths):
        if p.is_dir():
            inside = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not inside:
                raise ValueError(f"{p}: no .zip or .csv file in this directory")
            out.extend(describe(f, symbol=symbol) for f in inside)
        elif p.is_file():
            out.append(describe(p, symbol=symbol))
        else:
            raise ValueError(f"{p}: no such file or directory")
    return out


def to_datetime(value: int) -> datetime:
    """A Binance timestamp (ms, or µs when ``>= 10**14``) as a UTC datetime truncated to the millisecond."""
    ms = value // 1000 if value >= MICROSECONDS_FROM else value
    return EPOCH + timedelta(milliseconds=ms)


def read_klines(file: BulkFile) -> Iterator[CandleBar]:
    """The candles of a klines file, in file order.

    Row (ADABTC-1m-2021-11-28.zip)::

        1638057600000,0.00002820,0.00002821,0.00002817,0.00002818,85342.70000000,1638057659999,2.40584425,96,36241.70000000,1.02183287,0
    """
    _expect(file, Kind.KLINES)
    interval = file.interval or "1m"
    for row in _rows(file):
        open_time = row.time(0)
        if floor(open_time, interval) != open_time:
            row.fail(0, f"not the start of a {interval} interval")
        open_, high, low, close, volume = (row.decimal(i) for i in range(1, 6))
        close_time, quote_volume, trades = row.time(6), row.decimal(7), row.integer(8)
        yield CandleBar(
            exchange=EXCHANGE,
            symbol=file.symbol,
            interval=interval,
            open_time=open_time,
            close_time=close_time,
            open=open_,
            high=high,
            low=low,
            close=close,
            volume=volume,
            quote_volume=quote_volume,
            trades=trades,
            taker_buy_volume=row.decimal(9),
            taker_buy_quote_volume=row.decimal(10),
            source="exchange",
            closed=True,
        )


def read_agg_trades(file: BulkFile, *, received_at: datetime | None = None) -> Iterator[TradeTick]:
    """The aggregate trades of an aggTrades file as ticks (source import), in file order (by id).

    ``received_at`` is our receive time for all of them (default: now). Row (the published layout; the
    values are illustrative, no aggTrades file is recorded)::

        3041249807,61837.63000000,0.06800000,3735683259,3735683260,1723161255342,True,True
    """
    _expect(file, Kind.AGG_TRADES)
    received_at = received_at or datetime.now(UTC)
    for row in _rows(file):
        agg_id, price, qty = row.integer(0), row.decimal(1), row.decimal(2)
        first_id, last_id, ts, buyer_maker = row.integer(3), row.integer(4), row.time(5), row.flag(6)
        yield _tick(file, agg_id, price, qty, ts, buyer_maker, received_at, first_id, last_id)


def read_trades(file: BulkFile, *, received_at: datetime | None = None) -> Iterator[TradeTick]:
    """The raw trades of a trades file, in file order (by id), for building candles: ``trade_id`` is a raw
    trade id (``first_trade_id == last_trade_id == trade_id``), not an aggregate id; never store these as
    ticks. ``quote_qty`` is not read (candles compute price * qty exactly). Row (trade 3735683259 of the
    recorded BTCUSDT capture, in this layout)::

        3735683259,61837.63000000,0.02000000,1236.75260000,1723161255342,True,True
    """
    _expect(file, Kind.TRADES)
    received_at = received_at or datetime.now(UTC)
    for row in _rows(file):
        trade_id, price, qty, ts, buyer_maker = row.integer(0), row.decimal(1), row.decimal(2), row.time(4), row.flag(5)
        yield _tick(file, trade_id, price, qty, ts, buyer_maker, received_at, trade_id, trade_id)


def _tick(
    file: BulkFile,
    trade_id: int,
    price: Decimal,
    qty: Decimal,
    ts: datetime,
    buyer_maker: bool,
    received_at: datetime,
    first_id: int,
    last_id: int,
) -> TradeTick:
    """A row as a tick: Binance's ``is_buyer_maker`` means the taker sold."""
    return TradeTick(
        exchange=EXCHANGE,
        symbol=file.symbol,
        trade_id=trade_id,
        price=price,
        qty=qty,
        taker_side="sell" if buyer_maker else "buy",
        ts=ts,
        received_at=received_at,
        source=Source.IMPORT,
        first_trade_id=first_id,
        last_trade_id=last_id,
    )


class _Row:
    """One CSV row of a file, with typed access to its cells; every failure names file, line and column."""

    __slots__ = ("cells", "columns", "line", "path")

    def __init__(self, path: Path, line: int, cells: list[str], columns: tuple[str, ...], required: int) -> None:
        self.path, self.line, self.cells, self.columns = path, line, cells, columns
        if len(cells) < required:
            self.fail(len(cells), f"missing (the row has {len(cells)} columns)")

    def fail(self, i: int, problem: str) -> NoReturn:
        raise ValueError(f"{self.path}: line {self.line}, column {i + 1} ({self.columns[i]}): {problem}")

    def _cell(self, i: int) -> str:
        return self.cells[i].strip()

    def integer(self, i: int) -> int:
        text = self._cell(i)
        if not (text.isascii() and text.isdigit()):
            self.fail(i, f"not a whole number: {text!r}")
        return int(text)

    def decimal(self, i: int) -> Decimal:
        text = self._cell(i)
        try:
            value = Decimal(text)
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value < 0:
            self.fail(i, f"not a non-negative decimal number: {text!r}")
        return value

    def time(self, i: int) -> datetime:
        return to_datetime(self.integer(i))

    def flag(self, i: int) -> bool:
        text = self._cell(i).lower()
        if text not in ("true", "false"):
            self.fail(i, f"not True or False: {self.cells[i]!r}")
        return text == "true"


def _expect(file: BulkFile, kind: Kind) -> None:
    if file.kind != kind:
        raise ValueError(f"{file.path}: a {file.kind} file, not {kind}")


def _rows(file: BulkFile) -> Iterator[_Row]:
    """The data rows of ``file`` (blank lines and a header row skipped), one at a time."""
    columns = COLUMNS[file.kind]
    required = len(columns) - 1  # the last column (ignore, is_best_match) is optional
    with _open_text(file.path) as text:
        reader = csv.reader(text)
        first = True
        try:
            for cells in reader:
                if not cells or (len(cells) == 1 and not cells[0].strip()):
                    continue
                if first and cells[0].strip()[:1].isalpha():
                    first = False
                    continue  # the header
                first = False
                yield _Row(file.path, reader.line_num, cells, columns, required)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"{file.path}: line {reader.line_num + 1}: not readable CSV text ({exc})") from None


@contextmanager
def _open_text(path: Path) -> Iterator[TextIO]:
    """The CSV text of ``path`` (the one CSV inside a zip), streamed."""
    if path.suffix.lower() != ".zip":
        with path.open(encoding="utf-8-sig", newline="") as f:
            yield f
        return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not a zip file") from None
    with archive:
        members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if len(members) != 1:
            raise ValueError(f"{path}: expected one .csv file inside the zip, found {len(members)}")
        try:
            with archive.open(members[0]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{path}: damaged zip file ({exc})") from None
