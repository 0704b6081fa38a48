"""/healthz, /readyz and /metrics on a real mongod and Redis: readiness follows the dependencies and the feeds'
freshness, answers 503 (never 500, never a hang) when something is down, and no site setting turns a probe away."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from markets.models import Feed
from tradingsite.devstack import free_port

pytestmark = pytest.mark.django_db


def _feed(symbol: str = "BTCUSDT", *, age: float = 0.5, state: str = "connected", reported: float = 0.0) -> Feed:
    """A feed record as the stream writes it: its last trade ``age`` seconds ago, written ``reported`` s ago."""
    now = datetime.now(UTC)
    feed = Feed.objects.create(
        exchange="binance", symbol=symbol, state=state, last_trade_id=7, last_trade_at=now - timedelta(seconds=age)
    )
    if reported:  # updated_at is set on every save: an old report is written past it
        Feed.objects.filter(pk=feed.pk).update(updated_at=now - timedelta(seconds=reported))
    return feed


def _readyz(client: Client) -> tuple[int, dict[str, Any]]:
    resp = client.get("/readyz")
    assert resp["Content-Type"] == "application/json"
    return resp.status_code, resp.json()


def test_healthz_is_alive(client: Client) -> None:
    """Liveness: 200 and a tiny JSON body."""
    resp = client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "alive"}


def test_readyz_with_a_fresh_feed_is_ready(client: Client) -> None:
    """MongoDB and Redis up and the one feed's last trade half a second old: 200, each check and feed shown."""
    _feed(age=0.5)
    status, body = _readyz(client)
    assert status == 200, body
    assert body["status"] == "ready"
    assert body["problems"] == []
    assert body["checks"]["mongodb"]["ok"]
    assert body["checks"]["redis"]["ok"]
    [feed] = body["feeds"]
    assert (feed["exchange"], feed["symbol"], feed["state"], feed["fresh"]) == ("binance", "BTCUSDT", "connected", True)
    assert 0.5 <= feed["age_seconds"] < 10
    assert feed["problem"] is None


def test_readyz_without_feeds_is_ready(client: Client) -> None:
    """No stream has reported yet: the web is still ready (``feed check`` is the stream's own healthcheck)."""
    status, body = _readyz(client)
    assert status == 200
    assert body["feeds"] == []


def test_readyz_with_a_feed_silent_past_its_stall_limit_is_503(client: Client) -> None:
    """A feed whose last trade is older than FEED_STALL_SECONDS makes the site not ready, naming the feed; a
    fresh one beside it stays fresh."""
    _feed("ETHUSDT", age=0.2)
    _feed("BTCUSDT", age=settings.FEED_STALL_SECONDS + 5, state="reconnecting")
    status, body = _readyz(client)
    assert status == 503
    assert body["status"] == "not ready"
    assert [f["fresh"] for f in body["feeds"]] == [False, True]  # BTCUSDT, ETHUSDT
    [problem] = body["problems"]
    assert problem.startswith("binance:BTCUSDT: reconnecting, no trade for ")
    assert f"(limit {settings.FEED_STALL_SECONDS:g} s)" in problem


def test_readyz_follows_the_stall_setting(client: Client, settings: Any) -> None:
    """The same reconnecting feed is fresh or stale according to FEED_STALL_SECONDS."""
    _feed(age=3, state="reconnecting")
    settings.FEED_STALL_SECONDS = 10
    assert _readyz(client)[0] == 200
    settings.FEED_STALL_SECONDS = 2
    assert _readyz(client)[0] == 503


