"""The gap scan leaves to a running backfill the range it holds (``markets.leases.holds``): nothing is queued for a
held hole, the scan's log names the holder, and once the hold is released (or its holder died and it expired) the
hole is queued as any other. ``manage.py backfill`` holds its range while it runs and releases it at the end."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from django.core.cache import cache
from django.db import connection

from exchangesim.server import running_in_thread
from markets import intervals as iv
from markets.history_queue import backfill_queue, dedup_key
from markets.leases.holds import HOLDS, live_holds, range_held
from markets.models import Gap
from markets.scan import ScanConfig
from markets.services import ticks_ingest
from markets.tasks import gaps_scan, scan_gaps
from tests.conftest import sim_config, wait_for
from tests.markets.test_tasks import broker, celery_env, delete_ids, no_market_data, queued, tick  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def a_hole(no_market_data: None) -> Iterator[tuple[datetime, datetime]]:  # noqa: F811
    """Ticks 1000..1382, one every 2 s from 20 minutes ago, without ids 1060..1064; the scan's clock ``now`` and
    the time of tick 1060 (minute 2)."""
    connection.database[HOLDS].delete_many({})
    base = iv.floor(datetime.now(UTC), "1m") - 20 * MINUTE
    ticks_ingest(ticks=[tick(1000 + k, base + timedelta(seconds=2 * k)) for k in range(383)])
    delete_ids("BTCUSDT", 1060, 1064)
    yield base + 12 * MINUTE + timedelta(seconds=45), base + timedelta(seconds=120)
    connection.database[HOLDS].delete_many({})


def test_a_held_id_range_is_not_queued_until_it_is_released(a_hole: tuple[datetime, datetime]) -> None:
    """While a gap fill holds ids 1050..1070 the scan records no Gap and queues nothing for hole 1060..1064 (it
    is listed as held, naming the holder); released, the next scan queues it."""
    now, _ = a_hole
    hold = {"exchange": "binance", "symbol": "BTCUSDT", "first_id": 1050, "last_id": 1070}
    with range_held(connection.database, holder="celery backfill_range (test)", **hold):
        (scan,) = gaps_scan(config=ScanConfig(), now=now)
        assert scan.holes.fill == []
        [(a, b, who)] = scan.holes.held
        assert (a, b) == (1060, 1064)
        assert who.startswith("celery backfill_range (test) (ids 1050..1070;")
        assert not Gap.objects.filter(start=1060).exists()
    assert live_holds(connection.database, "binance", "BTCUSDT") == []
    (scan,) = gaps_scan(config=ScanConfig(), now=now)
    assert scan.holes.fill == [(1060, 1064)]
    assert scan.holes.held == []


def test_a_held_time_range_covers_the_holes_whose_trades_lie_in_it(a_hole: tuple[datetime, datetime]) -> None:
    """A manual backfill holds times, not ids: a hole whose neighbouring ticks lie in its range is held; a hold
    of other times or of another symbol holds nothing."""
    now, at = a_hole
    db = connection.database
    other = {"exchange": "binance", "symbol": "ETHUSDT", "start": at - MINUTE, "end": at + MINUTE}
    elsewhere = {"exchange": "binance", "symbol": "BTCUSDT", "start": at + 5 * MINUTE, "end": at + 9 * MINUTE}
    with range_held(db, holder="other symbol", **other), range_held(db, holder="other times", **elsewhere):
        (scan,) = gaps_scan(config=ScanConfig(), now=now)
        assert scan.holes.fill == [(1060, 1064)]
    Gap.objects.all().delete()
    mine = {"exchange": "binance", "symbol": "BTCUSDT", "start": at - MINUTE, "end": at + MINUTE}
    with range_held(db, holder="manage.py backfill trades (test)", **mine):
        (scan,) = gaps_scan(config=ScanConfig(), now=now)
        assert scan.holes.fill == []
        assert [(a, b) for a, b, _ in scan.holes.held] == [(1060, 1064)]


def test_the_hold_of_a_dead_holder_expires(a_hole: tuple[datetime, datetime]) -> None:
    """A holder that died renews nothing: once its hold's expiry (the database's clock) has passed, the scan
    queues the hole; a hold renewed within its lease still holds."""
    now, _ = a_hole
    coll = connection.database[HOLDS]
    doc = {"exchange": "binance", "symbol": "BTCUSDT", "first_id": 1000, "last_id": 2000, "start": None, "end": None}
    coll.insert_one({"_id": "dead", **doc, "holder": "died", "expires": datetime.now(UTC) - timedelta(seconds=1)})
    (scan,) = gaps_scan(config=ScanConfig(), now=now)
    assert scan.holes.fill == [(1060, 1064)]
    Gap.objects.all().delete()
    coll.insert_one({"_id": "alive", **doc, "holder": "alive", "expires": datetime.now(UTC) + timedelta(minutes=1)})
    (scan,) = gaps_scan(config=ScanConfig(), now=now)
    assert [who.split(" ")[0] for _, _, who in scan.holes.held] == ["alive"]


def test_scan_gaps_logs_the_holder_and_queues_nothing_for_a_held_hole(
    a_hole: tuple[datetime, datetime],
    broker: redis.Redis,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The periodic task's log says which hole it left and to whom; no backfill_range is sent for it."""
    hold = {"exchange": "binance", "symbol": "BTCUSDT", "first_id": 1000, "last_id": 1400}
    with caplog.at_level(logging.INFO, "markets.tasks"), range_held(connection.database, holder="holder-x", **hold):
        summary = scan_gaps()
    assert summary["held"] == 1
    assert summary["queued"] == 0
    assert "markets.tasks.backfill_range" not in [name for name, _ in queued(broker)]
    said = [r.getMessage() for r in caplog.records if "not queued: held by holder-x" in r.getMessage()]
    assert any("ids 1060..1064" in s for s in said), said


