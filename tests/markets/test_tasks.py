"""Celery's safety net: ``scan_gaps`` finds holes in stored trade ids and missing 1m candles, a real worker
fills them exactly from the exchange (the simulator), and beat sends the scan every minute."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import requests
from django.conf import settings
from django.db import connection
from hypothesis import given
from hypothesis import strategies as st

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.backfill import trades_backfill
from markets.exchanges.base import Source, TradeTick
from markets.exchanges.errors import BadRequest, ExchangeError
from markets.gaps import id_holes
from markets.models import Candle, Gap, Tick
from markets.scan import (
    ScanConfig,
    closed_until,
    hole_minutes,
    holes_by_count,
    minutes_to_rebuild,
    plan_holes,
    rebuild_until,
)
from markets.services import candles_rebuild, ticks_ingest
from markets.tasks import backfill_range, gaps_scan, scan_gaps
from markets.venues import rest_adapter
from tests.conftest import BROKER_DB, sim_config, wait_for
from tradingsite.celery import app
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
GRACE = timedelta(seconds=2)
BEAT_DB = 12  # a Redis database of its own: the channel layer uses 0, the cache 1, the broker BROKER_DB


# --- the pure arithmetic (markets.scan) -------------------------------------------------------------------


def counted(present: set[int]) -> tuple[Callable[[int, int], int], Callable[[int, int], list[int]], list[int]]:
    """``count`` and ``ids`` over a set of ids, and a log of the widths ``ids`` was asked to read."""
    reads: list[int] = []

    def count(a: int, b: int) -> int:
        return sum(1 for i in present if a <= i <= b)

    def ids(a: int, b: int) -> list[int]:
        reads.append(b - a + 1)
        return sorted(i for i in present if a <= i <= b)

    return count, ids, reads


@given(st.sets(st.integers(0, 2000)), st.integers(0, 2000), st.integers(0, 2000), st.integers(1, 64))
def test_holes_by_count_are_exactly_the_absent_ids(present: set[int], a: int, b: int, leaf: int) -> None:
    """Halving by counts finds the same holes as reading every id, merged across the halves."""
    first, last = min(a, b), max(a, b)
    count, ids, _ = counted(present)
    assert holes_by_count(count, ids, first, last, leaf=leaf) == id_holes(sorted(present), first, last)


def test_a_complete_range_costs_one_count_and_no_read() -> None:
    """A million contiguous ids: one count, nothing read; one hole in them: only small ranges are read."""
    calls: list[tuple[int, int]] = []

    def count(a: int, b: int) -> int:
        calls.append((a, b))
        return (b - a + 1) - max(0, min(b, 500_010) - max(a, 500_000) + 1) * hole

    hole = 0
    assert holes_by_count(count, lambda a, b: [], 1, 1_000_000) == []
    assert calls == [(1, 1_000_000)]
    hole = 1
    read: list[int] = []

    def ids(a: int, b: int) -> list[int]:
        read.append(b - a + 1)
        return [i for i in range(a, b + 1) if not 500_000 <= i <= 500_010]

    assert holes_by_count(count, ids, 1, 1_000_000, leaf=4096) == [(500_000, 500_010)]
    assert sum(read) <= 2 * 4096


def test_plan_leaves_busy_and_unrecoverable_holes() -> None:
    """A hole overlapping a range being filled is busy; one inside a range the exchange lacks is left."""
    plan = plan_holes([(10, 20), (30, 40), (50, 60), (70, 80)], busy=[(35, 90)], unrecoverable=[(8, 22), (50, 55)])
    assert plan.unrecoverable == [(10, 20)]
    assert plan.busy == [(30, 40), (50, 60), (70, 80)]
    assert plan.fill == []
    assert plan_holes([(1, 2)]).fill == [(1, 2)]


@pytest.mark.parametrize(
    ("now", "first_open"),
    [
        (T0 + timedelta(seconds=61), T0),  # 12:00 closes at 12:01:02
        (T0 + timedelta(seconds=62), T0 + MINUTE),
        (T0 + timedelta(seconds=119), T0 + MINUTE),
    ],
)
def test_a_minute_is_closed_one_minute_and_the_grace_after_it_opens(now: datetime, first_open: datetime) -> None:
    """``closed_until`` is the open time of the first minute still open."""
    assert closed_until(now, GRACE) == first_open


def test_minutes_to_rebuild_are_closed_with_ticks_without_a_closed_candle() -> None:
    """Minutes with ticks, closed, without a closed candle and not touched by a hole being filled."""
    ticks = [T0 + i * MINUTE for i in range(8)]
    got = minutes_to_rebuild(
        ticks,
        {T0, T0 + MINUTE},
        now=T0 + 7 * MINUTE + timedelta(seconds=1),
        grace=GRACE,
        exclude=hole_minutes([(T0 + 2 * MINUTE + timedelta(seconds=59), T0 + 3 * MINUTE + timedelta(seconds=1))]),
    )
    assert got == [T0 + 4 * MINUTE, T0 + 5 * MINUTE]


def test_the_rebuild_stops_where_the_checked_ids_stop() -> None:
    """Minutes after the last checked id wait; so does its own minute when ids are missing right after it."""
    now = T0 + 10 * MINUTE
    last = (100, T0 + 5 * MINUTE + timedelta(seconds=30))
    assert rebuild_until(now=now, grace=GRACE, last=last, after=None) == T0 + 9 * MINUTE
    assert (
        rebuild_until(now=now, grace=GRACE, last=last, after=(101, T0 + 5 * MINUTE + timedelta(seconds=40)))
        == T0 + 5 * MINUTE
    )
    assert rebuild_until(now=now, grace=GRACE, last=last, after=(101, T0 + 6 * MINUTE)) == T0 + 6 * MINUTE
    assert rebuild_until(now=now, grace=GRACE, last=last, after=(150, T0 + 6 * MINUTE)) == T0 + 5 * MINUTE


def test_beat_sends_scan_gaps_every_60_s_and_keeps_its_file_under_data() -> None:
    """The beat schedule is Celery's own, from settings: scan_gaps every 60 s, expiring after one interval
    (a later scan covers everything); beat's schedule file is under .data/, not the repository root."""
    app.loader.import_default_modules()
    entries = [e for e in app.conf.beat_schedule.values() if e["task"] == "markets.tasks.scan_gaps"]
    assert len(entries) == 1
    assert entries[0]["schedule"] == 60
    assert entries[0]["options"]["expires"] == 60
    assert {"markets.tasks.scan_gaps", "markets.tasks.backfill_range"} <= set(app.tasks)
    if "CELERY_BEAT_SCHEDULE_FILENAME" not in os.environ:
        assert Path(app.conf.beat_schedule_filename).parent == ROOT / ".data"


