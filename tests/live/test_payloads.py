"""The live page's prices and quantities leave the server printed by the one rule (``markets.numbers.plain``):
trades and candles to the instrument's tick and step in the snapshot and in live events, positions and orders to
their own instrument's, P&L without trailing zeros; gaps carry the times of the trades either side of their ids.
Against the real Redis channel layer and MongoDB."""

from __future__ import annotations

from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model

from live.payloads import POSITION, TRADE, priced, priced_rows
from markets.live import market_group
from markets.models import Instrument
from markets.places import NONE, Places
from markets.services import gap_open, ticks_ingest
from orders.live import ORDERS_GROUP
from tests.live import test_consumers
from tests.live.test_consumers import Connect, tick

pytestmark = pytest.mark.django_db(transaction=True)
sockets = test_consumers.sockets  # the fixture that opens consumer sockets and closes them whatever happens


def test_priced_prints_each_field_by_its_kind() -> None:
    """Price to the tick, quantity to the step, P&L (no kind) its own digits; absent and null fields untouched."""
    places = Places(price=2, qty=5)
    assert priced({"price": "64000.1", "qty": "0.50000000", "id": 7}, TRADE, places) == {
        "price": "64000.10",
        "qty": "0.50000",
        "id": 7,
    }
    row = {"qty": "0.025000000000000000", "unrealised_pnl": "-1.500500000000000000", "exit_price": None}
    assert priced(row, POSITION, places) == {"qty": "0.02500", "unrealised_pnl": "-1.5005", "exit_price": None}
    assert priced({"price": "1E-8"}, TRADE, NONE) == {"price": "0.00000001"}


def test_rows_of_other_instruments_use_their_own_places(instruments: None) -> None:
    """Positions of any symbol: each by its own instrument (read once), an unknown one without trailing zeros."""
    Instrument.objects.filter(symbol="ETHUSDT").update(tick_size=Decimal("0.1"))
    memo: dict[tuple[str, str], Places] = {}
    rows = [
        {"exchange": "binance", "symbol": "BTCUSDT", "entry_price": "40020.000000000000000000"},
        {"exchange": "binance", "symbol": "ETHUSDT", "entry_price": "2000.000000000000000000"},
        {"exchange": "kraken", "symbol": "XBTUSD", "entry_price": "61000.500000000000000000"},
    ]
    assert [r["entry_price"] for r in priced_rows(rows, POSITION, memo)] == ["40020.00", "2000.0", "61000.5"]
    assert set(memo) == {("binance", "BTCUSDT"), ("binance", "ETHUSDT"), ("kraken", "XBTUSD")}


async def test_snapshot_and_live_events_are_printed_plainly(instruments: None, sockets: Connect) -> None:
    """Snapshot trades and a live trade event: prices to the tick (0.01), quantities to the step (0.00001); a
    gap in the snapshot carries the exchange times of the trades either side of its ids."""
    ticks = [tick(i, "64000.1") for i in range(10)] + [tick(i, "64000.1") for i in range(20, 30)]
    await database_sync_to_async(ticks_ingest)(ticks=ticks)
    await database_sync_to_async(gap_open)(exchange="binance", symbol="BTCUSDT", first_id=1010, last_id=1019)
    comm, _ = await sockets("/ws/market/binance/BTCUSDT/")
    first = await comm.receive_json_from(timeout=5)
    assert {(t["price"], t["qty"]) for t in first["trades"]} == {("64000.10", "0.50000")}
    (gap,) = first["gaps"]
    assert (gap["first_id"], gap["last_id"]) == (1010, 1019)
    assert (gap["from"], gap["to"]) == (int(ticks[9].ts.timestamp() * 1000), int(ticks[10].ts.timestamp() * 1000))
    layer = get_channel_layer()
    trade = {"id": 2000, "price": "64001.20000000", "qty": "1.00000000", "side": "buy", "time": 0}
    await layer.group_send(
        market_group("binance", "BTCUSDT"), {"type": "market.trades", "data": {"trades": [trade], "count": 1}}
    )
    msg = await comm.receive_json_from(timeout=5)
    assert msg["trades"] == [{**trade, "price": "64001.20", "qty": "1.00000"}]
    candle = {"time": 0, "open": "1.1", "high": "1.2", "low": "1", "close": "1.10000000", "volume": "3"}
    await layer.group_send(
        market_group("binance", "BTCUSDT"), {"type": "market.candles", "data": {"candles": [candle]}}
    )
    msg = await comm.receive_json_from(timeout=5)
    assert msg["candles"] == [
        {"time": 0, "open": "1.10", "high": "1.20", "low": "1.00", "close": "1.10", "volume": "3.00000"}
    ]


async def test_order_updates_are_printed_by_their_instrument(instruments: None, sockets: Connect) -> None:
    """A staff page's position and order updates: each printed by its own instrument's places."""
    staff = await database_sync_to_async(get_user_model().objects.create_user)("ops", is_staff=True)
    comm, _ = await sockets("/ws/market/binance/BTCUSDT/", staff)
    await comm.receive_json_from(timeout=5)
    position = {"id": "p", "exchange": "binance", "symbol": "ETHUSDT", "qty": "0.1", "realised_pnl": "2.50"}
    order = {"id": "o", "exchange": "binance", "symbol": "ETHUSDT", "qty": "0.1", "avg_price": "2000", "fee": None}
    await get_channel_layer().group_send(
        ORDERS_GROUP, {"type": "orders.update", "data": {"positions": [position], "orders": [order]}}
    )
    msg = await comm.receive_json_from(timeout=5)
    assert msg["positions"] == [{**position, "qty": "0.10000", "realised_pnl": "2.5"}]
    assert msg["orders"] == [{**order, "qty": "0.10000", "avg_price": "2000.00"}]
