"""Stored candles and instruments for the signal tests that use MongoDB."""

from __future__ import annotations

from decimal import Decimal

from markets.exchanges.base import CandleBar
from markets.models import Instrument
from markets.services import candles_upsert


def store_instrument(symbol: str = "BTCUSDT") -> Instrument:
    """A Binance instrument, so that stored-only history reads accept the symbol."""
    return Instrument.objects.create(
        exchange="binance",
        symbol=symbol,
        canonical=f"{symbol[:3]}-{symbol[3:]}",
        base=symbol[:3],
        quote=symbol[3:],
        tick_size=Decimal("0.01"),
    )


def store_candles(bars: list[CandleBar]) -> None:
    candles_upsert(candles=bars)
