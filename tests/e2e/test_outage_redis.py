"""Control survives Redis, end to end: ``manage.py stream`` against the simulator at 200 trades/s with a Redis of
its own, which the test kills (SIGKILL) and starts again, empty, on the same port. The stream goes on storing
while Redis is away, rejoins its control group once it is back, and acknowledges the next ``manage.py feed drop``;
the drop happens (a gap is recorded and filled) and afterwards the stored trades and 1m candles equal the
simulator's truth. With no stream running, a drop is reported as not acknowledged (exit status 1, HTTP 504, and
the live page's banner says so to staff), and without Redis as unreachable (exit status 1, HTTP 503)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from exchangesim.server import Simulator
from markets.control import control_group
from markets.models import Feed, Gap, Instrument, Tick
from signals.models import Signal
from tests.conftest import wait_for
from tests.e2e.conftest import start_web
from tests.e2e.test_live_page import _answers, _session
from tests.e2e.test_stream_recovery import (
    SYMBOL,
    assert_candles_equal_truth,
    assert_equal_to_truth,
    start_stream,
    stop,
    stored,
    truth,
)
from tradingsite.devstack import Service, free_port, start_redis

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True)


def members(redis_uri: str, exchange: str = "binance") -> int:
    """How many channels the control group of ``exchange`` has in that Redis (0 when it does not answer)."""
    client = redis.Redis.from_url(redis_uri, socket_connect_timeout=0.5, socket_timeout=2)
    try:
        return int(client.zcard(f"asgi:group:{control_group(exchange)}"))
    except redis.RedisError:
        return 0
    finally:
        client.close()


def feed_drop(mongo: Service, redis_uri: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py feed drop ARGS`` as an operator runs it, against that Redis."""
    env = os.environ | {
        "MONGODB_URI": mongo.uri,
        "REDIS_URL": redis_uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
    }
    return subprocess.run(
        [sys.executable, "manage.py", "feed", "drop", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def kill(server: Service) -> None:
    server.process.kill()
    server.process.wait(10)


@pytest.mark.slow
def test_redis_killed_and_restarted_then_a_drop_is_acknowledged_and_nothing_is_lost(
    fast_sim: Simulator, dev_stack: dict[str, Service], tmp_path: Path
) -> None:
    server = start_redis(tmp_path / "redis")
    port = server.uri.rsplit(":", 1)[1].split("/")[0]
    proc = start_stream(fast_sim, {"mongo": dev_stack["mongo"], "redis": server}, "--stall-seconds", "3")
    try:
        wait_for("live ticks", lambda: Tick.objects.filter(symbol=SYMBOL).count() > 400, 30, proc)
        wait_for("the feed to say connected", lambda: Feed.objects.filter(state="connected").exists(), 10, proc)
        wait_for("the stream to join its control group", lambda: members(server.uri) == 1, 10, proc)

        kill(server)
        # While Redis is away the stream stores on, and a drop is reported as undeliverable.
        before = Tick.objects.filter(symbol=SYMBOL).count()
        away = feed_drop(dev_stack["mongo"], server.uri, "--seconds", "3")
        assert away.returncode == 1, away.stdout
        assert "the channel layer (Redis) cannot be reached" in away.stderr
        wait_for(
            "trades stored with Redis away", lambda: Tick.objects.filter(symbol=SYMBOL).count() > before + 400, 20, proc
        )
        assert not Gap.objects.exists(), "a Redis outage costs the feed nothing"

        server = start_redis(tmp_path / "redis", port=int(port))
        back, back_at = time.monotonic(), datetime.now(UTC)
        wait_for("the stream to rejoin its control group", lambda: members(server.uri) == 1, 15, proc)
        rejoined = time.monotonic() - back
        acked = feed_drop(dev_stack["mongo"], server.uri, "--seconds", "3")
        assert acked.returncode == 0, acked.stderr
        assert acked.stdout.startswith("acknowledged by the binance stream ("), acked.stdout
        assert "it will drop its socket for 3 s (close)" in acked.stdout
        wait_for("the drop's gap to be filled", lambda: Gap.objects.filter(state="filled").exists(), 60, proc)
        filled = time.monotonic() - back
        minute = back_at.replace(second=0, microsecond=0)
        wait_for(
            "a signal on a candle of the minute Redis came back in, or later",
            lambda: Signal.objects.filter(symbol=SYMBOL, candle_open_time__gte=minute).exists(),
            100,
            proc,
        )
        assert proc.poll() is None, "the stream is alive"
    finally:
        out = stop(proc)
        server.stop()
    assert out.count("lost its control channel") == 1, "logged once per outage, not once per retry"
    assert out.count("control group feed.binance rejoined after") == 1
    assert "drop requested (close, 3 s)" in out
    assert "Traceback" not in out, out
    gap = Gap.objects.get(symbol=SYMBOL, kind="trades")
    assert gap.recovered == gap.end - gap.start + 1 == gap.missing
    assert Feed.objects.get(symbol=SYMBOL).reconnects >= 1

    docs = stored()
    ids = [int(d["trade_id"]) for d in docs]
    expected = {e["a"] for e in truth(fast_sim, ids[0], ids[-1])}
    missing, doubled = len(expected - set(ids)), len(ids) - len(set(ids))
    print(
        f"\nfault: Redis killed and restarted, then feed drop 3 s | trades compared: {len(expected)} | "
        f"missing: {missing} | doubled: {doubled} | time to recover: control back {rejoined:.1f} s after Redis, "
        f"the drop's gap filled {filled:.1f} s after Redis"
    )
    assert (missing, doubled) == (0, 0)
    assert_equal_to_truth(fast_sim, docs)
    compared = assert_candles_equal_truth(fast_sim, docs)
    print(f"the {compared} 1m candles of the run equal candles computed from the truth")


def test_a_drop_no_stream_takes_is_not_acknowledged(
    dev_stack: dict[str, Service], tmp_path: Path, settings: Any
) -> None:
    """No stream: ``feed drop`` exits 1 saying no stream acknowledged it, and the endpoint answers 504 with the same
    words. Redis gone: exit status 1 and 503, saying Redis cannot be reached."""
    server = start_redis(tmp_path / "redis")
    settings.FEED_CONTROL_ACK_SECONDS = 1.0
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": server.uri, "socket_timeout": 30}]},
        }
    }
    staff = get_user_model().objects.create_user("ops", password="a-long-test-password", is_staff=True)
    client = Client()
    client.force_login(staff)
    no_stream = "no stream of binance acknowledged the drop within 1 s: is manage.py stream running?"
    try:
        result = feed_drop(dev_stack["mongo"], server.uri, "--seconds", "3", "--wait", "1")
        assert result.returncode == 1
        assert result.stderr.strip() == f"CommandError: {no_stream}"
        resp = client.post("/market/binance/feed/drop", {"seconds": 3}, content_type="application/json")
        assert (resp.status_code, resp.json()) == (504, {"error": "no_stream", "detail": no_stream})

        kill(server)
        result = feed_drop(dev_stack["mongo"], server.uri, "--seconds", "3")
        assert result.returncode == 1
        assert "CommandError: the channel layer (Redis) cannot be reached" in result.stderr
        resp = client.post("/market/binance/feed/drop", {"seconds": 3}, content_type="application/json")
        assert resp.status_code == 503
        assert resp.json()["error"] == "unavailable"
    finally:
        server.stop()


