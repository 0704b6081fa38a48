"""Binance's symbol filters: what exchangeInfo publishes (PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE, NOTIONAL) and
the -1013 failures an order that breaks them gets."""

from __future__ import annotations

from decimal import Decimal

from ..symbols import USD_PRICES, SymbolSpec
from .errors import BinanceError
from .wire import fmt

MAX_PRICE_FACTOR = 1000
MAX_QTY = Decimal(9000)


def min_notional(spec: SymbolSpec) -> Decimal:
    """Five dollars' worth of the quote asset, Binance's usual NOTIONAL minimum."""
    usd = USD_PRICES.get(spec.quote, 1.0)
    return Decimal(str(round(5 / usd, 8))).normalize()


def symbol_filters(spec: SymbolSpec) -> list[dict[str, object]]:
    """PRICE_FILTER, LOT_SIZE, NOTIONAL (and MARKET_LOT_SIZE) for exchangeInfo and order checks."""
    max_price = max(1, int(spec.start_price * MAX_PRICE_FACTOR)) * spec.price_scale
    return [
        {
            "filterType": "PRICE_FILTER",
            "minPrice": fmt(1, spec.price_dp),
            "maxPrice": fmt(max_price, spec.price_dp),
            "tickSize": fmt(1, spec.price_dp),
        },
        {
            "filterType": "LOT_SIZE",
            "minQty": fmt(1, spec.qty_dp),
            "maxQty": fmt(int(MAX_QTY) * spec.qty_scale, spec.qty_dp),
            "stepSize": fmt(1, spec.qty_dp),
        },
        {
            "filterType": "MARKET_LOT_SIZE",
            "minQty": "0.00000000",
            "maxQty": fmt(int(MAX_QTY) * spec.qty_scale, spec.qty_dp),
            "stepSize": "0.00000000",
        },
        {
            "filterType": "NOTIONAL",
            "minNotional": fmt(int(min_notional(spec).scaleb(8)), 8),
            "applyMinToMarket": True,
            "maxNotional": "9000000.00000000",
            "applyMaxToMarket": False,
            "avgPriceMins": 5,
        },
    ]


def check_filters(spec: SymbolSpec, price: Decimal | None, qty: Decimal, market_price: Decimal) -> None:
    """Binance's -1013 filter failures, in its order: price, lot size, notional."""
    tick, step = spec.tick_size, spec.step_size
    if price is not None and (
        price < tick or price > Decimal(int(spec.start_price * MAX_PRICE_FACTOR) or 1) or price % tick != 0
    ):
        raise BinanceError(-1013, "Filter failure: PRICE_FILTER")
    if qty < step or qty > MAX_QTY or qty % step != 0:
        raise BinanceError(-1013, "Filter failure: LOT_SIZE")
    if (price if price is not None else market_price) * qty < min_notional(spec):
        raise BinanceError(-1013, "Filter failure: NOTIONAL")
