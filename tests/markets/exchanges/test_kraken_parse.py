"""Kraken payloads through the pure parsers: the documented REST and WebSocket v2 examples, message
classification, and the error envelope. The recorded capture is in test_kraken_parse_capture.py, malformed
payloads in test_kraken_parse_malformed.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from markets.exchanges.base import Source
from markets.exchanges.errors import BadRequest, ExchangeUnavailable, RateLimited
from markets.exchanges.kraken import (
    WsKind,
    kind_of,
    parse_asset_pairs,
    parse_ohlc,
    parse_time,
    parse_trades,
    parse_ws_ohlc,
    parse_ws_trade,
    unwrap,
)
from tests.markets.exchanges.kraken_examples import (
    ASSET_PAIRS_TEXT,
    NOW,
    OHLC_TEXT,
    TRADES_TEXT,
    WS_OHLC_TEXT,
    WS_TRADE_TEXT,
    decimal_json,
)


# -- documented examples -------------------------------------------------------------------------------------
def test_asset_pairs_example() -> None:
    """AssetPairs: altname as the symbol, XXBT/ZUSD as BTC-USD, tick size as given, step from lot_decimals,
    costmin as min notional, the raw entry with its key kept."""
    [info] = parse_asset_pairs(decimal_json(ASSET_PAIRS_TEXT))
    assert (info.exchange, info.symbol, info.canonical, info.base, info.quote, info.status) == (
        "kraken",
        "XBTUSD",
        "BTC-USD",
        "BTC",
        "USD",
        "online",
    )
    assert (info.tick_size, info.step_size, info.min_notional) == (Decimal("0.1"), Decimal("1E-8"), Decimal("0.5"))
    [raw] = info.filters
    assert (raw["key"], raw["ordermin"], raw["costmin"], raw["wsname"]) == ("XXBTZUSD", "0.0001", "0.5", "XBT/USD")


def test_asset_pairs_without_tick_size() -> None:
    """Without tick_size the tick is 10^-pair_decimals; without costmin there is no min notional."""
    payload = decimal_json(ASSET_PAIRS_TEXT)
    entry = payload["result"]["XXBTZUSD"]
    del entry["tick_size"], entry["costmin"]
    [info] = parse_asset_pairs(payload)
    assert (info.tick_size, info.min_notional) == (Decimal("0.1"), None)


def test_time_example() -> None:
    """Time: the unixtime."""
    payload = {"error": [], "result": {"unixtime": 1591502873, "rfc1123": "Sun,  7 Jun 20 04:07:53 +0000"}}
    assert parse_time(payload) == datetime(2020, 6, 7, 4, 7, 53, tzinfo=UTC)


def test_ohlc_example() -> None:
    """The OHLC example: key XETHXXBT recorded as the altname ETHXBT; its only row is the open bar."""
    [bar], last = parse_ohlc(decimal_json(OHLC_TEXT), interval=5)
    assert (bar.symbol, bar.interval, bar.open_time, bar.closed) == (
        "ETHXBT",
        "5m",
        datetime(2020, 6, 6, 20, 34, tzinfo=UTC),
        False,
    )
    assert (bar.open, bar.volume, bar.trades) == (Decimal("0.02500"), Decimal("9.12201000"), 5)
    assert bar.close_time == datetime(2020, 6, 6, 20, 38, 59, 999000, tzinfo=UTC)
    assert last == 1591517580


def test_trades_example() -> None:
    """The Trades example: key XXBTZUSD recorded as XBTUSD, b/s the taker side, times truncated to the µs."""
    ticks, last = parse_trades(decimal_json(TRADES_TEXT), received_at=NOW)
    assert [(t.symbol, t.trade_id, t.price, t.qty, t.taker_side, t.ts) for t in ticks] == [
        ("XBTUSD", 61044952, Decimal("30243.40000"), Decimal("0.34507674"), "buy",
         datetime(2023, 7, 6, 18, 53, 17, 827736, tzinfo=UTC)),
        ("XBTUSD", 61044953, Decimal("30243.30000"), Decimal("0.00376960"), "sell",
         datetime(2023, 7, 6, 18, 53, 18, 280411, tzinfo=UTC)),
    ]  # fmt: skip
    assert last == 1688671969993150842
    ticks, _ = parse_trades(decimal_json(TRADES_TEXT), received_at=NOW, symbol="XBTUSD")
    assert ticks[0].symbol == "XBTUSD"


@pytest.mark.parametrize("exact", [True, False], ids=["parse_float=Decimal", "plain floats"])
def test_ws_trade_example(exact: bool) -> None:
    """A WebSocket v2 trade: JSON numbers kept to the wire's digits, BTC-style symbol to the altname, side as
    the taker's."""
    frame = decimal_json(WS_TRADE_TEXT) if exact else json.loads(WS_TRADE_TEXT)
    [tick] = parse_ws_trade(frame, received_at=NOW)
    assert (tick.exchange, tick.symbol, tick.trade_id, tick.taker_side) == ("kraken", "MATICUSD", 4665906, "sell")
    assert (tick.price, tick.qty) == (Decimal("0.5117"), Decimal(40))
    assert (str(tick.price), str(tick.qty)) == ("0.5117", "40.0")
    assert tick.ts == datetime(2023, 9, 25, 7, 49, 37, 708706, tzinfo=UTC)
    assert (tick.source, tick.first_trade_id, tick.last_trade_id) == (Source.WS, 4665906, 4665906)


