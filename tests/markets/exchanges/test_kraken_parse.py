"""Kraken payloads through the pure parsers: a real REST capture checked value by value against its own text,
the documented REST and WebSocket v2 examples, the error envelope, message classification, and malformed
payloads refused naming the field."""

from __future__ import annotations

import collections
import itertools
import json
import re
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
from tests.conftest import shared_file

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRADES_FILE = "kraken-rest/kraken_http_trades_XBTUSDT.json"
OHLC_FILE = "kraken-rest/kraken_http_ohlc_XBTUSDT_1m.json"
# the rows of the captures, read from the raw text with no JSON decoder: the expectations' independent source
_TEXT = r'\s*"([^"]*)",'
TRADE_ROW = re.compile(rf"\[{_TEXT * 2}\s*([0-9.]+),{_TEXT * 3}\s*(\d+)\s*]")
OHLC_ROW = re.compile(rf"\[\s*(\d+),{_TEXT * 6}\s*(\d+)\s*]")
# the reference's examples (section 6)
ASSET_PAIRS_TEXT = (
    '{"error":[],"result":{"XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","aclass_base":"currency",'
    '"base":"XXBT","aclass_quote":"currency","quote":"ZUSD","lot":"unit","pair_decimals":1,"lot_decimals":8,'
    '"lot_multiplier":1,"leverage_buy":[2,3,4,5],"leverage_sell":[2,3,4,5],"fees":[[0,0.26],[50000,0.24]],'
    '"fees_maker":[[0,0.16],[50000,0.14]],"fee_volume_currency":"ZUSD","margin_call":80,"margin_stop":40,'
    '"ordermin":"0.0001","costmin":"0.5","tick_size":"0.1","status":"online"}}}'
)
OHLC_TEXT = (
    '{"error":[],"result":{"XETHXXBT":[[1591475640,"0.02500","0.02500","0.02500","0.02500","0.02500",'
    '"9.12201000",5]],"last":1591517580}}'
)
TRADES_TEXT = (
    '{"error":[],"result":{"XXBTZUSD":[["30243.40000","0.34507674",1688669597.8277369,"b","m","",61044952],'
    '["30243.30000","0.00376960",1688669598.2804112,"s","l","",61044953]],"last":"1688671969993150842"}}'
)
WS_TRADE_TEXT = (
    '{"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell","price":0.5117,"qty":40.0,'
    '"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}'
)
WS_OHLC_TEXT = (
    '{"channel":"ohlc","type":"snapshot","timestamp":"2023-10-04T16:26:01.806315597Z","data":[{"symbol":"ALGO/USD",'
    '"open":0.09875,"high":0.09875,"low":0.09875,"close":0.09875,"trades":1,"volume":201.86015,"vwap":0.09875,'
    '"interval_begin":"2023-10-04T15:25:00.000000000Z","interval":5,"timestamp":"2023-10-04T15:30:00.000000Z"}]}'
)


def _load(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def _seconds_text(token: str) -> datetime:
    """Float-seconds text to a time, by string arithmetic: whole seconds, then the first six fraction digits."""
    whole, _, fraction = token.partition(".")
    return EPOCH + timedelta(seconds=int(whole), microseconds=int(fraction[:6].ljust(6, "0")))


# -- recorded data -------------------------------------------------------------------------------------------
def test_recorded_trades_every_value() -> None:
    """All 1,000 trades of the capture: ids 10218208..10219207 contiguous, and every price, volume, side and
    time equal to what the file's own text says (digits kept, time truncated to the microsecond)."""
    text = shared_file(TRADES_FILE).read_text()
    raw = TRADE_ROW.findall(text)
    ticks, last = parse_trades(_load(text), received_at=NOW, source=Source.IMPORT)
    assert len(raw) == len(ticks) == 1000
    assert [t.trade_id for t in ticks] == list(range(10218208, 10219208))
    for (price, volume, seconds, side, _, _, trade_id), t in zip(raw, ticks, strict=True):
        assert t.trade_id == int(trade_id)
        assert (f"{t.price:f}", f"{t.qty:f}") == (price, volume)  # the same digits, trailing zeros included
        assert t.taker_side == {"b": "buy", "s": "sell"}[side]
        assert t.ts == _seconds_text(seconds)
        assert (t.exchange, t.symbol, t.source) == ("kraken", "XBTUSDT", Source.IMPORT)
        assert (t.first_trade_id, t.last_trade_id, t.received_at) == (t.trade_id, t.trade_id, NOW)
    assert last == 1762820035982277754
    assert {t.taker_side for t in ticks} == {"buy", "sell"}
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(ticks))


