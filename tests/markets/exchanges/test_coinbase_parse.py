"""Coinbase Exchange payloads through the pure parsers: the documented examples (reference section 4) parse to
exact values, the maker side is turned into the taker's, candles come back oldest first, and malformed payloads
are refused naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from markets.exchanges.base import Source
from markets.exchanges.coinbase import (
    parse_candles,
    parse_cursor_headers,
    parse_error,
    parse_heartbeat,
    parse_match,
    parse_products,
    parse_time,
    parse_trades,
)

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
# the reference's examples, as Coinbase writes them
TRADES_TEXT = (
    '[{"time":"2020-03-20T00:36:59.860Z","trade_id":86327327,"price":"6225.32000000","size":"0.06469797",'
    '"side":"sell"}]'
)
MATCH = {
    "type": "match",
    "trade_id": 82047307,
    "maker_order_id": "0f358725-2134-435e-be11-753912a326e0",
    "taker_order_id": "252b7002-87a3-425c-ac73-f5b9e23f3caf",
    "side": "sell",
    "size": "0.00513192",
    "price": "9314.78",
    "product_id": "BTC-USD",
    "sequence": 12038915443,
    "time": "2020-01-31T20:03:41.158814Z",
}
HEARTBEAT = {
    "type": "heartbeat",
    "sequence": 90,
    "last_trade_id": 20,
    "product_id": "BTC-USD",
    "time": "2014-11-07T08:19:28.464459Z",
}
PRODUCT = {
    "id": "BTC-USD",
    "base_currency": "BTC",
    "quote_currency": "USD",
    "quote_increment": "0.01",
    "base_increment": "0.00000001",
    "display_name": "BTC/USD",
    "min_market_funds": "1",
    "status": "online",
}
TIME_TEXT = '{"iso":"2020-05-12T08:00:51.504Z","epoch":1589270451.504}'
# the reference's first bucket, then two older ones made up in the same shape (newest first, as on the wire)
CANDLES_TEXT = (
    "[[1591514160,0.02507,0.02507,0.02507,0.02507,0.02816506],"
    "[1591514100,0.02501,0.02512,0.02505,0.02506,1.5],"
    "[1591514040,0.025,0.02504,0.02503,0.025,12]]"
)
TRADE_ROW = json.loads(TRADES_TEXT)[0]


# -- documented examples ------------------------------------------------------------------------------------
def test_rest_trade_example() -> None:
    """The trades row: side "sell" is the maker's, so the taker bought; the trade is its own first and last."""
    [tick] = parse_trades(json.loads(TRADES_TEXT), symbol="BTC-USD", received_at=NOW)
    assert (tick.exchange, tick.symbol, tick.trade_id) == ("coinbase", "BTC-USD", 86327327)
    assert (tick.price, tick.qty) == (Decimal("6225.32000000"), Decimal("0.06469797"))
    assert str(tick.price) == "6225.32000000"
    assert tick.taker_side == "buy"
    assert tick.ts == datetime(2020, 3, 20, 0, 36, 59, 860000, tzinfo=UTC)
    assert (tick.first_trade_id, tick.last_trade_id, tick.source) == (86327327, 86327327, Source.REST)
    assert tick.received_at == NOW


def test_rest_trades_come_back_oldest_first() -> None:
    """A page is newest first on the wire; the ticks are returned by increasing trade id."""
    rows = [
        {**TRADE_ROW, "trade_id": 86327327 - i, "side": side, "time": f"2020-03-20T00:36:5{9 - i}.860Z"}
        for i, side in enumerate(("sell", "buy", "sell"))
    ]
    ticks = parse_trades(rows, symbol="BTC-USD", received_at=NOW)
    assert [t.trade_id for t in ticks] == [86327325, 86327326, 86327327]
    assert [t.taker_side for t in ticks] == ["buy", "sell", "buy"]
    assert [t.ts.second for t in ticks] == [57, 58, 59]


