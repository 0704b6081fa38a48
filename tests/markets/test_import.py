"""Importing Binance bulk files into a real mongod: idempotent, exact, and the command around it."""

from __future__ import annotations

import re
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from markets.candles import build_candles
from markets.exchanges.binance_vision import describe, read_trades
from markets.imports import ImportSummary, binance_files_import
from markets.models import Candle, Tick
from tests.conftest import shared_file

ADABTC = "binance-vision/ADABTC-1m-2021-11-28.zip"
# BTCUSDT aggregate trades, ids 3041249807.. (aggTrades layout, ms; one a minute later)
AGG_LINES = [
    "3041249807,61837.63000000,0.06800000,3735683259,3735683260,1723161255342,True,True",
    "3041249808,61837.64000000,0.00100000,3735683261,3735683261,1723161255617,False,True",
    "3041249809,61839.00000000,0.51200000,3735683262,3735683266,1723161300001,true,True",
]
TRADE_LINES = [
    "3735683259,61837.63000000,0.02000000,1236.75260000,1723161255342,True,True",
    "3735683260,61837.63000000,0.04800000,2968.20624000,1723161255617,True,True",
    "3735683261,61837.64000000,0.00100000,61.83764000,1723161255618,False,True",
    "3735683262,61840.00000000,0.50000000,30920.00000000,1723161300000,False,True",
]


def write_zip(folder: Path, name: str, lines: list[str]) -> Path:
    """A Binance-style zip holding one CSV of the same name."""
    path = folder / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name.removesuffix(".zip") + ".csv", "".join(f"{line}\n" for line in lines))
    return path


@pytest.mark.django_db
def test_real_klines_imported_twice_are_stored_once() -> None:
    """The ADABTC day gives 1,440 exchange candles; the second import writes nothing; stored values are exact."""
    path = shared_file(ADABTC)
    reported: list[int] = []
    (first,) = binance_files_import(paths=[path], progress=reported.append)
    assert first == ImportSummary(path, "klines", "ADABTC", "candles 1m", 1440, 1440, 0)
    assert sum(reported) == 1440
    (second,) = binance_files_import(paths=[path])
    assert (second.rows, second.written, second.already_present) == (1440, 0, 1440)
    assert Candle.objects.filter(exchange="binance", symbol="ADABTC", interval="1m", source="exchange").count() == 1440
    last = Candle.objects.get(open_time=datetime(2021, 11, 28, 23, 59, tzinfo=UTC))
    # 1638143940000,0.00002784,0.00002785,0.00002781,0.00002784,19131.20000000,1638143999999,0.53258906,42,...
    assert (last.open, last.high, last.low, last.close) == (
        Decimal("0.00002784"), Decimal("0.00002785"), Decimal("0.00002781"), Decimal("0.00002784"),
    )  # fmt: skip
    assert (last.volume, last.quote_volume, last.trades) == (Decimal("19131.2"), Decimal("0.53258906"), 42)
    assert (last.taker_buy_volume, last.taker_buy_quote_volume) == (Decimal("10169.7"), Decimal("0.28310845"))
    assert last.close_time == datetime(2021, 11, 28, 23, 59, 59, 999000, tzinfo=UTC)
    assert last.closed
    assert not last.synthetic


@pytest.mark.django_db
def test_agg_trades_become_ticks_once(tmp_path: Path) -> None:
    """An aggTrades file becomes import ticks with the aggregate ids, the raw ids they cover and the taker's
    side; imported again (under another file name too) nothing is added."""
    path = write_zip(tmp_path, "BTCUSDT-aggTrades-2024-08-08.zip", AGG_LINES)
    (first,) = binance_files_import(paths=[path])
    assert (first.kind, first.stored_as, first.rows, first.written, first.already_present) == (
        "aggTrades", "ticks", 3, 3, 0,
    )  # fmt: skip
    stored = list(Tick.objects.filter(exchange="binance", symbol="BTCUSDT").order_by("trade_id"))
    assert [(t.trade_id, t.first_trade_id, t.last_trade_id, t.taker_side, t.source) for t in stored] == [
        (3041249807, 3735683259, 3735683260, "sell", "import"),
        (3041249808, 3735683261, 3735683261, "buy", "import"),
        (3041249809, 3735683262, 3735683266, "sell", "import"),
    ]
    assert (stored[0].price, stored[0].qty) == (Decimal("61837.63"), Decimal("0.068"))
    assert stored[0].ts == datetime(2024, 8, 8, 23, 54, 15, 342000, tzinfo=UTC)
    csv = tmp_path / "BTCUSDT-aggTrades-2024-08.csv"
    csv.write_text("".join(f"{line}\n" for line in AGG_LINES))
    again = binance_files_import(paths=[path, csv])
    assert [(s.written, s.already_present) for s in again] == [(0, 3), (0, 3)]
    assert Tick.objects.count() == 3


@pytest.mark.django_db
def test_raw_trades_become_candles_not_ticks(tmp_path: Path) -> None:
    """A raw trades file is stored as 1m candles built from its trades (source "trades"); no tick is stored,
    and importing it again writes nothing new."""
    path = write_zip(tmp_path, "BTCUSDT-trades-2024-08-08.zip", TRADE_LINES)
    (first,) = binance_files_import(paths=[path], symbol="ethusdt")
    assert (first.symbol, first.stored_as, first.rows, first.written, first.already_present) == (
        "ETHUSDT", "candles 1m", 4, 2, 0,
    )  # fmt: skip
    assert Tick.objects.count() == 0
    expected = build_candles(read_trades(describe(path, symbol="ETHUSDT")))
    stored = list(Candle.objects.filter(symbol="ETHUSDT", interval="1m").order_by("open_time"))
    fields = ("open_time", "open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume")
    assert [[getattr(c, f) for f in fields] for c in stored] == [[getattr(b, f) for f in fields] for b in expected]
    assert {c.source for c in stored} == {"trades"}
    assert stored[0].quote_volume == Decimal("4266.79648")  # the sum of Binance's quote_qty of those trades
    (second,) = binance_files_import(paths=[path], symbol="ETHUSDT")
    assert (second.written, second.already_present) == (0, 2)


