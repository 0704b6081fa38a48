"""Indicator values fed live equal TA-Lib's batch functions on the same window, bit for bit."""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

import numpy as np
import pytest
import talib
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from talib import abstract

from signals.indicators import MIN_WINDOW, WARMUP, IndicatorWindow, Reading, Values, to_float
from tests.signals.walks import T0, bar, from_cents, random_walk

NAMES = [f.name for f in dataclasses.fields(Values)]


def batch(bars: list) -> dict[str, np.ndarray]:
    """TA-Lib's batch functions on ``bars`` (called here directly, independently of the module)."""
    h, lo, c = (np.array([to_float(getattr(b, f)) for b in bars], dtype=np.float64) for f in ("high", "low", "close"))
    macd, signal, hist = talib.MACD(c, 12, 26, 9)
    upper, middle, lower = talib.BBANDS(c, 20, 2.0, 2.0, 0)
    cols = (
        c,
        talib.SMA(c, 20),
        talib.SMA(c, 50),
        talib.RSI(c, 14),
        macd,
        signal,
        hist,
        upper,
        middle,
        lower,
        talib.ATR(h, lo, c, 14),
    )
    return dict(zip(NAMES, cols, strict=True))


def assert_same_bits(got: Values, expected: list[float]) -> None:
    """Equal as IEEE doubles: NaN exactly where expected, every other value bit for bit."""
    g, e = np.array(dataclasses.astuple(got)), np.array(expected)
    assert (np.isnan(g) == np.isnan(e)).all(), (got, expected)
    assert g[~np.isnan(g)].tobytes() == e[~np.isnan(e)].tobytes(), (got, expected)


def check(reading: Reading, held: list, window: int) -> None:
    """``reading`` is TA-Lib's batch over the window of its candle in the series ``held`` (open-time order)."""
    p = [b.open_time for b in held].index(reading.open_time)
    win = held[max(0, p - window + 1) : p + 1]
    cols = batch(win)
    assert reading.candles == len(win)
    assert_same_bits(reading.now, [float(cols[n][-1]) for n in NAMES])
    assert_same_bits(reading.prev, [float(cols[n][-2]) if len(win) > 1 else math.nan for n in NAMES])


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[int, int, list, int, int, int]:
    """(window, keep, candles, rewrite step, rewritten index, hole index): a candle rewritten after a backfill,
    and a hole (a candle held back) filled later, both within ``keep`` candles of the newest."""
    window = draw(st.sampled_from([MIN_WINDOW, 64, 1000]))
    keep = draw(st.integers(0, 40))
    n = draw(st.integers(1, 300))  # past 2 × (window + keep) for window 51: trimmed
    moves = draw(st.lists(st.integers(-400, 400), min_size=n, max_size=n))
    wicks = draw(st.lists(st.tuples(st.integers(0, 150), st.integers(0, 150)), min_size=n, max_size=n))
    step = draw(st.integers(0, n - 1))
    rewritten = draw(st.integers(max(0, step - keep), step))
    hole = draw(st.integers(0, n - 1)) if keep >= 2 else -1
    return window, keep, from_cents(moves, wicks), step, rewritten, hole


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(-300, 300))
def test_fed_one_at_a_time_equals_talib_batch_at_every_step(scenario: tuple, shift: int) -> None:
    """Every reading returned by ``feed`` — the new candle's, and after a rewrite or a filled hole every later
    candle's too — equals TA-Lib's batch functions on that candle's window of the series held, bit for bit."""
    window, keep, bars, step, rewritten, hole = scenario
    w = IndicatorWindow("binance", "BTCUSDT", "1m", window=window, keep=keep)
    held: dict = {}
    fill_at = min(hole + keep - 1, len(bars) - 1) if hole >= 0 else -1

    def feed(b: object) -> None:
        held[b.open_time] = b
        series = [held[t] for t in sorted(held)]
        readings = w.feed(b)
        assert [r.open_time for r in readings] == [t for t in sorted(held) if t >= b.open_time]
        for r in readings:
            check(r, series, window)
        check(w.latest(), series, window)

    for k, b in enumerate(bars):
        if k != hole:
            feed(b)
        if k == fill_at:
            feed(bars[hole])
        if k == step:
            old = held.get(bars[rewritten].open_time, bars[rewritten])
            delta = shift * Decimal("0.01")
            feed(dataclasses.replace(old, close=old.close + delta, high=max(old.high, old.close + delta)))
    event(f"trimmed: {w._dropped > 0}")


