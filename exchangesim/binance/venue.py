"""BinanceVenue: Binance's protocol (REST, signed REST, streams) over the shared market engine."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from ..config import SimConfig
from ..engine.market import Emission, Market, now_ms
from ..faults import Faults
from ..symbols import SymbolSpec, synthetic_spec
from ..venues import Middleware, VenueBase
from . import wire
from .accounts import OrderBook
from .filters import symbol_filters
from .limits import WeightLimiter, interval
from .records import ORDER_TYPES
from .rest import PublicRest, make_middleware
from .signed import SignedRest
from .vision import Vision
from .ws import StreamServer

RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
    {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 300000},
]


class BinanceVenue(VenueBase):
    """One Binance lookalike: its routes, middleware, accounts, weight limits and streams."""

    name = "binance"
    prefix = ""
    default_symbols = ("BTCUSDT", "ETHUSDT")  # SimConfig.symbols lists Binance's symbols
    rate_factor = 1.0
    truth_kinds = ("trades", "aggTrades")

    @classmethod
    def spec(cls, symbol: str) -> SymbolSpec:
        return synthetic_spec(symbol)

    def __init__(self, market: Market, config: SimConfig, faults: Faults) -> None:
        super().__init__(market, config, faults)
        self.limiter = WeightLimiter(
            config.weight_limit, config.ban_after, config.ban_seconds, window_ms=config.weight_window_s * 1000
        )
        self.orders = OrderBook(config.api_keys, config.balances)
        self.public = PublicRest(self)
        self.signed = SignedRest(self)
        self.streams = StreamServer(self)
        self.vision = Vision(self, config.vision_delay)
        market.listeners.append(self._match_orders)

    def routes(self) -> list[web.RouteDef]:
        return [*self.public.routes(), *self.signed.routes(), *self.streams.routes(), *self.vision.routes()]

    async def close(self) -> None:
        await super().close()
        self.vision.close()

    def middleware(self) -> Middleware:
        """Binance's own (weight, bans, its headers and error shape), not the prefix middleware of ``VenueBase``."""
        return make_middleware(self)

    def exchange_info(self, symbols: list[str]) -> dict[str, object]:
        limits = [dict(r) for r in RATE_LIMITS]
        limits[0]["limit"] = self.limiter.limit
        limits[0]["interval"], limits[0]["intervalNum"] = interval(self.limiter.window_ms)
        specs = self.specs
        return {
            "timezone": "UTC",
            "serverTime": self.server_time(),
            "rateLimits": limits,
            "exchangeFilters": [],
            "symbols": [
                {
                    "symbol": s,
                    "status": "TRADING",
                    "baseAsset": specs[s].base,
                    "baseAssetPrecision": 8,
                    "quoteAsset": specs[s].quote,
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "baseCommissionPrecision": 8,
                    "quoteCommissionPrecision": 8,
                    "orderTypes": list(ORDER_TYPES),
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "otoAllowed": True,
                    "opoAllowed": True,
                    "quoteOrderQtyMarketAllowed": True,
                    "allowTrailingStop": False,
                    "cancelReplaceAllowed": False,
                    "amendAllowed": False,
                    "pegInstructionsAllowed": True,
                    "isSpotTradingAllowed": True,
                    "isMarginTradingAllowed": False,
                    "filters": symbol_filters(specs[s]),
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                    "defaultSelfTradePreventionMode": "NONE",
                    "allowedSelfTradePreventionModes": ["NONE"],
                }
                for s in symbols
            ],
        }

    def _match_orders(self, t_ms: int, emissions: list[Emission]) -> None:
        if not any(a.open for a in self.orders.accounts.values()):  # nothing resting: nothing to match
            return
        specs = self.specs
        for e in emissions:
            if e.venue != self.name:
                continue
            dp = specs[e.symbol].price_dp
            self.orders.on_trades(
                specs,
                e.symbol,
                Decimal(int(e.trades.prices.min())).scaleb(-dp),
                Decimal(int(e.trades.prices.max())).scaleb(-dp),
                Decimal(int(e.trades.prices[-1])).scaleb(-dp),
                self.server_time(),
            )

    def status(self) -> dict[str, object]:
        return {
            "requests": dict(self.requests),
            "weight_used": {c: self.limiter.used(c, now_ms()) for c in self.limiter.clients},
            "open_sockets": len(self.streams.conns),
            "connections_opened": self.streams.opened,
            "subscriptions": sorted({s for c in self.streams.conns for s in c.subs}),
            "vision": self.vision.status(),
        }

    def truth_rows(self, spec: SymbolSpec, kind: str, rows: Any) -> list[dict[str, object]]:
        """Truth in Binance's REST shapes: ``/api/v3/trades`` rows or ``/api/v3/aggTrades`` rows."""
        return wire.rest_trades(spec, rows) if kind == "trades" else wire.rest_aggs(spec, rows)
