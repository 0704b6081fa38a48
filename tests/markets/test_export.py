"""``manage.py export`` writes the rows the JSON API answers, as CSV and Parquet that pandas reads back with equal
values; names bad input; never leaves a half file under the name; and holds one batch in memory, not the file."""

from __future__ import annotations

import io
import itertools
import math
import re
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from markets import export
from markets.export import export_plan, history_export
from markets.models import Instrument
from markets.reads import CANDLE_FIELDS, TICK_FIELDS
from markets.services import candles_upsert, ticks_ingest
from markets.types import CandleBar, Source, TradeTick
from tests.markets.api_requests import get_json

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 6, 2, tzinfo=UTC)  # a past Monday
MINUTE = timedelta(minutes=1)
MS = timedelta(milliseconds=1)
SYMBOL = "ETHBTC"  # tick 0.00001 (5 places), step 0.0001 (4 places): not the fixture's 2 and 5
QUIET = T0 + 4 * MINUTE
TIME_COLUMNS = {"ts", "received_at", "open_time", "close_time"}
DECIMAL_COLUMNS = {
    "price",
    "qty",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_volume",
    "taker_buy_quote_volume",
}


@pytest.fixture
def stored() -> Instrument:
    """ETHBTC with 40 ticks over 00:00-00:11 (none in the quiet minute 00:04, two sharing a millisecond) and
    ten 1m candles: 00:04 flat, zero-volume and synthetic, 00:09 still open, values with and without zeros
    past the tick, one quote volume finer than the tick, one quantity stored with an exponent."""
    instrument = Instrument.objects.create(
        exchange="binance",
        symbol=SYMBOL,
        canonical="ETH-BTC",
        base="ETH",
        quote="BTC",
        tick_size=Decimal("0.00001000"),
        step_size=Decimal("0.00010000"),
    )
    ticks = []
    for i in range(40):
        minute = i // 4 if i // 4 < 4 else i // 4 + 1  # 00:00-00:03 and 00:05-00:10
        ts = T0 + minute * MINUTE + (i % 4) * 13_001 * MS + MS
        ticks.append(
            TradeTick(
                exchange="binance",
                symbol=SYMBOL,
                trade_id=9_000_000_000 + i,  # above 2**31: stored as int64
                price=Decimal("0.05230") + Decimal(i) * Decimal("0.00001"),
                qty=Decimal("1E+1") if i == 3 else Decimal("0.5000") + Decimal(i) / 10_000,
                taker_side="buy" if i % 3 else "sell",
                ts=ts if i != 8 else ticks[7].ts,  # 7 and 8 share a millisecond
                received_at=ts + 37 * MS,
                source=Source.WS if i % 2 else Source.REST,
                first_trade_id=20_000 + 2 * i,
                last_trade_id=20_001 + 2 * i,
            )
        )
    ticks_ingest(ticks=ticks)
    bars = []
    for m in range(10):
        t = T0 + m * MINUTE
        p = Decimal("0.05230") + Decimal(m) / 100_000
        quiet = t == QUIET
        bars.append(
            CandleBar(
                exchange="binance",
                symbol=SYMBOL,
                interval="1m",
                open_time=t,
                close_time=t + MINUTE - MS,
                open=p,
                high=p if quiet else p + Decimal("0.00003"),
                low=p if quiet else p - Decimal("0.00002000"),
                close=p if quiet else p + Decimal("0.00001"),
                volume=Decimal(0) if quiet else Decimal("2.5") + m,
                quote_volume=Decimal(0) if quiet else Decimal("0.130751234") + m,  # finer than the tick
                trades=0 if quiet else 4,
                taker_buy_volume=Decimal(0) if quiet else Decimal("1.2500"),
                taker_buy_quote_volume=Decimal(0) if quiet else Decimal("0.0653800000"),
                source="trades",
                closed=m != 9,
                synthetic=quiet,
            )
        )
    candles_upsert(candles=bars)
    return instrument


def run(*args: str, bar: io.StringIO | None = None) -> str:
    """``manage.py export`` with ``args``: what it printed; its progress bar goes to ``bar`` if given."""
    out = io.StringIO()
    call_command("export", *args, *(() if bar else ("--no-progress",)), stdout=out, stderr=bar or io.StringIO())
    return out.getvalue()


def api_ticks(client: Client, start: str, end: str) -> list[dict[str, Any]]:
    """Every tick the API answers for the range, following ``next`` over pages of 7."""
    url: str | None = f"/api/v1/ticks?exchange=binance&symbol={SYMBOL}&start={start}&end={end}&limit=7"
    rows: list[dict[str, Any]] = []
    while url:
        body = get_json(client, url)
        rows += body["results"]
        url = body["next"]
    return rows


