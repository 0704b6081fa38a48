"""The heterogeneity table of ARCHITECTURE.md section 6, row by row (symbol, time, side, trade id, candles): the
same economic fact written in each venue's format parses to the same normalized record."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from markets.exchanges.base import CandleBar, Source, TradeTick
from markets.exchanges.binance.parse import parse_agg_trade, parse_kline, parse_trade
from markets.exchanges.coinbase.parse import parse_candles, parse_match, parse_trades
from markets.exchanges.kraken.parse import parse_ohlc
from markets.exchanges.kraken.parse import parse_trades as kraken_trades
from markets.exchanges.kraken.ws import parse_ws_trade
from markets.exchanges.symbols import canonical

RECEIVED = datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
TS = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
# The fact: a taker sold 0.5 BTC at 64000.10 USDT at 2026-01-02T03:04:05.678Z. Each venue's way of writing it:
WIRE: dict[str, dict[str, Any]] = {
    "binance aggTrade": {"e": "aggTrade", "E": 1767323045679, "s": "BTCUSDT", "a": 3041249807, "p": "64000.10000000",
                         "q": "0.50000000", "f": 3735683259, "l": 3735683260, "T": 1767323045678, "m": True, "M": True},
    "binance trade": {"e": "trade", "E": 1767323045679, "s": "BTCUSDT", "t": 3735683259, "p": "64000.10000000",
                      "q": "0.50000000", "T": 1767323045678, "m": True, "M": True},
    "coinbase REST trade": {"time": "2026-01-02T03:04:05.678Z", "trade_id": 86327327, "price": "64000.10",
                            "size": "0.5", "side": "buy"},
    "coinbase match": {"type": "match", "trade_id": 86327327, "maker_order_id": "0f35", "taker_order_id": "252b",
                       "side": "buy", "size": "0.50000000", "price": "64000.10", "product_id": "BTC-USDT",
                       "sequence": 12038915443, "time": "2026-01-02T03:04:05.678000Z"},
    "kraken REST trade": {"error": [], "result": {"XBTUSDT": [["64000.10000", "0.50000000", 1767323045.678, "s", "m",
                                                               "", 10218208]], "last": "1767323045678000000"}},
    "kraken WS v2 trade": {"channel": "trade", "type": "update", "data": [
        {"symbol": "BTC/USDT", "side": "sell", "price": 64000.1, "qty": 0.5, "ord_type": "market", "trade_id": 10218208,
         "timestamp": "2026-01-02T03:04:05.678000000Z"}]},
}  # fmt: skip
# where each table row's field sits in each venue's message: (path to the field, how the value is written)
FIELD: dict[str, dict[str, tuple[Any, ...]]] = {
    "binance aggTrade": {"symbol": ("s",), "time": ("T",), "side": ("m",), "trade id": ("a",)},
    "binance trade": {"symbol": ("s",), "time": ("T",), "side": ("m",), "trade id": ("t",)},
    "coinbase REST trade": {"time": ("time",), "side": ("side",), "trade id": ("trade_id",)},
    "coinbase match": {"symbol": ("product_id",), "time": ("time",), "side": ("side",), "trade id": ("trade_id",)},
    "kraken REST trade": {"time": ("result", "XBTUSDT", 0, 2), "side": ("result", "XBTUSDT", 0, 3),
                          "trade id": ("result", "XBTUSDT", 0, 6)},
    "kraken WS v2 trade": {"symbol": ("data", 0, "symbol"), "time": ("data", 0, "timestamp"),
                           "side": ("data", 0, "side"), "trade id": ("data", 0, "trade_id")},
}  # fmt: skip
PARSE: dict[str, Callable[[Any], TradeTick]] = {
    "binance aggTrade": lambda p: parse_agg_trade(p, received_at=RECEIVED, source=Source.WS),
    "binance trade": lambda p: parse_trade(p, received_at=RECEIVED, source=Source.WS),
    "coinbase REST trade": lambda p: parse_trades([p], symbol="BTC-USDT", received_at=RECEIVED)[0],
    "coinbase match": lambda p: parse_match(p, received_at=RECEIVED),
    "kraken REST trade": lambda p: kraken_trades(p, received_at=RECEIVED)[0][0],
    "kraken WS v2 trade": lambda p: parse_ws_trade(p, received_at=RECEIVED)[0],
}
# The table: (row, venue, the field as that venue writes it, what it normalizes to).
TABLE = [
    ("symbol", "binance aggTrade", "BTCUSDT", "BTC-USDT"),
    ("symbol", "binance trade", "ETHBTC", "ETH-BTC"),
    ("symbol", "coinbase match", "BTC-USDT", "BTC-USDT"),
    ("symbol", "coinbase match", "BTC-USD", "BTC-USD"),
    ("symbol", "kraken WS v2 trade", "BTC/USDT", "BTC-USDT"),
    ("symbol", "kraken WS v2 trade", "BTC/USD", "BTC-USD"),
    ("symbol", "kraken WS v2 trade", "XBT/USD", "BTC-USD"),  # the v1 wsname, still in AssetPairs
    ("time", "binance aggTrade", 1767323045678, TS),  # int ms
    ("time", "binance trade", 1767323045678, TS),
    ("time", "coinbase REST trade", "2026-01-02T03:04:05.678Z", TS),  # ISO-8601
    ("time", "coinbase match", "2026-01-02T03:04:05.678000Z", TS),
    ("time", "kraken REST trade", 1767323045.678, TS),  # float seconds
    ("time", "kraken WS v2 trade", "2026-01-02T03:04:05.678000000Z", TS),  # RFC 3339, 9 digits
    ("side", "binance aggTrade", True, "sell"),  # m: the buyer was the maker
    ("side", "binance aggTrade", False, "buy"),
    ("side", "binance trade", True, "sell"),
    ("side", "coinbase REST trade", "buy", "sell"),  # the maker's side
    ("side", "coinbase match", "buy", "sell"),
    ("side", "coinbase match", "sell", "buy"),
    ("side", "kraken REST trade", "s", "sell"),  # the taker's b/s
    ("side", "kraken REST trade", "b", "buy"),
    ("side", "kraken WS v2 trade", "sell", "sell"),  # the taker's buy/sell
    ("side", "kraken WS v2 trade", "buy", "buy"),
    ("trade id", "binance aggTrade", 3041249807, 3041249807),
    ("trade id", "binance trade", 3735683259, 3735683259),
    ("trade id", "coinbase REST trade", 86327327, 86327327),
    ("trade id", "coinbase match", 86327327, 86327327),
    ("trade id", "kraken REST trade", 10218208, 10218208),
    ("trade id", "kraken WS v2 trade", 10218208, 10218208),
]
PROJECT: dict[str, Callable[[TradeTick], Any]] = {
    "symbol": lambda t: canonical(t.exchange, t.symbol),
    "time": lambda t: t.ts,
    "side": lambda t: t.taker_side,
    "trade id": lambda t: t.trade_id,
}


def _wire(venue: str, row: str | None = None, value: Any = None) -> Any:
    """The venue's message for the fact, with one field rewritten, decoded as the wire's text would be."""
    payload = json.loads(json.dumps(WIRE[venue]))
    if row is not None:
        *path, last = FIELD[venue][row]
        holder = payload
        for step in path:
            holder = holder[step]
        holder[last] = value
    return json.loads(json.dumps(payload), parse_float=Decimal)


def _normalized(t: TradeTick) -> tuple[Any, ...]:
    return canonical(t.exchange, t.symbol), t.price, t.qty, t.taker_side, t.ts


@pytest.mark.parametrize("venue", WIRE)
def test_same_trade_same_record(venue: str) -> None:
    """The one trade, written as each venue writes it, is one normalized record."""
    tick = PARSE[venue](_wire(venue))
    assert _normalized(tick) == ("BTC-USDT", Decimal("64000.1"), Decimal("0.5"), "sell", TS)
    assert type(tick.trade_id) is int
    assert tick.received_at == RECEIVED


@pytest.mark.parametrize(("row", "venue", "written", "normalized"), TABLE)
def test_table_row(row: str, venue: str, written: Any, normalized: Any) -> None:
    """Each cell of the table: the field written the venue's way normalizes to the common value."""
    assert PROJECT[row](PARSE[venue](_wire(venue, row, written))) == normalized