@pytest.mark.slow
def test_the_page_tells_staff_that_no_stream_acknowledged_the_drop(
    dev_stack: dict[str, Service], tmp_path: Path, chromium: Any
) -> None:
    """The staff drop button with no stream running: Daphne answers 504 after the wait, and the page's banner
    shows the server's words."""
    server = start_redis(tmp_path / "redis")
    Instrument.objects.create(
        exchange="binance",
        symbol="BTCUSDT",
        canonical="BTC-USDT",
        base="BTC",
        quote="USDT",
        tick_size=Decimal("0.01"),
        step_size=Decimal("0.00001"),
    )
    staff = get_user_model().objects.create_user("ops", password="a-long-test-password", is_staff=True)
    base_url = f"http://127.0.0.1:{free_port()}"
    env = os.environ | {
        "MONGODB_URI": dev_stack["mongo"].uri,
        "REDIS_URL": server.uri,
        "MONGODB_DB": settings.DATABASES["default"]["NAME"],
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,  # the session made here must verify there
        "FEED_CONTROL_ACK_SECONDS": "1",
    }
    web = start_web(int(base_url.rsplit(":", 1)[1]), env)
    try:
        wait_for("Daphne", lambda: _answers(base_url), 30, web)
        ctx = chromium.new_context()
        ctx.add_cookies(_session(staff, base_url))
        page = ctx.new_page()
        page.goto(f"{base_url}/market/binance/BTCUSDT/")
        page.click("#drop-button")
        page.wait_for_function(
            "document.getElementById('chart-banner').textContent.includes('no stream of binance')", timeout=10_000
        )
        assert page.text_content("#chart-banner") == (
            "Drop did not reach the stream (504): no stream of binance acknowledged the drop within 1 s: "
            "is manage.py stream running?"
        )
        ctx.close()
    finally:
        web.terminate()
        out, _ = web.communicate(timeout=30)
        server.stop()
    assert "Traceback" not in out, out
