"""Who may make the history API spend an exchange's request budget, against the simulator's three venues.

An anonymous request answers from MongoDB within seconds and sends no exchange request, however wide; its
missing days are queued once each as backfill tasks (seen on the broker and as dedup keys in the cache, no
worker needed), and a queued task fills its day. A staff session keeps fetching from the exchange, and filling
from other venues stays within its budget of requests."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test import Client

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.history_queue import by_day, dedup_key
from markets.models import Candle, Gap, Instrument
from markets.tasks import backfill_candles
from tests.conftest import BROKER_DB, sim_config
from tests.markets.test_tasks import queued
from tradingsite.devstack import Service, free_port

MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
BACKFILL = "markets.tasks.backfill_candles"


@pytest.fixture
def stack(settings: Any, transactional_db: None) -> Iterator[Simulator]:
    """The simulator (a day of history) as Binance, Coinbase and Kraken, with one BTC instrument on each, and
    no stored candle, gap or dedup key."""
    with running_in_thread(sim_config(rate=2.0, history_days=1.0)) as sim:
        settings.BINANCE_REST_URL = sim.url
        settings.COINBASE_REST_URL = sim.venue_url("coinbase")
        settings.KRAKEN_REST_URL = sim.venue_url("kraken")
        for exchange, symbol in (("binance", "BTCUSDT"), ("coinbase", "BTC-USD"), ("kraken", "XBTUSD")):
            call_command("seed_instruments", "--exchange", exchange, "--symbols", symbol, stdout=io.StringIO())
        for model in (Candle, Gap):
            connection.database[model._meta.db_table].delete_many({})
        cache.clear()
        yield sim
        cache.clear()


@pytest.fixture
def broker(dev_stack: dict[str, Service]) -> Iterator[redis.Redis]:
    """The test broker's Redis database (tests/conftest.py points Celery at it), empty."""
    client = redis.Redis.from_url(f"{dev_stack['redis'].uri.rsplit('/', 1)[0]}/{BROKER_DB}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def sent(sim: Simulator) -> dict[str, int]:
    """REST requests each venue of the simulator has answered so far."""
    status = requests.get(f"{sim.url}/_sim/status", timeout=10).json()
    return {name: sum(v["requests"].values()) for name, v in status["venues"].items()}


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before.get(name, 0) for name in after}


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def thirty_days() -> dict[str, str]:
    end = iv.floor(datetime.now(UTC), "1m")
    return {"symbol": "BTCUSDT", "interval": "1h", "start": iso(end - 30 * DAY), "end": iso(end)}


def ranges(body: dict[str, Any], name: str) -> list[tuple[datetime, datetime]]:
    return [(datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])) for r in body[name]]


