"""KrakenVenue: Kraken Spot's public REST and WebSocket v2 over the shared market, under ``/kraken``."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ..config import SimConfig
from ..engine.market import Market
from ..engine.tape import Tape
from ..faults import Faults
from ..streams import subscriptions
from ..symbols import SymbolSpec
from ..venues import VenueBase
from . import pairs, wire
from .rest import KrakenError, PublicRest
from .ws import StreamServer

# What an injected REST fault answers in the envelope, by HTTP status.
FAULT_ERRORS = {
    400: "EGeneral:Invalid arguments",
    403: "EGeneral:Permission denied",
    404: "EGeneral:Unknown method",
    429: "EAPI:Rate limit exceeded",
    500: "EGeneral:Internal error",
    502: "EService:Unavailable",
    503: "EService:Unavailable",
    504: "EService:Busy",
}
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


class KrakenVenue(VenueBase):
    """One Kraken lookalike: Time, Assets, AssetPairs, Trades, OHLC, and the v2 trade/ohlc channels.

    Its settings: ``weight_limit`` sets the call counter's maximum (15: see ``CallCounter``); ``clock_offset_ms``
    moves ``Time``."""

    name = "kraken"
    prefix = "/kraken"
    ws_path = "/v2"
    default_symbols = ("XBT/USD", "ETH/USD")
    rate_factor = 0.3  # Kraken prints fewer trades than Binance
    truth_kinds = ("trades",)
    symbol_format = "{base}/{quote}"
    universe_quotes = (("USD", 0.7), ("EUR", 0.2), ("BTC", 0.1))  # of --universe symbols, with their shares
    rest_error = KrakenError
    LIMIT, DECAY = 15, 1.0

    @classmethod
    def spec(cls, symbol: str) -> SymbolSpec:
        """A pair in any spelling (``XBT/USD``, ``BTC/USD``, ``XBTUSD``, ``XXBTZUSD``); its symbol is ``XBT/USD``."""
        return pairs.pair_spec(symbol)

    def __init__(self, market: Market, config: SimConfig, faults: Faults) -> None:
        super().__init__(market, config, faults)
        self.limiter = CallCounter(self.LIMIT, self.DECAY)
        self.names = {s: pairs.names(spec) for s, spec in self.specs.items()}
        self._lookup = {n.upper(): s for s, ns in self.names.items() for n in (ns.key, ns.altname, ns.wsname, ns.v2)}
        self.by_v2 = {ns.v2: s for s, ns in self.names.items()}
        self.public = PublicRest(self)
        self.streams = StreamServer(self)

    def pair(self, name: str) -> SymbolSpec | None:
        """The spec of a listed pair named any of its four ways (case-insensitive), or None."""
        symbol = self._lookup.get(name.strip().upper())
        return None if symbol is None else self.specs[symbol]

    def tape(self, symbol: str) -> Tape:
        return self.market.tapes[self.key(symbol)]

    def routes(self) -> list[web.RouteDef]:
        return [*self.public.routes(), *self.streams.routes()]

    # -- REST errors in Kraken's envelope --------------------------------------------------------
    def fault_error(self, status: int, headers: dict[str, str]) -> KrakenError:
        return KrakenError(FAULT_ERRORS.get(status, "EGeneral:Internal error"), status, result=False, headers=headers)

    def rate_limited(self) -> KrakenError:
        self.faults.count("kraken_rate_limited")
        return KrakenError(RATE_LIMITED, result=False)

    def route_error(self, exc: web.HTTPException) -> KrakenError:
        return KrakenError("EGeneral:Unknown method", exc.status, result=False)

    def internal_error(self) -> KrakenError:
        return KrakenError("EGeneral:Internal error", 500, result=False)

    def error_response(self, err: KrakenError) -> web.StreamResponse:
        return err.response()

    # -- control API -----------------------------------------------------------------------------
    def status(self) -> dict[str, object]:
        return {
            "requests": dict(self.requests),
            "open_sockets": len(self.streams.conns),
            "connections_opened": self.streams.opened,
            "call_counter": {c: self.limiter.level(c) for c in self.limiter.clients},
            "call_limit": self.limiter.limit,
            "subscriptions": subscriptions(self.streams.conns),
        }

    def truth_rows(self, spec: SymbolSpec, kind: str, rows: Any) -> list[dict[str, object]]:
        """``wire.truth_trades``: the REST trade fields by name, oldest first, with the ns time, ms and taker side."""
        return wire.truth_trades(spec, self.tape(spec.symbol), rows)
