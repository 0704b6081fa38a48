"""Binance payloads through the pure parsers: a real WebSocket capture, Binance's own kline dump, and REST and
stream payloads taken from the simulator. Malformed payloads are refused naming the field."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests
from websockets.sync.client import connect

from exchangesim.server import Simulator
from markets.exchanges.base import Source
from markets.exchanges.binance import (
    parse_agg_trade,
    parse_exchange_info,
    parse_kline,
    parse_trade,
    parse_weight_limit,
)
from tests.conftest import shared_file

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
REST_AGG = {
    "a": 26129,
    "p": "0.01633102",
    "q": "4.70443515",
    "f": 27781,
    "l": 27781,
    "T": 1498793709153,
    "m": True,
    "M": True,
}
WS_AGG = {
    "e": "aggTrade",
    "E": 1672515782136,
    "s": "BNBBTC",
    "a": 12345,
    "p": "0.001",
    "q": "100",
    "f": 100,
    "l": 105,
    "T": 1672515782136,
    "m": False,
    "M": True,
}
WS_TRADE = {
    "e": "trade",
    "E": 1723161255343,
    "s": "BTCUSDT",
    "t": 3735683259,
    "p": "61837.63000000",
    "q": "0.02000000",
    "T": 1723161255342,
    "m": True,
    "M": True,
}
KLINE = [
    1499040000000,
    "0.01634790",
    "0.80000000",
    "0.01575800",
    "0.01577100",
    "148976.11427815",
    1499040059999,
    "2434.19055334",
    308,
    "1756.87402397",
    "28.46694368",
    "0",
]


def _capture_frames(name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(local receive ns, JSON) for each line of a recorded capture, read lazily: combined-stream frames, and
    one REST depth snapshot without a "stream"."""
    with gzip.open(shared_file(f"binance-spot-capture/{name}"), "rt") as f:
        for line in f:
            ns, raw = line.split(" ", 1)
            yield int(ns), json.loads(raw)


# -- recorded data ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "symbol", "count", "first_id"),
    [
        ("btcusdt_20240808.gz", "BTCUSDT", 9757, 3735683259),
        ("ethusdt_20240808.gz", "ETHUSDT", 6106, 1520538925),
    ],
)
def test_recorded_trade_frames_parse(name: str, symbol: str, count: int, first_id: int) -> None:
    """Every @trade frame of a real Binance capture parses: contiguous ids, Decimal prices equal to the strings,
    UTC exchange times from ms, our receive time from the recorder's ns clock, and m=true → taker sold."""
    frames = [(ns, f["data"]) for ns, f in _capture_frames(name) if f.get("stream", "").endswith("@trade")]
    ticks = [
        parse_trade(d, received_at=datetime.fromtimestamp(ns / 1e9, UTC), source=Source.IMPORT) for ns, d in frames
    ]
    assert len(ticks) == count
    assert [t.trade_id for t in ticks] == list(range(first_id, first_id + count))
    for (_, raw), t in zip(frames, ticks, strict=True):
        assert t.symbol == symbol
        assert (t.first_trade_id, t.last_trade_id) == (t.trade_id, t.trade_id)
        assert isinstance(t.price, Decimal)
        assert t.price == Decimal(raw["p"])
        assert t.qty == Decimal(raw["q"])
        assert str(t.price) == raw["p"]  # no float ever touched it: the exchange's digits are kept
        assert t.ts == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=raw["T"])
        assert t.taker_side == ("sell" if raw["m"] else "buy")
        assert t.source is Source.IMPORT
        assert t.received_at.tzinfo is UTC
    assert {t.taker_side for t in ticks} == {"buy", "sell"}
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(ticks))


def test_first_recorded_trade_exactly() -> None:
    """The capture's first trade, field by field."""
    ns, frame = next((ns, f) for ns, f in _capture_frames("btcusdt_20240808.gz") if f.get("stream") == "btcusdt@trade")
    tick = parse_trade(frame["data"], received_at=datetime.fromtimestamp(ns / 1e9, UTC), source=Source.WS)
    assert tick.exchange == "binance"
    assert tick.trade_id == 3735683259
    assert tick.price == Decimal("61837.63000000")
    assert tick.qty == Decimal("0.02000000")
    assert tick.ts == datetime(2024, 8, 8, 23, 54, 15, 342000, tzinfo=UTC)
    assert tick.taker_side == "sell"
    assert tick.source is Source.WS