def test_recorded_trades_spot_checks() -> None:
    """A few rows by hand: the first, one whose time has only four fraction digits, and the last."""
    ticks, _ = parse_trades(_load(shared_file(TRADES_FILE).read_text()), received_at=NOW)
    first, short, final = ticks[0], ticks[406], ticks[-1]
    assert (first.trade_id, first.price, first.qty, first.taker_side) == (
        10218208,
        Decimal("105433.60000"),
        Decimal("0.00027625"),
        "buy",
    )
    assert first.ts == datetime(2025, 11, 10, 17, 23, 53, 971744, tzinfo=UTC)  # 1762795433.9717445
    assert (short.trade_id, short.price, short.qty, short.taker_side) == (
        10218614,
        Decimal("106011.20000"),
        Decimal("0.00046603"),
        "sell",
    )
    assert short.ts == datetime(2025, 11, 10, 19, 57, 5, 445700, tzinfo=UTC)  # 1762804625.4457
    assert (final.trade_id, final.price, final.qty, final.taker_side) == (
        10219207,
        Decimal("105899.40000"),
        Decimal("0.00009443"),
        "sell",
    )
    assert final.ts == datetime(2025, 11, 11, 0, 13, 55, 982277, tzinfo=UTC)  # 1762820035.9822779
    assert first.source is Source.REST


def test_recorded_trades_decoded_as_floats() -> None:
    """Decoded without parse_float=Decimal, the times go through the floats' repr: for this capture the same
    ticks come out (every time token is its float's shortest form)."""
    text = shared_file(TRADES_FILE).read_text()
    assert parse_trades(json.loads(text), received_at=NOW) == parse_trades(_load(text), received_at=NOW)


def test_recorded_ohlc_every_value() -> None:
    """All 721 one-minute bars: contiguous, the last one still open, 505 with trades, and the quiet minutes
    flat at the previous close with no volume; every value equal to the file's text."""
    text = shared_file(OHLC_FILE).read_text()
    raw = OHLC_ROW.findall(text)
    bars, last = parse_ohlc(_load(text), interval=1)
    assert len(raw) == len(bars) == 721
    start = datetime(2025, 11, 10, 12, 17, tzinfo=UTC)
    assert [b.open_time for b in bars] == [start + timedelta(minutes=i) for i in range(721)]
    for (t, o, h, lo, c, _, volume, count), b in zip(raw, bars, strict=True):
        assert b.open_time == EPOCH + timedelta(seconds=int(t))
        assert [f"{x:f}" for x in (b.open, b.high, b.low, b.close, b.volume)] == [o, h, lo, c, volume]
        assert b.trades == int(count)
        assert b.close_time == b.open_time + timedelta(seconds=59.999)
        assert (b.exchange, b.symbol, b.interval, b.source) == ("kraken", "XBTUSDT", "1m", "exchange")
        assert not b.synthetic
        assert (b.quote_volume, b.taker_buy_volume, b.taker_buy_quote_volume) == (0, 0, 0)
    assert [b.closed for b in bars] == [True] * 720 + [False]
    assert sum(1 for b in bars if b.trades) == 505
    quiet = [(a, b) for a, b in itertools.pairwise(bars) if b.trades == 0]
    assert len(quiet) == 721 - 505 - (bars[0].trades == 0)
    assert all(b.volume == 0 and b.open == b.high == b.low == b.close == a.close for a, b in quiet)
    assert last == 1762820160


