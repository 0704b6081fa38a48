"""The history API's answers to what it cannot serve: every bad input is a 400 naming the field with a message
that states the limit, defaults fill what is absent, and errors (service, exchange, unexpected, unknown routes
and methods) come back as JSON of one shape.
"""

from __future__ import annotations

import pytest
from django.http import QueryDict
from django.test import Client, RequestFactory
from rest_framework.exceptions import ValidationError

from markets.api.errors import exception_handler, server_error
from markets.api.params import CandlesParams
from markets.exchanges.errors import BadRequest, ExchangeUnavailable, RateLimited
from markets.history import InvalidRequest
from tests.markets.api_requests import CANDLES, MINUTE, T0, TICKS, get_json


def without(params: dict[str, str], name: str) -> dict[str, str]:
    return {k: v for k, v in params.items() if k != name}


BAD_INPUTS = [
    # (id, path, params, the field the 400 must name)
    ("unknown exchange", "/api/v1/candles", {**CANDLES, "exchange": "bitstamp"}, "exchange"),
    ("unknown symbol", "/api/v1/candles", {**CANDLES, "symbol": "DOGEUSDT"}, "symbol"),
    ("canonical name for symbol", "/api/v1/candles", {**CANDLES, "symbol": "BTC-USDT"}, "symbol"),
    ("symbol with a space", "/api/v1/candles", {**CANDLES, "symbol": "BTC USDT"}, "symbol"),
    ("symbol too long", "/api/v1/candles", {**CANDLES, "symbol": "B" * 33}, "symbol"),
    ("missing symbol", "/api/v1/candles", without(CANDLES, "symbol"), "symbol"),
    ("bad interval", "/api/v1/candles", {**CANDLES, "interval": "2m"}, "interval"),
    ("start after end", "/api/v1/candles", {**CANDLES, "start": "2025-06-02T02:00:00Z"}, "start"),
    ("start equals end", "/api/v1/candles", {**CANDLES, "start": CANDLES["end"]}, "start"),
    (
        "range over the maximum span",
        "/api/v1/candles",
        {**CANDLES, "interval": "1d", "start": "2025-01-01T00:00:00Z", "end": "2025-03-01T00:00:00Z"},
        "end",
    ),
    ("too many candles", "/api/v1/candles", {**CANDLES, "end": "2025-06-06T00:00:00Z"}, "end"),
    ("unparsable time", "/api/v1/candles", {**CANDLES, "start": "yesterday"}, "start"),
    ("epoch with letters", "/api/v1/candles", {**CANDLES, "end": "1748826000000x"}, "end"),
    ("negative epoch", "/api/v1/candles", {**CANDLES, "start": "-1"}, "start"),
    ("epoch in seconds", "/api/v1/candles", {**CANDLES, "start": "1748822400"}, "start"),
    ("absurd epoch", "/api/v1/candles", {**CANDLES, "end": "9" * 30}, "end"),
    ("year before 2009", "/api/v1/candles", {**CANDLES, "start": "2008-12-31T23:59:59Z"}, "start"),
    ("far future", "/api/v1/candles", {**CANDLES, "end": "2999-01-01T00:00:00Z"}, "end"),
    ("impossible date", "/api/v1/candles", {**CANDLES, "start": "2025-02-30T00:00:00Z"}, "start"),
    # Naive times are UTC: 01:00 (naive) is after 01:30+01:00 (= 00:30Z), and equal to 02:00+01:00.
    (
        "naive start after aware end",
        "/api/v1/candles",
        {**CANDLES, "start": "2025-06-02T01:00:00", "end": "2025-06-02T01:30:00+01:00"},
        "start",
    ),
    (
        "naive start equals aware end",
        "/api/v1/candles",
        {**CANDLES, "start": "2025-06-02T01:00:00", "end": "2025-06-02T02:00:00+01:00"},
        "start",
    ),
    ("unescaped + in offset", "/api/v1/candles", {**CANDLES, "start": "2025-06-02T00:00:00 01:00"}, "start"),
    ("missing start", "/api/v1/candles", without(CANDLES, "start"), "start"),
    ("empty end", "/api/v1/candles", {**CANDLES, "end": ""}, "end"),
    ("bad fetch value", "/api/v1/candles", {**CANDLES, "fetch": "maybe"}, "fetch"),
    ("misspelt parameter", "/api/v1/candles", {**CANDLES, "inteval": "5m"}, "inteval"),
    ("limit 0", "/api/v1/ticks", {**TICKS, "limit": "0"}, "limit"),
    ("limit 5001", "/api/v1/ticks", {**TICKS, "limit": "5001"}, "limit"),
    ("limit abc", "/api/v1/ticks", {**TICKS, "limit": "abc"}, "limit"),
    ("negative from_id", "/api/v1/ticks", {**TICKS, "from_id": "-1"}, "from_id"),
    ("fractional from_id", "/api/v1/ticks", {**TICKS, "from_id": "1.5"}, "from_id"),
    ("to_id over int64", "/api/v1/ticks", {**TICKS, "to_id": str(2**63)}, "to_id"),
    ("from_id after to_id", "/api/v1/ticks", {**TICKS, "from_id": "10", "to_id": "9"}, "from_id"),
    ("ticks start equals end", "/api/v1/ticks", {**TICKS, "start": "1748822400000", "end": "1748822400000"}, "start"),
    ("ticks missing symbol", "/api/v1/ticks", {"exchange": "binance"}, "symbol"),
    ("ticks unknown lower-case symbol", "/api/v1/ticks", {**TICKS, "symbol": "dogeusdt"}, "symbol"),
    ("bad gap state", "/api/v1/gaps", {"state": "broken"}, "state"),
    ("bad gap kind", "/api/v1/gaps", {"kind": "klines"}, "kind"),
    ("gaps limit 501", "/api/v1/gaps", {"limit": "501"}, "limit"),
    ("gaps unknown exchange", "/api/v1/gaps", {"exchange": "nyse"}, "exchange"),
    ("instruments unknown exchange", "/api/v1/instruments", {"exchange": "coinbasepro"}, "exchange"),
    ("feeds unknown exchange", "/api/v1/feeds", {"exchange": "nyse"}, "exchange"),
    ("consolidated missing base", "/api/v1/consolidated", {}, "base"),
    ("consolidated pair for base", "/api/v1/consolidated", {"base": "BTC-USDT"}, "base"),
]


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
@pytest.mark.parametrize(
    ("path", "params", "field"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS]
)
def test_bad_input_is_a_400_naming_the_field(client: Client, path: str, params: dict[str, str], field: str) -> None:
    """Each bad parameter is answered 400 with JSON ``{"error": "invalid request", "fields": {field: [...]}}``,
    never a 500."""
    body = get_json(client, path, params, status=400)
    assert body["error"] == "invalid request"
    assert field in body["fields"], body
    assert all(isinstance(m, str) and m for m in body["fields"][field])


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({**CANDLES, "start": CANDLES["end"]}, "start", "must be before end (start=2025-06-02T01:00:00.000Z"),
        ({**CANDLES, "interval": "1d", "end": "2025-07-05T00:00:00Z"}, "end", "at most 31 days"),
        ({**CANDLES, "end": "2025-06-06T00:00:00Z"}, "end", "5760 1m candles; at most 5000"),
        ({**CANDLES, "start": "1748822400"}, "start", "looks like epoch seconds"),
        ({**CANDLES, "start": "2008-12-31T23:59:59Z"}, "start", "2009-01-01T00:00:00.000Z"),
        ({**CANDLES, "start": "2025-06-02T00:00:00 01:00"}, "start", "%2B"),
        ({**CANDLES, "symbol": "BTC-USDT"}, "symbol", "use symbol=BTCUSDT"),
        ({**CANDLES, "interval": "2m"}, "interval", "1m, 5m, 15m, 1h, 4h, 1d"),
        ({**CANDLES, "inteval": "5m"}, "inteval", "unknown parameter"),
    ],
)
def test_messages_state_the_limit(client: Client, params: dict[str, str], field: str, says: str) -> None:
    """A 400's message says what the limit is (or what was probably meant), not only that something is wrong."""
    body = get_json(client, "/api/v1/candles", params, status=400)
    assert any(says in m for m in body["fields"][field]), body


