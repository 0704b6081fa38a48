"""KrakenVenue: Kraken Spot's public REST and WebSocket v2 over the shared market, under ``/kraken``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..config import SimConfig
from ..engine.market import Market, tape_key
from ..engine.served import ServedTape
from ..engine.tape import Tape
from ..faults import Faults
from ..symbols import SymbolSpec
from ..venues import served
from . import pairs, wire
from .rest import KrakenError, PublicRest
from .ws import StreamServer

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# What an injected REST fault answers in the envelope, by HTTP status.
FAULT_ERRORS = {400: "EGeneral:Invalid arguments", 403: "EGeneral:Permission denied", 404: "EGeneral:Unknown method",
                429: "EAPI:Rate limit exceeded", 500: "EGeneral:Internal error", 502: "EService:Unavailable",
                503: "EService:Unavailable", 504: "EService:Busy"}
RATE_LIMITED = "EAPI:Rate limit exceeded"


class CallCounter:
    """Kraken's public limit, kept simple: a counter per client address that each request raises by one and
    that decays by ``decay`` a second; a request that would take it above ``limit`` is refused (and does
    not count). With the defaults a client may burst 15 requests, then about one a second."""

    def __init__(self, limit: int, decay: float) -> None:
        self.limit, self.decay = limit, decay
        self.clients: dict[str, tuple[float, float]] = {}  # address -> (counter, at)

    def take(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        counter, at = self.clients.get(client, (0.0, now))
        counter = max(0.0, counter - (now - at) * self.decay)
        ok = counter + 1 <= self.limit
        self.clients[client] = (counter + 1 if ok else counter, now)
        return ok

    def level(self, client: str, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        counter, at = self.clients.get(client, (0.0, now))
        return round(max(0.0, counter - (now - at) * self.decay), 3)

    def reset(self) -> None:
        self.clients.clear()


class KrakenVenue:
    """One Kraken lookalike: Time, Assets, AssetPairs, Trades, OHLC, and the v2 trade/ohlc channels."""

    name = "kraken"
    prefix = "/kraken"
    ws_path = "/v2"
    default_symbols = ("XBT/USD", "ETH/USD")
    rate_factor = 0.3  # Kraken prints fewer trades than Binance
    truth_kinds = ("trades",)
    LIMIT, DECAY = 15, 1.0

    @classmethod
    def spec(cls, symbol: str) -> SymbolSpec:
        """A pair in any spelling (``XBT/USD``, ``BTC/USD``, ``XBTUSD``, ``XXBTZUSD``); its symbol is ``XBT/USD``."""
        return pairs.pair_spec(symbol)

    def __init__(self, market: Market, config: SimConfig, faults: Faults) -> None:
        self.market = market
        self.config = config
        self.faults = faults
        self.clock_offset_ms = 0
        self.requests: Counter[str] = Counter()
        self.limiter = CallCounter(self.LIMIT, self.DECAY)
        self.names = {s: pairs.names(spec) for s, spec in self.specs.items()}
        self._lookup = {n.upper(): s for s, ns in self.names.items() for n in (ns.key, ns.altname, ns.wsname, ns.v2)}
        self.by_v2 = {ns.v2: s for s, ns in self.names.items()}
        self.public = PublicRest(self)
        self.streams = StreamServer(self)

    @property
    def specs(self) -> dict[str, SymbolSpec]:
        return self.market.specs_of(self.name)

    def pair(self, name: str) -> SymbolSpec | None:
        """The spec of a listed pair named any of its four ways (case-insensitive), or None."""
        symbol = self._lookup.get(name.strip().upper())
        return None if symbol is None else self.specs[symbol]

    def key(self, symbol: str) -> str:
        return tape_key(self.name, symbol)

    def tape(self, symbol: str) -> Tape:
        return self.market.tapes[self.key(symbol)]

    def served(self, symbol: str) -> ServedTape:
        return served(self.market, self.faults, self.name, symbol)

    def routes(self) -> list[web.RouteDef]:
        return [*self.public.routes(), *self.streams.routes()]

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        """Faults, the call counter and Kraken's error envelope for every REST request under the prefix."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path
            if not path.startswith(self.prefix + "/") or path == f"{self.prefix}{self.ws_path}":
                return await handler(request)
            self.requests[path] += 1
            try:
                return await self._answer(request, handler)
            except KrakenError as err:
                return err.response()
            except web.HTTPException:
                raise
            except Exception:  # never a traceback on the wire
                log.exception("internal error on %s %s", request.method, request.path_qs)
                return KrakenError("EGeneral:Internal error", 500, result=False).response()

        return middleware

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self.faults.take_rest(self.name, request.path[len(self.prefix):], request.path)
        if fault and fault.status:
            if fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            raise KrakenError(FAULT_ERRORS.get(fault.status, "EGeneral:Internal error"), fault.status, result=False,
                              headers=headers)
        if not self.limiter.take(request.remote or "?"):
            self.faults.count("kraken_rate_limited")
            raise KrakenError(RATE_LIMITED, result=False)
        if request.match_info.http_exception is not None:
            raise KrakenError("EGeneral:Unknown method", request.match_info.http_exception.status, result=False)
        response = await handler(request)
        if fault and fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        return response

    # -- control API -----------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        subs: dict[str, set[str]] = {}
        for conn in self.streams.conns:
            for channel, symbols in conn.subs.items():
                subs.setdefault(channel, set()).update(str(s) for s in symbols)
        return {"requests": dict(self.requests), "open_sockets": len(self.streams.conns),
                "call_counter": {c: self.limiter.level(c) for c in self.limiter.clients},
                "call_limit": self.limiter.limit,
                "subscriptions": {c: sorted(ss) for c, ss in sorted(subs.items())}}

    def reset(self) -> None:
        self.limiter.reset()

    def configure(self, *, weight_limit: int | None = None, clock_offset_ms: int | None = None,
                  **other: Any) -> dict[str, object]:
        """``weight_limit`` sets the call counter's maximum (15: see ``CallCounter``); ``clock_offset_ms``
        moves ``Time``."""
        if other:
            raise ValueError(f"venue 'kraken' has no setting {next(iter(other))!r}")
        if weight_limit is not None:
            self.limiter.limit = weight_limit
        if clock_offset_ms is not None:
            self.clock_offset_ms = clock_offset_ms
        return {"weight_limit": self.limiter.limit, "clock_offset_ms": self.clock_offset_ms}

    def open_sockets(self) -> int:
        return len(self.streams.conns)

    async def drop_sockets(self, mode: str) -> int:
        return await self.streams.drop(mode)

    async def close(self) -> None:
        for conn in list(self.streams.conns):
            await conn.ws.close(code=1001, message=b"Simulator stopping")

    def truth_rows(self, spec: SymbolSpec, kind: str, rows: Any) -> list[dict[str, object]]:
        """``wire.truth_trades``: the REST trade fields by name, oldest first, with the ns time, ms and taker side."""
        return wire.truth_trades(spec, self.tape(spec.symbol), rows)
