"""CoinbaseVenue: Coinbase Exchange's public REST and feed over the shared market, under ``/coinbase``."""

from __future__ import annotations

import math
import time
from typing import Any

from aiohttp import web

from ..config import SimConfig
from ..engine.market import Market, tape_key
from ..faults import Faults
from ..streams import subscriptions
from ..symbols import USD_PRICES, SymbolSpec, UnknownSymbolError, id_bases
from ..venues import VenueBase
from . import wire
from .rest import CoinbaseError, PublicRest, json_response
from .ws import FeedServer

FAULT_MESSAGES = {
    429: "Public rate limit exceeded",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class TokenBucket:
    """Coinbase's public limit: ``rate`` requests a second per client address, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.clients: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def take(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, at = self.clients.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        ok = tokens >= 1
        self.clients[client] = (tokens - 1 if ok else tokens, now)
        return ok

    def reset(self) -> None:
        self.clients.clear()


class CoinbaseVenue(VenueBase):
    """One Coinbase Exchange lookalike: products, time, trades, candles, and the matches/heartbeat feed."""

    name = "coinbase"
    prefix = "/coinbase"
    ws_path = "/ws"
    default_symbols = ("BTC-USD", "ETH-USD")
    rate_factor = 0.5  # Coinbase prints fewer trades than Binance
    truth_kinds = ("trades",)
    symbol_format = "{base}-{quote}"
    universe_quotes = (("USD", 0.8), ("USDT", 0.1), ("EUR", 0.1))  # of --universe symbols, with their shares
    settings = ("clock_offset_ms",)
    rest_error = CoinbaseError
    RATE, BURST = 10.0, 15

    @classmethod
    def spec(cls, symbol: str) -> SymbolSpec:
        """``BTC-USD``: quote increment 0.01 (finer below $10), base increment 1e-8."""
        base, sep, quote = symbol.upper().partition("-")
        if not sep or not base or not quote or "-" in quote:
            raise UnknownSymbolError(f"a Coinbase product id is BASE-QUOTE, got {symbol!r}")
        price = USD_PRICES.get(base, 10.0) / USD_PRICES.get(quote, 1.0)
        price_dp = 2 if price >= 10 else min(8, 3 - math.floor(math.log10(price)))
        trade_base, agg_base = id_bases(tape_key(cls.name, f"{base}-{quote}"))
        return SymbolSpec(f"{base}-{quote}", base, quote, price_dp, 8, price, trade_base // 2, agg_base)

    def __init__(self, market: Market, config: SimConfig, faults: Faults) -> None:
        super().__init__(market, config, faults)
        self.limiter = TokenBucket(self.RATE, self.BURST)
        self.public = PublicRest(self)
        self.streams = FeedServer(self)

    def routes(self) -> list[web.RouteDef]:
        return [*self.public.routes(), *self.streams.routes()]

    # -- REST errors in Coinbase's shape ---------------------------------------------------------
    def fault_error(self, status: int, headers: dict[str, str]) -> CoinbaseError:
        return CoinbaseError(FAULT_MESSAGES.get(status, "Internal server error"), status, headers)

    def rate_limited(self) -> CoinbaseError:
        self.faults.count("coinbase_429")
        return CoinbaseError("Public rate limit exceeded", 429)

    def route_error(self, exc: web.HTTPException) -> CoinbaseError:
        return CoinbaseError("NotFound" if exc.status == 404 else exc.reason, exc.status)

    def internal_error(self) -> CoinbaseError:
        return CoinbaseError("Internal server error", 500)

    def error_response(self, err: CoinbaseError) -> web.StreamResponse:
        return json_response({"message": err.message}, status=err.status, headers=err.headers)

    # -- control API -----------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        return {
            "requests": dict(self.requests),
            "open_sockets": len(self.streams.conns),
            "connections_opened": self.streams.opened,
            "subscriptions": subscriptions(self.streams.conns),
        }

    def settings_hint(self) -> str:
        return f" (its public rate limit is a {self.RATE:g}/s token bucket, burst {self.BURST})"

    def truth_rows(self, spec: SymbolSpec, kind: str, rows: Any) -> list[dict[str, object]]:
        """The REST trade rows oldest first, each with ``taker_side`` and ``time_ms`` added."""
        return wire.truth_trades(spec, rows)
