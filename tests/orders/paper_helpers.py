"""Shared set-up of the paper trading tests: a stored instrument with Binance's filters, and signals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from markets.models import Instrument
from orders.services import SignalRef

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
FILTERS = [
    {"filterType": "PRICE_FILTER", "minPrice": "0.01", "maxPrice": "1000000.00", "tickSize": "0.01"},
    {"filterType": "LOT_SIZE", "minQty": "0.00001", "maxQty": "9000.00000", "stepSize": "0.00001"},
    {"filterType": "NOTIONAL", "minNotional": "5.00000000"},
]


def store_instrument(exchange: str = "binance", symbol: str = "BTCUSDT") -> Instrument:
    base = symbol.removesuffix("USDT")
    inst, _ = Instrument.objects.update_or_create(
        exchange=exchange,
        symbol=symbol,
        defaults={
            "canonical": f"{base}-USDT",
            "base": base,
            "quote": "USDT",
            "tick_size": Decimal("0.01"),
            "step_size": Decimal("0.00001"),
            "min_notional": Decimal(5),
            "filters": FILTERS,
        },
    )
    return inst


def signal(action: str, minute: int = 0, symbol: str = "BTCUSDT", exchange: str = "binance") -> SignalRef:
    return SignalRef("ta-vote", exchange, symbol, "1m", T0.replace(minute=minute), action)