def test_binance_vision_kline_dump_parses() -> None:
    """Binance's public 1m kline dump (same 12 columns as REST, times as text) parses into a contiguous day."""
    with zipfile.ZipFile(shared_file("binance-vision/ADABTC-1m-2021-11-28.zip")) as z:
        rows = list(csv.reader(io.TextIOWrapper(z.open(z.namelist()[0]), "ascii")))
    bars = [
        parse_kline([int(r[0]), *r[1:6], int(r[6]), r[7], int(r[8]), *r[9:]], symbol="ADABTC", interval="1m", now=NOW)
        for r in rows
    ]
    assert len(bars) == 1440
    assert [b.open_time for b in bars] == [bars[0].open_time + timedelta(minutes=i) for i in range(1440)]
    assert bars[0].open_time == datetime(2021, 11, 28, tzinfo=UTC)
    first = bars[0]
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("0.00002820"),
        Decimal("0.00002821"),
        Decimal("0.00002817"),
        Decimal("0.00002818"),
    )
    assert (first.volume, first.trades, first.taker_buy_volume) == (
        Decimal("85342.70000000"),
        96,
        Decimal("36241.70000000"),
    )
    assert all(b.closed and b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in bars)


# -- documented examples -----------------------------------------------------------------------------------------
def test_rest_and_ws_agg_trade_shapes() -> None:
    """The REST shape needs the symbol passed in; the WS frame carries it in 's'. f/l are the raw trades."""
    rest = parse_agg_trade(REST_AGG, symbol="ETHBTC", received_at=NOW, source=Source.REST)
    assert (rest.symbol, rest.trade_id, rest.first_trade_id, rest.last_trade_id) == ("ETHBTC", 26129, 27781, 27781)
    assert (rest.price, rest.qty, rest.taker_side) == (Decimal("0.01633102"), Decimal("4.70443515"), "sell")
    assert rest.ts == datetime(2017, 6, 30, 3, 35, 9, 153000, tzinfo=UTC)
    ws = parse_agg_trade(WS_AGG, received_at=NOW, source=Source.WS)
    assert (ws.symbol, ws.trade_id, ws.first_trade_id, ws.last_trade_id, ws.taker_side) == (
        "BNBBTC",
        12345,
        100,
        105,
        "buy",
    )
    assert parse_agg_trade(WS_AGG, symbol="BNBBTC", received_at=NOW, source=Source.WS) == ws


def test_kline_closed_depends_on_now() -> None:
    """A candle is closed once its close time has passed, open before."""
    open_time = datetime(2017, 7, 3, tzinfo=UTC)
    bar = parse_kline(KLINE, symbol="ETHBTC", interval="1m", now=open_time + timedelta(seconds=30))
    assert (bar.open_time, bar.close_time, bar.closed) == (open_time, open_time + timedelta(seconds=59.999), False)
    assert parse_kline(KLINE, symbol="ETHBTC", interval="1m", now=open_time + timedelta(minutes=1)).closed
    assert (bar.trades, bar.quote_volume, bar.source, bar.synthetic) == (
        308,
        Decimal("2434.19055334"),
        "exchange",
        False,
    )