def test_every_row_and_venue_is_covered() -> None:
    """The table has a cell for every row and every exchange it names."""
    cells = {(row, venue.split()[0]) for row, venue, _, _ in TABLE}
    assert cells >= {(r, e) for r in PROJECT for e in ("binance", "coinbase", "kraken")}


def test_kraken_rest_keys_name_the_same_pair() -> None:
    """Kraken's REST answer may be keyed XXBTZUSD even when asked for XBTUSD; both are recorded as XBTUSD."""
    for key in ("XXBTZUSD", "XBTUSD"):
        payload = _wire("kraken REST trade")
        payload["result"] = {key: payload["result"]["XBTUSDT"], "last": "1"}
        [tick], _ = kraken_trades(payload, received_at=RECEIVED)
        assert (tick.symbol, canonical("kraken", tick.symbol)) == ("XBTUSD", "BTC-USD")


# -- candles ---------------------------------------------------------------------------------------------------
# Three minutes of one market from 03:04: traded, quiet, traded. (open, high, low, close, volume)
MINUTES = [
    ("64000.10", "64010.00", "63990.50", "64005.00", "1.5"),
    ("64005.00", "64005.00", "64005.00", "64005.00", "0"),
    ("64005.00", "64020.00", "64001.00", "64012.30", "0.75"),
]
START = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
NOW = START + timedelta(minutes=3, seconds=30)  # the fourth minute is under way