def test_match_example() -> None:
    """The match frame: microsecond time, maker side inverted, product id as the symbol, source WS."""
    tick = parse_match(MATCH, received_at=NOW)
    assert (tick.symbol, tick.trade_id, tick.price, tick.qty) == (
        "BTC-USD",
        82047307,
        Decimal("9314.78"),
        Decimal("0.00513192"),
    )
    assert tick.taker_side == "buy"
    assert tick.ts == datetime(2020, 1, 31, 20, 3, 41, 158814, tzinfo=UTC)
    assert tick.source is Source.WS
    maker_bought = parse_match({**MATCH, "type": "last_match", "side": "buy"}, received_at=NOW)
    assert maker_bought.taker_side == "sell"


def test_heartbeat_example() -> None:
    """The heartbeat gives the product, the last trade id (to spot dropped matches) and its time."""
    assert parse_heartbeat(HEARTBEAT) == ("BTC-USD", 20, datetime(2014, 11, 7, 8, 19, 28, 464459, tzinfo=UTC))


def test_products_example() -> None:
    """A product: increments as tick and step size, min_market_funds as min notional, raw entry kept."""
    [info] = parse_products([PRODUCT])
    assert (info.exchange, info.symbol, info.canonical, info.base, info.quote, info.status) == (
        "coinbase",
        "BTC-USD",
        "BTC-USD",
        "BTC",
        "USD",
        "online",
    )
    assert (info.tick_size, info.step_size, info.min_notional) == (
        Decimal("0.01"),
        Decimal("0.00000001"),
        Decimal(1),
    )
    assert info.filters == (PRODUCT,)
    [no_funds] = parse_products([{k: v for k, v in PRODUCT.items() if k != "min_market_funds"}])
    assert no_funds.min_notional is None


def test_time_example() -> None:
    """/time is read from its ISO string, to the millisecond it gives."""
    assert parse_time(json.loads(TIME_TEXT)) == datetime(2020, 5, 12, 8, 0, 51, 504000, tzinfo=UTC)


@pytest.mark.parametrize("exact", [True, False], ids=["parse_float=Decimal", "plain floats"])
def test_candles_example(exact: bool) -> None:
    """Buckets [time, low, high, open, close, volume], newest first, become bars oldest first; the numbers keep
    the wire's digits whether decoded as Decimal or as floats; unreported fields are 0."""
    rows = json.loads(CANDLES_TEXT, parse_float=Decimal) if exact else json.loads(CANDLES_TEXT)
    bars = parse_candles(rows, symbol="BTC-USD", granularity=60, now=NOW)
    start = datetime(2020, 6, 7, 7, 14, tzinfo=UTC)
    assert [b.open_time for b in bars] == [start, start + timedelta(minutes=1), start + timedelta(minutes=2)]
    newest = bars[-1]
    assert (newest.open, newest.high, newest.low, newest.close, newest.volume) == (
        Decimal("0.02507"),
        Decimal("0.02507"),
        Decimal("0.02507"),
        Decimal("0.02507"),
        Decimal("0.02816506"),
    )
    assert str(newest.volume) == "0.02816506"
    oldest = bars[0]
    assert (oldest.low, oldest.high, oldest.open, oldest.close, oldest.volume) == (
        Decimal("0.025"),
        Decimal("0.02504"),
        Decimal("0.02503"),
        Decimal("0.025"),
        Decimal(12),
    )
    assert newest.close_time == datetime(2020, 6, 7, 7, 16, 59, 999000, tzinfo=UTC)
    assert all(b.interval == "1m" and b.source == "exchange" and b.closed and not b.synthetic for b in bars)
    assert all((b.quote_volume, b.trades, b.taker_buy_volume, b.taker_buy_quote_volume) == (0, 0, 0, 0) for b in bars)


