"""Every stored trade becomes candles (issue 17, item 2): importing aggTrades files leaves the 1m candle of every
minute between the first and the last trade, served by ``/api/v1/candles?fetch=false``; traded minutes are their
trades' OHLCV and quiet minutes flat at the previous close, zero-volume and synthetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from markets.imports import binance_files_import
from markets.models import Candle, Tick
from markets.services import candles_upsert
from markets.types import CandleBar
from tests.markets.agg_rows import MINUTE, agg_rows, expected_candles, mismatches, served_candles, write_zip
from tests.markets.api_requests import get_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("instruments")]

START = datetime(2024, 8, 6, 21, 0, tzinfo=UTC)
END = datetime(2024, 8, 9, 1, 30, tzinfo=UTC)  # two days and a half
QUIET = [
    (START + 5 * MINUTE, 1),  # one quiet minute
    (START + 9 * MINUTE, 2),
    (datetime(2024, 8, 6, 23, 15, tzinfo=UTC), 90),  # over midnight
    (datetime(2024, 8, 7, 10, 0, tzinfo=UTC), 420),  # seven hours
    (datetime(2024, 8, 8, 23, 58, tzinfo=UTC), 3),  # over midnight again
]
ROWS = agg_rows(START, END, QUIET)
DAY, HOUR_STEP = timedelta(days=1), timedelta(hours=1)
HOUR = {"exchange": "binance", "symbol": "BTCUSDT", "interval": "1h", "fetch": "false"}


def test_the_rows_are_what_the_test_needs() -> None:
    """The hand-made file: consecutive ids, times that never go back, the quiet minutes and the first and last
    minute as designed (what the other tests rely on)."""
    assert [r.agg_id for r in ROWS] == list(range(ROWS[0].agg_id, ROWS[0].agg_id + len(ROWS)))
    assert all(a.ms <= b.ms for a, b in pairwise(ROWS))
    assert (ROWS[0].minute, ROWS[-1].minute) == (START, END - MINUTE)
    expected = expected_candles(ROWS)
    assert len(expected) == (END - START) // MINUTE
    assert sum(c["synthetic"] for c in expected.values()) == sum(n for _, n in QUIET)


def test_a_multi_day_aggtrades_file_is_served_as_candles_every_minute(tmp_path: Path, client: Client) -> None:
    """One monthly-named file of two and a half days: every minute from the first trade's to the last one's is
    served; traded minutes are exactly their trades' OHLCV, quiet ones flat, zero-volume and synthetic; the hour
    candles of the first day are those minutes aggregated. Imported again, the candles are the same documents."""
    path = write_zip(tmp_path, "BTCUSDT-aggTrades-2024-08.zip", ROWS)
    expected = expected_candles(ROWS)
    (summary,) = binance_files_import(paths=[path])
    assert (summary.stored_as, summary.rows, summary.written, summary.candles) == (
        "ticks", len(ROWS), len(ROWS), len(expected),
    )  # fmt: skip
    served = served_candles(client, "BTCUSDT", START, END)
    assert mismatches(served, expected) == []
    assert {(c["source"], c["closed"]) for c in served.values()} == {("trades", True)}
    print(
        f"\n{len(ROWS):,} trades, {len(served):,} minutes served, {sum(c['synthetic'] for c in served.values())} quiet"
    )

    hours = get_json(client, "/api/v1/candles", {**HOUR, "start": START.isoformat(), "end": (START + DAY).isoformat()})
    assert [_hour(c) for c in hours["candles"]] == [_hour_of(expected, START + k * HOUR_STEP) for k in range(24)]

    before = list(Candle.objects.order_by("open_time").values())
    (again,) = binance_files_import(paths=[path])
    assert (again.written, again.already_present, again.candles) == (0, len(ROWS), len(expected))
    assert list(Candle.objects.order_by("open_time").values()) == before


def test_daily_files_imported_latest_first_leave_the_same_candles(tmp_path: Path, client: Client) -> None:
    """The same trades as daily files, imported from the last day back: the quiet minutes over midnight, between
    the trades of two files, get their flat candles whichever file comes second."""
    days: dict[str, list] = {}
    for r in ROWS:
        days.setdefault(r.minute.strftime("%Y-%m-%d"), []).append(r)
    paths = [write_zip(tmp_path, f"BTCUSDT-aggTrades-{day}.zip", rows) for day, rows in sorted(days.items())]
    assert len(paths) == 4
    for path in reversed(paths):
        binance_files_import(paths=[path])
    assert Tick.objects.count() == len(ROWS)
    assert mismatches(served_candles(client, "BTCUSDT", START, END), expected_candles(ROWS)) == []


def test_an_import_replaces_a_wrong_stored_candle_and_leaves_other_minutes_alone(tmp_path: Path) -> None:
    """A candle stored before the import for one of its minutes (an exchange kline that disagrees) is replaced by
    the one the trades make; a candle of a minute after the last trade, with no trade behind it, stays."""
    wrong = _bar(START + 2 * MINUTE, "1")
    outside = _bar(END + 10 * MINUTE, "2")
    candles_upsert(candles=[wrong, outside])
    binance_files_import(paths=[write_zip(tmp_path, "BTCUSDT-aggTrades-2024-08.zip", ROWS)])
    fixed = Candle.objects.get(symbol="BTCUSDT", open_time=wrong.open_time)
    want = expected_candles(ROWS)[wrong.open_time]
    assert (fixed.open, fixed.close, fixed.volume, fixed.source) == (
        want["open"],
        want["close"],
        want["volume"],
        "trades",
    )
    kept = Candle.objects.get(symbol="BTCUSDT", open_time=outside.open_time)
    assert (kept.close, kept.source) == (outside.close, "exchange")


def _hour(c: dict[str, Any]) -> tuple[Any, ...]:
    """An hour candle of the API as (open time, open, high, low, close, volume, trades)."""
    return (c["open_time"][:16], *(Decimal(c[k]) for k in ("open", "high", "low", "close", "volume")), c["trades"])


def _hour_of(minutes: dict[datetime, dict[str, Any]], at: datetime) -> tuple[Any, ...]:
    """The hour candle the 1m candles of the hour from ``at`` make (the first open, the last close, the sums)."""
    its = [minutes[at + k * MINUTE] for k in range(60)]
    return (
        at.strftime("%Y-%m-%dT%H:%M"),
        its[0]["open"],
        max(c["high"] for c in its),
        min(c["low"] for c in its),
        its[-1]["close"],
        sum((c["volume"] for c in its), Decimal(0)),
        sum(c["trades"] for c in its),
    )


def _bar(at: datetime, price: str) -> CandleBar:
    p = Decimal(price)
    return CandleBar(
        "binance", "BTCUSDT", "1m", at, at + MINUTE - MINUTE / 60_000, p, p, p, p, p, p, 1, p, p, source="exchange"
    )
