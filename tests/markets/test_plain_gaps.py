"""Gap bounds are times with the ids beside them, one shape for both kinds: ``start``/``end`` ISO-8601 UTC (a
candle gap's minutes; for a trade gap the exchange times of the stored ticks either side of its ids) and
``first_id``/``last_id`` (null for candle gaps), in the API, its schema and the admin."""

from __future__ import annotations

import pytest
from django.test import Client

from markets.documents import to_ms
from markets.models import Gap
from markets.services import gap_open, ticks_ingest
from tests.markets.api_requests import MINUTE, T0, get_json
from tests.markets.test_api import ticks

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("instruments")
def test_a_trade_gap_has_its_ids_and_the_times_of_the_ticks_around_it(client: Client) -> None:
    """Ids 1..10 and 21..30 stored, 11..20 missing: the gap's start is tick 10's time, its end tick 21's."""
    every = ticks(30)  # 7 ms apart from T0
    ticks_ingest(ticks=every[:10] + every[20:])
    stored = {t.trade_id: t.ts for t in every}
    gap_open(exchange="binance", symbol="BTCUSDT", first_id=11, last_id=20)
    Gap.objects.create(
        exchange="binance",
        symbol="BTCUSDT",
        kind="candles",
        start=to_ms(T0 + MINUTE),
        end=to_ms(T0 + 3 * MINUTE),
        state=Gap.State.UNRECOVERABLE,
        missing=2,
    )
    Gap.objects.create(exchange="binance", symbol="BTCUSDT", kind="trades", start=500, end=600, missing=101)
    body = {(g["kind"], g["first_id"]): g for g in get_json(client, "/api/v1/gaps", {"symbol": "BTCUSDT"})}
    trade = body["trades", 11]
    iso = {k: v.isoformat(timespec="milliseconds").replace("+00:00", "Z") for k, v in stored.items()}
    assert (trade["first_id"], trade["last_id"], trade["start"], trade["end"]) == (11, 20, iso[10], iso[21])
    assert trade["missing"] == 10
    candle = body["candles", None]
    assert (candle["first_id"], candle["last_id"]) == (None, None)
    assert (candle["start"], candle["end"]) == ("2025-06-02T00:01:00.000Z", "2025-06-02T00:03:00.000Z")
    # Beyond every stored tick: the times come from the nearest stored ones there are (hole_span), never a number.
    beyond = body["trades", 500]
    assert (beyond["start"], beyond["end"]) == (iso[30], iso[30])


def test_an_unknown_span_is_null(client: Client) -> None:
    """A trade gap of an instrument without stored ticks has ids and null times."""
    Gap.objects.create(exchange="binance", symbol="XRPUSDT", kind="trades", start=5, end=6, missing=2)
    (gap,) = get_json(client, "/api/v1/gaps")
    assert (gap["first_id"], gap["last_id"], gap["start"], gap["end"]) == (5, 6, None, None)


def test_the_schema_says_times_and_ids(client: Client) -> None:
    """The OpenAPI schema: start/end nullable date-times, first_id/last_id nullable integers."""
    schema = client.get("/api/schema/", {"format": "json"}).json()
    props = schema["components"]["schemas"]["GapOut"]["properties"]
    assert {k: (props[k]["type"], props[k].get("format"), props[k]["nullable"]) for k in ("start", "end")} == {
        "start": ("string", "date-time", True),
        "end": ("string", "date-time", True),
    }
    assert {k: (props[k]["type"], props[k]["nullable"]) for k in ("first_id", "last_id")} == {
        "first_id": ("integer", True),
        "last_id": ("integer", True),
    }