def test_backfill_range_retries_exchange_errors_with_backoff() -> None:
    """Exchange errors are retried with exponential back-off and jitter; a bad request is not retried."""
    assert backfill_range.autoretry_for == (ExchangeError,)
    assert backfill_range.dont_autoretry_for == (BadRequest,)
    assert backfill_range.retry_backoff
    assert backfill_range.retry_jitter
    assert backfill_range.max_retries >= 5


# --- the scan over stored data, in this process -------------------------------------------------------------


def tick(trade_id: int, ts: datetime) -> TradeTick:
    return TradeTick(
        "binance",
        "BTCUSDT",
        trade_id,
        Decimal("60000.5") + trade_id,
        Decimal("0.001"),
        "buy",
        ts,
        ts,
        Source.REST,
        trade_id,
        trade_id,
    )


def delete_ids(symbol: str, first: int, last: int) -> None:
    connection.database[Tick._meta.db_table].delete_many({"symbol": symbol, "trade_id": {"$gte": first, "$lte": last}})


@pytest.fixture
def no_market_data(transactional_db: None) -> None:
    """The test database without ticks, candles or gaps: a scan covers every symbol stored, and tests that
    roll back their transaction do not roll back raw pymongo writes."""
    for model in (Tick, Candle, Gap):
        connection.database[model._meta.db_table].delete_many({})


@pytest.fixture
def broker(dev_stack: dict[str, Service]) -> Iterator[redis.Redis]:
    """This process's Celery app sends to a Redis database of its own; yields a client of that database."""
    url = f"{dev_stack['redis'].uri.rsplit('/', 1)[0]}/{BROKER_DB}"
    app.conf.broker_url = url
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


