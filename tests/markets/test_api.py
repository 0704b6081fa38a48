"""The history API over a real mongod: stored instruments, pages of ticks walk every id once, gaps newest
first, stored candles come back with their provenance. Bad input and error shapes are in test_api_errors.py,
the OpenAPI schema in test_api_schema.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from markets.exchanges.base import CandleBar, Source, TradeTick
from markets.models import Gap, Instrument
from markets.selectors import tick_page
from markets.services import candles_upsert, ticks_ingest
from tests.markets.api_requests import CANDLES, MINUTE, T0, TICKS, get_json


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


@pytest.mark.django_db
def test_instruments_list(client: Client, instruments: list[Instrument]) -> None:
    """Stored instruments, filtered by exchange, with filters as decimal strings printed to the tick (tick size,
    min notional) and to the step (step size)."""
    body = get_json(client, "/api/v1/instruments", {"exchange": "binance"})
    assert [i["symbol"] for i in body] == ["BTCUSDT", "ETHUSDT"]
    assert body[0] == {
        "exchange": "binance",
        "symbol": "BTCUSDT",
        "canonical": "BTC-USDT",
        "base": "BTC",
        "quote": "USDT",
        "status": "TRADING",
        "tick_size": "0.01",
        "step_size": "0.00001",
        "min_notional": "5.00",
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
        "qty": "0.00100",
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
    assert [(g["first_id"], g["start"]) for g in body] == [(100, None), (None, "1970-01-01T00:00:00.200Z"), (300, None)]
    assert set(body[0]) == {
        "exchange",
        "symbol",
        "kind",
        "start",
        "end",
        "first_id",
        "last_id",
        "state",
        "reason",
        "missing",
        "recovered",
        "detected_at",
        "updated_at",
    }
    assert body[0]["detected_at"].endswith("Z")
    assert [g["first_id"] for g in get_json(client, "/api/v1/gaps", {"kind": "trades"})] == [100, 300]
    assert [g["end"] for g in get_json(client, "/api/v1/gaps", {"state": "unrecoverable"})] == [
        "1970-01-01T00:00:00.209Z"
    ]
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
        "volume": "2.50000",
        "quote_volume": "250.25",
        "trades": 10,
        "taker_buy_volume": "1.25000",
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
    assert body["candles"][0]["volume"] == "12.50000"


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
