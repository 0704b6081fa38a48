"""TA-Lib indicators on the closed candles of one (exchange, symbol, interval). Pure: no Django.

Indicators: SMA 20 and 50, RSI 14, MACD 12/26/9 (line, signal, histogram), Bollinger bands 20/2σ (simple
moving average, population σ) and ATR 14, all with TA-Lib's defaults (unstable period 0, classic
compatibility, i.e. ``talib.set_unstable_period``/``set_compatibility`` left untouched).

**What a value is, exactly.** The values of candle ``t`` are the last elements of TA-Lib's *batch*
functions (``talib.SMA``, ``RSI``, ``MACD``, ``BBANDS``, ``ATR``) applied to the *window* of ``t``: the
``window`` closed candles ending at ``t`` (default 1,000), or all candles since the series start when
there are fewer. Equality with those batch functions is exact — bit for bit, NaN where TA-Lib gives NaN —
because they are what is called, on the same float64 arrays: at every step, and for every candle
recomputed after a backfill rewrote or filled an earlier one.

Why a fixed-length window rather than the whole history or a carried state: TA-Lib's value at candle
``t`` depends on where its input starts. EMA-type indicators (RSI, MACD, ATR) are seeded from the first
candles, and even SMA and Bollinger are running sums whose rounding drifts with the history they went
through. A value computed "since the series start" would therefore depend on when the process started
(live since Monday, restarted today, a backtest from the 1st). Bounding the input to the last ``window``
candles makes every value a pure function of those candles, so a live process, a restarted one warmed up
from stored history and a backtest compute identical values (and decisions) for the same candle, as long
as each holds the ``window - 1`` candles before it (or the same series start when history is shorter).
Against TA-Lib over an unbounded history the difference is negligible: with 1,000 candles the seed's
weight in an EMA-type value is below (13/14)^985 ≈ 1e-32, and what is left is rounding in the last bits:
measured over 4,000 candles at 64,000, RSI, MACD and ATR came out identical and SMA and Bollinger within
1e-9, about 1e-14 of the price (``tests/signals/test_indicators.py`` holds them to 1e-13 of the price).
Cost: one batch pass over ≤ 1,000 floats per indicator per candle, about 30 µs for all six
(``bench/signals.py``); rewriting a candle ``k`` back costs ``k + 1`` such passes.

**Warm-up.** TA-Lib's lookback ``L`` means the value is NaN until the window holds ``L + 1`` candles:
:data:`WARMUP` says how many candles each indicator needs; :attr:`Reading.ready` says which are defined.

**Prices.** Candle prices are ``Decimal``; :func:`to_float` is the one place they become float64 (the
nearest double, as ``float(Decimal)`` rounds correctly). Values are floats from then on.

:class:`IndicatorWindow` holds the candles and answers :class:`Reading` objects: ``warm(bars)`` loads
stored history without computing, ``feed(bar)`` takes one closed candle — newer than the newest (the usual
case), equal to a held one (a backfill rewrote it: replaced) or between held ones (a missing candle filled:
inserted) — and returns the readings of that candle and of every later one, each recomputed over its own
window. Candles are taken in open-time order; a gap in open times is not filled (TA-Lib sees a sequence).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np
import talib

from markets.exchanges.base import CandleBar

DEFAULT_WINDOW = 1000  # candles each value is computed over (see the module docstring)
DEFAULT_KEEP = 1440  # candles held beyond the window, so a backfill can rewrite up to a day of 1m candles back

# Candles needed before each indicator is defined: TA-Lib's lookback + 1 (checked against talib.abstract in tests).
WARMUP: dict[str, int] = {"sma20": 20, "sma50": 50, "rsi14": 15, "macd": 34, "bollinger": 20, "atr14": 15}
MIN_WINDOW = max(WARMUP.values()) + 1  # every indicator defined on a candle and the one before it


def to_float(price: Decimal) -> float:
    """A candle price as float64: the nearest double (``float(Decimal)`` is correctly rounded)."""
    return float(price)


@dataclass(frozen=True, slots=True)
class Values:
    """The indicator values of one candle; NaN where the indicator is not defined yet."""

    close: float
    sma20: float
    sma50: float
    rsi14: float
    macd: float
    macd_signal: float
    macd_hist: float
    bb_upper: float
    bb_middle: float
    bb_lower: float
    atr14: float

    def as_dict(self) -> dict[str, float | None]:
        """The values by name, ``None`` for NaN (for storage and JSON, which have no NaN)."""
        return {k: None if math.isnan(v) else v for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class Reading:
    """The indicators of candle ``open_time`` (``now``) and of the candle before it (``prev``), both from the
    same batch computation over the window of ``open_time``, which held ``candles`` candles."""

    exchange: str
    symbol: str
    interval: str
    open_time: datetime
    candles: int
    now: Values
    prev: Values

    @property
    def ready(self) -> dict[str, bool]:
        """Per indicator (the keys of :data:`WARMUP`): whether it is defined on this candle."""
        return {name: self.candles >= need for name, need in WARMUP.items()}


def compute(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[Values, Values]:
    """The values of the last and the second-to-last candle of one window (contiguous float64 arrays)."""
    sma20 = talib.SMA(close, timeperiod=20)
    sma50 = talib.SMA(close, timeperiod=50)
    rsi = talib.RSI(close, timeperiod=14)
    macd, signal, hist = talib.MACD(close, fastperiod=12, slowperiod=26, signalperiod=9)
    upper, middle, lower = talib.BBANDS(close, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=0)
    atr = talib.ATR(high, low, close, timeperiod=14)
    columns = (close, sma20, sma50, rsi, macd, signal, hist, upper, middle, lower, atr)

    def at(i: int) -> Values:
        if len(close) < -i:
            return Values(*([math.nan] * len(columns)))
        return Values(*(float(col[i]) for col in columns))

    return at(-1), at(-2)


class IndicatorWindow:
    """The closed candles of one (exchange, symbol, interval) and their readings (see the module docstring).

    Holds between ``window + keep`` and twice that many candles once filled (trimmed in blocks, so each
    candle costs O(1) amortised). A candle can be rewritten or inserted as long as its own window is still
    held: always within ``keep`` candles of the newest; an older one raises ValueError (warm up again from
    storage instead).
    """

    def __init__(
        self, exchange: str, symbol: str, interval: str, *, window: int = DEFAULT_WINDOW, keep: int = DEFAULT_KEEP
    ) -> None:
        if window < MIN_WINDOW or keep < 0:
            raise ValueError(f"window must be at least {MIN_WINDOW} candles and keep at least 0")
        self.key = (exchange, symbol, interval)
        self.window = window
        self._hold = window + keep
        self._times: list[datetime] = []
        self._ohlc = np.empty((3, 2 * self._hold + 1))  # rows: high, low, close
        self._dropped = 0  # candles trimmed from the front since the series started

    def __len__(self) -> int:
        return len(self._times)

    @property
    def newest(self) -> datetime | None:
        """The open time of the newest candle held."""
        return self._times[-1] if self._times else None

    def warm(self, bars: Iterable[CandleBar]) -> None:
        """Load candles (stored history, any order) without computing readings."""
        for bar in bars:
            self._place(bar)

    def feed(self, bar: CandleBar) -> list[Reading]:
        """Take one closed candle; the readings of it and of every later candle held, oldest first."""
        return self.readings_from(self._times[self._place(bar)])

    def latest(self) -> Reading | None:
        """The reading of the newest candle, or None when nothing is held."""
        return self._reading(len(self._times) - 1) if self._times else None

    def readings_from(self, start: datetime) -> list[Reading]:
        """The readings of every held candle whose open time is ``start`` or later, oldest first."""
        first = bisect_left(self._times, start)
        if first < len(self._times):
            self._check_recomputable(first)
        return [self._reading(i) for i in range(first, len(self._times))]

    def _reading(self, i: int) -> Reading:
        lo = max(0, i - self.window + 1)
        high, low, close = (row[lo : i + 1] for row in self._ohlc)
        now, prev = compute(high, low, close)
        return Reading(*self.key, open_time=self._times[i], candles=i + 1 - lo, now=now, prev=prev)

    def _check_recomputable(self, i: int) -> None:
        if self._dropped and i - self.window + 1 < 0:
            raise ValueError(
                f"candle {self._times[i].isoformat()} of {self.key} is older than the history held "
                f"for its window ({self.window} candles): warm up again from storage"
            )

    def _place(self, bar: CandleBar) -> int:
        """Append, replace or insert ``bar`` by open time; its position."""
        if (bar.exchange, bar.symbol, bar.interval) != self.key or not bar.closed:
            raise ValueError(
                f"expected a closed candle of {self.key}, got {bar.exchange, bar.symbol, bar.interval} "
                f"closed={bar.closed}"
            )
        row = (to_float(bar.high), to_float(bar.low), to_float(bar.close))
        n, i = len(self._times), bisect_left(self._times, bar.open_time)
        if i < n and self._times[i] == bar.open_time:
            self._check_recomputable(i)
            self._ohlc[:, i] = row
            return i
        if i < n:
            self._check_recomputable(i)
            self._ohlc[:, i + 1 : n + 1] = self._ohlc[:, i:n].copy()
        self._ohlc[:, i] = row
        self._times.insert(i, bar.open_time)
        return i - self._trim()

    def _trim(self) -> int:
        """Drop the oldest candles down to ``window + keep`` once twice that many are held; how many."""
        n = len(self._times)
        if n <= 2 * self._hold:
            return 0
        cut = n - self._hold
        self._ohlc[:, : self._hold] = self._ohlc[:, cut:n].copy()
        del self._times[:cut]
        self._dropped += cut
        return cut
