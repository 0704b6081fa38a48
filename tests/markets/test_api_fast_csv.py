"""``?format=csv`` and ``Accept: text/csv`` on the candles and ticks endpoints: a header row of the JSON fields,
values equal to the JSON answer's (a pandas round trip), streamed; bad input is still the JSON 400."""

from __future__ import annotations

import io
from typing import Any

import pandas
import pytest
from django.test import Client

from markets.reads import CANDLE_FIELDS, TICK_FIELDS
from markets.services import candles_upsert, ticks_ingest
from tests.markets.api_requests import CANDLES, TICKS, get_json
from tests.markets.test_api import candles, ticks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("instruments")]


def as_text(v: Any) -> str:
    """A JSON value as the CSV prints it."""
    return {True: "true", False: "false", None: ""}.get(v, str(v)) if isinstance(v, bool | None) else str(v)


def csv_body(client: Client, path: str, params: dict[str, str], **headers: str) -> tuple[Any, str]:
    response = client.get(path, params, **headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.streaming
    return response, b"".join(response.streaming_content).decode()


def test_candles_csv_round_trips_through_pandas(client: Client) -> None:
    """The candles as CSV read back by pandas (as strings) equal the JSON answer's candles, column for column."""
    candles_upsert(candles=candles(60))
    for interval in ("1m", "5m"):
        query = {**CANDLES, "interval": interval}
        response, text = csv_body(client, "/api/v1/candles", {**query, "format": "csv"})
        assert (
            response["Content-Disposition"]
            == 'attachment; filename="binance-BTCUSDT-' + interval + '-2025-06-02T00-00Z.csv"'
        )
        assert response["X-Complete"] == "true"
        frame = pandas.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        assert tuple(frame.columns) == CANDLE_FIELDS
        body = get_json(client, "/api/v1/candles", query)
        assert frame.to_dict("records") == [{k: as_text(v) for k, v in c.items()} for c in body["candles"]]
        assert len(frame) == {"1m": 60, "5m": 12}[interval]


def test_ticks_csv_round_trips_through_pandas(client: Client) -> None:
    """Ticks as CSV equal the JSON pages' ticks; without ``limit`` one CSV answer holds every tick of the bounds
    (not a page of 1,000)."""
    ticks_ingest(ticks=ticks(2500))
    response, text = csv_body(client, "/api/v1/ticks", {**TICKS, "format": "csv"})
    assert "Link" not in response
    frame = pandas.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    assert tuple(frame.columns) == TICK_FIELDS
    rows: list[dict[str, Any]] = []
    url: str | None = "/api/v1/ticks?exchange=binance&symbol=BTCUSDT&limit=5000"
    while url:
        page = get_json(client, url)
        rows += page["results"]
        url = page["next"]
    assert len(rows) == 2500
    assert frame.to_dict("records") == [{k: as_text(v) for k, v in t.items()} for t in rows]


def test_ticks_csv_with_a_limit_links_to_the_rest(client: Client) -> None:
    """With ``limit`` a CSV answer holds that many ticks and ``Link`` is the URL of the rest, as ``next`` is in
    JSON; ``Accept: text/csv`` asks for CSV as ``format=csv`` does."""
    ticks_ingest(ticks=ticks(300))
    response, text = csv_body(client, "/api/v1/ticks", {**TICKS, "limit": "100"}, HTTP_ACCEPT="text/csv")
    assert text.count("\n") == 101
    assert text.splitlines()[1].startswith("1,")
    assert response["Link"].startswith("<http://testserver/api/v1/ticks?")
    assert "from_id=101" in response["Link"]
    assert response["Link"].endswith('>; rel="next"')
    assert response["Content-Disposition"] == 'attachment; filename="binance-BTCUSDT-ticks-first.csv"'


def test_bad_input_on_a_csv_request_is_the_json_400(client: Client) -> None:
    """A bad parameter on a CSV request answers the usual JSON 400 naming it."""
    for path, params, bad in (
        ("/api/v1/candles", {**CANDLES, "interval": "7m", "format": "csv"}, "interval"),
        ("/api/v1/ticks", {**TICKS, "limit": "0", "format": "csv"}, "limit"),
    ):
        response = client.get(path, params)
        assert response.status_code == 400
        assert response["Content-Type"].startswith("application/json")
        assert set(response.json()["fields"]) == {bad}
    response = client.get("/api/v1/candles", {**CANDLES, "interval": "7m"}, HTTP_ACCEPT="text/csv")
    assert (response.status_code, response.json()["error"]) == (400, "invalid request")


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_the_csv_is_an_asynchronous_stream() -> None:
    """Served by ASGI (Daphne in production) the CSV comes through an asynchronous iterator, a piece at a time (a
    synchronous one would be read whole into memory by Django's ASGI handler), with the same lines."""
    from asgiref.sync import sync_to_async
    from django.test import AsyncClient

    await sync_to_async(ticks_ingest)(ticks=ticks(2500))
    response = await AsyncClient().get("/api/v1/ticks", {**TICKS, "format": "csv"})
    assert response.status_code == 200
    assert response.streaming
    assert response.is_async
    pieces = [piece async for piece in response]
    assert len(pieces) == 3  # 1,000 lines a piece
    text = b"".join(pieces).decode()
    assert text.count("\n") == 2501
    assert text.splitlines()[-1].startswith("2500,")
