"""The history API over a real mongod: every bad input is a 400 naming the field, pages of ticks walk every id
once, stored candles come back with their provenance, and the OpenAPI schema documents the endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.http import QueryDict
from django.test import Client, RequestFactory
from rest_framework.exceptions import ValidationError

from markets.api.errors import exception_handler, server_error
from markets.api.params import CandlesParams
from markets.exchanges.base import CandleBar, Source, TradeTick
from markets.exchanges.errors import BadRequest, ExchangeUnavailable, RateLimited
from markets.history import InvalidRequest
from markets.models import Gap, Instrument
from markets.selectors import tick_page
from markets.services import candles_upsert, ticks_ingest

T0 = datetime(2025, 6, 2, tzinfo=UTC)  # a past Monday: every candle of it can exist
MINUTE = timedelta(minutes=1)
CANDLES = {
    "exchange": "binance",
    "symbol": "BTCUSDT",
    "interval": "1m",
    "start": "2025-06-02T00:00:00Z",
    "end": "2025-06-02T01:00:00Z",
    "fetch": "false",
}
TICKS = {"exchange": "binance", "symbol": "BTCUSDT"}


@pytest.fixture
def instruments() -> list[Instrument]:
    """BTCUSDT and ETHUSDT on Binance, with Binance's filters."""
    return [
        Instrument.objects.create(
            exchange="binance",
            symbol=s,
            canonical=f"{s[:3]}-USDT",
            base=s[:3],
            quote="USDT",
            tick_size=Decimal("0.01000000"),
            step_size=Decimal("0.00001000"),
            min_notional=Decimal("5.00000000"),
        )
        for s in ("BTCUSDT", "ETHUSDT")
    ]


def ticks(n: int, first_id: int = 1) -> list[TradeTick]:
    """``n`` BTCUSDT ticks with consecutive ids, 7 ms apart from T0."""
    return [
        TradeTick(
            "binance",
            "BTCUSDT",
            first_id + i,
            Decimal("61000.01") + Decimal(i % 97) / 100,
            Decimal("0.00100000"),
            "buy" if i % 3 else "sell",
            T0 + timedelta(milliseconds=7 * i),
            T0 + timedelta(milliseconds=7 * i + 40),
            Source.WS,
            first_id + i,
            first_id + i,
        )
        for i in range(n)
    ]


def candles(n: int, start: datetime = T0) -> list[CandleBar]:
    """``n`` closed one-minute exchange candles from ``start``."""
    return [
        CandleBar(
            "binance",
            "BTCUSDT",
            "1m",
            start + i * MINUTE,
            start + (i + 1) * MINUTE - timedelta(milliseconds=1),
            Decimal("100.10") + i,
            Decimal("101.10") + i,
            Decimal("99.10") + i,
            Decimal("100.60") + i,
            Decimal("2.50000000"),
            Decimal("250.25"),
            10,
            Decimal("1.25"),
            Decimal("125.125"),
            "exchange",
        )
        for i in range(n)
    ]


def get_json(client: Client, path: str, params: dict[str, Any] | None = None, status: int = 200) -> Any:
    response = client.get(path, params or {})
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


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