# -- simulator payloads -------------------------------------------------------------------------------------------
def test_simulator_rest_payloads_parse(sim_thread: Simulator) -> None:
    """aggTrades, klines and exchangeInfo as the simulator serves them (Binance's shapes) parse faithfully."""
    api = f"{sim_thread.url}/api/v3"
    aggs = requests.get(f"{api}/aggTrades", params={"symbol": "BTCUSDT", "limit": 200}, timeout=5).json()
    ticks = [parse_agg_trade(a, symbol="BTCUSDT", received_at=NOW, source=Source.REST) for a in aggs]
    assert [t.trade_id for t in ticks] == [a["a"] for a in aggs] == list(range(aggs[0]["a"], aggs[0]["a"] + 200))
    assert all(
        t.price == Decimal(a["p"]) and t.last_trade_id - t.first_trade_id == a["l"] - a["f"]
        for t, a in zip(ticks, aggs, strict=True)
    )
    assert all(b.first_trade_id == a.last_trade_id + 1 for a, b in itertools.pairwise(ticks))

    rows = requests.get(f"{api}/klines", params={"symbol": "ETHUSDT", "interval": "5m", "limit": 12}, timeout=5).json()
    now = datetime.now(UTC)
    bars = [parse_kline(r, symbol="ETHUSDT", interval="5m", now=now) for r in rows]
    assert [b.open_time for b in bars] == [bars[0].open_time + timedelta(minutes=5 * i) for i in range(12)]
    assert all(b.closed for b in bars[:-1])
    assert not bars[-1].closed  # the current five minutes
    assert all(b.close_time == b.open_time + timedelta(minutes=5, milliseconds=-1) for b in bars)

    info = requests.get(f"{api}/exchangeInfo", timeout=5).json()
    instruments = {i.symbol: i for i in parse_exchange_info(info)}
    assert set(instruments) == {"BTCUSDT", "ETHUSDT"}
    btc = instruments["BTCUSDT"]
    assert (btc.canonical, btc.base, btc.quote, btc.status) == ("BTC-USDT", "BTC", "USDT", "TRADING")
    assert (btc.tick_size, btc.step_size, btc.min_notional) == (Decimal("0.01"), Decimal("0.00001"), Decimal(5))
    assert [f["filterType"] for f in btc.filters] == [f["filterType"] for f in info["symbols"][0]["filters"]]
    assert parse_weight_limit(info) == 6000


@pytest.mark.parametrize(("stream", "parse"), [("btcusdt@aggTrade", parse_agg_trade), ("btcusdt@trade", parse_trade)])
def test_simulator_stream_frames_parse(sim_thread: Simulator, stream: str, parse: Any) -> None:
    """Frames of the simulator's raw streams parse with no symbol given (it is in 's'); ids are contiguous."""
    with connect(f"{sim_thread.ws_url}/ws/{stream}", open_timeout=5) as ws:
        frames = [json.loads(ws.recv(timeout=5)) for _ in range(20)]
    ticks = [parse(f, received_at=datetime.now(UTC), source=Source.WS) for f in frames]
    ids = [t.trade_id for t in ticks]
    assert ids == list(range(ids[0], ids[0] + 20))
    assert {t.symbol for t in ticks} == {"BTCUSDT"}
    assert all(t.price == Decimal(f["p"]) for t, f in zip(ticks, frames, strict=True))


# -- malformed payloads ----------------------------------------------------------------------------------------
def _without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_without(REST_AGG, "p"), "'p' is missing"),
        ({**REST_AGG, "p": 0.01633102}, "'p' must be a decimal string"),
        ({**REST_AGG, "q": "abc"}, "'q' must be a decimal string"),
        ({**REST_AGG, "q": "NaN"}, "'q' must be a finite"),
        ({**REST_AGG, "p": "-1"}, "'p' must be a finite non-negative"),
        ({**REST_AGG, "a": "26129"}, "'a' must be a non-negative integer"),
        ({**REST_AGG, "a": True}, "'a' must be a non-negative integer"),
        ({**REST_AGG, "T": 1498793709153.5}, "'T' must be a non-negative integer"),
        ({**REST_AGG, "m": "true"}, "'m' must be true or false"),
        (_without(REST_AGG, "f"), "'f' is missing"),
        ({**WS_AGG, "e": "trade"}, "'e' must be 'aggTrade'"),
        ({**WS_AGG, "s": "ETHBTC"}, "'s' is 'ETHBTC', not the expected 'BNBBTC'"),
        ([REST_AGG], "must be a JSON object"),
    ],
)
def test_malformed_agg_trade(payload: Any, field: str) -> None:
    """Each defect is a ValueError naming the field (the REST shape is parsed for symbol BNBBTC)."""
    with pytest.raises(ValueError, match=field):
        parse_agg_trade(payload, symbol="BNBBTC", received_at=NOW, source=Source.REST)


