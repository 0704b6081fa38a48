"""The Celery worker serves its own metrics on WORKER_METRICS_PORT: a backfill_range it runs against the simulator
shows there as a gap opened and filled, the trades stored by REST and the REST requests sent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from exchangesim.server import Simulator
from markets.exchanges.binance import BinanceRest
from markets.models import Gap
from markets.tasks import backfill_range
from tests.conftest import wait_for
from tests.markets.test_tasks import BROKER_DB, broker, celery_env, no_market_data, stop_all  # noqa: F401 (fixtures)
from tradingsite.devstack import Service, free_port

ROOT = Path(__file__).resolve().parents[2]
# broker: this process sends to the worker's Redis database; no_market_data: the hole is not stored already
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("broker", "no_market_data")]


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        text = requests.get(url, timeout=5).text
    except requests.ConnectionError:
        return None
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def worker_metrics(
    django_db_setup: None, dev_stack: dict[str, Service], sim_thread: Simulator, tmp_path: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """A threads-pool worker on the test database, Redis and simulator, its metrics on a free port; yields their
    URL, the process and its log."""
    port = free_port()
    log = tmp_path / "worker.log"
    env = celery_env(dev_stack, BROKER_DB, BINANCE_REST_URL=sim_thread.url, WORKER_METRICS_PORT=str(port))
    cmd = [sys.executable, "-m", "celery", "-A", "tradingsite", "worker", "--pool", "threads", "--concurrency", "2"]
    cmd += ["--loglevel", "INFO", "--without-mingle", "--without-gossip", "--hostname", "metrics-worker@%h"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for("the worker to be ready", lambda: " ready." in log.read_text(), 30, proc, log)
        yield f"http://127.0.0.1:{port}/metrics", proc, log
        assert proc.poll() is None, log.read_text()
    finally:
        stop_all(proc)


def test_worker_counts_a_backfill(
    worker_metrics: tuple[str, subprocess.Popen[bytes], Path], sim_thread: Simulator, settings: Any
) -> None:
    """A hole of 100 ids filled by the worker: one gap opened and filled (its time observed), 100 trades stored by
    REST, its requests."""
    url, proc, log = worker_metrics
    settings.BINANCE_REST_URL = sim_thread.url
    with BinanceRest(sim_thread.url) as rest:
        last = rest.latest_trades("BTCUSDT")[0].trade_id
    first, end = last - 199, last - 100
    labels = (("exchange", "binance"), ("symbol", "BTCUSDT"))

    def counted() -> bool:
        samples = _samples(url) or {}
        return samples.get(("tradingsite_gaps_filled_total", labels), 0) >= 1

    backfill_range.delay("binance", "BTCUSDT", first, end)
    wait_for("the worker's metrics to count the filled gap", counted, 60, proc, log)
    samples = _samples(url) or {}
    gap = Gap.objects.get(symbol="BTCUSDT", start=first)
    assert (gap.state, gap.recovered) == ("filled", 100)
    assert samples[("tradingsite_gaps_opened_total", labels)] == 1
    stored = (("exchange", "binance"), ("source", "rest"), ("symbol", "BTCUSDT"))
    assert samples[("tradingsite_trades_stored_total", stored)] == 100
    assert samples[("tradingsite_rest_requests_total", (("exchange", "binance"),))] >= 1
    assert samples[("tradingsite_gap_fill_seconds_count", (("exchange", "binance"),))] == 1