def queued(client: redis.Redis) -> list[tuple[str, list[Any]]]:
    """(task name, args) of the messages waiting in the default queue, oldest first."""
    out = []
    for raw in reversed(client.lrange("celery", 0, -1)):
        message = json.loads(raw)
        args, _, _ = json.loads(base64.b64decode(message["body"]))
        out.append((message["headers"]["task"], args))
    return out


@pytest.mark.usefixtures("no_market_data")
def test_scan_finds_holes_and_missing_candles_and_leaves_the_streams_part(broker: redis.Redis) -> None:
    """Over stored ticks (one every 2 s for 13 minutes) with four holes: the hole nobody fills is recorded
    as a filling Gap and queued; one a stream is filling (a fresh Gap) and one the exchange lacks (an
    unrecoverable Gap) are left; the open tail newer than the settle time is not looked at. Closed minutes
    with ticks but no closed candle are queued for a rebuild, except those a hole's fill rebuilds itself."""
    base = iv.floor(datetime.now(UTC), "1m") - 20 * MINUTE
    now = base + 12 * MINUTE + timedelta(seconds=45)  # the scan's clock, 7+ minutes ago
    ticks_ingest(ticks=[tick(1000 + k, base + timedelta(seconds=2 * k)) for k in range(383)])  # to 12:44
    candles_rebuild(exchange="binance", symbol="BTCUSDT", minutes=[base, base + MINUTE], now=now)
    candles_rebuild(exchange="binance", symbol="BTCUSDT", minutes=[base + 3 * MINUTE], now=base + 3 * MINUTE)
    assert not Candle.objects.get(open_time=base + 3 * MINUTE).closed  # a stream died before closing it
    delete_ids("BTCUSDT", 1060, 1064)  # minute 2: to fill
    delete_ids("BTCUSDT", 1150, 1155)  # minute 5: a live stream is on it
    Gap.objects.create(
        exchange="binance", symbol="BTCUSDT", kind="trades", start=1148, end=1160, missing=13, state=Gap.State.FILLING
    )
    delete_ids("BTCUSDT", 1240, 1241)  # minute 8: the exchange does not have them
    Gap.objects.create(
        exchange="binance",
        symbol="BTCUSDT",
        kind="trades",
        start=1240,
        end=1241,
        missing=2,
        state=Gap.State.UNRECOVERABLE,
    )
    delete_ids("BTCUSDT", 1370, 1375)  # 12:20-12:30, within the last 30 s: the stream's

    (scan,) = gaps_scan(config=ScanConfig(), now=now)
    assert scan.holes.fill == [(1060, 1064)]
    assert scan.holes.busy == [(1150, 1155)]
    assert scan.holes.unrecoverable == [(1240, 1241)]
    # 0, 1 have closed candles; 1-2 and 4-5 are rebuilt by the fills; 12 is not closed
    assert scan.minutes == [base + m * MINUTE for m in (3, 6, 7, 8, 9, 10, 11)]
    gap = Gap.objects.get(start=1060)
    assert (gap.end, gap.missing, gap.state) == (1064, 5, Gap.State.FILLING)
    assert Gap.objects.count() == 3

    summary = scan_gaps()  # now, with the real clock: the tail is old enough; the first hole is busy now
    assert summary == {
        "symbols": 1,
        "holes": 4,
        "missing_ids": 19,
        "queued": 1,
        "busy": 2,
        "unrecoverable": 1,
        "minutes": 7,
        "quiet": 0,
    }
    assert queued(broker) == [
        ("markets.tasks.backfill_range", ["binance", "BTCUSDT", 1370, 1375]),
        (
            "markets.tasks.rebuild_candles",
            ["binance", "BTCUSDT", [int((base + m * MINUTE).timestamp() * 1000) for m in (3, 6, 7, 8, 9, 10, 11)]],
        ),
    ]
    assert Gap.objects.get(start=1370).state == Gap.State.FILLING


# --- a real worker and a real beat ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """A synthetic market at 10 trades/s with a day of history."""
    with running_in_thread(sim_config(rate=10.0)) as s:
        yield s