def test_an_anonymous_30_day_request_reads_mongodb_and_queues_each_missing_day_once(
    stack: Simulator, broker: redis.Redis
) -> None:
    """30 days of 1h candles, none stored: the answer comes in under 5 s with at most 5 exchange requests (none,
    in fact), `complete: false`, and every missing part queued: one backfill task per UTC day, each with its
    dedup key. Asked again, nothing more is queued and the answer still says what is queued."""
    before = sent(stack)
    started = time.monotonic()
    response = Client().get("/api/v1/candles", thirty_days())
    took = time.monotonic() - started
    requests_sent = delta(before, sent(stack))
    print(f"\nanonymous 30-day 1h request: {took:.2f} s, exchange requests {requests_sent}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert took < 5
    assert sum(requests_sent.values()) <= 5
    assert body["exchange_requests"] == 0
    assert body["complete"] is False
    assert ranges(body, "queued") == ranges(body, "missing") != []

    days = [day for day, _ in by_day(ranges(body, "missing"))]
    messages = queued(broker)
    assert messages == [(BACKFILL, ["binance", "BTCUSDT", ms(day), ms(day + DAY)]) for day in days]
    assert 30 <= len(days) <= 32
    assert all(cache.get(dedup_key("binance", "BTCUSDT", day)) is not None for day in days)

    again = Client().get("/api/v1/candles", thirty_days()).json()
    new = queued(broker)[len(messages) :]
    assert not [args for _, args in new if args[2] in {ms(d) for d in days}], "a queued day was queued again"
    assert again["queued"]
    assert again["exchange_requests"] == 0


def test_a_queued_day_filled_by_its_task_is_then_served_from_mongodb(stack: Simulator, broker: redis.Redis) -> None:
    """What a worker does with the newest queued day: its candles are fetched and stored, and the next anonymous
    request for it is answered from MongoDB, complete, still without asking the exchange."""
    end = iv.floor(datetime.now(UTC), "1m") - 10 * MINUTE
    start = end - 2 * timedelta(hours=1)
    params = {"symbol": "BTCUSDT", "interval": "1m", "start": iso(start), "end": iso(end)}
    assert Client().get("/api/v1/candles", params).json()["queued"]
    for name, args in queued(broker):
        assert name == BACKFILL
        result = backfill_candles(*args)  # the worker's part, run here
        assert result["exchange_requests"] >= 1
    before = sent(stack)
    body = Client().get("/api/v1/candles", params).json()
    assert body["complete"] is True
    assert [s["source"] for s in body["spans"]] == ["mongodb"]
    assert len(body["candles"]) == 120
    assert sum(delta(before, sent(stack)).values()) == 0


def test_a_staff_session_still_fetches_from_the_exchange(stack: Simulator, broker: redis.Redis) -> None:
    """Staff keep the fetching behaviour: missing candles come from the exchange in the same answer."""
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("ops", password="pw-ops-1234", is_staff=True))
    end = iv.floor(datetime.now(UTC), "1m") - 10 * MINUTE
    params = {"symbol": "BTCUSDT", "interval": "1m", "start": iso(end - timedelta(hours=2)), "end": iso(end)}
    before = sent(stack)
    body = staff.get("/api/v1/candles", params).json()
    assert body["complete"] is True
    assert body["exchange_requests"] >= 1
    assert [s["source"] for s in body["spans"]] == ["exchange"]
    assert delta(before, sent(stack))["binance"] == body["exchange_requests"]
    assert body["queued"] == []
    assert queued(broker) == []


def test_filling_from_other_venues_stays_within_its_budget(stack: Simulator, settings: Any) -> None:
    """A staff 30-day request: Binance (a day of history) is asked for all of it, and the 29 days it lacks are
    filled from Coinbase and Kraken only within CROSS_VENUE_MAX_REQUESTS; the answer says it is incomplete."""
    settings.CROSS_VENUE_MAX_REQUESTS = 4
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("ops", password="pw-ops-1234", is_staff=True))
    before = sent(stack)
    started = time.monotonic()
    body = staff.get("/api/v1/candles", thirty_days()).json()
    took = time.monotonic() - started
    requests_sent = delta(before, sent(stack))
    print(f"\nstaff 30-day 1h request: {took:.2f} s, exchange requests {requests_sent}")
    assert body["complete"] is False
    assert requests_sent["coinbase"] + requests_sent["kraken"] <= 4
    assert requests_sent["binance"] == body["exchange_requests"]


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def test_by_day_cuts_ranges_at_utc_midnight() -> None:
    """Missing ranges are queued per UTC day: each part lands in the day it falls in, a day's parts together."""
    d0 = datetime(2026, 3, 1, tzinfo=UTC)
    got = by_day([(d0 + timedelta(hours=20), d0 + timedelta(hours=30)), (d0 + timedelta(hours=31), d0 + 2 * DAY)])
    assert got == [
        (d0, [(d0 + timedelta(hours=20), d0 + DAY)]),
        (d0 + DAY, [(d0 + DAY, d0 + timedelta(hours=30)), (d0 + timedelta(hours=31), d0 + 2 * DAY)]),
    ]


@pytest.mark.django_db
def test_an_anonymous_request_is_answered_when_nothing_can_be_queued(settings: Any) -> None:
    """With the cache (hence the dedup keys) down, the MongoDB answer still comes, with nothing queued."""
    Instrument.objects.create(exchange="binance", symbol="BTCUSDT", canonical="BTC-USDT", base="BTC", quote="USDT")
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{free_port()}/1"}}
    response = Client().get("/api/v1/candles", thirty_days())
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["missing"]
    assert body["queued"] == []
    assert body["complete"] is False
