"""Binance bulk files (data.binance.vision) read into ticks and candles: names, layouts, units, bad rows."""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from markets.candles import build_candles
from markets.exchanges.base import Source
from markets.exchanges.binance_vision import (
    Kind,
    bulk_files,
    describe,
    read_agg_trades,
    read_klines,
    read_trades,
    to_datetime,
)
from tests.conftest import shared_file

RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
AGG_HEADER = "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker,is_best_match"
TRADES_HEADER = "id,price,qty,quote_qty,time,is_buyer_maker,is_best_match"
# aggregate trades of BTCUSDT around 2024-08-08 23:54:15 (ms); the third crosses into the next minute
AGG_ROWS = [
    ("3041249807", "61837.63000000", "0.06800000", "3735683259", "3735683260", 1723161255342, "True", "True"),
    ("3041249808", "61837.64000000", "0.00100000", "3735683261", "3735683261", 1723161255617, "FALSE", "True"),
    ("3041249809", "61839.00000000", "0.51200000", "3735683262", "3735683266", 1723161300001, "true", "True"),
]
# raw trades of the recorded BTCUSDT capture (ids 3735683259, 3735683260), then two made-up ones a minute on
TRADE_ROWS = [
    ("3735683259", "61837.63000000", "0.02000000", "1236.75260000", 1723161255342, "True", "True"),
    ("3735683260", "61837.63000000", "0.04800000", "2968.20624000", 1723161255617, "True", "True"),
    ("3735683261", "61837.64000000", "0.00100000", "61.83764000", 1723161255618, "False", "True"),
    ("3735683262", "61840.00000000", "0.50000000", "30920.00000000", 1723161300000, "False", "True"),
]


def write_bulk(folder: Path, name: str, lines: list[str]) -> Path:
    """``lines`` as Binance publishes them: a zip holding one CSV of the same name, or the bare CSV."""
    text = "".join(f"{line}\n" for line in lines)
    path = folder / name
    if name.endswith(".zip"):
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(name.removesuffix(".zip") + ".csv", text)
    else:
        path.write_text(text)
    return path


def csv_lines(rows: list[tuple[object, ...]], *, header: str | None, micros: bool, time_column: int) -> list[str]:
    """Rows as CSV lines, times in ms or (as spot files since 2025) in µs with sub-millisecond digits."""
    out = [header] if header else []
    for row in rows:
        cells = [str(c) for c in row]
        if micros:
            cells[time_column] = str(int(cells[time_column]) * 1000 + 789)
        out.append(",".join(cells))
    return out


def ms(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)


def test_real_klines_file_is_read_exactly() -> None:
    """The recorded ADABTC 1m file gives 1,440 closed exchange candles; the first and last equal their CSV rows
    field by field, Decimals digit for digit."""
    path = shared_file("binance-vision/ADABTC-1m-2021-11-28.zip")
    with zipfile.ZipFile(path) as archive:
        lines = archive.read("ADABTC-1m-2021-11-28.csv").decode().splitlines()
    bars = list(read_klines(describe(path)))
    assert len(bars) == len(lines) == 1440
    assert [b.open_time for b in bars] == [
        datetime(2021, 11, 28, tzinfo=UTC) + timedelta(minutes=i) for i in range(1440)
    ]
    for bar, line in ((bars[0], lines[0]), (bars[-1], lines[-1])):
        cells = line.split(",")
        assert (bar.exchange, bar.symbol, bar.interval, bar.source, bar.closed, bar.synthetic) == (
            "binance", "ADABTC", "1m", "exchange", True, False,
        )  # fmt: skip
        assert bar.open_time == ms(int(cells[0]))
        assert bar.close_time == ms(int(cells[6]))
        decimals = (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.quote_volume, bar.taker_buy_volume,
                    bar.taker_buy_quote_volume)  # fmt: skip
        assert [str(d) for d in decimals] == [cells[i] for i in (1, 2, 3, 4, 5, 7, 9, 10)]
        assert bar.trades == int(cells[8])
    assert str(bars[0].open) == "0.00002820"
    assert bars[-1].close_time == datetime(2021, 11, 28, 23, 59, 59, 999000, tzinfo=UTC)


