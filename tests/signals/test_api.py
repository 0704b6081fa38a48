"""``/api/v1/signals`` over a real mongod (mounted by the test urlconf): stored signals filtered and paged by a
cursor that walks every row once; every bad input a 400 naming the field. And the admin's signal list."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from markets.api import params
from signals.models import Signal
from signals.rules import Action, Decision, Vote
from signals.services import signals_store
from tests.signals.stored import store_instrument
from tests.signals.walks import MINUTE, T0

URL = "/api/v1/signals"
BASE = {"exchange": "binance", "symbol": "BTCUSDT"}


def decision(i: int, action: Action, *, interval: str = "1m", symbol: str = "BTCUSDT") -> Decision:
    """A decision on candle ``i`` (T0 + i minutes)."""
    weight = {Action.BUY: Decimal("0.30"), Action.SELL: Decimal("-0.30"), Action.HOLD: Decimal("0.20")}[action]
    vote = Vote("ma_cross" if action is not Action.HOLD else "rsi", weight, f"vote of candle {i}")
    reasons = (vote.reason,) if action is not Action.HOLD else (vote.reason, "net vote +0.20 is below the threshold")
    return Decision(
        "ta-vote",
        1,
        "binance",
        symbol,
        interval,
        T0 + i * MINUTE,
        action,
        abs(weight),
        weight,
        (vote,),
        reasons,
        {"close": 64000.5 + i, "sma20": 64001.25, "rsi14": None},
    )


@pytest.fixture
def stored() -> list[Decision]:
    """30 1m decisions (every 3rd a BUY, every 5th a SELL otherwise HOLD), two 5m ones, one of ETHUSDT."""
    store_instrument("BTCUSDT")
    store_instrument("ETHUSDT")
    ds = [decision(i, Action.BUY if i % 3 == 0 else Action.SELL if i % 5 == 0 else Action.HOLD) for i in range(30)]
    ds += [
        decision(0, Action.SELL, interval="5m"),
        decision(10, Action.BUY, interval="5m"),
        decision(4, Action.BUY, symbol="ETHUSDT"),
    ]
    signals_store(decisions=ds)
    return ds


def get_json(client: Client, params: dict[str, Any], status: int = 200) -> Any:
    response = client.get(URL, params)
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    return response.json()


def keys(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["candle_open_time"], r["interval"], r["decision"]) for r in rows]


def iso(i: int) -> str:
    return (T0 + i * MINUTE).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.django_db
def test_signals_of_an_instrument_default_to_buy_and_sell(client: Client, stored: list[Decision]) -> None:
    """Without filters: the BUY and SELL signals of every interval, by candle time then interval; each row carries
    its decimals as strings, indicators (null where undefined), votes and reasons."""
    body = get_json(client, BASE)
    expected = sorted(
        (iso(int((d.open_time - T0) / MINUTE)), d.interval, str(d.action))
        for d in stored
        if d.symbol == "BTCUSDT" and d.action is not Action.HOLD
    )
    assert keys(body["results"]) == expected
    assert body["next"] is None
    first = body["results"][0]
    assert first == {
        "strategy": "ta-vote",
        "version": 1,
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "interval": "1m",
        "candle_open_time": iso(0),
        "decision": "BUY",
        "confidence": "0.3",  # a ratio: no instrument's places, trailing zeros dropped (markets.numbers.plain)
        "net": "0.3",
        "indicators": {"close": 64000.5, "sma20": 64001.25, "rsi14": None},
        "votes": [{"rule": "ma_cross", "weight": "0.30", "reason": "vote of candle 0"}],
        "reasons": ["vote of candle 0"],
        "created_at": first["created_at"],
        "updated_at": first["updated_at"],
    }
    assert first["created_at"].endswith("Z")


@pytest.mark.django_db
@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"interval": "5m"}, [(0, "5m", "SELL"), (10, "5m", "BUY")]),
        (
            {"interval": "1m", "decision": "sell"},
            [(5, "1m", "SELL"), (10, "1m", "SELL"), (20, "1m", "SELL"), (25, "1m", "SELL")],
        ),
        (
            {"interval": "1m", "start": iso(20), "end": iso(25)},
            [(20, "1m", "SELL"), (21, "1m", "BUY"), (24, "1m", "BUY")],
        ),
        (
            {"interval": "1m", "decision": "HOLD,BUY", "start": iso(1), "end": iso(4)},
            [(1, "1m", "HOLD"), (2, "1m", "HOLD"), (3, "1m", "BUY")],
        ),
        ({"symbol": "ethusdt"}, [(4, "1m", "BUY")]),
        ({"start": "2026-06-01T00:00:00Z"}, []),
    ],
)
def test_filters(client: Client, params: dict[str, str], expected: list[tuple[int, str, str]]) -> None:
    body = get_json(client, {**BASE, **params})
    assert keys(body["results"]) == [(iso(i), interval, d) for i, interval, d in expected]


@pytest.mark.django_db
def test_pages_walk_every_row_once_in_order(client: Client, stored: list[Decision]) -> None:
    """Pages of 4 (HOLD included, rows sharing a candle time across intervals): following ``next`` yields every
    row once, in order, and the last page's ``next`` is null."""
    params = {**BASE, "decision": "BUY,SELL,HOLD", "limit": "4"}
    body = get_json(client, params)
    seen = list(body["results"])
    while body["next"]:
        assert "cursor=" in body["next"]
        body = get_json(client, {**params, "cursor": body["next"].split("cursor=")[1].split("&")[0]})
        seen += body["results"]
    assert keys(seen) == sorted(keys(seen))
    assert len(seen) == len(set(keys(seen))) == 32


