"""The live page's history request for a newly added instrument (``/api/v1/candles`` over the last three hours, as
``live/static/live/chart.js`` sends it), against the simulator: an empty history is an answer, not an error.

The 502 a new user saw: the instrument was stored from one deployment of the venue, and the page's request, made as
staff, asked the configured exchange for its candles; that exchange does not list the symbol, answered Binance's
-1121 "Invalid symbol", and the API turned the refusal into a 502. A refusal means the exchange has no history of the
symbol to give: the answer is what MongoDB has (nothing yet), with the range missing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client

from exchangesim.server import Simulator, running_in_thread
from markets import intervals as iv
from markets.models import Candle, Instrument
from markets.store import collection
from tests.conftest import sim_config
from tradingsite.devstack import free_port

pytestmark = pytest.mark.django_db
HISTORY = timedelta(minutes=180)


@pytest.fixture
def binance(settings: Any) -> Iterator[Simulator]:
    """The simulator as Binance, listing BTCUSDT and XRPUSDT; the candles stored by the tests deleted after."""
    with running_in_thread(sim_config(symbols=("BTCUSDT", "XRPUSDT"), explicit_symbols=True, rate=1.0)) as sim:
        settings.BINANCE_REST_URL = sim.url
        yield sim
    collection(Candle).delete_many({"symbol": "XRPUSDT"})


def page_request(client: Client, symbol: str) -> tuple[int, Any]:
    """The chart's request: the three hours before the current minute, in epoch ms."""
    end = iv.floor(datetime.now(UTC), "1m")
    params = {
        "exchange": "binance",
        "symbol": symbol,
        "interval": "1m",
        "start": int((end - HISTORY).timestamp() * 1000),
        "end": int(end.timestamp() * 1000),
    }
    response = client.get("/api/v1/candles", params)
    return response.status_code, response.json()


def add_in_admin(admin_client: Client, symbol: str) -> None:
    response = admin_client.post("/admin/markets/instrument/add/", {"exchange": "binance", "symbol": symbol})
    assert response.status_code == 302


def test_an_instrument_the_exchange_no_longer_lists_has_an_empty_history_not_a_502(
    binance: Simulator, admin_client: Client, settings: Any
) -> None:
    add_in_admin(admin_client, "XRPUSDT")
    with running_in_thread(sim_config(rate=1.0)) as other:  # another deployment of the venue: no XRPUSDT
        settings.BINANCE_REST_URL = other.url
        status, body = page_request(admin_client, "XRPUSDT")
    assert status == 200, body
    assert body["candles"] == []
    assert body["complete"] is False
    assert [s["source"] for s in body["spans"]] == ["missing"]
    assert body["missing"] == [{"start": body["start"], "end": body["end"]}], body["missing"]


def test_an_exchange_that_cannot_be_reached_is_still_a_502(admin_client: Client, settings: Any) -> None:
    Instrument.objects.create(exchange="binance", symbol="XRPUSDT", canonical="XRP-USDT", base="XRP", quote="USDT")
    settings.BINANCE_REST_URL = f"http://127.0.0.1:{free_port()}"
    status, body = page_request(admin_client, "XRPUSDT")
    assert status == 502, body
    assert body["error"] == "exchange unavailable"


def test_a_new_instrument_the_exchange_lists_has_its_history(
    binance: Simulator, admin_client: Client, client: Client
) -> None:
    """Staff get the exchange's candles; anyone else what is stored (nothing yet), with the rest queued."""
    add_in_admin(admin_client, "XRPUSDT")
    status, body = page_request(client, "XRPUSDT")
    assert status == 200, body
    assert body["candles"] == []
    assert body["complete"] is False
    status, body = page_request(admin_client, "XRPUSDT")
    assert status == 200, body
    assert len(body["candles"]) == HISTORY // timedelta(minutes=1)