def api_candles(client: Client, start: str, end: str, interval: str) -> list[dict[str, Any]]:
    params = {"exchange": "binance", "symbol": SYMBOL, "start": start, "end": end, "interval": interval}
    return get_json(client, "/api/v1/candles", {**params, "fetch": "false"})["candles"]


def same(column: str, exported: Any, api: Any) -> bool:
    """An exported value equals the API's: decimals numerically, times as instants, booleans as true/false."""
    if column in DECIMAL_COLUMNS:
        return Decimal(exported) == Decimal(api)
    if column in TIME_COLUMNS:
        return pd.Timestamp(exported) == pd.Timestamp(api)
    if isinstance(api, bool):
        return exported in (api, str(api).lower())
    if isinstance(api, int):
        return int(exported) == api
    return exported == api


def assert_equal_rows(frame: pd.DataFrame, api: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    assert tuple(frame.columns) == columns
    assert len(frame) == len(api) > 0
    wrong = [
        (i, c, value, row[c])
        for i, (values, row) in enumerate(zip(frame.itertuples(index=False), api, strict=True))
        for c, value in zip(columns, values, strict=True)
        if not same(c, value, row[c])
    ]
    assert wrong == []


QUERIES = [
    pytest.param("ticks", None, "2025-06-02T00:01:30Z", "2025-06-02T00:08:40Z", 25, id="ticks"),
    pytest.param("candles", "1m", "2025-06-02T00:00:30Z", "2025-06-02T00:09:10Z", 9, id="candles-1m"),
    pytest.param("candles", "5m", "2025-06-02T00:00:00Z", "2025-06-02T00:10:00Z", 2, id="candles-5m"),
]


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(("what", "interval", "start", "end", "rows"), QUERIES)
def test_csv_and_parquet_hold_the_apis_values(
    client: Client, tmp_path: Path, what: str, interval: str | None, start: str, end: str, rows: int
) -> None:
    """CSV (read as text) and Parquet (read as typed columns) of a range hold exactly the rows and values the JSON
    API answers for it, in its order and with its field names, whatever the batch (all, two or one rows: a Parquet
    row group each); ticks span API pages, candles include the quiet minute (1m) or aggregate it (5m). The
    progress bar ends full."""
    api = api_ticks(client, start, end) if what == "ticks" else api_candles(client, start, end, interval or "1m")
    assert len(api) == rows
    columns = TICK_FIELDS if what == "ticks" else CANDLE_FIELDS
    extra = ("--interval", interval) if interval else ()
    args = ("--what", what, *extra, "--symbol", SYMBOL.lower(), "--start", start, "--end", end)
    for fmt, batch in itertools.product(("csv", "parquet"), ("50000", "2", "1")):
        path = tmp_path / f"{what}-{batch}.{fmt}"
        bar = io.StringIO()
        printed = run(*args, "--batch", batch, "--out", str(path), bar=bar)
        assert f"{rows:,} rows as {fmt} to {path}" in printed
        full = re.search(r"100%\|[^|]*\| (\S+)/(\S+) ", bar.getvalue())
        assert full, bar.getvalue()
        assert (float(full[1]), float(full[2])) == (rows, rows), bar.getvalue()
        frame = pd.read_csv(path, dtype=str) if fmt == "csv" else pd.read_parquet(path)
        assert_equal_rows(frame, api, columns)
        if fmt == "parquet":
            assert pq.ParquetFile(path).num_row_groups == math.ceil(rows / int(batch))
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.usefixtures("stored")
def test_csv_prints_the_contract_and_parquet_keeps_exact_types(tmp_path: Path) -> None:
    """CSV numbers are ``plain`` with the instrument's places (tick 5, step 4; a finer quote volume keeps its
    digits, an exponent is spelt out), times ISO with Z to the ms, booleans true/false; Parquet has exact
    decimal128(38, 18), timestamp[ms, UTC], int64 and bool columns and the query in its metadata."""
    common = ("--symbol", SYMBOL, "--start", "2025-06-02T00:00:00Z", "--end", "2025-06-02T00:10:00Z")
    run("--what", "ticks", *common, "--out", str(tmp_path / "t.csv"))
    run("--what", "candles", *common, "--out", str(tmp_path / "c.csv"))
    ticks = (tmp_path / "t.csv").read_text().splitlines()
    assert ticks[0] == ",".join(TICK_FIELDS)
    assert (
        ticks[1] == "9000000000,0.05230,0.5000,sell,2025-06-02T00:00:00.001Z,2025-06-02T00:00:00.038Z,rest,20000,20001"
    )
    assert ticks[4].split(",")[1:3] == ["0.05233", "10.0000"]  # 1E+1 with the step's places
    candles = (tmp_path / "c.csv").read_text().splitlines()
    assert candles[0] == ",".join(CANDLE_FIELDS)
    assert candles[1] == (
        "2025-06-02T00:00:00.000Z,2025-06-02T00:00:59.999Z,0.05230,0.05233,0.05228,0.05231,2.5000,0.130751234,4,"
        "1.2500,0.06538,trades,true,false"
    )
    assert candles[5] == (
        "2025-06-02T00:04:00.000Z,2025-06-02T00:04:59.999Z,0.05234,0.05234,0.05234,0.05234,0.0000,0.00000,0,"
        "0.0000,0.00000,trades,true,true"
    )
    assert candles[10].endswith(",trades,false,false")

    run("--what", "candles", "--interval", "5m", *common, "--out", str(tmp_path / "c.parquet"))
    schema = pq.read_schema(tmp_path / "c.parquet")
    assert {f.name: str(f.type) for f in schema} == {
        **dict.fromkeys(("open_time", "close_time"), "timestamp[ms, tz=UTC]"),
        **{c: "decimal128(38, 18)" for c in CANDLE_FIELDS if c in DECIMAL_COLUMNS},
        "trades": "int64",
        "source": "string",
        "closed": "bool",
        "synthetic": "bool",
    }
    assert {k.decode(): v.decode() for k, v in schema.metadata.items()} == {
        "what": "candles",
        "exchange": "binance",
        "symbol": SYMBOL,
        "interval": "5m",
        "start": "2025-06-02T00:00:00.000Z",
        "end": "2025-06-02T00:10:00.000Z",
        "tick_size": "0.00001",
        "step_size": "0.0001",
    }
    frame = pd.read_parquet(tmp_path / "c.parquet")
    assert frame["quote_volume"][0] == Decimal("0.130751234") * 4 + 0 + 1 + 2 + 3  # minutes 0-4, the 4th quiet
    assert frame["volume"][0] == Decimal("2.5") * 4 + 0 + 1 + 2 + 3
    assert list(frame["closed"]) == [True, False]  # 00:09 is open
    assert str(frame["open_time"].dtype) == "datetime64[ms, UTC]"


def test_csv_to_stdout(stored: Instrument) -> None:
    """``--out -`` writes the CSV to stdout and the summary to stderr."""
    out, err = io.StringIO(), io.StringIO()
    args = ("--what", "ticks", "--symbol", SYMBOL, "--start", "2025-06-02T00:00:00Z", "--end", "2025-06-02T00:01:00Z")
    call_command("export", *args, "--out", "-", "--no-progress", stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert lines[0] == ",".join(TICK_FIELDS)
    assert [line.split(",")[0] for line in lines[1:]] == [str(9_000_000_000 + i) for i in range(4)]
    assert "4 rows as csv to stdout" in err.getvalue()


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("what", ["ticks", "candles"])
def test_an_empty_range_is_a_header_or_an_empty_table(tmp_path: Path, what: str) -> None:
    """A range without data gives a CSV of the header alone and a Parquet file of no rows with the schema."""
    args = ("--what", what, "--symbol", SYMBOL, "--start", "2025-06-03T00:00:00Z", "--end", "2025-06-03T01:00:00Z")
    assert "0 rows as csv" in run(*args, "--out", str(tmp_path / "e.csv"))
    assert "0 rows as parquet" in run(*args, "--out", str(tmp_path / "e.parquet"))
    columns = TICK_FIELDS if what == "ticks" else CANDLE_FIELDS
    assert (tmp_path / "e.csv").read_text() == ",".join(columns) + "\n"
    frame = pd.read_parquet(tmp_path / "e.parquet")
    assert (tuple(frame.columns), len(frame)) == (columns, 0)


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"--symbol": "NOPEUSDT"}, "--symbol 'NOPEUSDT' is not a stored instrument of binance"),
        ({"--exchange": "mtgox"}, "--exchange 'mtgox' is not a known exchange"),
        ({"--start": "yesterday"}, "--start 'yesterday' is neither ISO-8601"),
        ({"--end": "2025-06-01T00:00:00Z"}, "--start must be before --end"),
        ({"--interval": "7m"}, "--interval '7m' is not an interval"),
        ({"--what": "trades"}, "--what 'trades' is neither ticks nor candles"),
        ({"--format": "xlsx"}, "--format 'xlsx' is neither csv nor parquet"),
        ({"--out": "{tmp}/missing/c.csv"}, "/missing does not exist"),
        ({"--out": "{tmp}/c.json"}, "--format is needed: c.json ends in neither .csv nor .parquet"),
        ({"--out": "-", "--format": "parquet"}, "--out - (stdout) is for csv only"),
        ({"--out": "{tmp}/old.csv"}, "--out {tmp}/old.csv exists; pass --force to replace it"),
    ],
)
def test_bad_input_is_named(tmp_path: Path, change: dict[str, str], named: str) -> None:
    """Each bad option is named in a CommandError (no traceback), and nothing is written."""
    (tmp_path / "old.csv").write_text("keep me")
    options = {
        "--what": "candles",
        "--symbol": SYMBOL,
        "--start": "2025-06-02T00:00:00Z",
        "--end": "2025-06-02T00:10:00Z",
        "--out": "{tmp}/c.csv",
    }
    options.update(change)
    args = [a.replace("{tmp}", str(tmp_path)) for kv in options.items() for a in kv]
    with pytest.raises(CommandError) as caught:
        run(*args)
    assert named.replace("{tmp}", str(tmp_path)) in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]
    assert (tmp_path / "old.csv").read_text() == "keep me"


