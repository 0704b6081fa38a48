"""Health and metrics end to end: Daphne and the stream process (stall limit 2 s) against the simulator at 200
trades/s. The simulator's socket goes silent for 6 s (and refuses reconnects meanwhile): ``/readyz`` turns 503
naming the feed, and ``feed check`` fails; after the recovery both are green again. The stream's own
``/metrics`` then shows the gap opened and filled, the trades received and stored (the recovered ones by REST,
exactly), the reconnect and the REST requests; the web's ``/metrics`` is Prometheus text."""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from prometheus_client.parser import text_string_to_metric_families

from exchangesim.server import Simulator
from markets.models import Gap, Tick
from tests.conftest import wait_for
from tests.e2e.conftest import start_web
from tests.e2e.test_stream_recovery import SYMBOL, start_stream, stop
from tradingsite.devstack import Service, free_port

ROOT = Path(__file__).resolve().parents[2]
STALL = 2  # seconds: the stream's watchdog and the web's FEED_STALL_SECONDS
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Stack:
    """The web's base URL, the stream's metrics URL, and both processes."""

    def __init__(self, web_url: str, metrics_url: str, web: subprocess.Popen[str], stream: subprocess.Popen[str]):
        self.web_url, self.metrics_url, self.web, self.stream = web_url, metrics_url, web, stream


@pytest.fixture
def stack(fast_sim: Simulator, dev_stack: dict[str, Service]) -> Iterator[Stack]:
    port, metrics_port = free_port(), free_port()
    env = os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": dev_stack["redis"].uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
        "FEED_STALL_SECONDS": str(STALL),
    }
    web = start_web(port, env)
    stream = start_stream(fast_sim, dev_stack, "--stall-seconds", str(STALL), "--metrics-port", str(metrics_port))
    s = Stack(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}/metrics", web, stream)
    try:
        wait_for("live ticks", lambda: Tick.objects.filter(symbol=SYMBOL).count() > 200, 30, stream)
        wait_for("Daphne", lambda: _get(f"{s.web_url}/healthz") is not None, 30, web)
        yield s
    finally:
        web.terminate()
        web_out, _ = web.communicate(timeout=30)
        out = stop(stream)
        assert "Traceback" not in web_out, web_out
        assert "Traceback" not in out, out


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.ConnectionError:
        return None


def _readyz(stack: Stack) -> tuple[int, dict[str, Any]]:
    resp = requests.get(f"{stack.web_url}/readyz", timeout=10)
    return resp.status_code, resp.json()


def _samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics page by (name, sorted labels)."""
    text = requests.get(url, timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _feed_check() -> str | None:
    """``feed check`` with the stack's stall limit: None when it passes, else its reason."""
    try:
        call_command("feed", "check", "--stall-seconds", str(STALL), stdout=io.StringIO())
    except CommandError as exc:
        return str(exc)
    return None


def test_readyz_and_metrics_follow_a_silent_feed_and_its_recovery(stack: Stack, fast_sim: Simulator) -> None:
    """Ready while trades flow; 503 naming the feed once it is silent past its stall limit; ready again after the
    reconnect; and the stream's metrics count what happened."""
    feed = {"exchange": "binance", "symbol": SYMBOL}
    wait_for("/readyz to be ready", lambda: _readyz(stack)[0] == 200, 30, stack.stream)
    assert _feed_check() is None

    requests.post(
        f"{fast_sim.url}/_sim/ws/drop", json={"mode": "stall", "seconds": 6, "reject_seconds": 6}, timeout=5
    ).raise_for_status()
    seen: dict[str, Any] = {}

    def not_ready() -> bool:
        status, seen["body"] = _readyz(stack)
        return status == 503

    wait_for("/readyz to turn 503", not_ready, 15, stack.stream)
    body = seen["body"]
    assert body["status"] == "not ready"
    assert any(p.startswith(f"binance:{SYMBOL}: ") and "no trade for" in p for p in body["problems"]), body
    assert body["checks"]["mongodb"]["ok"]
    assert body["checks"]["redis"]["ok"]
    reason = _feed_check()
    assert reason is not None
    assert reason.startswith(f"binance:{SYMBOL}: ")

    filled = Gap.objects.filter(symbol=SYMBOL, state="filled")
    wait_for("the gap to be filled", filled.exists, 60, stack.stream)
    wait_for("/readyz to be ready again", lambda: _readyz(stack)[0] == 200, 30, stack.stream)
    assert _feed_check() is None

    recovered = sum(g.recovered for g in Gap.objects.filter(symbol=SYMBOL, kind="trades"))
    assert recovered > 0
    wait_for(
        "the stream's metrics to count the filled gap",
        lambda: _value(_samples(stack.metrics_url), "tradingsite_gaps_filled_total", **feed) >= 1,
        10,
        stack.stream,
    )
    m = _samples(stack.metrics_url)
    print(
        f"\nstream metrics: received {_value(m, 'tradingsite_trades_received_total', **feed):.0f}, "
        f"stored ws {_value(m, 'tradingsite_trades_stored_total', **feed, source='ws'):.0f}, "
        f"stored rest {_value(m, 'tradingsite_trades_stored_total', **feed, source='rest'):.0f}, "
        f"reconnects {_value(m, 'tradingsite_stream_reconnects_total', exchange='binance'):.0f}, "
        f"gap fill {_value(m, 'tradingsite_gap_fill_seconds_sum', exchange='binance'):.2f} s, "
        f"REST requests {_value(m, 'tradingsite_rest_requests_total', exchange='binance'):.0f}"
    )
    assert _value(m, "tradingsite_gaps_opened_total", **feed) == 1
    assert _value(m, "tradingsite_gaps_filled_total", **feed) == 1
    assert _value(m, "tradingsite_gaps_unrecoverable_total", **feed) == 0
    assert _value(m, "tradingsite_gap_fill_seconds_count", exchange="binance") == 1
    assert _value(m, "tradingsite_stream_reconnects_total", exchange="binance") >= 1
    received = _value(m, "tradingsite_trades_received_total", **feed)
    live = _value(m, "tradingsite_trades_stored_total", **feed, source="ws")
    assert 200 < live <= received
    assert _value(m, "tradingsite_trades_stored_total", **feed, source="rest") == recovered
    assert _value(m, "tradingsite_rest_requests_total", exchange="binance") >= 1
    assert _value(m, "tradingsite_rest_used_weight", exchange="binance") > 0
    assert _value(m, "tradingsite_stream_flush_seconds_count", exchange="binance") > 0
    assert _value(m, "tradingsite_feed_state", **feed, tradingsite_feed_state="connected") == 1
    # The feed records and their lag are refreshed every second: the gap may fill between a refresh and the first
    # live trade after the reconnect, so the lag catches up within a refresh or two.
    wait_for(
        "the feed's lag to be under the stall limit again",
        lambda: 0 <= _value(_samples(stack.metrics_url), "tradingsite_feed_lag_seconds", **feed) < STALL,
        5,
        stack.stream,
    )

    web = requests.get(f"{stack.web_url}/metrics", timeout=5)
    assert web.status_code == 200
    assert web.headers["Content-Type"].startswith("text/plain; version=")
    assert "# TYPE tradingsite_trades_stored_total counter" in web.text