def _seconds(i: int) -> int:
    return int((START + timedelta(minutes=i)).timestamp())


def _binance() -> list[CandleBar]:
    """12-arrays of strings, oldest first, a quiet minute included with 0 trades."""
    rows = [[_seconds(i) * 1000, o, h, lo, c, v, _seconds(i + 1) * 1000 - 1, "0", int(v != "0"), "0", "0", "0"]
            for i, (o, h, lo, c, v) in enumerate(MINUTES)]  # fmt: skip
    return [parse_kline(r, symbol="BTCUSDT", interval="1m", now=NOW) for r in rows]


def _coinbase() -> list[CandleBar]:
    """[time, low, high, open, close, volume] as numbers, newest first, no bucket for the quiet minute."""
    rows = [f"[{_seconds(i)},{lo},{h},{o},{c},{v}]" for i, (o, h, lo, c, v) in enumerate(MINUTES) if v != "0"]
    text = "[" + ",".join(reversed(rows)) + "]"
    return parse_candles(json.loads(text, parse_float=Decimal), symbol="BTC-USDT", granularity=60, now=NOW)


def _kraken() -> tuple[list[CandleBar], CandleBar]:
    """[t, o, h, l, c, vwap, volume, count], oldest first, the quiet minute a flat bar with count 0, and a last
    row for the minute still open."""
    rows = [[_seconds(i), o, h, lo, c, "0.0" if v == "0" else c, v, int(v != "0")]
            for i, (o, h, lo, c, v) in enumerate(MINUTES)]  # fmt: skip
    rows.append([_seconds(3), "64012.30", "64012.30", "64012.30", "64012.30", "64012.30", "0.01", 1])
    bars, _ = parse_ohlc({"error": [], "result": {"XBTUSDT": rows, "last": _seconds(2)}}, interval=1)
    return bars[:-1], bars[-1]


def _ohlcv(bars: list[CandleBar]) -> list[tuple[Any, ...]]:
    return [(b.open_time, b.open, b.high, b.low, b.close, b.volume) for b in bars]


def test_candles_in_three_layouts() -> None:
    """The same minutes in Binance's, Coinbase's and Kraken's layouts: equal OHLCV, oldest first, all closed;
    Coinbase leaves out the quiet minute that the others send flat, and Kraken's last row is still open."""
    binance, coinbase, (kraken, still_open) = _binance(), _coinbase(), _kraken()
    expected = [(START + timedelta(minutes=i), *map(Decimal, m)) for i, m in enumerate(MINUTES)]
    assert _ohlcv(binance) == _ohlcv(kraken) == expected
    assert _ohlcv(coinbase) == [expected[0], expected[2]]
    for bars in (binance, coinbase, kraken):
        assert [b.open_time for b in bars] == sorted(b.open_time for b in bars)
        assert all(b.closed and b.interval == "1m" and b.source == "exchange" for b in bars)
        assert all(b.close_time == b.open_time + timedelta(seconds=59.999) for b in bars)
        assert {canonical(b.exchange, b.symbol) for b in bars} == {"BTC-USDT"}
    assert [b.trades for b in kraken] == [b.trades for b in binance] == [1, 0, 1]
    assert (still_open.open_time, still_open.closed) == (START + timedelta(minutes=3), False)
