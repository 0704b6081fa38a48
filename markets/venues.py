"""The exchanges this project knows, and their REST adapters built from settings (base URLs, keys).

The one place that maps an exchange name to its adapter; adapters themselves never read settings.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings

from .exchanges.base import RestAdapter
from .exchanges.retry import RetryPolicy

KNOWN_EXCHANGES = ("binance",)


def rest_adapter(exchange: str, *, on_wait: Callable[[float, str], None] | None = None,
                 policy: RetryPolicy | None = None) -> RestAdapter:
    """A REST adapter for ``exchange`` pointed at the configured base URL (``policy``: its retries, the
    default when None); ValueError if unknown. The caller closes it."""
    if exchange == "binance":
        from .exchanges.binance import BinanceRest

        return BinanceRest(settings.BINANCE_REST_URL, api_key=settings.BINANCE_API_KEY,
                           api_secret=settings.BINANCE_API_SECRET, on_wait=on_wait, policy=policy)
    raise ValueError(f"unknown exchange {exchange!r}; known: {', '.join(KNOWN_EXCHANGES)}")

# Seeded by `make run` (manage.py seed_instruments): (symbol, base, quote) per exchange.
DEFAULT_INSTRUMENTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "binance": (("BTCUSDT", "BTC", "USDT"), ("ETHUSDT", "ETH", "USDT"), ("BNBUSDT", "BNB", "USDT"),
                ("SOLUSDT", "SOL", "USDT")),
}
