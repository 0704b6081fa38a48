"""``/api/v1/orders`` and ``/api/v1/positions`` over a real mongod: staff only (a JSON 403 for anyone else, unless
``TRADING_DATA_PUBLIC``); paper records made by the pipeline come back newest first, filtered, with decimals as
strings and times as ISO-8601 UTC; every bad input is a 400 naming the parameter; the OpenAPI schema documents
both, and that they need staff."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal as D
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from markets.numbers import plain
from orders.access import STAFF_ONLY
from orders.executors.base import PricePoint
from orders.executors.paper import PaperExecutor
from orders.models import Order, Position
from orders.services import act_on_signal
from tests.orders.paper_helpers import T0, signal, store_instrument

DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


@dataclass(frozen=True)
class Records:
    """A paper book: BTCUSDT bought and open, ETHUSDT bought a minute later and closed at its take-profit, a
    second BUY of BTCUSDT rejected (a position is open)."""

    paper: PaperExecutor
    btc: Position
    eth: Position


def make_records() -> Records:
    store_instrument()
    store_instrument(symbol="ETHUSDT")
    paper = PaperExecutor("binance", cash=D(10000), fee=D("0.001"), slippage=D("0.0005"))
    btc = act_on_signal(signal("BUY"), paper, price=D(40000), now=T0).position  # type: ignore[union-attr]
    eth = act_on_signal(
        signal("BUY", minute=1, symbol="ETHUSDT"), paper, price=D(2000), now=T0 + timedelta(minutes=1)
    ).position  # type: ignore[union-attr]
    assert btc is not None
    assert eth is not None
    paper.watch("ETHUSDT", [PricePoint(D(2200), T0 + timedelta(minutes=2))], T0 + timedelta(minutes=2))
    act_on_signal(signal("BUY", minute=3), paper, price=D(40000), now=T0 + timedelta(minutes=3))
    eth.refresh_from_db()
    assert (btc.status, eth.status, eth.exit_reason) == ("open", "closed", "take_profit")
    return Records(paper, btc, eth)


@pytest.fixture
def records(db: None) -> Records:
    return make_records()


@pytest.fixture
def staff(db: None) -> Client:
    """A client signed in (a session) as a staff user who is not a superuser."""
    client = Client()
    client.force_login(get_user_model().objects.create_user("ops", password="pw-for-tests-only", is_staff=True))
    return client


def get_json(client: Client, url: str, params: dict[str, Any] | None = None, status: int = 200) -> Any:
    response = client.get(url, params or {})
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def test_orders_newest_first_with_fills_reasons_and_string_decimals(staff: Client, records: Records) -> None:
    """Every order of the book, newest first; decimals are strings, times ISO-8601 UTC; fills and reasons come
    with them."""
    rows = get_json(staff, "/api/v1/orders")
    assert [(r["symbol"], r["purpose"], r["status"]) for r in rows] == [
        ("ETHUSDT", "take_profit", "FILLED"),
        ("ETHUSDT", "stop_loss", "EXPIRED"),
        ("ETHUSDT", "entry", "FILLED"),
        ("BTCUSDT", "take_profit", "NEW"),
        ("BTCUSDT", "stop_loss", "NEW"),
        ("BTCUSDT", "entry", "FILLED"),
    ]
    entry = next(r for r in rows if r["symbol"] == "BTCUSDT" and r["purpose"] == "entry")
    assert entry["qty"] == "0.02500"  # the instrument's step is 0.00001, its tick 0.01 (markets.numbers.plain)
    assert entry["avg_price"] == plain(records.btc.entry_price, 2)
    assert entry["price"] is None
    assert entry["position_id"] == str(records.btc.pk)
    assert entry["created_at"] == "2026-11-24T10:00:00.000Z"
    assert [(f["trade_id"], f["qty"], f["fee_asset"]) for f in entry["fills"]] == [("paper-1", "0.02500", "USDT")]
    assert ISO_UTC.fullmatch(entry["fills"][0]["ts"])
    for row in rows:
        for key in ("qty", "executed_qty", "fee"):
            assert isinstance(row[key], str)
            assert DECIMAL.fullmatch(row[key]), (key, row[key])
        assert ISO_UTC.fullmatch(row["updated_at"])
    expired = next(r for r in rows if r["status"] == "EXPIRED")
    assert expired["reason"] == "the take-profit filled first"
    assert expired["fills"] == []


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"symbol": "ethusdt"}, {("ETHUSDT", "entry"), ("ETHUSDT", "take_profit"), ("ETHUSDT", "stop_loss")}),
        ({"status": "new"}, {("BTCUSDT", "stop_loss"), ("BTCUSDT", "take_profit")}),
        ({"status": "FILLED", "symbol": "BTCUSDT", "exchange": "binance", "mode": "PAPER"}, {("BTCUSDT", "entry")}),
        ({"mode": "testnet"}, set()),
        ({"exchange": "kraken"}, set()),
    ],
)
def test_order_filters(staff: Client, records: Records, params: dict[str, str], expected: set[tuple[str, str]]) -> None:
    """mode, status, symbol and exchange filter (case-insensitively); nothing matching is an empty list."""
    assert {(r["symbol"], r["purpose"]) for r in get_json(staff, "/api/v1/orders", params)} == expected


def test_limit_keeps_the_newest(staff: Client, records: Records) -> None:
    everything = get_json(staff, "/api/v1/orders")
    assert get_json(staff, "/api/v1/orders", {"limit": 2}) == everything[:2]
    assert [p["symbol"] for p in get_json(staff, "/api/v1/positions", {"limit": 1})] == ["ETHUSDT"]


def test_positions_with_their_pnl(staff: Client, records: Records) -> None:
    """An open position has unrealised PnL at its last price, a closed one realised PnL and its exit reason."""
    rows = get_json(staff, "/api/v1/positions")
    assert [(p["symbol"], p["status"]) for p in rows] == [("ETHUSDT", "closed"), ("BTCUSDT", "open")]
    eth, btc = rows
    assert (eth["exit_reason"], eth["unrealised_pnl"]) == ("take_profit", None)
    assert eth["realised_pnl"] == eth["pnl"] == plain(records.eth.realised_pnl)  # a P&L: no trailing zeros
    assert D(eth["realised_pnl"]) > 0
    assert eth["closed_at"] == "2026-11-24T10:02:00.000Z"
    assert (btc["realised_pnl"], btc["exit_reason"], btc["closed_at"]) == (None, "", None)
    assert btc["unrealised_pnl"] == btc["pnl"] == plain(records.btc.unrealised_pnl)
    assert (btc["qty"], btc["stop_price"], btc["take_profit_price"]) == ("0.02500", "38800.00", "42400.00")
    assert (btc["opened_at"], btc["id"]) == ("2026-11-24T10:00:00.000Z", str(records.btc.pk))
    for row in rows:
        for key in ("qty", "entry_price", "stop_price", "take_profit_price", "fees", "pnl"):
            assert DECIMAL.fullmatch(row[key]), (key, row[key])
    assert [p["symbol"] for p in get_json(staff, "/api/v1/positions", {"status": "open"})] == ["BTCUSDT"]
    closed = get_json(staff, "/api/v1/positions", {"status": "Closed", "symbol": "ETHUSDT", "mode": "paper"})
    assert [p["id"] for p in closed] == [str(records.eth.pk)]


@pytest.mark.parametrize("url", ["/api/v1/orders", "/api/v1/positions"])
@pytest.mark.parametrize(
    ("params", "field", "says"),
    [
        ({"mode": "demo"}, "mode", 'unknown mode "demo"; use one of paper, testnet, live'),
        ({"limit": "0"}, "limit", "must be an integer from 1 to 1000"),
        ({"limit": "1001"}, "limit", "must be an integer from 1 to 1000"),
        ({"limit": "ten"}, "limit", "must be an integer from 1 to 1000"),
        ({"exchange": "nowhere"}, "exchange", 'unknown exchange "nowhere"'),
        ({"symbol": "DOGEUSDT"}, "symbol", "DOGEUSDT is not a stored instrument"),
        ({"symbol": "BTC USDT"}, "symbol", "not a symbol"),
        ({"side": "BUY"}, "side", "unknown parameter; this endpoint accepts"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    staff: Client, records: Records, url: str, params: dict[str, str], field: str, says: str
) -> None:
    body = get_json(staff, url, params, status=400)
    assert body["error"] == "invalid request"
    assert list(body["fields"]) == [field]
    assert says in body["fields"][field][0]


def test_an_unknown_status_lists_the_known_ones(staff: Client, records: Records) -> None:
    orders = get_json(staff, "/api/v1/orders", {"status": "done"}, status=400)
    known = "PENDING, NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, REJECTED"
    assert orders["fields"] == {"status": [f'unknown status "done"; use one of {known}']}
    positions = get_json(staff, "/api/v1/positions", {"status": "FILLED", "limit": "-1"}, status=400)
    assert positions["fields"] == {
        "status": ['unknown status "FILLED"; use one of open, closed'],
        "limit": ["must be an integer from 1 to 1000"],
    }


def test_empty_book_is_an_empty_list(staff: Client, db: None) -> None:
    assert get_json(staff, "/api/v1/orders") == []
    assert get_json(staff, "/api/v1/positions", {"status": "open"}) == []
    assert not Order.objects.exists()


def test_schema_documents_orders_and_positions(client: Client) -> None:
    """The OpenAPI document lists both endpoints with their filters, limits, output shapes and the 400."""
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    for path, statuses in (("/api/v1/orders", Order.Status.values), ("/api/v1/positions", Position.Status.values)):
        op = schema["paths"][path]["get"]
        params = {p["name"]: p for p in op["parameters"]}
        assert set(params) == {"mode", "status", "exchange", "symbol", "limit"}
        assert params["status"]["schema"]["enum"] == statuses
        assert params["mode"]["schema"]["enum"] == ["paper", "testnet", "live"]
        assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (1, 1000)
        assert params["limit"]["schema"]["default"] == 100
        assert {"200", "400"} <= set(op["responses"])
        assert op["tags"] == ["trading"]
    components = schema["components"]["schemas"]
    assert {"realised_pnl", "unrealised_pnl", "pnl", "exit_reason"} <= set(components["PositionOut"]["properties"])
    assert {"reason", "fills", "client_order_id"} <= set(components["OrderOut"]["properties"])
    assert components["PositionOut"]["properties"]["realised_pnl"]["type"] == "string"


TRADING = ["/api/v1/orders", "/api/v1/positions"]


@pytest.mark.parametrize("url", TRADING)
@pytest.mark.parametrize("who", ["anonymous", "signed in, not staff"])
def test_anyone_but_staff_gets_a_json_403(client: Client, records: Records, url: str, who: str) -> None:
    """No session, or a session of a user who is not staff: a 403 saying trading data is for staff, no record."""
    if who != "anonymous":
        client.force_login(get_user_model().objects.create_user("viewer", password="pw-for-tests-only"))
    body = get_json(client, url, status=403)
    assert body == {"error": "forbidden", "detail": STAFF_ONLY}
    assert get_json(client, url, {"limit": "ten"}, status=403) == body  # refused before its input is read


@pytest.mark.parametrize("url", TRADING)
def test_a_staff_session_gets_the_records(staff: Client, records: Records, url: str) -> None:
    assert len(get_json(staff, url)) == (6 if url.endswith("orders") else 2)


@pytest.mark.parametrize("url", TRADING)
def test_trading_data_public_opens_them_to_anyone(client: Client, records: Records, settings: Any, url: str) -> None:
    settings.TRADING_DATA_PUBLIC = True
    assert len(get_json(client, url)) == (6 if url.endswith("orders") else 2)


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/instruments",
        "/api/v1/gaps",
        "/api/v1/feeds",
        "/api/v1/signals?exchange=binance&symbol=BTCUSDT",
        "/api/schema/",
    ],
)
def test_market_data_stays_public(client: Client, records: Records, url: str) -> None:
    assert client.get(url).status_code == 200


def test_schema_says_trading_needs_staff(client: Client) -> None:
    """Orders and positions take a session cookie and document the 403; market data needs no authentication."""
    schema = client.get("/api/schema/", {"format": "json"}).json()
    for path in TRADING:
        op = schema["paths"][path]["get"]
        assert "403" in op["responses"]
        assert "Staff only" in op["description"]
        assert {"cookieAuth": []} in op["security"]
        assert {} not in op["security"]  # no anonymous access
    assert schema["components"]["securitySchemes"]["cookieAuth"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": "sessionid",
    }
    candles = schema["paths"]["/api/v1/candles"]["get"]
    assert {} in candles.get("security", [{}]), "market data needs no authentication (staff sessions fetch more)"