@pytest.mark.django_db
def test_several_bad_fields_are_named_together(client: Client) -> None:
    """One answer names every bad parameter it can, not just the first."""
    body = get_json(
        client, "/api/v1/ticks", {"exchange": "binance", "limit": "0", "from_id": "x", "bogus": "1"}, status=400
    )
    assert {"symbol", "limit", "from_id", "bogus"} <= set(body["fields"])


def test_history_and_exchange_errors_are_shaped() -> None:
    """InvalidRequest from the service is a 400 naming its field; exchange failures are 502, rate limits 503
    with Retry-After; all JSON bodies with a public message (the internal one, with URLs, is only logged)."""
    response = exception_handler(InvalidRequest("symbol", "BTCUSDX is not listed"), {})
    assert response is not None
    assert (response.status_code, response.data) == (
        400,
        {"error": "invalid request", "fields": {"symbol": ["BTCUSDX is not listed"]}},
    )
    response = exception_handler(RateLimited("binance", "429 Too Many Requests", retry_after=2.5), {})
    assert response is not None
    assert (response.status_code, response["Retry-After"], response.data["retry_after"]) == (503, "3", 3)
    assert response.data["detail"] == "binance: the exchange is rate limiting our requests; retry in 3 s"
    for exc in (ExchangeUnavailable("binance", "unavailable after 5 attempts"), BadRequest("binance", "-1121")):
        response = exception_handler(exc, {})
        assert response is not None
        assert response.status_code == 502
        assert response.data["detail"].startswith("binance: ")
        assert str(exc).split(": ", 1)[1] not in response.data["detail"]
    response = exception_handler(ValidationError(["no field"]), {})
    assert response is not None
    assert response.data == {"error": "invalid request", "fields": {"non_field_errors": ["no field"]}}


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_candles_defaults_and_symbol_case() -> None:
    """Absent exchange, interval and fetch mean binance, 1m and fetch=true (a query string's missing boolean
    is not false); the symbol is upper-cased; times come back as aware UTC datetimes."""
    params = CandlesParams(data=QueryDict("symbol=btcusdt&start=1748822400000&end=2025-06-02T03:00:00%2B02:00"))
    assert params.is_valid(), params.errors
    assert dict(params.validated_data) == {
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "fetch": True,
        "start": T0,
        "end": T0 + 60 * MINUTE,
    }


def test_unexpected_errors_under_api_are_json() -> None:
    """An unexpected error under /api/ answers a JSON 500 without a traceback; elsewhere Django's page."""
    response = server_error(RequestFactory().get("/api/v1/candles"))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert b"Traceback" not in response.content
    assert server_error(RequestFactory().get("/admin/"))["Content-Type"].startswith("text/html")


@pytest.mark.django_db
def test_unknown_routes_and_methods_are_json(client: Client) -> None:
    """Unknown API routes are JSON 404s (a trailing slash is pointed out); other methods are JSON 405s."""
    body = get_json(client, "/api/v1/prices", status=404)
    assert body["error"] == "not found"
    assert "did you mean /api/v1/candles?" in get_json(client, "/api/v1/candles/", status=404)["detail"]
    response = client.post("/api/v1/candles", CANDLES)
    assert response.status_code == 405
    assert response.json()["error"] == "method not allowed"