@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_an_interrupted_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Rows that fail mid-stream (a reader that raises after its first batch) leave neither the file nor its
    ``.part``: an error as it is, Ctrl+C as a CommandError saying so. Ctrl+C after the first batch over an
    existing file with --force leaves the old file as it was."""
    real = export.export_batches
    failure: BaseException = RuntimeError("the database went away")

    def failing(*args: Any, **kwargs: Any) -> Iterator[export.Batch]:
        batches = real(*args, **kwargs)
        yield next(batches)
        raise failure

    monkeypatch.setattr(export, "export_batches", failing)
    out = tmp_path / f"ticks.{fmt}"
    args = ("--what", "ticks", "--symbol", SYMBOL, "--start", "2025-06-02T00:00Z", "--end", "2025-06-02T00:11Z")
    with pytest.raises(RuntimeError, match="went away"):
        run(*args, "--batch", "5", "--out", str(out))
    assert list(tmp_path.iterdir()) == []
    failure = KeyboardInterrupt()
    with pytest.raises(CommandError, match=f"interrupted: {out} was not written"):
        run(*args, "--batch", "5", "--out", str(out))
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    out.write_bytes(b"the previous export")
    plan = export_plan(what="ticks", exchange="binance", symbol=SYMBOL, start=T0, end=T0 + 11 * MINUTE)

    def interrupt(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        history_export(plan=plan, fmt=fmt, out=out, force=True, size=5, progress=interrupt)
    assert list(tmp_path.iterdir()) == [out]
    assert out.read_bytes() == b"the previous export"
    history_export(plan=plan, fmt=fmt, out=out, force=True, size=5)
    assert len(pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)) == 40


MANY = 200_000
BOUND = 24 * 2**20  # bytes: measured peaks are in the test's docstring


@pytest.mark.slow
def test_memory_stays_bounded_by_the_batch(tmp_path: Path, instruments: list[Instrument]) -> None:
    """Exporting 200,000 ticks 10,000 at a time holds one batch, not the file: the Python heap's peak (tracemalloc)
    stays under 24 MiB for CSV and Parquet, and Arrow's own allocations under 24 MiB at every batch. Measured:
    peaks of 8.5 MiB (CSV) and 7.1 MiB (Parquet), Arrow 1.7 MiB; the same export as one 200,000-row batch, as a
    whole-file implementation would hold it, peaks at 117 MiB (CSV) and 131 MiB (Parquet)."""
    t0 = datetime(2025, 6, 2, tzinfo=UTC)
    ticks_ingest(
        ticks=(
            TradeTick(
                exchange="binance",
                symbol="BTCUSDT",
                trade_id=i,
                price=Decimal(61_000_00 + i % 997) / 100,
                qty=Decimal(1 + i % 31) / 100_000,
                taker_side="buy" if i % 2 else "sell",
                ts=t0 + i * 7 * MS,
                received_at=t0 + (i * 7 + 40) * MS,
                source=Source.WS,
                first_trade_id=i,
                last_trade_id=i,
            )
            for i in range(MANY)
        )
    )
    plan = export_plan(what="ticks", exchange="binance", symbol="BTCUSDT", start=t0, end=t0 + timedelta(hours=1))
    peaks, arrow = {}, []
    for fmt in ("csv", "parquet"):
        arrow.clear()
        tracemalloc.start()
        try:
            summary = history_export(
                plan=plan,
                fmt=fmt,
                out=tmp_path / f"t.{fmt}",
                size=10_000,
                progress=lambda n: arrow.append(pa.total_allocated_bytes()),
            )
            peaks[fmt] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert summary.rows == MANY
        print(f"{fmt}: tracemalloc peak {peaks[fmt] / 2**20:.1f} MiB, arrow max {max(arrow) / 2**20:.1f} MiB")
        assert peaks[fmt] < BOUND
        assert max(arrow) < BOUND
    assert pq.ParquetFile(tmp_path / "t.parquet").num_row_groups == MANY // 10_000