@pytest.mark.django_db
def test_a_bad_row_stops_the_import_and_names_it(tmp_path: Path) -> None:
    """A bad row raises ValueError naming the file, line and column; the files imported before it stay."""
    good = write_zip(tmp_path, "BTCUSDT-aggTrades-2024-08-08.zip", AGG_LINES)
    bad = write_zip(tmp_path, "BTCUSDT-aggTrades-2024-08-09.zip", [AGG_LINES[0], "1,2,3"])
    with pytest.raises(ValueError, match=r"08-09\.zip: line 2, column 4 \(first_trade_id\): missing"):
        binance_files_import(paths=[good, bad])
    assert Tick.objects.count() == 3


@pytest.mark.django_db
def test_command_imports_a_directory_and_prints_a_summary(tmp_path: Path) -> None:
    """``import_binance_data`` takes files and directories and ends with a table of what each file did."""
    folder = tmp_path / "drop"
    folder.mkdir()
    write_zip(folder, "BTCUSDT-aggTrades-2024-08-08.zip", AGG_LINES)
    write_zip(folder, "BTCUSDT-trades-2024-08-08.zip", TRADE_LINES)
    out = StringIO()
    call_command("import_binance_data", shared_file(ADABTC), str(folder), "--no-progress", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["file", "kind", "symbol", "stored", "as", "rows", "written", "already", "present"]
    assert lines[1].split() == ["ADABTC-1m-2021-11-28.zip", "klines", "ADABTC", "candles", "1m", "1,440", "1,440", "0"]
    assert lines[2].split() == ["BTCUSDT-aggTrades-2024-08-08.zip", "aggTrades", "BTCUSDT", "ticks", "3", "3", "0"]
    # the aggTrades file's ticks already made the candles of those two minutes: the trades file replaces them
    assert lines[3].split() == ["BTCUSDT-trades-2024-08-08.zip", "trades", "BTCUSDT", "candles", "1m", "4", "0", "2"]
    assert lines[4].split() == ["3", "files", "1,447", "1,443", "2"]
    again = StringIO()
    err = StringIO()
    call_command("import_binance_data", str(folder), stdout=again, stderr=err)
    assert again.getvalue().splitlines()[-1].split() == ["2", "files", "7", "0", "5"]
    assert re.search(r"BTCUSDT-aggTrades-2024-08-08\.zip: 3(\.00)? rows \[.* rows/s\]", err.getvalue())  # the bar


@pytest.mark.django_db
def test_command_names_a_missing_path_before_importing_anything(tmp_path: Path) -> None:
    """A missing path is a one-line CommandError naming it, and nothing is imported."""
    good = write_zip(tmp_path, "BTCUSDT-aggTrades-2024-08-08.zip", AGG_LINES)
    missing = tmp_path / "BTCUSDT-aggTrades-2024-08-09.zip"
    with pytest.raises(CommandError, match=f"^{re.escape(str(missing))}: no such file or directory$"):
        call_command("import_binance_data", str(good), str(missing), "--no-progress")
    assert Tick.objects.count() == 0


@pytest.mark.django_db
def test_command_stops_at_a_bad_file_and_keeps_the_ones_before(tmp_path: Path) -> None:
    """A bad file ends the command with a CommandError naming it (line and column); the files before it are
    imported and listed."""
    good = write_zip(tmp_path, "BTCUSDT-aggTrades-2024-08-08.zip", AGG_LINES)
    bad = write_zip(tmp_path, "BTCUSDT-1m-2024-08-08.zip", ["1723161240000,1,2,0.5,1,x,1723161299999,1,1,1,1,0"])
    out = StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("import_binance_data", str(good), str(bad), "--no-progress", stdout=out)
    message = str(caught.value)
    assert message.startswith(f"{bad}: line 1, column 6 (volume): not a non-negative decimal number: 'x'")
    assert "\n" not in message
    assert Tick.objects.count() == 3
    assert "BTCUSDT-aggTrades-2024-08-08.zip" in out.getvalue()


def test_command_refuses_an_unsupported_interval(tmp_path: Path) -> None:
    """A klines file of an interval the project does not keep is refused by name, before any database work."""
    path = write_zip(tmp_path, "BTCUSDT-3m-2024-08-08.zip", [])
    with pytest.raises(CommandError, match="klines interval '3m' is not supported"):
        call_command("import_binance_data", str(path))


@pytest.mark.django_db
def test_trades_out_of_time_order_are_refused_by_file_name(tmp_path: Path) -> None:
    """A trades file whose times go back across a minute cannot give right candles: it is refused, named."""
    lines = [TRADE_LINES[0], TRADE_LINES[3], TRADE_LINES[1].replace("3735683260", "3735683263")]
    path = write_zip(tmp_path, "BTCUSDT-trades-2024-08-08.zip", lines)
    with pytest.raises(ValueError, match=r"trades-2024-08-08\.zip: trade 3735683263 .* not in time order"):
        binance_files_import(paths=[path])
