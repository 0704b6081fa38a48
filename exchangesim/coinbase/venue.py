"""CoinbaseVenue: Coinbase Exchange's public REST and feed over the shared market, under ``/coinbase``."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..config import SimConfig
from ..engine.market import Market, tape_key
from ..engine.served import ServedTape
from ..faults import Faults
from ..symbols import USD_PRICES, SymbolSpec, UnknownSymbolError, id_bases
from ..venues import served
from . import wire
from .rest import CoinbaseError, PublicRest, json_response
from .ws import FeedServer

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FAULT_MESSAGES = {429: "Public rate limit exceeded", 500: "Internal server error", 502: "Bad Gateway",
                  503: "Service Unavailable", 504: "Gateway Timeout"}


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


class CoinbaseVenue:
    """One Coinbase Exchange lookalike: products, time, trades, candles, and the matches/heartbeat feed."""

    name = "coinbase"
    prefix = "/coinbase"
    default_symbols = ("BTC-USD", "ETH-USD")
    rate_factor = 0.5  # Coinbase prints fewer trades than Binance
    truth_kinds = ("trades",)
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
        self.market = market
        self.config = config
        self.faults = faults
        self.clock_offset_ms = 0
        self.requests: Counter[str] = Counter()
        self.limiter = TokenBucket(self.RATE, self.BURST)
        self.public = PublicRest(self)
        self.streams = FeedServer(self)

    @property
    def specs(self) -> dict[str, SymbolSpec]:
        return self.market.specs_of(self.name)

    def key(self, product: str) -> str:
        return tape_key(self.name, product)

    def served(self, product: str) -> ServedTape:
        return served(self.market, self.faults, self.name, product)

    def routes(self) -> list[web.RouteDef]:
        return [*self.public.routes(), *self.streams.routes()]

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        """Faults, the rate limit and Coinbase's error shape for every REST request under the prefix."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path
            if not path.startswith(self.prefix + "/") or path == f"{self.prefix}/ws":
                return await handler(request)
            self.requests[path] += 1
            try:
                return await self._answer(request, handler)
            except CoinbaseError as err:
                return json_response({"message": err.message}, status=err.status, headers=err.headers)
            except web.HTTPException:
                raise
            except Exception:  # never a traceback on the wire
                log.exception("internal error on %s %s", request.method, request.path_qs)
                return json_response({"message": "Internal server error"}, status=500)

        return middleware

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self.faults.take_rest(self.name, request.path[len(self.prefix):], request.path)
        if fault and fault.status:
            if fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            raise CoinbaseError(FAULT_MESSAGES.get(fault.status, "Internal server error"), fault.status, headers)
        if not self.limiter.take(request.remote or "?"):
            self.faults.count("coinbase_429")
            raise CoinbaseError("Public rate limit exceeded", 429)
        if request.match_info.http_exception is not None:
            exc = request.match_info.http_exception
            raise CoinbaseError("NotFound" if exc.status == 404 else exc.reason, exc.status)
        response = await handler(request)
        if fault and fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        return response

    # -- control API -----------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        subs: dict[str, set[str]] = {}
        for conn in self.streams.conns:
            for channel, products in conn.subs.items():
                subs.setdefault(channel, set()).update(products)
        return {"requests": dict(self.requests), "open_sockets": len(self.streams.conns),
                "subscriptions": {c: sorted(ps) for c, ps in sorted(subs.items())}}

    def reset(self) -> None:
        self.limiter.reset()

    def configure(self, *, clock_offset_ms: int | None = None, **other: Any) -> dict[str, object]:
        if other:
            raise ValueError(f"venue 'coinbase' has no setting {next(iter(other))!r} (its public rate limit is "
                             f"a {self.RATE:g}/s token bucket, burst {self.BURST})")
        if clock_offset_ms is not None:
            self.clock_offset_ms = clock_offset_ms
        return {"clock_offset_ms": self.clock_offset_ms}

    def open_sockets(self) -> int:
        return len(self.streams.conns)

    async def drop_sockets(self, mode: str) -> int:
        return await self.streams.drop(mode)

    async def close(self) -> None:
        for conn in list(self.streams.conns):
            await conn.ws.close(code=1001, message=b"Simulator stopping")

    def truth_rows(self, spec: SymbolSpec, kind: str, rows: Any) -> list[dict[str, object]]:
        """The REST trade rows oldest first, each with ``taker_side`` and ``time_ms`` added."""
        return wire.truth_trades(spec, rows)