def test_recorded_ohlc_spot_checks() -> None:
    """A few bars by hand: a quiet first minute, a one-trade minute, a three-trade minute, the open last one."""
    bars, _ = parse_ohlc(_load(shared_file(OHLC_FILE).read_text()), interval=1)
    assert [(b.open_time.minute, b.open, b.high, b.low, b.close, b.volume, b.trades) for b in bars[:4:2]] == [
        (17, Decimal("106038.2"), Decimal("106038.2"), Decimal("106038.2"), Decimal("106038.2"), Decimal(0), 0),
        (19, Decimal("106038.3"), Decimal("106038.3"), Decimal("106038.3"), Decimal("106038.3"),
         Decimal("0.00032101"), 1),
    ]  # fmt: skip
    b = bars[3]
    assert (b.open, b.high, b.low, b.close, b.volume, b.trades) == (
        Decimal("106038.1"),
        Decimal("106044.3"),
        Decimal("106038.1"),
        Decimal("106040.1"),
        Decimal("0.08317981"),
        3,
    )
    assert (bars[-1].open_time, bars[-1].closed) == (datetime(2025, 11, 11, 0, 17, tzinfo=UTC), False)


def test_recorded_trades_and_ohlc_agree() -> None:
    """Every whole minute the trades capture covers matches its OHLC bar exactly: count, volume, open, high,
    low and close. Both parsers read times and digits the same way Kraken does."""
    ticks, _ = parse_trades(_load(shared_file(TRADES_FILE).read_text()), received_at=NOW)
    bars, _ = parse_ohlc(_load(shared_file(OHLC_FILE).read_text()), interval=1)
    by_minute = collections.defaultdict(list)
    for t in ticks:
        by_minute[t.ts.replace(second=0, microsecond=0)].append(t)
    lo = ticks[0].ts.replace(second=0, microsecond=0) + timedelta(minutes=1)
    hi = ticks[-1].ts.replace(second=0, microsecond=0)
    covered = [b for b in bars if lo <= b.open_time < hi]
    assert len(covered) == 409
    for b in covered:
        minute = by_minute.get(b.open_time, [])
        assert (len(minute), sum((t.qty for t in minute), Decimal(0))) == (b.trades, b.volume)
        if minute:
            prices = [t.price for t in minute]
            assert (prices[0], max(prices), min(prices), prices[-1]) == (b.open, b.high, b.low, b.close)


# -- documented examples -------------------------------------------------------------------------------------
def test_asset_pairs_example() -> None:
    """AssetPairs: altname as the symbol, XXBT/ZUSD as BTC-USD, tick size as given, step from lot_decimals,
    costmin as min notional, the raw entry with its key kept."""
    [info] = parse_asset_pairs(_load(ASSET_PAIRS_TEXT))
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
    payload = _load(ASSET_PAIRS_TEXT)
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
    [bar], last = parse_ohlc(_load(OHLC_TEXT), interval=5)
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
    ticks, last = parse_trades(_load(TRADES_TEXT), received_at=NOW)
    assert [(t.symbol, t.trade_id, t.price, t.qty, t.taker_side, t.ts) for t in ticks] == [
        ("XBTUSD", 61044952, Decimal("30243.40000"), Decimal("0.34507674"), "buy",
         datetime(2023, 7, 6, 18, 53, 17, 827736, tzinfo=UTC)),
        ("XBTUSD", 61044953, Decimal("30243.30000"), Decimal("0.00376960"), "sell",
         datetime(2023, 7, 6, 18, 53, 18, 280411, tzinfo=UTC)),
    ]  # fmt: skip
    assert last == 1688671969993150842
    ticks, _ = parse_trades(_load(TRADES_TEXT), received_at=NOW, symbol="XBTUSD")
    assert ticks[0].symbol == "XBTUSD"


@pytest.mark.parametrize("exact", [True, False], ids=["parse_float=Decimal", "plain floats"])
def test_ws_trade_example(exact: bool) -> None:
    """A WebSocket v2 trade: JSON numbers kept to the wire's digits, BTC-style symbol to the altname, side as
    the taker's."""
    frame = _load(WS_TRADE_TEXT) if exact else json.loads(WS_TRADE_TEXT)
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
    frame = _load(WS_OHLC_TEXT) if exact else json.loads(WS_OHLC_TEXT)
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
        (_load(WS_TRADE_TEXT), WsKind.TRADE),
        (_load(WS_OHLC_TEXT), WsKind.OHLC),
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


# -- malformed payloads ----------------------------------------------------------------------------------------
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


PAIR = _load(ASSET_PAIRS_TEXT)["result"]["XXBTZUSD"]


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


WS_TRADE = _load(WS_TRADE_TEXT)["data"][0]
WS_BAR = _load(WS_OHLC_TEXT)["data"][0]


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
