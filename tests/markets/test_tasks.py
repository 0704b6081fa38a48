"""Celery's safety net: beat sends ``scan_gaps`` every minute, the scan finds holes in stored trade ids and missing
1m candles and queues their fills, exchange tasks retry with back-off. The fixtures and helpers here serve the
worker's tests too (``test_tasks_worker.py``, ``test_worker_metrics.py``); the scan's arithmetic is tested in
``test_scan.py``."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
from django.conf import settings

from markets import intervals as iv
from markets.exchanges.errors import BadRequest, ExchangeError
from markets.models import Candle, Gap, Tick
from markets.scan import ScanConfig
from markets.services import candles_rebuild, ticks_ingest
from markets.store import collection
from markets.tasks import backfill_range, gaps_scan, scan_gaps
from markets.types import Source, TradeTick
from tests.conftest import BROKER_DB, wait_for
from tradingsite.celery import app
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
MINUTE = timedelta(minutes=1)
BEAT_DB = 12  # a Redis database of its own: the channel layer uses 0, the cache 1, the broker BROKER_DB


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
    """Delete the stored ticks of ``symbol`` with ids ``first..last``: a hole in the record."""
    collection(Tick).delete_many({"symbol": symbol, "trade_id": {"$gte": first, "$lte": last}})


@pytest.fixture
def no_market_data(transactional_db: None) -> None:
    """The test database without ticks, candles or gaps: a scan covers every symbol stored, and tests that
    roll back their transaction do not roll back raw pymongo writes."""
    for model in (Tick, Candle, Gap):
        collection(model).delete_many({})


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
        "held": 0,
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


# --- a real beat -----------------------------------------------------------------------------------------


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
