"""Idempotent storage: the same ticks and candles written twice are stored once, on a real mongod."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import Client

from markets.exchanges.base import CandleBar, Source, TradeTick
from markets.models import Candle, Tick
from markets.services import candles_upsert, ticks_ingest

T0 = datetime(2026, 11, 24, tzinfo=UTC)


def make_ticks(n: int, first_id: int = 1, symbol: str = "BTCUSDT") -> list[TradeTick]:
    """``n`` ticks with small ids (below 2**31, where the partial-index trap bites)."""
    return [
        TradeTick(
            "binance",
            symbol,
            first_id + i,
            Decimal("61000.01") + Decimal(i % 97) / 100,
            Decimal("0.00100000") * (1 + i % 7),
            "buy" if i % 3 else "sell",
            T0 + timedelta(milliseconds=i * 7),
            T0 + timedelta(milliseconds=i * 7 + 40),
            Source.WS,
            first_id + i,
            first_id + i,
        )
        for i in range(n)
    ]


@pytest.mark.django_db
def test_ten_thousand_ticks_written_twice_are_stored_once() -> None:
    """The same 10,000 ticks through the ingest service twice (and again overlapping) leave exactly 10,000
    documents, with Decimal prices and UTC times intact."""
    ticks = make_ticks(10_000)
    first = ticks_ingest(ticks=ticks)
    assert (first.written, first.duplicates) == (10_000, 0)
    second = ticks_ingest(ticks=ticks)
    assert (second.written, second.duplicates) == (0, 10_000)
    overlap = ticks_ingest(ticks=[*ticks[-100:], *make_ticks(50, first_id=10_001), *ticks[:10]])
    assert (overlap.written, overlap.duplicates) == (50, 110)
    assert Tick.objects.count() == 10_050
    stored = Tick.objects.get(exchange="binance", symbol="BTCUSDT", trade_id=42)
    assert stored.price == ticks[41].price
    assert stored.qty == ticks[41].qty
    assert stored.ts == ticks[41].ts
    assert stored.ts.tzinfo is not None


@pytest.mark.django_db
def test_orm_write_path_cannot_double_a_tick() -> None:
    """A tick the service stored cannot be stored again through the ORM either (the unique index holds)."""
    ticks_ingest(ticks=make_ticks(10))
    t = make_ticks(1, first_id=5)[0]
    with pytest.raises(IntegrityError), transaction.atomic():
        Tick.objects.create(
            exchange=t.exchange,
            symbol=t.symbol,
            trade_id=t.trade_id,
            price=t.price,
            qty=t.qty,
            taker_side=t.taker_side,
            ts=t.ts,
            received_at=t.received_at,
            source=t.source,
            first_trade_id=t.trade_id,
            last_trade_id=t.trade_id,
        )
    assert Tick.objects.count() == 10


@pytest.mark.django_db
def test_partial_index_trap_is_real_and_avoided() -> None:
    """The backend's unique index is partial on BSON long: a raw insert of a plain int escapes it (the trap
    of ARCHITECTURE §5), which is why the service always sends Int64."""
    ticks_ingest(ticks=make_ticks(1, first_id=7))
    coll = connection.database[Tick._meta.db_table]
    info = coll.index_information()["tick_identity"]
    assert info["partialFilterExpression"]["trade_id"] == {"$type": "long"}
    coll.insert_one({"exchange": "binance", "symbol": "BTCUSDT", "trade_id": 7})  # int32: not rejected
    assert coll.count_documents({"trade_id": 7}) == 2
    assert ticks_ingest(ticks=make_ticks(1, first_id=7)).duplicates == 1  # the service's path stays exact


@pytest.mark.django_db
def test_candles_upsert_is_idempotent_and_updates() -> None:
    """Candles upserted twice are stored once; a recomputed candle replaces the stored one."""
    minute = timedelta(minutes=1)
    bars = [
        CandleBar(
            "binance",
            "BTCUSDT",
            "1m",
            T0 + i * minute,
            T0 + (i + 1) * minute - timedelta(milliseconds=1),
            Decimal(100 + i),
            Decimal(101 + i),
            Decimal(99 + i),
            Decimal("100.5") + i,
            Decimal("2.5"),
            Decimal("250.25"),
            10 + i,
            Decimal(1),
            Decimal(100),
            "exchange",
        )
        for i in range(120)
    ]
    assert candles_upsert(candles=bars).written == 120
    again = candles_upsert(candles=bars)
    assert (again.written, again.duplicates) == (0, 120)
    changed = CandleBar(
        **{**{f: getattr(bars[5], f) for f in bars[5].__slots__}, "close": Decimal("999.99"), "source": "trades"}
    )
    candles_upsert(candles=[changed])
    assert Candle.objects.count() == 120
    stored = Candle.objects.get(open_time=T0 + timedelta(minutes=5))
    assert (stored.close, stored.source, stored.trades) == (Decimal("999.99"), "trades", 15)


@pytest.mark.django_db
def test_admin_lists_ticks_read_only(admin_client: Client) -> None:
    """The admin lists ticks (searchable by trade id, by date) and offers no way to add or change one."""
    ticks_ingest(ticks=make_ticks(30))
    page = admin_client.get("/admin/markets/tick/", {"q": "17"})
    assert page.status_code == 200
    body = page.content.decode()
    assert "BTCUSDT" in body
    assert "/admin/markets/tick/add/" not in body
    assert admin_client.get("/admin/markets/tick/add/").status_code == 403
    for path in ("/admin/markets/candle/", "/admin/markets/gap/", "/admin/markets/feed/", "/admin/markets/instrument/"):
        assert admin_client.get(path).status_code == 200