@pytest.mark.slow
def test_manage_py_backfill_holds_its_range_while_it_runs(transactional_db: None, dev_stack: Any) -> None:
    """A manual trades backfill (a process of its own) holds exchange, symbol and its times while it runs, and
    releases the hold when it ends."""
    coll = connection.database[HOLDS]
    coll.delete_many({})
    with running_in_thread(sim_config(rate=50.0, history_days=0.05)) as sim:
        requests.post(  # each page a second on the way: the run lasts long enough to be seen
            f"{sim.url}/_sim/rest/fault",
            json={"path_prefix": "/api/v3/aggTrades", "delay_ms": 1000, "count": 1000},
            timeout=5,
        ).raise_for_status()
        end = iv.floor(datetime.now(UTC), "1m") - 5 * MINUTE
        start = end - 10 * MINUTE
        args = ["--exchange", "binance", "--symbol", "BTCUSDT", "--what", "trades", "--no-progress"]
        args += ["--start", start.isoformat(), "--end", end.isoformat()]
        env = celery_env(dev_stack, 5, BINANCE_REST_URL=sim.url)
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "backfill", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_for(
                "the backfill's hold", lambda: bool(live_holds(connection.database, "binance", "BTCUSDT")), 90, proc
            )
            [hold] = live_holds(connection.database, "binance", "BTCUSDT")
            assert hold.holder.startswith("manage.py backfill trades (")
            assert (hold.start, hold.end) == (start, end)
            out, _ = proc.communicate(timeout=180)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, out
    assert re.search(r"still missing +0\n", out), out
    assert coll.count_documents({}) == 0


def test_the_history_queue_leaves_a_held_day_to_its_backfill(
    transactional_db: None,
    broker: redis.Redis,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An anonymous history request does not queue a day a running backfill holds part of (logged, naming the
    holder); once the hold is released the day is queued."""
    day = datetime(2026, 1, 5, tzinfo=UTC)
    cache.delete(dedup_key("binance", "BTCUSDT", day))
    hold = {"exchange": "binance", "symbol": "BTCUSDT", "start": day + 6 * HOUR, "end": day + 7 * HOUR}
    held = range_held(connection.database, holder="manage.py backfill candles (t)", **hold)
    with caplog.at_level(logging.INFO, "markets.history_queue"), held:
        assert backfill_queue(exchange="binance", symbol="BTCUSDT", day=day) is False
    assert queued(broker) == []
    assert any("held by manage.py backfill candles (t)" in r.getMessage() for r in caplog.records)
    assert backfill_queue(exchange="binance", symbol="BTCUSDT", day=day) is True
    assert [name for name, _ in queued(broker)] == ["markets.tasks.backfill_candles"]
    cache.delete(dedup_key("binance", "BTCUSDT", day))