@pytest.mark.parametrize(("granularity", "interval"), [(60, "1m"), (300, "5m"), (900, "15m"), (3600, "1h"),
                                                      (21600, "6h"), (86400, "1d")])  # fmt: skip
def test_candle_interval_from_granularity(granularity: int, interval: str) -> None:
    """The interval name and close time follow the granularity in seconds; a bar not yet over is open."""
    open_time = datetime(2020, 6, 7, tzinfo=UTC)
    row = [int(open_time.timestamp()), "1", "2", "1.5", "1.75", "10"]
    [bar] = parse_candles([row], symbol="ETH-USD", granularity=granularity, now=open_time + timedelta(seconds=30))
    assert bar.interval == interval
    assert bar.close_time == open_time + timedelta(seconds=granularity, milliseconds=-1)
    assert not bar.closed


def test_cursor_headers() -> None:
    """CB-BEFORE/CB-AFTER are the newest and oldest cursors, whatever the header case; absent is None."""
    assert parse_cursor_headers({"CB-BEFORE": "86327327", "CB-AFTER": "86326328"}) == (86327327, 86326328)
    assert parse_cursor_headers({"cb-after": "5", "Content-Type": "application/json"}) == (None, 5)
    assert parse_cursor_headers({}) == (None, None)


def test_error_body() -> None:
    """An error answer's message."""
    assert parse_error({"message": "NotFound"}) == "NotFound"


def test_iso_offsets_and_nanoseconds() -> None:
    """Times with an offset are turned to UTC; digits past the microsecond are truncated, never rounded."""
    frame = {**MATCH, "time": "2020-01-31T21:03:41.158814999+01:00"}
    assert parse_match(frame, received_at=NOW).ts == datetime(2020, 1, 31, 20, 3, 41, 158814, tzinfo=UTC)
    assert parse_match({**MATCH, "time": "2020-01-31T20:03:41Z"}, received_at=NOW).ts.microsecond == 0


# -- malformed payloads ----------------------------------------------------------------------------------------
def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"trade_id": 1}, "trades must be an array"),
        ([_without(TRADE_ROW, "price")], "trade field 'price' is missing"),
        ([{**TRADE_ROW, "price": 6225.32}], "trade field 'price' must be a decimal string"),
        ([{**TRADE_ROW, "size": "-1"}], "trade field 'size' must be a finite non-negative"),
        ([{**TRADE_ROW, "side": "BUY"}], "trade field 'side' must be 'buy' or 'sell', got 'BUY'"),
        ([{**TRADE_ROW, "side": ["buy"]}], "trade field 'side' must be 'buy' or 'sell'"),
        ([{**TRADE_ROW, "trade_id": "86327327"}], "trade field 'trade_id' must be a non-negative integer"),
        ([{**TRADE_ROW, "time": "2020-03-20 00:36:59"}], "trade field 'time' must be an ISO-8601 time"),
        ([{**TRADE_ROW, "time": "2020-13-20T00:36:59Z"}], "trade field 'time' must be an ISO-8601 time"),
        ([{**TRADE_ROW, "time": 1584664619}], "trade field 'time' must be an ISO-8601 time, got 1584664619"),
        (["x"], "trade must be a JSON object"),
    ],
)
def test_malformed_trades(payload: Any, field: str) -> None:
    """Each defect of a trades page is a ValueError naming the field and showing the value."""
    with pytest.raises(ValueError, match=field):
        parse_trades(payload, symbol="BTC-USD", received_at=NOW)


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({**MATCH, "type": "received"}, "match field 'type' must be 'match' or 'last_match', got 'received'"),
        (_without(MATCH, "product_id"), "match field 'product_id' is missing"),
        ({**MATCH, "product_id": "BTCUSD"}, "cannot split coinbase symbol 'BTCUSD'"),
        ({**MATCH, "trade_id": -1}, "match field 'trade_id' must be a non-negative integer"),
        ({**MATCH, "price": "9,314.78"}, "match field 'price' must be a decimal string"),
        ({**MATCH, "time": None}, "match field 'time' must be an ISO-8601 time"),
    ],
)
def test_malformed_match(frame: Any, field: str) -> None:
    """Each defect of a match frame is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_match(frame, received_at=NOW)


def test_naive_receive_time_is_refused() -> None:
    """A naive received_at would be stored as if it were UTC: refused."""
    with pytest.raises(ValueError, match="received_at must be a timezone-aware"):
        parse_match(MATCH, received_at=datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({**HEARTBEAT, "type": "match"}, "heartbeat field 'type' must be 'heartbeat'"),
        (_without(HEARTBEAT, "last_trade_id"), "heartbeat field 'last_trade_id' is missing"),
        ({**HEARTBEAT, "time": "yesterday"}, "heartbeat field 'time' must be an ISO-8601 time, got 'yesterday'"),
    ],
)
def test_malformed_heartbeat(frame: Any, field: str) -> None:
    """Each defect of a heartbeat is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_heartbeat(frame)