@pytest.mark.parametrize("container", ["zip", "csv"])
@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("micros", [False, True])
def test_agg_trades_file(tmp_path: Path, container: str, header: bool, micros: bool) -> None:
    """An aggTrades file, zipped or bare, with or without header, in ms or µs, gives the same import ticks:
    aggregate ids, covered raw ids, sides from is_buyer_maker (any case), times truncated to the ms."""
    lines = csv_lines(AGG_ROWS, header=AGG_HEADER if header else None, micros=micros, time_column=5)
    path = write_bulk(tmp_path, f"BTCUSDT-aggTrades-2024-08-08.{container}", lines)
    ticks = list(read_agg_trades(describe(path), received_at=RECEIVED))
    assert [(t.trade_id, t.first_trade_id, t.last_trade_id, t.taker_side) for t in ticks] == [
        (3041249807, 3735683259, 3735683260, "sell"),
        (3041249808, 3735683261, 3735683261, "buy"),
        (3041249809, 3735683262, 3735683266, "sell"),
    ]
    assert [t.ts for t in ticks] == [ms(r[5]) for r in AGG_ROWS]
    assert [(str(t.price), str(t.qty)) for t in ticks] == [(r[1], r[2]) for r in AGG_ROWS]
    assert {(t.exchange, t.symbol, t.source, t.received_at) for t in ticks} == {
        ("binance", "BTCUSDT", Source.IMPORT, RECEIVED)
    }


@pytest.mark.parametrize("container", ["zip", "csv"])
@pytest.mark.parametrize("header", [False, True])
@pytest.mark.parametrize("micros", [False, True])
def test_raw_trades_file_builds_candles(tmp_path: Path, container: str, header: bool, micros: bool) -> None:
    """A raw trades file gives ticks carrying raw trade ids (one trade each), from which 1m candles are built."""
    lines = csv_lines(TRADE_ROWS, header=TRADES_HEADER if header else None, micros=micros, time_column=4)
    path = write_bulk(tmp_path, f"btcusdt-trades-2024-08-08.{container}", lines)
    ticks = list(read_trades(describe(path), received_at=RECEIVED))
    assert [(t.trade_id, t.first_trade_id, t.last_trade_id, t.taker_side) for t in ticks] == [
        (3735683259, 3735683259, 3735683259, "sell"),
        (3735683260, 3735683260, 3735683260, "sell"),
        (3735683261, 3735683261, 3735683261, "buy"),
        (3735683262, 3735683262, 3735683262, "buy"),
    ]
    assert {t.symbol for t in ticks} == {"BTCUSDT"}
    first, second = build_candles(ticks)
    assert first.open_time == datetime(2024, 8, 8, 23, 54, tzinfo=UTC)
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("61837.63"), Decimal("61837.64"), Decimal("61837.63"), Decimal("61837.64"),
    )  # fmt: skip
    assert (first.volume, first.trades, first.taker_buy_volume) == (Decimal("0.069"), 3, Decimal("0.001"))
    assert first.quote_volume == sum(Decimal(r[3]) for r in TRADE_ROWS[:3])  # equals Binance's quote_qty here
    assert (second.open_time, second.close, second.trades) == (
        datetime(2024, 8, 8, 23, 55, tzinfo=UTC), Decimal(61840), 1,
    )  # fmt: skip


def test_klines_in_microseconds(tmp_path: Path) -> None:
    """A 2025 spot klines file (µs) gives the same candle times as ms would: close time truncated to .999."""
    row = (
        "1735689600000000,93576.00,93610.93,93537.50,93610.93,8.21827000,1735689659999999,768978.2,1318,3.4,318158.4,0"
    )
    path = write_bulk(tmp_path, "BTCUSDT-1m-2025-01-01.zip", [row])
    (bar,) = read_klines(describe(path))
    assert bar.open_time == datetime(2025, 1, 1, tzinfo=UTC)
    assert bar.close_time == datetime(2025, 1, 1, 0, 0, 59, 999000, tzinfo=UTC)
    assert (bar.close, bar.trades) == (Decimal("93610.93"), 1318)


