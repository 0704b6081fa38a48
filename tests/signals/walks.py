"""Candles for the signal tests: one built from given prices, and a seeded random walk."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from markets.exchanges.base import CandleBar

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
CENT = Decimal("0.01")


def bar(i: int, open_: Decimal, high: Decimal, low: Decimal, close: Decimal, *, symbol: str = "BTCUSDT") -> CandleBar:
    """The closed 1m candle number ``i`` (open time T0 + i minutes) of binance ``symbol``."""
    t = T0 + i * MINUTE
    return CandleBar(
        "binance",
        symbol,
        "1m",
        t,
        t + MINUTE - timedelta(milliseconds=1),
        open_,
        high,
        low,
        close,
        Decimal(1),
        close,
        1,
        Decimal(0),
        Decimal(0),
        "trades",
    )


def from_cents(
    moves: Sequence[int], wicks: Sequence[tuple[int, int]], start: Decimal = Decimal("1000.00"), *, first: int = 0
) -> list[CandleBar]:
    """Candles whose closes move by ``moves`` cents from ``start``, with (upper, lower) wicks in cents."""
    out, price = [], start
    for k, (move, (up, down)) in enumerate(zip(moves, wicks, strict=True)):
        close = price + move * CENT
        out.append(bar(first + k, price, max(price, close) + up * CENT, min(price, close) - down * CENT, close))
        price = close
    return out


def random_walk(
    n: int,
    seed: int,
    *,
    start: Decimal = Decimal("64000.00"),
    vol: float = 0.001,
    symbol: str = "BTCUSDT",
    first: int = 0,
) -> list[CandleBar]:
    """``n`` 1m candles of a seeded geometric random walk (``vol`` per candle), prices in cents; the first is
    candle number ``first``."""
    rng, price, out = random.Random(seed), start, []
    for i in range(n):
        close = (price * (1 + Decimal(rng.gauss(0, vol)))).quantize(CENT)
        high = max(price, close) + Decimal(abs(rng.gauss(0, float(start) * vol / 3))).quantize(CENT)
        low = min(price, close) - Decimal(abs(rng.gauss(0, float(start) * vol / 3))).quantize(CENT)
        out.append(bar(first + i, price, high, low, close, symbol=symbol))
        price = close
    return out