def test_readyz_without_the_feeds_checks_the_dependencies_only(client: Client) -> None:
    """``?feeds=0`` (the web's own healthcheck) leaves a stale feed out; any other value is a 400 naming it."""
    _feed(age=settings.FEED_STALL_SECONDS + 5, state="reconnecting")
    assert _readyz(client)[0] == 503
    resp = client.get("/readyz", {"feeds": "0"})
    assert resp.status_code == 200
    assert resp.json()["feeds"] is None
    bad = client.get("/readyz", {"feeds": "no"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "feeds must be 1 (judge the feeds) or 0 (do not), got 'no'"}


def test_readyz_with_a_connected_quiet_feed_is_ready(client: Client) -> None:
    """A connected feed whose last trade is minutes old is a quiet market (its socket is heard), not a dead feed."""
    _feed(age=settings.FEED_STALL_SECONDS * 30)
    status, body = _readyz(client)
    assert status == 200
    assert body["feeds"][0]["fresh"] is True


def test_readyz_when_the_stream_stopped_reporting_is_503(client: Client) -> None:
    """A record the stream has not rewritten for a while means no stream is running, whatever its state says."""
    _feed(age=0.1, reported=60)
    status, body = _readyz(client)
    assert status == 503
    assert "no report from its stream for 60" in body["problems"][0]


def test_readyz_with_a_stopped_feed_is_503(client: Client) -> None:
    """A feed its stream marked down (stopped) is not live."""
    feed = _feed(age=0.1, state="down")
    Feed.objects.filter(pk=feed.pk).update(last_error="stopped")
    status, body = _readyz(client)
    assert status == 503
    assert body["problems"] == ["binance:BTCUSDT: down (stopped)"]


def test_readyz_when_redis_is_unreachable_is_503_quickly(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Redis on a port where nothing listens: 503 within the probe timeout, the error naming no host."""
    _feed(age=0.1)
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    monkeypatch.setitem(host, "address", f"redis://127.0.0.1:{free_port()}/0")
    began = time.monotonic()
    status, body = _readyz(client)
    assert time.monotonic() - began < 5
    assert status == 503
    assert body["checks"]["mongodb"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is False
    assert body["problems"][0].startswith("redis: ")
    assert "127.0.0.1" not in body["problems"][0]
    assert body["feeds"][0]["fresh"] is True


def test_readyz_when_mongodb_is_unreachable_is_503_quickly(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """MongoDB on a port where nothing listens: 503 within the probe timeout, the feeds unknown (null)."""
    monkeypatch.setitem(settings.DATABASES["default"], "HOST", f"mongodb://127.0.0.1:{free_port()}/")
    began = time.monotonic()
    status, body = _readyz(client)
    assert time.monotonic() - began < 5
    assert status == 503
    assert body["checks"]["mongodb"]["ok"] is False
    assert body["checks"]["redis"]["ok"] is True
    assert body["feeds"] is None
    assert [p.split(":")[0] for p in body["problems"]] == ["mongodb"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_pass_the_host_check_and_the_https_redirect(client: Client, settings: Any, path: str) -> None:
    """A probe asks for 127.0.0.1 over HTTP, whatever the site's name and HTTPS policy: it is answered, where any
    other page is refused (400) or redirected (301)."""
    settings.ALLOWED_HOSTS = ["trading.example.com"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get(path, HTTP_HOST="127.0.0.1:8000").status_code == 200
    assert client.get("/api/v1/instruments", HTTP_HOST="127.0.0.1:8000").status_code == 400
    assert client.get("/api/v1/instruments", HTTP_HOST="trading.example.com").status_code == 301


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_get_only(client: Client, path: str) -> None:
    """Anything but GET or HEAD is 405, naming the methods allowed."""
    resp = client.post(path)
    assert resp.status_code == 405
    assert resp["Allow"] == "GET, HEAD"


def test_metrics_is_prometheus_text_with_every_family(client: Client) -> None:
    """/metrics answers Prometheus' text format with every family of markets.metrics, and counts what this
    process did (a trade stored through the service shows up)."""
    from markets.services import ticks_ingest
    from tests.markets.test_services import make_ticks

    ticks_ingest(ticks=make_ticks(3, symbol="SOLUSDT"))
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/plain; version=")
    families = {f.name: f for f in text_string_to_metric_families(resp.content.decode())}
    expected = {
        f"tradingsite_{name}"
        for name in (
            "trades_received",
            "trades_stored",
            "feed_state",
            "feed_lag_seconds",
            "feed_last_trade_timestamp_seconds",
            "stream_reconnects",
            "gaps_opened",
            "gaps_filled",
            "gaps_unrecoverable",
            "gap_fill_seconds",
            "rest_requests",
            "rest_rate_limited",
            "rest_used_weight",
            "stream_flush_seconds",
            "stream_store_failures",
            "channel_publish_failures",
        )
    }
    assert expected <= set(families)
    stored = {
        s.labels["symbol"]: s.value for s in families["tradingsite_trades_stored"].samples if s.name.endswith("_total")
    }
    assert stored["SOLUSDT"] >= 3
