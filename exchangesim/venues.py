"""What a venue is to the simulator: the protocol each venue package implements.

A venue is a package (``exchangesim/binance/``, ``exchangesim/coinbase/``) whose venue class
- declares ``name`` (also its key in control requests, faults and the status), ``prefix`` (the path
  its routes are mounted under: ``""`` for Binance, ``"/coinbase"``), ``default_symbols`` (its symbols
  when ``SimConfig.venue_symbols`` does not name it) and ``rate_factor`` (its share of the market's
  synthetic trade rate);
- declares how it names a symbol from canonical assets (``symbol_format``) and the quote assets of its
  ``--universe`` symbols with their shares (``universe_quotes``); ``VenueBase`` has Binance's;
- turns one of its symbol names into a ``SymbolSpec`` (``spec``) whose ``base``/``quote`` are canonical
  asset codes (``BTC``, ``USD``: the shared price reference is keyed by them) and whose scales are the
  venue's increments;
- is built as ``Venue(market, config, faults)`` once the market holds its tapes (``tape_key(name,
  symbol)``), listens to the market's ticks for its streams, and answers the control API through the
  methods below.

The simulator's registry (``server.VENUES``) lists the venue classes; adding a venue is a new package
and one line there. ``VenueBase`` holds the plumbing venues share (state, clock, live settings, control of
the sockets, and the REST middleware of a venue mounted under a prefix).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from aiohttp import web

from .engine.market import Listing, Market, now_ms, tape_key
from .engine.served import ServedTape
from .faults import Faults
from .symbols import SymbolSpec

if TYPE_CHECKING:
    from .config import SimConfig
    from .streams import StreamServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]


class Venue(Protocol):
    """One exchange lookalike mounted on the simulator's port."""

    name: ClassVar[str]
    prefix: ClassVar[str]
    default_symbols: ClassVar[tuple[str, ...]]
    rate_factor: ClassVar[float]
    truth_kinds: ClassVar[tuple[str, ...]]  # what /_sim/truth?kind= accepts; the first is the default
    symbol_format: ClassVar[str]  # a symbol from canonical assets: "{base}{quote}", "{base}-{quote}"
    universe_quotes: ClassVar[tuple[tuple[str, float], ...]]  # (quote asset, share) of --universe symbols

    @classmethod
    def spec(cls, symbol: str) -> SymbolSpec:
        """The spec of one of the venue's symbols (raises ``UnknownSymbolError`` for a name it cannot list)."""
        ...

    def routes(self) -> list[web.RouteDef]: ...

    def middleware(self) -> Middleware:
        """Applied to every request; must pass through any path that is not the venue's."""
        ...

    def status(self) -> dict[str, object]:
        """The venue's part of /_sim/status (requests, open sockets, subscriptions...)."""
        ...

    def reset(self) -> None:
        """Forget rate-limit counters and bans (/_sim/reset)."""
        ...

    def configure(self, **settings: Any) -> dict[str, object]:
        """Apply the non-None live settings of /_sim/config; raise ValueError for one the venue lacks."""
        ...

    def open_sockets(self) -> int: ...

    async def drop_sockets(self, mode: str) -> int:
        """Close every stream socket cleanly (``close``) or reset its TCP connection (``reset``)."""
        ...

    async def close(self) -> None:
        """Close every socket (the simulator is stopping)."""
        ...

    def truth_rows(self, spec: SymbolSpec, kind: str, rows: Any) -> list[dict[str, object]]:
        """/_sim/truth lines for trades (``kind`` "trades": a TradeBatch) or another kind the venue lists."""
        ...


def listed(venue: type[Venue], config: SimConfig) -> tuple[str, ...]:
    """The synthetic symbols ``config`` names on ``venue``: Binance's ``symbols`` (none in replay mode unless
    given), another venue's ``venue_symbols`` or else its defaults (none in replay mode)."""
    if venue.name == "binance":
        return config.symbols if (not config.replay or config.explicit_symbols) else ()
    symbols = config.venue_symbols.get(venue.name)
    if symbols is None:
        symbols = () if config.replay else venue.default_symbols
    return symbols


def listings(venue: type[Venue], config: SimConfig) -> list[Listing]:
    """The synthetic venue symbols ``config`` asks of ``venue`` (its defaults unless named; none in replay
    mode, where only the replayed Binance symbols trade unless a venue's symbols are given)."""
    return [Listing(venue.name, venue.spec(s), venue.rate_factor) for s in listed(venue, config)]


def served(market: Market, faults: Faults, venue: str, symbol: str) -> ServedTape:
    """A venue symbol's tape as its REST history serves it (forgotten ranges left out)."""
    key = tape_key(venue, symbol)
    return ServedTape(market.tapes[key], faults.forgotten.get(key, ()))