@pytest.mark.django_db
def test_instruments_list(client: Client, instruments: list[Instrument]) -> None:
    """Stored instruments, filtered by exchange, with filters as decimal strings."""
    body = get_json(client, "/api/v1/instruments", {"exchange": "binance"})
    assert [i["symbol"] for i in body] == ["BTCUSDT", "ETHUSDT"]
    assert body[0] == {
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "canonical": "BTC-USDT",
        "base": "BTC",
        "quote": "USDT",
        "status": "TRADING",
        "tick_size": "0.01000000",
        "step_size": "0.00001000",
        "min_notional": "5.00000000",
    }
    assert len(get_json(client, "/api/v1/instruments")) == 2


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_ticks_pages_walk_every_id_once_in_order(client: Client) -> None:
    """2,500 ticks in pages of 1,000 (the default) by following ``next``: every id exactly once, in order,
    and ``next`` is null on the last page. Prices are decimal strings, times UTC with Z."""
    ticks_ingest(ticks=ticks(2500))
    url: str | None = "/api/v1/ticks?exchange=binance&symbol=btcusdt"
    seen: list[int] = []
    sizes: list[int] = []
    while url:
        body = get_json(client, url)
        sizes.append(len(body["results"]))
        seen.extend(t["trade_id"] for t in body["results"])
        url = body["next"]
        if url:
            assert f"from_id={seen[-1] + 1}" in url
    assert sizes == [1000, 1000, 500]
    assert seen == list(range(1, 2501))
    first = get_json(client, "/api/v1/ticks", {**TICKS, "limit": "1"})["results"][0]
    assert first == {
        "trade_id": 1,
        "price": "61000.01",
        "qty": "0.00100000",
        "taker_side": "sell",
        "ts": "2025-06-02T00:00:00.000Z",
        "received_at": "2025-06-02T00:00:00.040Z",
        "source": "ws",
        "first_trade_id": 1,
        "last_trade_id": 1,
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_ticks_bounds_by_id_and_time(client: Client) -> None:
    """``to_id`` and ``[start, end)`` bound the walk; a page that ends exactly at the bound has no ``next``."""
    ticks_ingest(ticks=ticks(300))
    body = get_json(client, "/api/v1/ticks", {**TICKS, "from_id": "101", "to_id": "200", "limit": "100"})
    assert [t["trade_id"] for t in body["results"]] == list(range(101, 201))
    assert body["next"] is None
    # ts of tick id k is T0 + 7 ms * (k - 1): [70 ms, 140 ms) holds ids 11..20.
    start, end = T0 + timedelta(milliseconds=70), T0 + timedelta(milliseconds=140)
    end_ms = (end - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    body = get_json(client, "/api/v1/ticks", {**TICKS, "start": start.isoformat(), "end": str(end_ms)})
    assert [t["trade_id"] for t in body["results"]] == list(range(11, 21))
    assert get_json(client, "/api/v1/ticks", {**TICKS, "from_id": "301"}) == {"results": [], "next": None}


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_gaps_newest_first_and_filtered(client: Client) -> None:
    """Gaps come newest first (by detection time, whatever their start) and filter by state and kind."""
    for i, (kind, state) in enumerate([("trades", "filled"), ("candles", "unrecoverable"), ("trades", "open")]):
        gap = Gap.objects.create(
            exchange="binance",
            symbol="BTCUSDT",
            kind=kind,
            start=100 * (3 - i),
            end=100 * (3 - i) + 9,
            state=state,
            missing=10,
        )
        Gap.objects.filter(pk=gap.pk).update(detected_at=T0 + timedelta(minutes=i))
    body = get_json(client, "/api/v1/gaps", {"exchange": "binance", "symbol": "BTCUSDT"})
    assert [g["start"] for g in body] == [100, 200, 300]
    assert set(body[0]) == {
        "exchange",
        "symbol",
        "kind",
        "start",
        "end",
        "state",
        "reason",
        "missing",
        "recovered",
        "detected_at",
        "updated_at",
    }
    assert body[0]["detected_at"].endswith("Z")
    assert [g["start"] for g in get_json(client, "/api/v1/gaps", {"kind": "trades"})] == [100, 300]
    assert [g["start"] for g in get_json(client, "/api/v1/gaps", {"state": "unrecoverable"})] == [200]
    assert len(get_json(client, "/api/v1/gaps", {"limit": "2"})) == 2


# The candles tests below go through markets.history.get_price_history (fetch=false: MongoDB only).


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_candles_from_mongodb(client: Client) -> None:
    """Stored candles of a fully stored range come back complete, from one "mongodb" span, prices as strings."""
    candles_upsert(candles=candles(60))
    body = get_json(client, "/api/v1/candles", CANDLES)
    assert (body["exchange"], body["symbol"], body["interval"]) == ("binance", "BTCUSDT", "1m")
    assert (body["start"], body["end"]) == ("2025-06-02T00:00:00.000Z", "2025-06-02T01:00:00.000Z")
    assert body["complete"] is True
    assert body["missing"] == []
    assert body["spans"] == [
        {"start": "2025-06-02T00:00:00.000Z", "end": "2025-06-02T01:00:00.000Z", "source": "mongodb"}
    ]
    assert body["exchange_requests"] == 0
    assert len(body["candles"]) == 60
    assert body["candles"][0] == {
        "open_time": "2025-06-02T00:00:00.000Z",
        "close_time": "2025-06-02T00:00:59.999Z",
        "open": "100.10",
        "high": "101.10",
        "low": "99.10",
        "close": "100.60",
        "volume": "2.50000000",
        "quote_volume": "250.25",
        "trades": 10,
        "taker_buy_volume": "1.25",
        "taker_buy_quote_volume": "125.125",
        "source": "exchange",
        "closed": True,
        "synthetic": False,
    }


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_candles_time_forms_agree(client: Client) -> None:
    """Epoch milliseconds, a naive ISO time (UTC) and an offset ISO time of the same instants give the same answer."""
    candles_upsert(candles=candles(60))
    forms = [
        {"start": "2025-06-02T00:00:00Z", "end": "2025-06-02T00:30:00Z"},
        {"start": "1748822400000", "end": "1748824200000"},
        {"start": "2025-06-02T00:00:00", "end": "2025-06-02 00:30"},
        {"start": "2025-06-02T02:00:00+02:00", "end": "2025-06-01T19:30:00-05:00"},
    ]
    answers = [get_json(client, "/api/v1/candles", {**CANDLES, **f}) for f in forms]
    assert len(answers[0]["candles"]) == 30
    assert all(a == answers[0] for a in answers[1:])


@pytest.mark.django_db
@pytest.mark.usefixtures("instruments")
def test_candles_partly_stored_without_fetch(client: Client) -> None:
    """With fetch=false a range only partly stored is incomplete, and says which part is missing."""
    candles_upsert(candles=candles(60))
    body = get_json(client, "/api/v1/candles", {**CANDLES, "end": "2025-06-02T01:30:00Z", "interval": "5m"})
    assert body["complete"] is False
    assert body["missing"] == [{"start": "2025-06-02T01:00:00.000Z", "end": "2025-06-02T01:30:00.000Z"}]
    assert [s["source"] for s in body["spans"]] == ["mongodb", "missing"]
    assert len(body["candles"]) == 12
    assert body["candles"][0]["volume"] == "12.50000000"


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


def test_schema_documents_the_endpoints(client: Client) -> None:
    """The OpenAPI document lists the endpoints with their parameters, limits and the error shape."""
    response = client.get("/api/schema/", {"format": "json"})
    assert (response.status_code, response["Content-Type"]) == (200, "application/vnd.oai.openapi+json")
    schema = response.json()
    paths = schema["paths"]
    assert {
        "/api/v1/instruments",
        "/api/v1/candles",
        "/api/v1/ticks",
        "/api/v1/gaps",
        "/api/v1/feeds",
        "/api/v1/consolidated",
    } <= set(paths)
    candles_get = paths["/api/v1/candles"]["get"]
    params = {p["name"]: p for p in candles_get["parameters"]}
    assert set(params) == {"exchange", "symbol", "interval", "start", "end", "fetch"}
    assert {name for name, p in params.items() if p.get("required")} == {"end", "start", "symbol"}
    assert params["interval"]["schema"]["enum"] == ["1m", "5m", "15m", "1h", "4h", "1d"]
    assert "at most 31 days and at most 5000 candles" in params["end"]["description"]
    assert {"200", "400", "502", "503"} <= set(candles_get["responses"])
    ticks_params = {p["name"]: p for p in paths["/api/v1/ticks"]["get"]["parameters"]}
    assert (ticks_params["limit"]["schema"]["minimum"], ticks_params["limit"]["schema"]["maximum"]) == (1, 5000)
    assert {"error", "fields"} <= set(schema["components"]["schemas"]["ErrorOut"]["properties"])


def test_docs_page_answers(client: Client) -> None:
    """Swagger UI is served at /api/docs/."""
    response = client.get("/api/docs/")
    assert response.status_code == 200
    assert b"/api/schema/" in response.content


@pytest.mark.django_db
def test_time_bounded_tick_page_walks_only_its_range() -> None:
    """A page bounded by time alone (turned into id bounds by the selector) starts and stops at the right
    ids, ticks sharing a millisecond at either edge included or excluded together; a time with no ticks
    after it is an empty page."""
    t0 = datetime(2026, 11, 24, tzinfo=UTC)
    ticks = [
        TradeTick(
            "binance",
            "BTCUSDT",
            100 + i,
            Decimal("1"),
            Decimal("1"),
            "buy",
            t0 + timedelta(milliseconds=(i // 3) * 10),
            t0,
            Source.WS,
            100 + i,
            100 + i,
        )
        for i in range(3000)
    ]
    ticks_ingest(ticks=ticks)
    start, end = t0 + timedelta(milliseconds=1000), t0 + timedelta(milliseconds=2000)
    page = tick_page(exchange="binance", symbol="BTCUSDT", limit=5000, start=start, end=end)
    expected = [t.trade_id for t in ticks if start <= t.ts < end]
    assert [t.trade_id for t in page.ticks] == expected
    assert expected[0] == 400
    assert len(expected) == 300
    assert page.next_from_id is None
    empty = tick_page(exchange="binance", symbol="BTCUSDT", limit=10, start=t0 + timedelta(days=1))
    assert empty.ticks == []
