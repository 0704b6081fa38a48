"""The exchanges' waits shared between processes of the host through the suite's Redis (``markets.venue_limits``):
a Retry-After one process was told holds another, a later time is never shortened, and a Redis that is down leaves
each process to its own waits without holding a request up."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from exchangesim.server import Simulator
from markets.exchanges.binance import BinanceRest
from markets.exchanges.errors import RateLimited
from markets.exchanges.limiter import MARGIN, VenueLimiter, venue_key
from markets.exchanges.retry import RetryPolicy
from markets.venue_limits import PREFIX, RedisWaits
from tradingsite.devstack import Service

ROOT = Path(__file__).resolve().parents[3]
# Another process of the host: Django set up from the environment (the cache's Redis is the suite's), one request
# to the simulator through the configured store; prints what became of it.
CHILD = """
import json, sys, time
import django
django.setup()
import markets.venues  # shares the waits through the cache's Redis
from markets.exchanges.binance import BinanceRest
from markets.exchanges.errors import RateLimited
from markets.exchanges.retry import RetryPolicy

waits = []
rest = BinanceRest(sys.argv[1], policy=RetryPolicy(attempts=2, max_wait=float(sys.argv[2])),
                   on_wait=lambda s, r: waits.append([s, r]))
began = time.time()
try:
    rest.latest_trades("BTCUSDT")
    out = {"ok": True}
except RateLimited as exc:
    out = {"ok": False, "until": exc.until, "message": str(exc)}
print(json.dumps({**out, "requests": rest.requests, "began": began, "ended": time.time(), "waits": waits}))
"""


@pytest.fixture
def store(dev_stack: dict[str, Service]) -> RedisWaits:
    return RedisWaits(dev_stack["redis"].uri)


@pytest.fixture
def venue(sim_thread: Simulator, store: RedisWaits) -> Iterator[tuple[Simulator, VenueLimiter]]:
    """The simulator and this process's limiter of it, sharing through the suite's Redis (forgotten afterwards)."""
    limiter = VenueLimiter("binance", venue_key("binance", sim_thread.url), shared=lambda: store)
    yield sim_thread, limiter
    limiter.forget()


def other_process(sim: Simulator, dev_stack: dict[str, Service], max_wait: float) -> dict[str, Any]:
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "tradingsite.settings",
        "REDIS_URL": dev_stack["redis"].uri,
        "CACHE_REDIS_URL": dev_stack["redis"].uri,
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, sim.url, str(max_wait)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def fault(sim: Simulator, **body: Any) -> None:
    requests.post(f"{sim.url}/_sim/rest/fault", json=body, timeout=5).raise_for_status()


def status(sim: Simulator) -> dict[str, Any]:
    return requests.get(f"{sim.url}/_sim/status", timeout=5).json()


def test_the_store_keeps_the_later_time_until_it_passes(store: RedisWaits, dev_stack: dict[str, Service]) -> None:
    """The later of two times is kept whatever the order they come in, and the key expires at it."""
    key = "binance@test-store:1"
    raw = redis.Redis.from_url(dev_stack["redis"].uri)
    now = time.time()
    try:
        store.extend(key, now + 60)
        store.extend(key, now + 5)
        assert store.read(key) == pytest.approx(now + 60, abs=0.001)
        assert 55_000 < raw.pttl(PREFIX + key) <= 60_001
        store.extend(key, now + 90)
        assert store.read(key) == pytest.approx(now + 90, abs=0.001)
        store.extend(key, now - 1)  # already past: nothing to keep
        assert store.read(key) == pytest.approx(now + 90, abs=0.001)
    finally:
        store.forget(key)
    assert store.read(key) is None


def test_a_ban_told_to_one_process_holds_another(
    venue: tuple[Simulator, VenueLimiter], dev_stack: dict[str, Service]
) -> None:
    """This process is answered 418 with Retry-After 150; another process of the host (Django, the configured
    store) asked to send to the same venue is refused without sending, naming the same time; the simulator saw
    one request and no violation."""
    sim, limiter = venue
    fault(sim, status=418, count=1, retry_after=150, path_prefix="/api/v3/aggTrades")
    rest = BinanceRest(sim.url, limiter=limiter)
    with pytest.raises(RateLimited) as info:
        rest.latest_trades("BTCUSDT")
    until = info.value.until
    assert until is not None
    assert until == pytest.approx(time.time() + 150 + MARGIN, abs=2)
    other = other_process(sim, dev_stack, max_wait=5)
    assert other["ok"] is False
    assert other["requests"] == 0
    assert other["until"] == pytest.approx(until, abs=0.001)
    assert "another process of this host was told to wait" in other["message"]
    seen = status(sim)
    assert seen["venues"]["binance"]["requests"]["/api/v3/aggTrades"] == 1
    assert "backoff_violation" not in seen["faults_injected"]
    assert "ban_418" not in seen["faults_injected"]


def test_a_short_retry_after_told_to_one_process_is_waited_out_by_another(
    venue: tuple[Simulator, VenueLimiter], dev_stack: dict[str, Service]
) -> None:
    """A 429 with Retry-After 8 told to this process (which gives up at once) is waited out by another process: its
    request goes after the time, and the simulator counts no violation."""
    sim, limiter = venue
    fault(sim, status=429, count=1, retry_after=8, path_prefix="/api/v3/aggTrades")
    rest = BinanceRest(sim.url, limiter=limiter, policy=RetryPolicy(attempts=1))
    with pytest.raises(RateLimited) as info:
        rest.latest_trades("BTCUSDT")
    until = info.value.until
    assert until is not None
    other = other_process(sim, dev_stack, max_wait=120)
    assert other["ok"] is True
    assert other["requests"] == 1
    assert other["ended"] >= until
    assert other["waits"][0][1].startswith("binance asked us to wait until")
    seen = status(sim)
    assert seen["venues"]["binance"]["requests"]["/api/v3/aggTrades"] == 2
    assert seen["faults_injected"]["rest_429"] == 1
    assert "backoff_violation" not in seen["faults_injected"]


def test_a_redis_that_is_down_holds_no_request_and_is_reported_once(caplog: pytest.LogCaptureFixture) -> None:
    """With nothing listening where Redis should be, reads answer None at once and writes are dropped, the failure
    is logged once, and the process still keeps to the Retry-After it was told itself."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: connections are refused
    store = RedisWaits(f"redis://127.0.0.1:{port}/0", retry_after=0.0)
    limiter = VenueLimiter("binance", "binance@redis-down:1", shared=lambda: store)
    caplog.set_level(logging.WARNING, logger="markets.venue_limits")
    began = time.monotonic()
    for _ in range(20):
        assert store.read("binance@redis-down:1") is None
    store.extend("binance@redis-down:1", time.time() + 30)
    took = time.monotonic() - began
    assert took < 2.0, "a refused connection is not waited on"
    until = limiter.note(RateLimited("binance", "HTTP 429", status=429, retry_after=30))
    block = limiter.blocked()
    assert block is not None
    assert block.until == until
    failures = [r for r in caplog.records if "not shared with the other processes" in r.getMessage()]
    assert len(failures) == 1