@pytest.mark.parametrize(
    ("rows", "granularity", "field"),
    [
        ([[1591514160, 1, 2, 1, 1]], 60, "candle must be an array of 6 fields"),
        ([{"time": 1591514160}], 60, "candle must be an array of 6 fields"),
        ([[1591514160.5, 1, 2, 1, 1, 1]], 60, "candle field 'time' must be a non-negative integer"),
        ([[1591514160, "x", 2, 1, 1, 1]], 60, "candle field 'low' must be a number, got 'x'"),
        ([[1591514160, 1, None, 1, 1, 1]], 60, "candle field 'high' must be a number, got None"),
        ([[1591514160, 1, 2, True, 1, 1]], 60, "candle field 'open' must be a number, got True"),
        ([[1591514160, 1, 2, 1, float("nan"), 1]], 60, "candle field 'close' must be a finite"),
        ([[1591514160, 1, 2, 1, 1, -3]], 60, "candle field 'volume' must be a finite non-negative"),
        ([], 120, "granularity must be one of 60, 300, 900, 3600, 21600, 86400 seconds, got 120"),
        ([], "60", "granularity must be one of"),
        ({}, 60, "candles must be an array"),
    ],
)
def test_malformed_candles(rows: Any, granularity: Any, field: str) -> None:
    """Each defect of a candles answer is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_candles(rows, symbol="BTC-USD", granularity=granularity, now=NOW)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"id": "BTC-USD"}, "products must be an array"),
        ([_without(PRODUCT, "quote_increment")], "product 'BTC-USD' field 'quote_increment' is missing"),
        ([{**PRODUCT, "base_increment": 1e-08}], "field 'base_increment' must be a decimal string"),
        ([{**PRODUCT, "id": "ETH-USD"}], "product 'ETH-USD' field 'id' does not name its currencies 'BTC-USD'"),
        ([_without(PRODUCT, "status")], "product 'BTC-USD' field 'status' is missing"),
    ],
)
def test_malformed_products(payload: Any, field: str) -> None:
    """Each defect of a products list is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_products(payload)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: parse_time({"epoch": 1589270451.504}), "time field 'iso' is missing"),
        (lambda: parse_time({"iso": "2020-05-12"}), "time field 'iso' must be an ISO-8601 time"),
        (lambda: parse_cursor_headers({"CB-AFTER": "-5"}), "header CB-AFTER must be a non-negative integer"),
        (lambda: parse_cursor_headers({"cb-before": "abc"}), "header CB-BEFORE must be a non-negative integer"),
        (lambda: parse_error({"error": "x"}), "error body field 'message' is missing"),
        (lambda: parse_error("Not Found"), "error body must be a JSON object"),
    ],
)
def test_malformed_small_answers(call: Any, field: str) -> None:
    """Defects of /time, the cursor headers and the error body are ValueErrors naming the field."""
    with pytest.raises(ValueError, match=field):
        call()
