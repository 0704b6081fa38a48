"""Malformed Kraken payloads (REST and WebSocket v2) refused by the pure parsers, naming the field; unknown
WebSocket messages told apart.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from markets.exchanges.kraken import (
    kind_of,
    parse_asset_pairs,
    parse_ohlc,
    parse_time,
    parse_trades,
    parse_ws_ohlc,
    parse_ws_trade,
    unwrap,
)
from tests.markets.exchanges.kraken_examples import ASSET_PAIRS_TEXT, NOW, WS_OHLC_TEXT, WS_TRADE_TEXT, decimal_json


def _trades(*rows: Any, last: Any = "1688671969993150842") -> dict[str, Any]:
    return {"error": [], "result": {"XXBTZUSD": list(rows), "last": last}}


GOOD_TRADE = ["30243.40000", "0.34507674", Decimal("1688669597.8277369"), "b", "m", "", 61044952]
GOOD_BAR = [1591475640, "0.02500", "0.02500", "0.02500", "0.02500", "0.02500", "9.12201000", 5]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ([], "Trades must be a JSON object"),
        ({"result": {}}, "Trades field 'error' is missing"),
        ({"error": "EQuery:Unknown asset pair"}, "Trades field 'error' must be an array of strings"),
        ({"error": []}, "Trades field 'result' is missing"),
        ({"error": [], "result": {"last": "1"}}, "Trades result must hold one pair besides 'last'"),
        ({"error": [], "result": {"XXBTZUSD": [], "XETHZUSD": [], "last": "1"}}, "must hold one pair"),
        ({"error": [], "result": {"XXBTZUSD": {}, "last": "1"}}, "Trades field 'XXBTZUSD' must be an array"),
        ({"error": [], "result": {"XXBTZUSD": []}}, "Trades field 'last' is missing"),
        (_trades(last=1688671969993150842), "Trades field 'last' must be a nanosecond string"),
        (_trades(last="1.5"), "Trades field 'last' must be a nanosecond string, got '1.5'"),
        (_trades(GOOD_TRADE[:6]), "Trades row must be an array of 7 fields"),
        (_trades({"price": "1"}), "Trades row must be an array of 7 fields"),
        (_trades([30243.4, *GOOD_TRADE[1:]]), "Trades row field 'price' must be a decimal string, got 30243.4"),
        (_trades(["x", *GOOD_TRADE[1:]]), "Trades row field 'price' must be a decimal string, got 'x'"),
        (_trades([GOOD_TRADE[0], "-0.1", *GOOD_TRADE[2:]]), "Trades row field 'volume' must be a finite non-neg"),
        (_trades([*GOOD_TRADE[:2], "soon", *GOOD_TRADE[3:]]), "Trades row field 'time' must be a number, got 'soon'"),
        (_trades([*GOOD_TRADE[:2], None, *GOOD_TRADE[3:]]), "Trades row field 'time' must be a number, got None"),
        (_trades([*GOOD_TRADE[:2], Decimal("1E+30"), *GOOD_TRADE[3:]]), "Trades row field 'time' is not a time"),
        (_trades([*GOOD_TRADE[:3], "buy", *GOOD_TRADE[4:]]), "Trades row field 'side' must be 'b' or 's', got 'buy'"),
        (_trades([*GOOD_TRADE[:4], "x", *GOOD_TRADE[5:]]), "Trades row field 'order type' must be 'm' or 'l'"),
        (_trades([*GOOD_TRADE[:5], None, GOOD_TRADE[6]]), "Trades row field 'misc' must be a string"),
        (_trades([*GOOD_TRADE[:6], "61044952"]), "Trades row field 'trade id' must be a non-negative integer"),
        ({"error": [], "result": {"FOOBAR": [], "last": "1"}}, "cannot split kraken symbol 'FOOBAR'"),
    ],
)
def test_malformed_trades(payload: Any, field: str) -> None:
    """Each defect of a Trades answer is a ValueError naming the field and showing the value."""
    with pytest.raises(ValueError, match=field):
        parse_trades(payload, received_at=NOW)


def _ohlc(*rows: Any, last: Any = 1591517580) -> dict[str, Any]:
    return {"error": [], "result": {"XETHXXBT": list(rows), "last": last}}


@pytest.mark.parametrize(
    ("payload", "interval", "field"),
    [
        (_ohlc(GOOD_BAR), 2, "OHLC interval must be one of 1, 5, 15, 30, 60, 240, 1440, 10080, 21600 minutes"),
        (_ohlc(GOOD_BAR), "1m", "OHLC interval must be one of"),
        (_ohlc(GOOD_BAR, last="1591517580"), 1, "OHLC field 'last' must be an integer"),
        (_ohlc(GOOD_BAR[:7]), 1, "OHLC row must be an array of 8 fields"),
        (_ohlc(["1591475640", *GOOD_BAR[1:]]), 1, "OHLC row field 'time' must be a non-negative integer"),
        (_ohlc([GOOD_BAR[0], 0.025, *GOOD_BAR[2:]]), 1, "OHLC row field 'open' must be a decimal string"),
        (_ohlc([*GOOD_BAR[:5], "n/a", *GOOD_BAR[6:]]), 1, "OHLC row field 'vwap' must be a decimal string"),
        (_ohlc([*GOOD_BAR[:6], "Infinity", 5]), 1, "OHLC row field 'volume' must be a finite"),
        (_ohlc([*GOOD_BAR[:7], 5.0]), 1, "OHLC row field 'count' must be a non-negative integer"),
    ],
)
def test_malformed_ohlc(payload: Any, interval: Any, field: str) -> None:
    """Each defect of an OHLC answer is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_ohlc(payload, interval=interval)