class VenueBase:
    """What the venues share: market, config and faults, request counts, the clock offset, the live settings
    of ``configure``, and the control of their ``streams``. A subclass sets ``limiter`` (with ``reset()``,
    and ``limit`` if ``settings`` lists ``weight_limit``) and ``streams``.

    For a venue mounted under ``prefix``, ``middleware`` passes through every other path and the socket at
    ``ws_path``, and answers each REST request under the prefix with an injected fault, the venue's rate
    limit or a routing error in the venue's error shape (the ``*_error`` hooks and ``error_response``)."""

    name: ClassVar[str]
    prefix: ClassVar[str]
    ws_path: ClassVar[str]
    settings: ClassVar[tuple[str, ...]] = ("weight_limit", "clock_offset_ms")  # what configure accepts
    symbol_format: ClassVar[str] = "{base}{quote}"
    universe_quotes: ClassVar[tuple[tuple[str, float], ...]] = (("USDT", 0.8), ("USDC", 0.1), ("BTC", 0.1))
    rest_error: ClassVar[type[Exception]]  # the venue's REST error, answered by error_response
    limiter: Any
    streams: StreamServer[Any]

    def __init__(self, market: Market, config: SimConfig, faults: Faults) -> None:
        self.market = market
        self.config = config
        self.faults = faults
        self.clock_offset_ms = 0
        self.requests: Counter[str] = Counter()
        self._specs: tuple[int, dict[str, SymbolSpec]] = (-1, {})

    @property
    def specs(self) -> dict[str, SymbolSpec]:
        """The venue's symbols, by name (worked out again only when the market's tapes change: a universe holds
        hundreds, and every request and tick asks)."""
        if self._specs[0] != len(self.market.tapes):
            self._specs = (len(self.market.tapes), self.market.specs_of(self.name))
        return self._specs[1]

    def key(self, symbol: str) -> str:
        return tape_key(self.name, symbol)

    def served(self, symbol: str) -> ServedTape:
        return served(self.market, self.faults, self.name, symbol)

    def server_time(self) -> int:
        """The venue's clock in ms (moved by ``clock_offset_ms``)."""
        return now_ms() + self.clock_offset_ms

    def count_request(self, path: str) -> None:
        self.requests[path] += 1

    # -- control API -----------------------------------------------------------------------------
    def reset(self) -> None:
        self.limiter.reset()

    def settings_hint(self) -> str:
        """Said after an unknown setting."""
        return ""

    def configure(self, **settings: Any) -> dict[str, object]:
        unknown = [k for k in settings if k not in self.settings]
        if unknown:
            raise ValueError(f"venue {self.name!r} has no setting {unknown[0]!r}{self.settings_hint()}")
        if settings.get("weight_limit") is not None:
            self.limiter.limit = settings["weight_limit"]
        if settings.get("clock_offset_ms") is not None:
            self.clock_offset_ms = settings["clock_offset_ms"]
        current = {"weight_limit": getattr(self.limiter, "limit", None), "clock_offset_ms": self.clock_offset_ms}
        return {k: current[k] for k in self.settings}

    def open_sockets(self) -> int:
        return len(self.streams.conns)

    async def drop_sockets(self, mode: str) -> int:
        return await self.streams.drop(mode)

    async def close(self) -> None:
        await self.streams.close()

    # -- REST under a prefix ---------------------------------------------------------------------
    def middleware(self) -> Middleware:
        """Faults, the rate limit and the venue's error shape for every REST request under the prefix."""

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            path = request.path
            if not path.startswith(self.prefix + "/") or path == f"{self.prefix}{self.ws_path}":
                return await handler(request)
            self.count_request(path)
            try:
                return await self._answer(request, handler)
            except self.rest_error as err:
                return self.error_response(err)
            except web.HTTPException:
                raise
            except Exception:  # never a traceback on the wire
                logging.getLogger(type(self).__module__).exception(
                    "internal error on %s %s", request.method, request.path_qs
                )
                return self.error_response(self.internal_error())

        return middleware

    async def _answer(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = self.faults.take_rest(self.name, request.path[len(self.prefix) :], request.path, method=request.method)
        if fault and fault.status:
            if fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            raise self.fault_error(fault.status, headers)
        if not self.limiter.take(request.remote or "?"):
            raise self.rate_limited()
        if request.match_info.http_exception is not None:
            raise self.route_error(request.match_info.http_exception)
        response = await handler(request)
        if fault and fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        return response

    def fault_error(self, status: int, headers: dict[str, str]) -> Exception:
        """The error answering an injected REST fault of ``status``."""
        raise NotImplementedError

    def rate_limited(self) -> Exception:
        """The error answering a request over the rate limit (counted in the faults)."""
        raise NotImplementedError

    def route_error(self, exc: web.HTTPException) -> Exception:
        """The error answering a path or method the venue does not route."""
        raise NotImplementedError

    def internal_error(self) -> Exception:
        """The error answering an unexpected exception."""
        raise NotImplementedError

    def error_response(self, err: Any) -> web.StreamResponse:
        raise NotImplementedError