@pytest.mark.django_db
def test_a_recomputed_candle_is_served_as_replaced(client: Client, stored: list[Decision]) -> None:
    """A candle decided again (BUY → HOLD after a backfill) is no longer listed as a signal."""
    signals_store(decisions=[dataclasses.replace(stored[3], action=Action.HOLD)])
    body = get_json(client, {**BASE, "interval": "1m", "end": iso(5)})
    assert keys(body["results"]) == [(iso(0), "1m", "BUY")]
    assert Signal.objects.filter(interval="1m", symbol="BTCUSDT").count() == 30


BAD_INPUTS = [
    ("unknown exchange", {**BASE, "exchange": "bitstamp"}, "exchange"),
    ("missing symbol", {"exchange": "binance"}, "symbol"),
    ("unknown symbol", {**BASE, "symbol": "DOGEUSDT"}, "symbol"),
    ("canonical name for symbol", {**BASE, "symbol": "BTC-USDT"}, "symbol"),
    ("bad interval", {**BASE, "interval": "2m"}, "interval"),
    ("unparsable start", {**BASE, "start": "yesterday"}, "start"),
    ("epoch seconds", {**BASE, "end": "1748822400"}, "end"),
    ("start after end", {**BASE, "start": iso(10), "end": iso(5)}, "start"),
    ("unknown decision", {**BASE, "decision": "BUY,STRONG_BUY"}, "decision"),
    ("empty decision", {**BASE, "decision": ""}, "decision"),
    ("limit 0", {**BASE, "limit": "0"}, "limit"),
    ("limit 5001", {**BASE, "limit": "5001"}, "limit"),
    ("forged cursor", {**BASE, "cursor": "yesterday"}, "cursor"),
    ("cursor with a bad interval", {**BASE, "cursor": "1767225600000.2m.ta-vote"}, "cursor"),
    ("misspelt parameter", {**BASE, "inteval": "1m"}, "inteval"),
]


@pytest.mark.django_db
@pytest.mark.usefixtures("stored")
@pytest.mark.parametrize(("params", "field"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_is_a_400_naming_the_field(client: Client, params: dict[str, str], field: str) -> None:
    """Each bad parameter is answered 400 ``{"error": "invalid request", "fields": {field: [...]}}``, never 500."""
    body = get_json(client, params, status=400)
    assert body["error"] == "invalid request"
    assert field in body["fields"], body
    assert all(isinstance(m, str) and m for m in body["fields"][field])


@pytest.mark.django_db
@pytest.mark.usefixtures("stored")
def test_messages_name_the_choices(client: Client) -> None:
    body = get_json(client, {**BASE, "decision": "buy,maybe"}, status=400)
    assert body["fields"]["decision"] == ["unknown decision 'MAYBE'; use any of BUY, SELL, HOLD, comma-separated"]
    body = get_json(client, {**BASE, "symbol": "BTC-USDT"}, status=400)
    assert "use symbol=BTCUSDT" in body["fields"]["symbol"][0]


def test_schema_documents_the_endpoint() -> None:
    """The OpenAPI schema (as generated for the test urlconf) has the endpoint, its parameters and output."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    op = schema["paths"]["/api/v1/signals"]["get"]
    assert op["operationId"] == "signals_list"
    assert {p["name"] for p in op["parameters"]} >= {
        "exchange",
        "symbol",
        "interval",
        "start",
        "end",
        "decision",
        "limit",
        "cursor",
    }
    assert "SignalPageOut" in schema["components"]["schemas"]


@pytest.mark.django_db
@pytest.mark.usefixtures("stored")
def test_admin_lists_signals_read_only(admin_client: Client) -> None:
    """Staff see the signal list (filtered, searched) and a signal's page; nobody adds or edits one by hand."""
    page = admin_client.get("/admin/signals/signal/")
    assert page.status_code == 200
    assert b"BTCUSDT" in page.content
    assert b"ta-vote" in page.content
    assert admin_client.get("/admin/signals/signal/", {"decision__exact": "BUY", "interval": "5m"}).status_code == 200
    assert admin_client.get("/admin/signals/signal/", {"q": "ETHUSDT"}).status_code == 200
    row = Signal.objects.filter(decision="SELL").first()
    assert admin_client.get(f"/admin/signals/signal/{row.pk}/change/").status_code == 200
    assert admin_client.get("/admin/signals/signal/add/").status_code == 403


@pytest.mark.django_db
def test_admin_needs_staff(client: Client) -> None:
    assert client.get("/admin/signals/signal/").status_code == 302


@pytest.mark.django_db
def test_times_take_now_and_ago(client: Client, stored: list[Decision], monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands' time forms on the signals API: with the clock pinned at candle 30, ``start=10m ago&end=now``
    is candles 20..29 (``markets.times.parse_time``, now read once per request)."""
    monkeypatch.setattr(params, "clock", lambda: T0 + 30 * MINUTE)
    rows = get_json(client, {**BASE, "interval": "1m", "start": "10m ago", "end": "now", "decision": "BUY,SELL,HOLD"})
    assert [r["candle_open_time"] for r in rows["results"]] == [iso(i) for i in range(20, 30)]