def celery_env(dev_stack: dict[str, Service], redis_db: int, **extra: str) -> dict[str, str]:
    return os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
        "REDIS_URL": f"{dev_stack['redis'].uri.rsplit('/', 1)[0]}/{redis_db}",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def stop_all(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a warm shutdown), wait; nothing of it may be left running."""
    try:
        family = [proc.pid, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        family = [proc.pid]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        pytest.fail("celery did not stop within 20 s of SIGTERM")
    left = [p for p in family if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left behind: {left}"


@pytest.fixture
def worker(
    django_db_setup: None,
    dev_stack: dict[str, Service],
    sim: Simulator,
    broker: redis.Redis,
    settings: Any,
    tmp_path: Path,
) -> Iterator[Path]:
    """``celery -A tradingsite worker`` (threads pool, 2 threads) on the test database, the test Redis and
    the simulator; yields its log file. Stopped, with nothing left behind, at the end."""
    settings.BINANCE_REST_URL = sim.url
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tradingsite",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                "--hostname",
                "test-worker@%h",
            ],
            cwd=ROOT,
            env=celery_env(dev_stack, BROKER_DB, BINANCE_REST_URL=sim.url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("the worker to be ready", lambda: " ready." in log.read_text(), 30, proc, log)
        yield log
        assert proc.poll() is None, log.read_text()
    finally:
        stop_all(proc)


def stored_ids(symbol: str) -> list[int]:
    coll = connection.database[Tick._meta.db_table]
    return [int(d["trade_id"]) for d in coll.find({"symbol": symbol}, {"trade_id": 1}).sort("trade_id", 1)]


def truth(sim: Simulator, symbol: str, **params: int) -> list[dict[str, Any]]:
    resp = requests.get(f"{sim.url}/_sim/truth", timeout=60, params={"symbol": symbol, "kind": "aggTrades", **params})
    resp.raise_for_status()
    return [json.loads(line) for line in resp.text.splitlines() if line]


def store_minutes(symbol: str, minutes: int) -> tuple[datetime, datetime]:
    """Every trade of the ``minutes`` whole minutes ending two minutes ago, from the exchange; no candle."""
    end = iv.floor(datetime.now(UTC), "1m") - 2 * MINUTE
    start = end - minutes * MINUTE
    adapter = rest_adapter("binance")
    try:
        trades_backfill(adapter=adapter, exchange="binance", symbol=symbol, start=start, end=end)
    finally:
        adapter.close()
    return start, end


def assert_candles_equal_truth(sim: Simulator, symbol: str, start: datetime, end: datetime) -> None:
    """One closed 1m candle per minute of [start, end), equal to one computed here from the truth."""
    minutes: dict[datetime, list[dict[str, Any]]] = {}
    for e in truth(sim, symbol, start_ms=int(start.timestamp() * 1000), end_ms=int(end.timestamp() * 1000) - 1):
        minutes.setdefault(iv.floor(datetime.fromtimestamp(e["T"] / 1000, UTC), "1m"), []).append(e)
    stored = {c.open_time: c for c in Candle.objects.filter(symbol=symbol, interval="1m", closed=True)}
    assert set(stored) == set(minutes) == set(iv.opens(start, end, "1m"))
    for minute, trades in minutes.items():
        c = stored[minute]
        prices = [Decimal(e["p"]) for e in trades]
        want = (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            sum(Decimal(e["q"]) for e in trades),
            sum(e["l"] - e["f"] + 1 for e in trades),
        )
        assert (c.open, c.high, c.low, c.close, c.volume, c.trades) == want, f"candle {minute} differs from the truth"


@pytest.mark.slow
@pytest.mark.usefixtures("no_market_data")
def test_worker_refills_exactly_the_deleted_ids(sim: Simulator, worker: Path) -> None:
    """Eight minutes of stored trades with two runs of ids deleted: scan_gaps queues a backfill per hole and
    a rebuild of the candles; the worker stores exactly the simulator's ids again (none missing, none twice),
    both Gaps say filled with every trade recovered, and every minute has a closed candle equal to the
    truth. A second scan finds nothing to do."""
    start, end = store_minutes("BTCUSDT", 8)
    ids = stored_ids("BTCUSDT")
    n = len(ids)
    assert n > 100
    # Chosen from the count, not fixed indexes: how many trades eight minutes hold depends on the start time.
    holes = [(ids[n // 6], ids[n // 2]), (ids[2 * n // 3], ids[2 * n // 3 + 9])]
    for a, b in holes:
        delete_ids("BTCUSDT", a, b)

    summary = scan_gaps()
    missing = sum(b - a + 1 for a, b in holes)
    assert (summary["holes"], summary["missing_ids"], summary["queued"]) == (2, missing, 2)
    assert summary["minutes"] > 0
    filled = Gap.objects.filter(symbol="BTCUSDT", state=Gap.State.FILLED)
    done = lambda: filled.count() == 2 and Candle.objects.filter(symbol="BTCUSDT", closed=True).count() == 8  # noqa: E731
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, f"not filled within 30 s:\n{worker.read_text()[-4000:]}"
        time.sleep(0.1)

    assert stored_ids("BTCUSDT") == ids == [e["a"] for e in truth(sim, "BTCUSDT", from_id=ids[0], to_id=ids[-1])]
    for a, b in holes:
        gap = Gap.objects.get(symbol="BTCUSDT", kind="trades", start=a)
        assert (gap.end, gap.state, gap.missing, gap.recovered) == (b, Gap.State.FILLED, b - a + 1, b - a + 1)
    assert_candles_equal_truth(sim, "BTCUSDT", start, end)
    assert scan_gaps() | {"symbols": 0} == {
        "symbols": 0,
        "holes": 0,
        "missing_ids": 0,
        "queued": 0,
        "busy": 0,
        "unrecoverable": 0,
        "minutes": 0,
        "quiet": 0,
    }
    assert "markets.tasks.backfill_range" in worker.read_text()


@pytest.mark.slow
@pytest.mark.usefixtures("no_market_data")
def test_exchange_errors_are_retried_with_backoff_until_the_hole_fills(sim: Simulator, worker: Path) -> None:
    """With the exchange answering 500 to the fill's first three requests (all the tries one run of the task
    makes), the task is retried by Celery after a back-off and the hole fills exactly."""
    store_minutes("ETHUSDT", 3)
    ids = stored_ids("ETHUSDT")
    a, b = ids[100], ids[199]
    delete_ids("ETHUSDT", a, b)
    requests.post(
        f"{sim.url}/_sim/rest/fault", timeout=5, json={"status": 500, "count": 3, "path_prefix": "/api/v3/aggTrades"}
    ).raise_for_status()

    assert scan_gaps()["queued"] == 1
    gap = Gap.objects.filter(symbol="ETHUSDT", start=a, state=Gap.State.FILLED)
    deadline = time.monotonic() + 30
    while not gap.exists():
        assert time.monotonic() < deadline, f"not filled within 30 s:\n{worker.read_text()[-4000:]}"
        time.sleep(0.1)

    assert stored_ids("ETHUSDT") == ids
    assert requests.get(f"{sim.url}/_sim/status", timeout=5).json()["faults_injected"]["rest_500"] == 3
    log = worker.read_text()
    assert "Retry in" in log, log[-4000:]
    assert "ExchangeUnavailable" in log


@pytest.mark.slow
def test_beat_queues_scan_gaps_on_its_schedule(dev_stack: dict[str, Service], tmp_path: Path) -> None:
    """``celery -A tradingsite beat`` with the interval shortened to 1 s sends markets.tasks.scan_gaps to the
    broker, with an expiry, and keeps its schedule in the file it is given."""
    env = celery_env(
        dev_stack, BEAT_DB, SCAN_GAPS_SECONDS="1", CELERY_BEAT_SCHEDULE_FILENAME=str(tmp_path / "beat" / "schedule")
    )
    client = redis.Redis.from_url(env["REDIS_URL"])
    client.flushdb()
    (tmp_path / "beat").mkdir()
    log = tmp_path / "beat.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tradingsite", "beat", "--loglevel", "INFO"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for("beat to send a scan", lambda: client.llen("celery") >= 1, 20, proc, log)
    finally:
        stop_all(proc)
    messages = [json.loads(raw) for raw in client.lrange("celery", 0, -1)]
    client.flushdb()
    client.close()
    assert {m["headers"]["task"] for m in messages} == {"markets.tasks.scan_gaps"}
    assert all(m["headers"]["expires"] for m in messages), "a scan nobody ran within its interval expires"
    assert "Sending due task scan-gaps (markets.tasks.scan_gaps)" in log.read_text()
    assert list((tmp_path / "beat").iterdir()), "the schedule file is where it was told to be"