def test_agg_trade_without_any_symbol() -> None:
    """The REST shape has no 's': without a symbol passed in, it cannot be attributed."""
    with pytest.raises(ValueError, match="'s' is missing and no symbol was given"):
        parse_agg_trade(REST_AGG, received_at=NOW, source=Source.REST)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_without(WS_TRADE, "t"), "trade field 't' is missing"),
        ({**WS_TRADE, "e": "aggTrade"}, "'e' must be 'trade'"),
        ({**WS_TRADE, "T": "1723161255342"}, "'T' must be a non-negative integer"),
        ({**WS_TRADE, "s": ""}, "'s' must be a non-empty string"),
    ],
)
def test_malformed_trade(payload: Any, field: str) -> None:
    """Each defect of a @trade frame is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_trade(payload, received_at=NOW, source=Source.WS)


def test_naive_receive_time_is_refused() -> None:
    """A naive received_at would be stored as if it were UTC: refused."""
    with pytest.raises(ValueError, match="received_at must be a timezone-aware"):
        parse_trade(WS_TRADE, received_at=datetime(2026, 1, 1), source=Source.WS)  # noqa: DTZ001


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (KLINE[:10], "kline must be an array of 12 fields"),
        ({"t": 1}, "kline must be an array"),
        ([KLINE[0], 0.0163, *KLINE[2:]], "'open' must be a decimal string"),
        ([*KLINE[:4], "x", *KLINE[5:]], "'close' must be a decimal string"),
        ([str(KLINE[0]), *KLINE[1:]], "'open time' must be a non-negative integer"),
        ([*KLINE[:6], KLINE[0] - 1, *KLINE[7:]], "'close time'"),
        ([*KLINE[:8], "308", *KLINE[9:]], "'trades' must be a non-negative integer"),
    ],
)
def test_malformed_kline(row: Any, field: str) -> None:
    """Each defect of a kline row is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_kline(row, symbol="ETHBTC", interval="1m", now=NOW)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "'symbols' is missing"),
        ({"symbols": {}}, "'symbols' must be an array"),
        ({"symbols": [{"symbol": "ETHBTC", "status": "TRADING", "quoteAsset": "BTC"}]}, "'baseAsset' is missing"),
        (
            {
                "symbols": [
                    {
                        "symbol": "ETHBTC",
                        "status": "TRADING",
                        "baseAsset": "ETH",
                        "quoteAsset": "BTC",
                        "filters": [{"minPrice": "1"}],
                    }
                ]
            },
            "'filters'",
        ),
        (
            {
                "symbols": [
                    {
                        "symbol": "ETHBTC",
                        "status": "TRADING",
                        "baseAsset": "ETH",
                        "quoteAsset": "BTC",
                        "filters": [{"filterType": "PRICE_FILTER", "tickSize": 0.01}],
                    }
                ]
            },
            "'tickSize'",
        ),
    ],
)
def test_malformed_exchange_info(payload: Any, field: str) -> None:
    """Each defect of exchangeInfo is a ValueError naming the field."""
    with pytest.raises(ValueError, match=field):
        parse_exchange_info(payload)


def test_exchange_info_zero_filter_means_no_rule() -> None:
    """A zero tickSize turns the rule off on Binance: it becomes None, and the old MIN_NOTIONAL is read too."""
    [info] = parse_exchange_info(
        {
            "symbols": [
                {
                    "symbol": "ETHBTC",
                    "status": "BREAK",
                    "baseAsset": "ETH",
                    "quoteAsset": "BTC",
                    "filters": [
                        {"filterType": "PRICE_FILTER", "tickSize": "0.00000000"},
                        {"filterType": "MIN_NOTIONAL", "minNotional": "0.00100000"},
                    ],
                }
            ]
        }
    )
    assert (info.tick_size, info.step_size, info.min_notional, info.status) == (None, None, Decimal("0.001"), "BREAK")
    assert parse_weight_limit({"rateLimits": []}) is None