PAIR = decimal_json(ASSET_PAIRS_TEXT)["result"]["XXBTZUSD"]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({k: v for k, v in PAIR.items() if k != "altname"}, "AssetPairs 'XXBTZUSD' field 'altname' is missing"),
        ({**PAIR, "base": ""}, "AssetPairs 'XXBTZUSD' field 'base' must be a non-empty string"),
        ({**PAIR, "quote": "zusd"}, "kraken asset code must be upper-case letters and digits, got 'zusd'"),
        ({**PAIR, "tick_size": 0.1}, "AssetPairs 'XXBTZUSD' field 'tick_size' must be a decimal string"),
        ({**PAIR, "lot_decimals": "8"}, "AssetPairs 'XXBTZUSD' field 'lot_decimals' must be a non-negative integer"),
        ({k: v for k, v in PAIR.items() if k != "status"}, "AssetPairs 'XXBTZUSD' field 'status' is missing"),
        ("XBTUSD", "AssetPairs 'XXBTZUSD' must be a JSON object"),
    ],
)
def test_malformed_asset_pairs(entry: Any, field: str) -> None:
    """Each defect of an AssetPairs entry is a ValueError naming the pair and the field."""
    with pytest.raises(ValueError, match=field):
        parse_asset_pairs({"error": [], "result": {"XXBTZUSD": entry}})


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: parse_time({"error": [], "result": {"unixtime": "1"}}), "Time field 'unixtime' must be a non-"),
        (lambda: parse_time({"error": [], "result": {"rfc1123": "x"}}), "Time field 'unixtime' is missing"),
        (lambda: parse_time({"error": [], "result": 1591502873}), "Time result must be a JSON object"),
        (lambda: parse_asset_pairs({"error": [], "result": []}), "AssetPairs result must be a JSON object"),
        (lambda: unwrap({"error": [1], "result": {}}), "answer field 'error' must be an array of strings"),
    ],
)
def test_malformed_small_answers(call: Any, field: str) -> None:
    """Defects of Time, of the AssetPairs result and of the envelope are ValueErrors naming the field."""
    with pytest.raises(ValueError, match=field):
        call()


WS_TRADE = decimal_json(WS_TRADE_TEXT)["data"][0]
WS_BAR = decimal_json(WS_OHLC_TEXT)["data"][0]


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"channel": "ohlc", "type": "update", "data": []}, "trade message field 'channel' must be 'trade'"),
        ({"channel": "trade", "type": "delta", "data": []}, "trade message field 'type' must be 'snapshot' or"),
        ({"channel": "trade", "type": "update"}, "trade message field 'data' is missing"),
        ({"channel": "trade", "type": "update", "data": {}}, "trade message field 'data' must be an array"),
        ({"channel": "trade", "type": "update", "data": [WS_TRADE, 1]}, "trade must be a JSON object"),
        ({"channel": "trade", "type": "update", "data": [{**WS_TRADE, "side": "b"}]}, "trade field 'side' must be"),
        ({"channel": "trade", "type": "update", "data": [{**WS_TRADE, "price": "0,5"}]}, "field 'price' must be a nu"),
        ({"channel": "trade", "type": "update", "data": [{**WS_TRADE, "qty": True}]}, "field 'qty' must be a number"),
        ({"channel": "trade", "type": "update", "data": [{**WS_TRADE, "trade_id": 1.0}]}, "field 'trade_id' must be"),
        ({"channel": "trade", "type": "update", "data": [{**WS_TRADE, "timestamp": "2023-09-25T07:49:37.7087061234Z"}]},
         "trade field 'timestamp' must be an RFC 3339 time"),
        ({"channel": "trade", "type": "update", "data": [{**WS_TRADE, "symbol": "MATIC-USD"}]},
         "cannot split kraken symbol 'MATIC-USD'"),
    ],
)  # fmt: skip
def test_malformed_ws_trade(frame: Any, field: str) -> None:
    """Each defect of a trade message is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_ws_trade(frame, received_at=NOW)


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({**WS_BAR, "interval": 2}, "ohlc field 'interval' must be one of"),
        ({**WS_BAR, "interval_begin": "2023-10-04 15:25"}, "ohlc field 'interval_begin' must be an RFC 3339 time"),
        ({**WS_BAR, "open": None}, "ohlc field 'open' must be a number, got None"),
        ({**WS_BAR, "trades": -1}, "ohlc field 'trades' must be a non-negative integer"),
        ({k: v for k, v in WS_BAR.items() if k != "volume"}, "ohlc field 'volume' is missing"),
    ],
)
def test_malformed_ws_ohlc(entry: Any, field: str) -> None:
    """Each defect of an ohlc entry is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_ws_ohlc({"channel": "ohlc", "type": "update", "data": [entry]}, now=NOW)


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ([], "ws message must be a JSON object"),
        ({"channel": "book", "type": "snapshot"}, "ws message field 'channel' is unknown: 'book'"),
        ({"channel": ["trade"]}, "ws message field 'channel' is unknown"),
        ({"event": "heartbeat"}, "ws message field 'channel' is unknown: None"),
        ({"method": "subscribe", "result": {}}, "ws message with 'method' 'subscribe' has no boolean 'success'"),
    ],
)
def test_unknown_ws_messages(frame: Any, field: str) -> None:
    """A message of an unknown kind is a ValueError saying what was not recognised."""
    with pytest.raises(ValueError, match=field):
        kind_of(frame)
