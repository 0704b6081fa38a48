"""``manage.py rebuild_candles`` rebuilds a range exactly (and twice the same), names bad input, and the backfill
paths (``manage.py backfill --what trades``, ``backfill_range``, ``backfill_history``) leave the 1m candles of old
minutes built from the trades they stored, checked against the simulator's own tape."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from bson import Decimal128
from django.core.management import CommandError, call_command
from django.test import Client

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.documents import to_ms
from markets.imports import binance_files_import
from markets.models import Candle, Gap, Instrument, Tick
from markets.store import collection
from markets.tasks import backfill_history, backfill_range
from tests.conftest import sim_config
from tests.markets.agg_rows import MINUTE, Row, expected_candles, mismatches, served_candles, write_zip
from tests.markets.test_candles_from_import import END, ROWS, START

pytestmark = pytest.mark.django_db


def rebuild(*args: str, progress: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("rebuild_candles", *args, *(() if progress else ("--no-progress",)), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def figures(text: str) -> dict[str, int]:
    """The summary's labelled numbers, e.g. {"traded minutes": 12, ...}."""
    return {m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^  (\S.*?)\s{2,}([\d,]+)", text, re.M)}


def candle_docs() -> list[dict[str, Any]]:
    return list(collection(Candle).find({}, {"_id": 0}).sort([("symbol", 1), ("open_time", 1)]))


@pytest.mark.usefixtures("instruments")
def test_rebuild_over_a_range_is_exact_idempotent_and_corrects_a_wrong_candle(tmp_path: Path, client: Client) -> None:
    """After an import, candles deleted over midnight and one made wrong are rebuilt exactly by the command, with a
    progress bar; a candle outside the range stays as it is; a second run changes no document."""
    binance_files_import(paths=[write_zip(tmp_path, "BTCUSDT-aggTrades-2024-08.zip", ROWS)])
    expected = expected_candles(ROWS)
    coll = collection(Candle)
    lo, hi = datetime(2024, 8, 6, 22, 0, tzinfo=UTC), datetime(2024, 8, 7, 12, 0, tzinfo=UTC)
    deleted = coll.delete_many({"open_time": {"$gte": lo + 30 * MINUTE, "$lt": hi - 30 * MINUTE}}).deleted_count
    assert deleted > 600
    wrong, outside = lo + 2 * MINUTE, lo - 5 * MINUTE  # traded minutes
    for t in (wrong, outside):
        coll.update_one({"symbol": "BTCUSDT", "open_time": t}, {"$set": {"close": Decimal128("1"), "synthetic": True}})

    out, err = rebuild("--symbol", "btcusdt", "--start", lo.isoformat(), "--end", hi.isoformat(), progress=True)
    served = served_candles(client, "BTCUSDT", START, END)
    assert [p.split(":")[0:3] == str(outside).split(":")[0:3] for p in mismatches(served, expected)] == [True, True]
    n = (hi - lo) // MINUTE
    quiet = sum(expected[t]["synthetic"] for t in expected if lo <= t < hi)
    assert figures(out) == {
        "minutes in range": n,
        "ticks read": sum(1 for r in ROWS if lo <= r.minute < hi),
        "traded minutes": n - quiet,
        "quiet minutes": quiet,
        "candles new": deleted,
        "without candle": 0,
    }
    assert re.search(rf"binance BTCUSDT 1m candles: 100%.*{n}/{n}", err), err  # the bar, in minutes

    before = candle_docs()
    again, _ = rebuild("--symbol", "BTCUSDT", "--start", lo.isoformat(), "--end", hi.isoformat())
    assert figures(again)["candles new"] == 0
    assert candle_docs() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--exchange", "nowhere", "--start", "2024-08-07"), "--exchange 'nowhere' is not a known exchange"),
        (("--start", "2024-08-08", "--end", "2024-08-07"), "--start must be before --end"),
        (("--start", "yesterdayish"), "--start 'yesterdayish' is neither ISO-8601"),
        (("--start", "2024-08-07", "--end", "2024-13-01"), "--end '2024-13-01' is neither ISO-8601"),
    ],
)
def test_rebuild_names_bad_input(args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError, match=re.escape(message)):
        rebuild("--symbol", "BTCUSDT", *args)
    assert not collection(Candle).count_documents({})


# -- the backfill paths, against the simulator -------------------------------------------------------------------


@contextmanager
def market(settings: Any, rate: float) -> Iterator[Simulator]:
    """The simulator as Binance with 30 hours of history of BTCUSDT and DOGEUSDT at ``rate`` trades a second each; no
    tick, candle, gap or instrument stored before or after (the task's raw writes are not rolled back)."""
    for model in (Tick, Candle, Gap, Instrument):
        collection(model).delete_many({})
    config = sim_config(symbols=("BTCUSDT", "DOGEUSDT"), explicit_symbols=True, rate=rate, history_days=1.25)
    try:
        with running_in_thread(config) as sim:
            settings.BINANCE_REST_URL = sim.url
            yield sim
    finally:
        for model in (Tick, Candle, Gap, Instrument):
            collection(model).delete_many({})