def test_warmup_is_talib_lookback_plus_one() -> None:
    """WARMUP is TA-Lib's own lookback + 1 for each indicator's parameters."""
    lookbacks = {
        "sma20": abstract.Function("SMA", timeperiod=20).lookback,
        "sma50": abstract.Function("SMA", timeperiod=50).lookback,
        "rsi14": abstract.Function("RSI", timeperiod=14).lookback,
        "macd": abstract.Function("MACD", fastperiod=12, slowperiod=26, signalperiod=9).lookback,
        "bollinger": abstract.Function("BBANDS", timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0).lookback,
        "atr14": abstract.Function("ATR", timeperiod=14).lookback,
    }
    assert {k: v + 1 for k, v in lookbacks.items()} == WARMUP
    assert MIN_WINDOW == 51


FIELDS = {
    "sma20": ["sma20"],
    "sma50": ["sma50"],
    "rsi14": ["rsi14"],
    "macd": ["macd", "macd_signal", "macd_hist"],
    "bollinger": ["bb_upper", "bb_middle", "bb_lower"],
    "atr14": ["atr14"],
}


@pytest.mark.parametrize("name", sorted(WARMUP))
def test_ready_flips_when_the_indicator_is_defined(name: str) -> None:
    """An indicator is NaN and not ready until WARMUP[name] candles, then defined and ready."""
    w = IndicatorWindow("binance", "BTCUSDT", "1m")
    for k, b in enumerate(random_walk(60, seed=7), start=1):
        (r,) = w.feed(b)
        defined = [not math.isnan(getattr(r.now, f)) for f in FIELDS[name]]
        assert r.ready[name] is (k >= WARMUP[name])
        assert defined == [k >= WARMUP[name]] * len(defined), (k, r.now)


def test_windowed_values_match_unbounded_history_to_rounding() -> None:
    """With the default 1,000-candle window, values differ from TA-Lib over 4,000 candles of history only by
    rounding: RSI, MACD and ATR (seed forgotten) within 1e-9, SMA and Bollinger (running sums) within 1e-13 of
    the price (measured: identical, and ≤ 1e-9 at 64,000)."""
    bars = random_walk(4000, seed=3)
    full = batch(bars)
    w = IndicatorWindow("binance", "BTCUSDT", "1m", keep=4000)
    w.warm(bars)
    for i, r in enumerate(w.readings_from(bars[1000].open_time), start=1000):
        for n in NAMES:
            tol = 1e-9 if n == "rsi14" else 1e-13 * r.now.close
            assert abs(getattr(r.now, n) - full[n][i]) <= tol, (n, i)


def test_rewrite_beyond_the_held_history_is_refused() -> None:
    """A candle whose window is no longer held cannot be recomputed: ValueError says to warm up again."""
    bars = random_walk(400, seed=1)
    w = IndicatorWindow("binance", "BTCUSDT", "1m", window=MIN_WINDOW, keep=10)
    w.warm(bars)
    assert len(w) < 400
    w.feed(dataclasses.replace(bars[-11], close=bars[-11].close + 1))  # within keep: fine
    with pytest.raises(ValueError, match="warm up again"):
        w.feed(dataclasses.replace(bars[-len(w)], close=bars[-len(w)].close + 1))


@pytest.mark.parametrize(
    "change", [{"symbol": "ETHUSDT"}, {"interval": "5m"}, {"exchange": "kraken"}, {"closed": False}]
)
def test_only_closed_candles_of_its_own_key_are_taken(change: dict) -> None:
    """A candle of another exchange, symbol or interval, or one still open, is refused."""
    w = IndicatorWindow("binance", "BTCUSDT", "1m")
    with pytest.raises(ValueError, match="expected a closed candle"):
        w.feed(dataclasses.replace(bar(0, *[Decimal(100)] * 4), **change))


def test_prices_become_the_nearest_double() -> None:
    """to_float rounds a Decimal price to the nearest float64."""
    assert to_float(Decimal("64010.23")) == 64010.23
    assert to_float(Decimal("0.1")) == 0.1
    halfway = Decimal("1.00000000000000011102230246251565404236316680908203125")  # 1 + 2**-53: ties to even
    assert to_float(halfway) == 1.0
    assert to_float(halfway + Decimal("1e-40")) == 1.0000000000000002


def test_window_below_the_strategy_minimum_is_refused() -> None:
    """A window too short for SMA50 and one previous value is a configuration error."""
    with pytest.raises(ValueError, match="at least 51"):
        IndicatorWindow("binance", "BTCUSDT", "1m", window=50)
    assert IndicatorWindow("binance", "BTCUSDT", "1m").latest() is None
    assert T0.tzinfo is not None
