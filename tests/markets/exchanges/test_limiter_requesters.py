"""Requesters that may not wait long are refused at once during an exchange's ban, without sending: a staff history
request answers 503 with Retry-After, a signed order is refused (nothing was executed). Against the simulator."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.test import Client

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.exchanges.binance import BinanceRest
from markets.exchanges.binance.client import SignedClient
from markets.exchanges.errors import RateLimited, Refused
from markets.models import Candle
from tests.conftest import API_KEY, API_SECRET, sim_config

BAN = 150


@pytest.fixture
def binance(settings: Any, transactional_db: None) -> Iterator[Simulator]:
    """The simulator as Binance (a day of history), BTCUSDT seeded, no stored candle."""
    with running_in_thread(sim_config(rate=2.0, history_days=1.0)) as sim:
        settings.BINANCE_REST_URL = sim.url
        call_command("seed_instruments", "--exchange", "binance", "--symbols", "BTCUSDT", stdout=io.StringIO())
        connection.database[Candle._meta.db_table].delete_many({})
        yield sim


def status(sim: Simulator) -> dict[str, Any]:
    return requests.get(f"{sim.url}/_sim/status", timeout=5).json()


def sent(sim: Simulator, path: str) -> int:
    count: int = status(sim)["venues"]["binance"]["requests"].get(path, 0)
    return count


def fault(sim: Simulator, **body: Any) -> None:
    requests.post(f"{sim.url}/_sim/rest/fault", json=body, timeout=5).raise_for_status()


def hours_ago(n: int) -> dict[str, str]:
    end = iv.floor(datetime.now(UTC), "1m") - timedelta(hours=n)
    iso = [t.isoformat().replace("+00:00", "Z") for t in (end - timedelta(hours=1), end)]
    return {"symbol": "BTCUSDT", "interval": "1m", "start": iso[0], "end": iso[1]}


def test_a_staff_history_request_during_a_ban_is_answered_at_once_without_asking(binance: Simulator) -> None:
    """The first staff request is answered 418 (150 s): 503 with Retry-After 150. The next one, during the ban, is
    answered 503 at once with the seconds left, and the exchange is not asked again."""
    staff = Client()
    staff.force_login(get_user_model().objects.create_user("ops", password="pw-ops-1234", is_staff=True))
    fault(binance, status=418, count=1, retry_after=BAN, path_prefix="/api/v3/klines")
    first = staff.get("/api/v1/candles", hours_ago(2))
    assert first.status_code == 503, first.content
    assert first["Retry-After"] == str(BAN)
    assert sent(binance, "/api/v3/klines") == 1
    began = time.monotonic()
    second = staff.get("/api/v1/candles", hours_ago(5))
    took = time.monotonic() - began
    assert second.status_code == 503, second.content
    assert BAN - 10 <= int(second["Retry-After"]) <= BAN + 1
    assert second.json()["error"] == "exchange rate limited"
    assert took < 2
    assert sent(binance, "/api/v3/klines") == 1
    injected = status(binance)["faults_injected"]
    assert "backoff_violation" not in injected
    assert "ban_418" not in injected


def test_a_signed_order_during_a_ban_is_refused_without_being_sent(sim_thread: Simulator) -> None:
    """A ban told to the market data adapter holds the signed client of the same host: an order is refused at once
    (a Refused: nothing was executed), naming the time, and neither it nor a clock request reaches the exchange."""
    fault(sim_thread, status=418, count=1, retry_after=BAN, path_prefix="/api/v3/aggTrades")
    with pytest.raises(RateLimited) as told:
        BinanceRest(sim_thread.url).latest_trades("BTCUSDT")
    signed = SignedClient(sim_thread.url, key=API_KEY, secret=API_SECRET, timeout=5)
    with pytest.raises(RateLimited) as refused:
        signed.create_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001")
    assert isinstance(refused.value, Refused)
    assert refused.value.until == told.value.until
    assert "no request goes to binance until" in str(refused.value)
    requests_seen = status(sim_thread)["venues"]["binance"]["requests"]
    assert "/api/v3/order" not in requests_seen
    assert "/api/v3/time" not in requests_seen
    assert "backoff_violation" not in status(sim_thread)["faults_injected"]