def truth(sim: Simulator, symbol: str, start: datetime, end: datetime) -> list[Row]:
    """The simulator's aggregate trades of ``[start, end)`` as file rows."""
    params: dict[str, Any] = {"symbol": symbol, "kind": "aggTrades", "start_ms": to_ms(start), "end_ms": to_ms(end) - 1}
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=60, params=params)
    resp.raise_for_status()
    records = [json.loads(line) for line in resp.text.splitlines() if line]
    return [Row(e["a"], Decimal(e["p"]), Decimal(e["q"]), e["f"], e["l"], e["T"], e["m"]) for e in records]


def stored(symbol: str, start: datetime, end: datetime) -> dict[datetime, dict[str, Any]]:
    """The stored 1m candles of ``[start, end)`` in the shape of :func:`expected_candles`."""
    keys = ("open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume")
    rows = Candle.objects.filter(symbol=symbol, interval="1m", open_time__gte=start, open_time__lt=end)
    return {c.open_time: {k: getattr(c, k) for k in (*keys, "synthetic", "closed")} for c in rows}


def agree(got: dict[datetime, dict[str, Any]], want: dict[datetime, dict[str, Any]]) -> list[str]:
    """Minutes where the stored candles differ from those the trades make (only the fields compared)."""
    trimmed = {t: {k: v for k, v in c.items() if k != "taker_buy_quote_volume"} for t, c in want.items()}
    return mismatches({t: {k: v for k, v in c.items() if k != "closed"} for t, c in got.items()}, trimmed)


def test_a_trades_backfill_of_old_minutes_leaves_their_candles(settings: Any) -> None:
    """``manage.py backfill --what trades`` over half an hour 26 hours back (older than the gap scan looks): every
    minute gets the candle its trades make, closed; the summary counts them. Then a hole punched in the stored
    trades and all the range's candles deleted: ``backfill_range`` over the hole brings back the trades and the
    candles of the minutes it spans, exactly."""
    start = iv.floor(datetime.now(UTC), "1m") - timedelta(hours=26)
    end = start + 30 * MINUTE
    out = io.StringIO()
    args = ("--what", "trades", "--symbol", "BTCUSDT", "--start", start.isoformat(), "--end", end.isoformat())
    with market(settings, rate=2.0) as sim:
        call_command("backfill", *args, "--no-progress", stdout=out, stderr=io.StringIO())
        want = expected_candles(truth(sim, "BTCUSDT", start, end))
        assert list(want) == [start + i * MINUTE for i in range(30)]
        assert agree(stored("BTCUSDT", start - MINUTE, end + MINUTE), want) == []
        assert all(c["closed"] for c in stored("BTCUSDT", start, end).values())
        assert re.search(r"^  1m candles\s+30  \(0 quiet", out.getvalue(), re.M), out.getvalue()
        _punch_and_refill(start, end, want)
    print(f"\n{sum(c['trades'] for c in want.values()):,} raw trades, {len(want)} minutes")


def _punch_and_refill(start: datetime, end: datetime, want: dict[datetime, dict[str, Any]]) -> None:
    """A third of the stored trades deleted, and every candle: ``backfill_range`` of the hole refills both."""
    ids = sorted(int(d["trade_id"]) for d in collection(Tick).find({"symbol": "BTCUSDT"}, {"trade_id": 1}))
    hole = ids[len(ids) // 3 : len(ids) // 2]
    collection(Tick).delete_many({"symbol": "BTCUSDT", "trade_id": {"$gte": hole[0], "$lte": hole[-1]}})
    collection(Candle).delete_many({"symbol": "BTCUSDT"})
    result = backfill_range.apply(args=("binance", "BTCUSDT", hole[0], hole[-1])).get()
    assert result == {"state": "filled", "missing": len(hole), "recovered": len(hole)}
    got = stored("BTCUSDT", start, end)
    spanned = {t for t in want if t in got}
    assert min(spanned) <= iv.floor(_ts(hole[0]), "1m")
    assert iv.floor(_ts(hole[-1]), "1m") <= max(spanned)
    assert agree(got, {t: want[t] for t in spanned}) == []


def test_backfill_history_builds_every_old_minute_quiet_ones_flat(settings: Any) -> None:
    """``backfill_history`` from 28 hours back on a symbol trading about once a minute: every minute from its first
    trade to its last one's before it ran has a candle, the traded ones their trades' OHLCV, the quiet ones flat at
    the previous close and synthetic."""
    since = iv.floor(datetime.now(UTC) - timedelta(hours=28), "1m")
    with market(settings, rate=1 / 60) as sim:
        result = backfill_history.apply(args=("binance", "DOGEUSDT", to_ms(since))).get()
        last = max(d["ts"] for d in collection(Tick).find({"symbol": "DOGEUSDT"}, {"ts": 1})).replace(tzinfo=UTC)
        rows = truth(sim, "DOGEUSDT", since, last + timedelta(milliseconds=1))
        got = stored("DOGEUSDT", since, iv.floor(last, "1m"))
    assert result["trades"] == len(rows)
    want = expected_candles(rows)
    want.pop(iv.floor(last, "1m"))  # the minute of the last trade may still have been trading
    assert len(want) > 1000
    assert agree(got, want) == []
    assert all(c["closed"] for c in got.values())
    print(f"\n{len(rows):,} trades, {len(want):,} minutes, {sum(c['synthetic'] for c in want.values())} quiet")


def _ts(trade_id: int) -> datetime:
    doc = collection(Tick).find_one({"symbol": "BTCUSDT", "trade_id": trade_id}, {"ts": 1})
    assert doc is not None
    return doc["ts"].replace(tzinfo=UTC)
