"""The exchanges this project knows, with their adapters built from settings (base URLs, keys).

A thin facade over :mod:`markets.exchanges.registry`, which declares every exchange as one row of data: this
module reads the settings a row names and hands them to the row's factories. Adapters never read settings.

Importing it shares the exchanges' waits (a 429/418's Retry-After, a ban) between the processes of the host: the
limiters of :mod:`markets.exchanges.limiter` keep them in Redis (:mod:`markets.venue_limits`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.conf import settings

from .exchanges import limiter
from .exchanges.base import RestAdapter, StreamAdapter
from .exchanges.registry import NAMES, VENUES, venue
from .exchanges.retry import RetryPolicy
from .venue_limits import redis_waits

limiter.share_through(redis_waits)  # made on the first request, so importing this module connects to nothing

KNOWN_EXCHANGES = NAMES

# Seeded by `make run` (manage.py seed_instruments): (symbol, base, quote) per exchange.
DEFAULT_INSTRUMENTS: dict[str, tuple[tuple[str, str, str], ...]] = {
    name: v.default_instruments for name, v in VENUES.items()
}


def rest_adapter(
    exchange: str, *, on_wait: Callable[[float, str], None] | None = None, policy: RetryPolicy | None = None
) -> RestAdapter:
    """A REST adapter for ``exchange`` pointed at the configured base URL (``policy``: its retries, the
    default when None); ValueError if unknown. The caller closes it."""
    return venue(exchange).rest(rest_url(exchange), on_wait=on_wait, policy=policy, **credentials(exchange))


def stream_adapter(exchange: str, symbols: Sequence[str], *, kind: str = "aggTrade") -> StreamAdapter:
    """The live-feed adapter of ``exchange`` for ``symbols`` on the configured WebSocket URL (``kind``: the
    Binance stream); ValueError if the exchange is unknown or the arguments do not suit it."""
    v = venue(exchange)
    return v.stream(getattr(settings, v.ws_url_setting), tuple(symbols), kind)


def rest_url(exchange: str) -> str:
    """The configured REST base URL of ``exchange`` (for messages: where it was asked)."""
    url: str = getattr(settings, venue(exchange).rest_url_setting)
    return url


def credentials(exchange: str) -> dict[str, str]:
    """The configured keys ``exchange`` signs requests with, by its adapter's keyword (none for most venues)."""
    return {arg: getattr(settings, name) for arg, name in venue(exchange).credential_settings.items()}


def signed_orders_ready(exchange: str) -> bool:
    """Whether ``exchange`` takes signed orders through our Binance executor and all its keys are set (else its
    trading is paper). False for an exchange this project does not know."""
    v = VENUES.get(exchange)
    return v is not None and v.signed_orders and all(credentials(exchange).values())
