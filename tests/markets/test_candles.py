"""Candles built from ticks: OHLCV by trade id in exchange time, exact sums, and chunk-independence."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal, Inexact, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markets.candles import CandleAccumulator, accumulate, build_candles, merge_candles, stream_candles
from markets.exchanges.base import CandleBar, Source, TradeTick

T0 = datetime(2024, 8, 8, 23, 50, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def tick(
    trade_id: int, price: str, qty: str, side: str = "buy", at_ms: int = 0, symbol: str = "BTCUSDT", span: int = 0
) -> TradeTick:
    """A tick ``at_ms`` after T0 covering ``span + 1`` raw trades."""
    ts = T0 + at_ms * MS
    return TradeTick(
        "binance",
        symbol,
        trade_id,
        Decimal(price),
        Decimal(qty),
        side,
        ts,
        ts,
        Source.WS,
        trade_id * 10,
        trade_id * 10 + span,
    )


@st.composite
def tick_lists(draw: st.DrawFn, time_ordered: bool = False) -> list[TradeTick]:
    """Ticks ordered by id over about six minutes and two symbols; in time order too when asked."""
    n = draw(st.integers(0, 40))
    ids = sorted(draw(st.sets(st.integers(1, 2**40), min_size=n, max_size=n)))
    times = draw(st.lists(st.integers(0, 6 * 60_000), min_size=n, max_size=n))
    if time_ordered:
        times.sort()
    price = st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal(200_000), places=8)
    qty = st.decimals(min_value=Decimal(0), max_value=Decimal(5_000), places=8)
    return [
        tick(
            i,
            str(draw(price)),
            str(draw(qty)),
            draw(st.sampled_from(["buy", "sell"])),
            at,
            draw(st.sampled_from(["BTCUSDT", "ETHUSDT"])),
            draw(st.integers(0, 4)),
        )
        for i, at in zip(ids, times, strict=True)
    ]


def test_one_candle_by_hand() -> None:
    """Open and close follow trade ids (not time), volumes and the taker-buy share are exact sums, trades
    counts raw trades, and close_time is the open plus a minute minus a millisecond."""
    ticks = [
        tick(12, "61837.63", "0.02", "sell", at_ms=30_000),
        tick(10, "61837.64", "0.048", "buy", at_ms=30_000, span=2),  # lowest id: the open, though not first in
        tick(11, "61839.00", "0.001", "buy", at_ms=59_999),
        tick(13, "61830.10", "1.5", "sell", at_ms=20_000),  # highest id: the close, though earliest in time
    ]
    (bar,) = build_candles(ticks)
    assert (bar.exchange, bar.symbol, bar.interval, bar.source, bar.closed) == (
        "binance",
        "BTCUSDT",
        "1m",
        "trades",
        True,
    )
    assert (bar.open_time, bar.close_time) == (T0, T0 + timedelta(seconds=59, milliseconds=999))
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal("61837.64"),
        Decimal("61839.00"),
        Decimal("61830.10"),
        Decimal("61830.10"),
    )
    assert bar.volume == Decimal("1.569")
    assert bar.quote_volume == Decimal("1236.7526") + Decimal("2968.20672") + Decimal("61.839") + Decimal("92745.15")
    assert bar.trades == 6  # the aggregate trade 10 covers three raw trades
    assert bar.taker_buy_volume == Decimal("0.049")
    assert bar.taker_buy_quote_volume == Decimal("2968.20672") + Decimal("61.839")


def test_candles_split_by_interval_and_symbol() -> None:
    """Each (symbol, interval) gets its own candle, ordered by symbol then open time; 5m works as 1m does,
    and a minute without ticks has no candle."""
    ticks = [
        tick(1, "10", "1", at_ms=0),
        tick(2, "11", "1", at_ms=60_000),
        tick(3, "12", "1", at_ms=3 * 60_000),
        tick(4, "20", "1", at_ms=0, symbol="ETHUSDT"),
    ]
    minutes = build_candles(ticks)
    assert [(b.symbol, b.open_time - T0) for b in minutes] == [
        ("BTCUSDT", timedelta(0)),
        ("BTCUSDT", timedelta(minutes=1)),
        ("BTCUSDT", timedelta(minutes=3)),
        ("ETHUSDT", timedelta(0)),
    ]
    five = build_candles(ticks, "5m", source="exchange", closed=False)
    start = T0
    assert [(b.symbol, b.open_time, b.close_time, b.trades, b.closed) for b in five] == [
        ("BTCUSDT", start, start + timedelta(minutes=5) - MS, 3, False),
        ("ETHUSDT", start, start + timedelta(minutes=5) - MS, 1, False),
    ]
    assert {b.source for b in five} == {"exchange"}
    assert five[0].open == Decimal(10)
    assert five[0].close == Decimal(12)
    with pytest.raises(ValueError, match="unknown interval '3m'"):
        build_candles(ticks, "3m")


def test_no_ticks_no_candles() -> None:
    """Nothing in, nothing out."""
    assert build_candles([]) == []
    assert list(stream_candles([])) == []


def test_quote_volume_is_never_rounded() -> None:
    """A product or sum that would need rounding raises instead of being stored rounded."""
    huge = tick(1, "9" * 60, "0." + "9" * 50)
    with pytest.raises(Inexact):
        build_candles([huge])


def test_stream_refuses_ticks_out_of_time_order() -> None:
    """A tick older than a candle the stream already yielded is an error, not a silently wrong candle."""
    ticks = [tick(1, "10", "1", at_ms=0), tick(2, "10", "1", at_ms=61_000), tick(3, "10", "1", at_ms=1_000)]
    with pytest.raises(ValueError, match="not in time order"):
        list(stream_candles(ticks))


def test_accumulator_refuses_foreign_ticks_and_candles() -> None:
    """A tick of another minute or symbol, or another candle, cannot be counted into a candle."""
    acc = CandleAccumulator.start(tick(1, "10", "1"))
    with pytest.raises(ValueError, match="not in the candle"):
        acc.add(tick(2, "10", "1", at_ms=60_000))
    with pytest.raises(ValueError, match="not in the candle"):
        acc.add(tick(2, "10", "1", symbol="ETHUSDT"))
    with pytest.raises(ValueError, match="cannot merge"):
        acc.merge(CandleAccumulator.start(tick(2, "10", "1", at_ms=60_000)))


def test_stream_yields_each_candle_when_a_later_tick_arrives() -> None:
    """A candle is yielded as soon as a tick of a later minute shows it complete (the live builder's rule);
    the last one is yielded at the end, open when asked."""
    ticks = iter([tick(1, "10", "1", at_ms=0), tick(2, "11", "1", at_ms=59_000), tick(3, "12", "1", at_ms=60_000)])
    candles = stream_candles(ticks, last_closed=False)
    first = next(candles)
    assert (first.open_time, first.close, first.closed) == (T0, Decimal(11), True)
    assert next(ticks, None) is None  # it took the minute-later tick to know
    last = next(candles)
    assert (last.open_time, last.closed) == (T0 + timedelta(minutes=1), False)
    assert next(candles, None) is None


@given(tick_lists(), st.data())
def test_two_chunks_merge_into_one_pass(ticks: list[TradeTick], data: st.DataObject) -> None:
    """Candles of the id-ordered ticks cut anywhere into two chunks, merged, equal the candles of one pass."""
    cut = data.draw(st.integers(0, len(ticks)))
    assert merge_candles(build_candles(ticks[:cut]), build_candles(ticks[cut:])) == build_candles(ticks)


@given(tick_lists(), st.data())
def test_any_partition_merges_into_one_pass(ticks: list[TradeTick], data: st.DataObject) -> None:
    """Accumulators over any two disjoint subsets of the ticks (ids interleaved) merge into the one-pass candles."""
    picks = data.draw(st.lists(st.booleans(), min_size=len(ticks), max_size=len(ticks)))
    left = accumulate([t for t, p in zip(ticks, picks, strict=True) if p])
    right = accumulate([t for t, p in zip(ticks, picks, strict=True) if not p])
    for key, acc in right.items():
        if key in left:
            left[key].merge(acc)
        else:
            left[key] = acc
    assert [left[k].bar() for k in sorted(left)] == build_candles(ticks)


@given(tick_lists(), st.randoms(use_true_random=False))
def test_arrival_order_does_not_matter(ticks: list[TradeTick], rnd: random.Random) -> None:
    """The same ticks in any order give the same candles: open and close follow trade ids."""
    shuffled = list(ticks)
    rnd.shuffle(shuffled)
    assert build_candles(shuffled) == build_candles(ticks)


@given(tick_lists(time_ordered=True))
def test_stream_equals_one_pass(ticks: list[TradeTick]) -> None:
    """Streaming time-ordered ticks yields exactly the one-pass candles (per symbol, in time order)."""
    streamed = list(stream_candles(ticks))
    assert sorted(streamed, key=lambda b: (b.symbol, b.open_time)) == build_candles(ticks)


@given(tick_lists())
def test_candle_invariants(ticks: list[TradeTick]) -> None:
    """Volumes and counts are the sums over the candle's ticks; high ≥ open, close ≥ low; open and close are
    the prices of the lowest and highest id; every tick lies inside its candle."""
    bars = build_candles(ticks)
    with localcontext(prec=100):  # the reference sums must not round either
        _check_invariants(ticks, bars)


def _check_invariants(ticks: list[TradeTick], bars: list[CandleBar]) -> None:
    assert sum((b.volume for b in bars), Decimal(0)) == sum((t.qty for t in ticks), Decimal(0))
    assert sum(b.trades for b in bars) == sum(t.last_trade_id - t.first_trade_id + 1 for t in ticks)
    for b in bars:
        mine = [t for t in ticks if t.symbol == b.symbol and b.open_time <= t.ts <= b.close_time]
        assert mine
        assert b.high >= max(b.open, b.close)
        assert min(b.open, b.close) >= b.low
        assert (b.high, b.low) == (max(t.price for t in mine), min(t.price for t in mine))
        assert b.open == min(mine, key=lambda t: t.trade_id).price
        assert b.close == max(mine, key=lambda t: t.trade_id).price
        assert b.volume == sum((t.qty for t in mine), Decimal(0))
        assert b.quote_volume == sum((t.price * t.qty for t in mine), Decimal(0))
        buys = [t for t in mine if t.taker_side == "buy"]
        assert b.taker_buy_volume == sum((t.qty for t in buys), Decimal(0))
        assert b.taker_buy_quote_volume == sum((t.price * t.qty for t in buys), Decimal(0))
        assert b.taker_buy_volume <= b.volume
        assert b.close_time == b.open_time + timedelta(minutes=1) - MS