def test_timestamp_unit_rule() -> None:
    """Values from 10**14 up are µs, below are ms; the same instant in either unit is the same time."""
    assert to_datetime(1735689600123) == to_datetime(1735689600123456) == datetime(2025, 1, 1, 0, 0, 0, 123000, UTC)
    assert to_datetime(10**14 - 1).year == 5138
    assert to_datetime(10**14) == datetime(1973, 3, 3, 9, 46, 40, tzinfo=UTC)


BAD_ROWS = [
    ("3041249810,abc,0.1,3735683267,3735683267,1723161300002,True,True", 2, "price", "'abc'"),
    ("3041249810,61839.00,-0.1,3735683267,3735683267,1723161300002,True,True", 3, "quantity", "'-0.1'"),
    ("30412498x0,61839.00,0.1,3735683267,3735683267,1723161300002,True,True", 1, "agg_trade_id", "'30412498x0'"),
    ("3041249810,61839.00,0.1,3735683267,3735683267,1.7e12,True,True", 6, "transact_time", "'1.7e12'"),
    ("3041249810,61839.00,0.1,3735683267,3735683267,1723161300002,yes,True", 7, "is_buyer_maker", "'yes'"),
    ("3041249810,61839.00,0.1", 4, "first_trade_id", "missing (the row has 3 columns)"),
    ("3041249810,NaN,0.1,3735683267,3735683267,1723161300002,True,True", 2, "price", "'NaN'"),
]


@pytest.mark.parametrize(("bad", "column", "name", "detail"), BAD_ROWS)
@pytest.mark.parametrize("header", [False, True])
def test_bad_row_is_named(tmp_path: Path, bad: str, column: int, name: str, detail: str, header: bool) -> None:
    """A row that cannot be read raises ValueError naming the file, its line and the column, after the good
    rows before it were read."""
    good = csv_lines(AGG_ROWS[:2], header=AGG_HEADER if header else None, micros=False, time_column=5)
    path = write_bulk(tmp_path, "BTCUSDT-aggTrades-2024-08-08.zip", [*good, bad, *good[-1:]])
    ticks = read_agg_trades(describe(path), received_at=RECEIVED)
    assert [next(ticks).trade_id, next(ticks).trade_id] == [3041249807, 3041249808]
    with pytest.raises(ValueError, match=r"BTCUSDT-aggTrades-2024-08-08\.zip") as caught:
        next(ticks)
    line = 4 if header else 3
    assert f": line {line}, column {column} ({name}): " in str(caught.value)
    assert detail in str(caught.value)


def test_kline_not_on_an_interval_boundary(tmp_path: Path) -> None:
    """A kline whose open time is not the start of its interval (seconds read as ms, a wrong file) is refused."""
    path = write_bulk(tmp_path, "ADABTC-5m-2021-11-28.csv", ["1638057660000,1,1,1,1,1,1638057959999,1,1,1,1,0"])
    with pytest.raises(ValueError, match=r"line 1, column 1 \(open_time\): not the start of a 5m interval"):
        list(read_klines(describe(path)))


