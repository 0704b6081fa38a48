"""A real Celery worker fills the holes ``scan_gaps`` finds, exactly, from the exchange (the simulator), retrying
exchange errors with back-off."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.backfill import trades_backfill
from markets.models import Candle, Gap, Tick
from markets.store import collection
from markets.tasks import scan_gaps
from markets.venues import rest_adapter
from tests.conftest import BROKER_DB, sim_config, wait_for
from tests.markets.test_tasks import broker, celery_env, delete_ids, no_market_data, stop_all  # noqa: F401 (fixtures)
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[2]
MINUTE = timedelta(minutes=1)


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    """A synthetic market at 10 trades/s with a day of history."""
    with running_in_thread(sim_config(rate=10.0)) as s:
        yield s


@pytest.fixture
def worker(
    django_db_setup: None,
    dev_stack: dict[str, Service],
    sim: Simulator,
    broker: redis.Redis,  # noqa: F811 (the fixture imported above: Celery sends to its database)
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
    """The stored trade ids of ``symbol``, ascending."""
    coll = collection(Tick)
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
        trades_backfill(adapter=adapter, exchange="binance", symbol=symbol, start=start, end=end, candles=False)
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
        "held": 0,
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
