"""Kraken's recorded REST capture through the pure parsers, checked value by value against its own text (read
with no JSON decoder), with spot checks, and trades and OHLC agreeing with each other.
"""

from __future__ import annotations

import collections
import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from markets.exchanges.base import Source
from markets.exchanges.kraken import parse_ohlc, parse_trades
from tests.conftest import shared_file
from tests.markets.exchanges.kraken_examples import NOW, decimal_json

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TRADES_FILE = "kraken-rest/kraken_http_trades_XBTUSDT.json"
OHLC_FILE = "kraken-rest/kraken_http_ohlc_XBTUSDT_1m.json"
# the rows of the captures, read from the raw text with no JSON decoder: the expectations' independent source
_TEXT = r'\s*"([^"]*)",'
TRADE_ROW = re.compile(rf"\[{_TEXT * 2}\s*([0-9.]+),{_TEXT * 3}\s*(\d+)\s*]")
OHLC_ROW = re.compile(rf"\[\s*(\d+),{_TEXT * 6}\s*(\d+)\s*]")


def _seconds_text(token: str) -> datetime:
    """Float-seconds text to a time, by string arithmetic: whole seconds, then the first six fraction digits."""
    whole, _, fraction = token.partition(".")
    return EPOCH + timedelta(seconds=int(whole), microseconds=int(fraction[:6].ljust(6, "0")))


def test_recorded_trades_every_value() -> None:
    """All 1,000 trades of the capture: ids 10218208..10219207 contiguous, and every price, volume, side and
    time equal to what the file's own text says (digits kept, time truncated to the microsecond)."""
    text = shared_file(TRADES_FILE).read_text()
    raw = TRADE_ROW.findall(text)
    ticks, last = parse_trades(decimal_json(text), received_at=NOW, source=Source.IMPORT)
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
    ticks, _ = parse_trades(decimal_json(shared_file(TRADES_FILE).read_text()), received_at=NOW)
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
    assert parse_trades(json.loads(text), received_at=NOW) == parse_trades(decimal_json(text), received_at=NOW)


def test_recorded_ohlc_every_value() -> None:
    """All 721 one-minute bars: contiguous, the last one still open, 505 with trades, and the quiet minutes
    flat at the previous close with no volume; every value equal to the file's text."""
    text = shared_file(OHLC_FILE).read_text()
    raw = OHLC_ROW.findall(text)
    bars, last = parse_ohlc(decimal_json(text), interval=1)
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
    bars, _ = parse_ohlc(decimal_json(shared_file(OHLC_FILE).read_text()), interval=1)
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
    ticks, _ = parse_trades(decimal_json(shared_file(TRADES_FILE).read_text()), received_at=NOW)
    bars, _ = parse_ohlc(decimal_json(shared_file(OHLC_FILE).read_text()), interval=1)
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
