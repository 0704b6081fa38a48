"""The exchanges this project knows, and their REST adapters built from settings (base URLs, keys).

The one place that maps an exchange name to its adapter; adapters themselves never read settings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.conf import settings

from .exchanges.base import RestAdapter, StreamAdapter
from .exchanges.retry import RetryPolicy

KNOWN_EXCHANGES = ("binance", "coinbase", "kraken")


def rest_adapter(
    exchange: str, *, on_wait: Callable[[float, str], None] | None = None, policy: RetryPolicy | None = None
) -> RestAdapter:
    """A REST adapter for ``exchange`` pointed at the configured base URL (``policy``: its retries, the
    default when None); ValueError if unknown. The caller closes it."""
    if exchange == "binance":
        from .exchanges.binance import BinanceRest

        return BinanceRest(
            settings.BINANCE_REST_URL,
            api_key=settings.BINANCE_API_KEY,
            api_secret=settings.BINANCE_API_SECRET,
            on_wait=on_wait,
            policy=policy,
        )
    if exchange == "coinbase":
        from .exchanges.coinbase.rest import CoinbaseRest

        return CoinbaseRest(settings.COINBASE_REST_URL, on_wait=on_wait, policy=policy)
    if exchange == "kraken":
        from .exchanges.kraken.rest import KrakenRest

        return KrakenRest(settings.KRAKEN_REST_URL, on_wait=on_wait, policy=policy)
    raise ValueError(f"unknown exchange {exchange!r}; known: {', '.join(KNOWN_EXCHANGES)}")


def stream_adapter(exchange: str, symbols: Sequence[str], *, kind: str = "aggTrade") -> StreamAdapter:
    """The live-feed adapter of ``exchange`` for ``symbols`` on the configured WebSocket URL (``kind``: the
    Binance stream); ValueError if the exchange is unknown or the arguments do not suit it."""
    if exchange == "binance":
        from .exchanges.binance.stream import BinanceStream

        return BinanceStream(settings.BINANCE_WS_URL, tuple(symbols), kind)
    if kind != "aggTrade":
        raise ValueError(f"--stream {kind} is Binance's; {exchange} has one trade stream")
    if exchange == "coinbase":
        from .exchanges.coinbase.stream import CoinbaseStream

        return CoinbaseStream(settings.COINBASE_WS_URL, tuple(symbols))
    if exchange == "kraken":
        from .exchanges.kraken.stream import KrakenStream

        return KrakenStream(settings.KRAKEN_WS_URL, tuple(symbols))
    raise ValueError(f"unknown exchange {exchange!r}; known: {', '.join(KNOWN_EXCHANGES)}")


# Seeded by `make run` (manage.py seed_instruments): (symbol, base, quote) per exchange.
DEFAULT_INSTRUMENTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "binance": (
        ("BTCUSDT", "BTC", "USDT"),
        ("ETHUSDT", "ETH", "USDT"),
        ("BNBUSDT", "BNB", "USDT"),
        ("SOLUSDT", "SOL", "USDT"),
    ),
    "coinbase": (("BTC-USD", "BTC", "USD"), ("ETH-USD", "ETH", "USD")),
    "kraken": (("XBTUSD", "BTC", "USD"), ("ETHUSD", "ETH", "USD")),
}


def rest_url(exchange: str) -> str:
    """The configured REST base URL of ``exchange`` (for messages: where it was asked)."""
    return {
        "binance": settings.BINANCE_REST_URL,
        "coinbase": settings.COINBASE_REST_URL,
        "kraken": settings.KRAKEN_REST_URL,
    }[exchange]
