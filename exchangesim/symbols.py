"""Instrument specifications: how a symbol's prices and quantities are scaled to integers.

Every price in the simulator is an integer number of ticks (``price = ticks / 10**price_dp``) and
every quantity an integer number of lot steps (``qty = steps / 10**qty_dp``), so sums, volumes and
filters are exact; strings are produced only at the wire.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from decimal import Decimal

# Rough USD prices of common assets, so synthetic markets start somewhere believable.
USD_PRICES: dict[str, float] = {
    "BTC": 60000.0,
    "ETH": 3000.0,
    "BNB": 550.0,
    "SOL": 150.0,
    "LTC": 70.0,
    "LINK": 12.0,
    "DOT": 5.0,
    "XRP": 0.6,
    "ADA": 0.45,
    "DOGE": 0.12,
    "TRX": 0.12,
    "AVAX": 30.0,
    "USDT": 1.0,
    "USDC": 1.0,
    "FDUSD": 1.0,
    "BUSD": 1.0,
    "USD": 1.0,
    "EUR": 1.08,
    "TRY": 0.03,
}
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "USD")


class UnknownSymbolError(ValueError):
    """A symbol name the simulator cannot split into base and quote assets."""


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """One tradable symbol: assets, integer scales and the ids its history starts from."""

    symbol: str
    base: str
    quote: str
    price_dp: int
    qty_dp: int
    start_price: float
    trade_id_base: int
    agg_id_base: int

    @property
    def tick_size(self) -> Decimal:
        return Decimal(1).scaleb(-self.price_dp)

    @property
    def step_size(self) -> Decimal:
        return Decimal(1).scaleb(-self.qty_dp)

    @property
    def price_scale(self) -> int:
        return 10**self.price_dp

    @property
    def qty_scale(self) -> int:
        return 10**self.qty_dp


def split_symbol(symbol: str) -> tuple[str, str]:
    """``"BTCUSDT"`` -> ``("BTC", "USDT")``; the longest known quote asset wins."""
    symbol = symbol.upper()
    for quote in sorted(QUOTES, key=len, reverse=True):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise UnknownSymbolError(f"cannot tell base and quote assets apart in symbol {symbol!r}")


def id_bases(symbol: str) -> tuple[int, int]:
    """Deterministic first trade id and first aggregate-trade id for a symbol.

    Some symbols start below 2**31 and some above, as on Binance, so storage is exercised with both.
    """
    h = zlib.crc32(symbol.encode())
    trade_base = 1_000_000_000 * (1 + h % 3) + (h // 3 % 1000) * 100_000
    return trade_base, trade_base // 2


def synthetic_spec(symbol: str) -> SymbolSpec:
    """A believable spec for a synthetic symbol: start price from USD_PRICES, Binance-like scales."""
    base, quote = split_symbol(symbol)
    base_usd = USD_PRICES.get(base, 10.0)
    quote_usd = USD_PRICES.get(quote, 1.0)
    price = base_usd / quote_usd
    price_dp = min(8, max(2, 4 - math.floor(math.log10(price))))
    qty_dp = min(8, max(0, math.floor(math.log10(base_usd)) + 1))
    trade_base, agg_base = id_bases(symbol.upper())
    return SymbolSpec(symbol.upper(), base, quote, price_dp, qty_dp, price, trade_base, agg_base)