@pytest.mark.parametrize(
    ("name", "kind", "symbol", "interval", "period"),
    [
        ("BTCUSDT-1m-2024-08-08.zip", Kind.KLINES, "BTCUSDT", "1m", "2024-08-08"),
        ("ETHBTC-1d-2024-08.zip", Kind.KLINES, "ETHBTC", "1d", "2024-08"),
        ("BTCUSDT-4h-2024-08.csv", Kind.KLINES, "BTCUSDT", "4h", "2024-08"),
        ("BTCUSDT-trades-2024-08-08.zip", Kind.TRADES, "BTCUSDT", None, "2024-08-08"),
        ("1000SHIBUSDT-aggTrades-2024-08.zip", Kind.AGG_TRADES, "1000SHIBUSDT", None, "2024-08"),
    ],
)
def test_file_names(name: str, kind: Kind, symbol: str, interval: str | None, period: str) -> None:
    """Kind, symbol, interval and period come from Binance's file names, daily or monthly, zip or csv."""
    f = describe(Path("/data") / name)
    assert (f.kind, f.symbol, f.interval, f.period) == (kind, symbol, interval, period)
    assert describe(name, symbol="adabtc").symbol == "ADABTC"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("BTCUSDT-3m-2024-08-08.zip", "klines interval '3m' is not supported; use one of 1m, 5m, 15m, 1h, 4h, 1d"),
        ("BTCUSDT-1s-2024-08-08.zip", "klines interval '1s' is not supported"),
        ("BTCUSDT-1mo-2024-08.zip", "klines interval '1mo' is not supported"),
        ("BTCUSDT-bookTicker-2024-08-08.zip", "files of kind 'bookTicker' are not supported"),
        ("BTCUSDT-1m-2024-08-08.zip.CHECKSUM", "not a Binance bulk file name"),
        ("prices.csv", "not a Binance bulk file name"),
    ],
)
def test_unsupported_names_are_refused(name: str, message: str) -> None:
    """A name that is not a supported Binance bulk file is refused with a message naming it and why."""
    with pytest.raises(ValueError, match="^" + re.escape(name)) as caught:
        describe(name)
    assert message in str(caught.value)


def test_bad_symbol_override() -> None:
    """The symbol override is an exchange symbol, not a canonical name."""
    with pytest.raises(ValueError, match="symbol 'BTC-USDT'"):
        describe("BTCUSDT-1m-2024-08-08.zip", symbol="BTC-USDT")


def test_broken_containers(tmp_path: Path) -> None:
    """Not a zip, a zip without exactly one CSV: ValueError naming the file."""
    fake = tmp_path / "BTCUSDT-1m-2024-08-08.zip"
    fake.write_text("not a zip")
    with pytest.raises(ValueError, match=r"BTCUSDT-1m-2024-08-08\.zip: not a zip file"):
        list(read_klines(describe(fake)))
    two = tmp_path / "BTCUSDT-1m-2024-08-09.zip"
    with zipfile.ZipFile(two, "w") as archive:
        archive.writestr("a.csv", "")
        archive.writestr("b.csv", "")
    with pytest.raises(ValueError, match=r"08-09\.zip: expected one \.csv file inside the zip, found 2"):
        list(read_klines(describe(two)))
    with pytest.raises(ValueError, match="a klines file, not aggTrades"):
        list(read_agg_trades(describe(two)))


def test_directories_and_missing_paths(tmp_path: Path) -> None:
    """A directory stands for its .zip and .csv files by name (checksums and subfolders left out); a missing
    path or an empty directory is named."""
    write_bulk(tmp_path, "BTCUSDT-trades-2024-08-09.zip", [])
    write_bulk(tmp_path, "BTCUSDT-1m-2024-08-08.csv", [])
    (tmp_path / "BTCUSDT-1m-2024-08-08.zip.CHECKSUM").write_text("abc  BTCUSDT-1m-2024-08-08.zip\n")
    (tmp_path / "sub").mkdir()
    files = bulk_files([tmp_path], symbol="ethusdt")
    assert [(f.path.name, f.symbol) for f in files] == [
        ("BTCUSDT-1m-2024-08-08.csv", "ETHUSDT"),
        ("BTCUSDT-trades-2024-08-09.zip", "ETHUSDT"),
    ]
    with pytest.raises(ValueError, match=f"^{re.escape(str(tmp_path / 'nope.zip'))}: no such file or directory$"):
        bulk_files([tmp_path / "BTCUSDT-1m-2024-08-08.csv", tmp_path / "nope.zip"])
    with pytest.raises(ValueError, match=r"sub: no \.zip or \.csv file in this directory"):
        bulk_files([tmp_path / "sub"])