def test_ws_trade_snapshot_of_bitcoin() -> None:
    """BTC/USD on WebSocket v2 is the XBTUSD of REST; a snapshot holds several trades; 9 fraction digits are
    truncated to 6."""
    frame = {
        "channel": "trade",
        "type": "snapshot",
        "data": [
            {"symbol": "BTC/USD", "side": "buy", "price": Decimal("64000.1"), "qty": Decimal("0.5"),
             "ord_type": "limit", "trade_id": 7, "timestamp": "2026-01-02T03:04:05.678999999Z"},
            {"symbol": "BTC/USD", "side": "sell", "price": 64000, "qty": 1, "ord_type": "market", "trade_id": 8,
             "timestamp": "2026-01-02T03:04:06Z"},
        ],
    }  # fmt: skip
    ticks = parse_ws_trade(frame, received_at=NOW)
    assert [(t.symbol, t.trade_id, t.taker_side, t.price) for t in ticks] == [
        ("XBTUSD", 7, "buy", Decimal("64000.1")),
        ("XBTUSD", 8, "sell", Decimal(64000)),
    ]
    assert ticks[0].ts == datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)


@pytest.mark.parametrize("exact", [True, False], ids=["parse_float=Decimal", "plain floats"])
def test_ws_ohlc_example(exact: bool) -> None:
    """A WebSocket v2 ohlc entry: keyed by interval_begin (9 fraction digits), interval in minutes; closed once
    its close time has passed."""
    frame = decimal_json(WS_OHLC_TEXT) if exact else json.loads(WS_OHLC_TEXT)
    begin = datetime(2023, 10, 4, 15, 25, tzinfo=UTC)
    [bar] = parse_ws_ohlc(frame, now=begin + timedelta(minutes=4))
    assert (bar.symbol, bar.interval, bar.open_time, bar.close_time, bar.closed) == (
        "ALGOUSD",
        "5m",
        begin,
        begin + timedelta(minutes=5, milliseconds=-1),
        False,
    )
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume, bar.trades) == (
        Decimal("0.09875"),
        Decimal("0.09875"),
        Decimal("0.09875"),
        Decimal("0.09875"),
        Decimal("201.86015"),
        1,
    )
    assert str(bar.volume) == "201.86015"
    [later] = parse_ws_ohlc(frame, now=begin + timedelta(minutes=5))
    assert later.closed


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        ({"channel": "status", "type": "update", "data": [{"system": "online", "api_version": "v2",
          "connection_id": 12393906104898154338, "version": "2.0.0"}]}, WsKind.STATUS),
        ({"channel": "heartbeat"}, WsKind.HEARTBEAT),
        ({"method": "pong", "req_id": 101, "time_in": "2023-09-24T14:10:23.799685Z",
          "time_out": "2023-09-24T14:10:23.799703Z"}, WsKind.PONG),
        ({"method": "subscribe", "result": {"channel": "trade", "snapshot": True, "symbol": "MATIC/USD"},
          "success": True, "time_in": "2023-09-25T09:04:31.742599Z", "time_out": "2023-09-25T09:04:31.742648Z",
          "req_id": 1}, WsKind.ACK),
        ({"method": "unsubscribe", "result": {"channel": "trade", "symbol": "MATIC/USD"}, "success": True},
         WsKind.ACK),
        ({"method": "subscribe", "error": "Currency pair not supported XBT/FOO", "success": False, "req_id": 2},
         WsKind.REJECTED),
        (decimal_json(WS_TRADE_TEXT), WsKind.TRADE),
        (decimal_json(WS_OHLC_TEXT), WsKind.OHLC),
    ],
)  # fmt: skip
def test_kind_of(frame: Any, kind: WsKind) -> None:
    """Status, heartbeat, pong, acknowledgements and refusals are told apart from market data."""
    assert kind_of(frame) is kind


# -- the error envelope --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("errors", "error_type", "text"),
    [
        (["EQuery:Unknown asset pair"], BadRequest, "kraken: rejected the request: EQuery:Unknown asset pair"),
        (["EGeneral:Invalid arguments", "EQuery:Unknown asset pair"], BadRequest,
         "EGeneral:Invalid arguments; EQuery:Unknown asset pair"),
        (["EAPI:Rate limit exceeded"], RateLimited, "kraken: rate limited us: EAPI:Rate limit exceeded"),
        (["EService:Unavailable"], ExchangeUnavailable, "kraken: unavailable: EService:Unavailable"),
        (["EService:Busy"], ExchangeUnavailable, "EService:Busy"),
    ],
)  # fmt: skip
def test_error_envelope(errors: list[str], error_type: type[Exception], text: str) -> None:
    """Kraken's error strings become the adapters' errors, keeping the strings."""
    with pytest.raises(error_type) as info:
        unwrap({"error": errors, "result": {}})
    assert text in str(info.value)
    if isinstance(info.value, BadRequest):
        assert info.value.msg == "; ".join(errors)
    with pytest.raises(error_type):
        parse_trades({"error": errors}, received_at=NOW)


def test_warnings_do_not_stop_a_result() -> None:
    """A warning (severity W) beside a result is not an error."""
    assert unwrap({"error": ["WGeneral:Something"], "result": {"unixtime": 1}}) == {"unixtime": 1}
