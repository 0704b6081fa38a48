"""What a venue is to the simulator: the protocol each venue package implements.

A venue is a package (``exchangesim/binance/``, ``exchangesim/coinbase/``) whose venue class
- declares ``name`` (also its key in control requests, faults and the status), ``prefix`` (the path
  its routes are mounted under: ``""`` for Binance, ``"/coinbase"``), ``default_symbols`` (its symbols
  when ``SimConfig.venue_symbols`` does not name it) and ``rate_factor`` (its share of the market's
  synthetic trade rate);
- turns one of its symbol names into a ``SymbolSpec`` (``spec``) whose ``base``/``quote`` are canonical
  asset codes (``BTC``, ``USD``: the shared price reference is keyed by them) and whose scales are the
  venue's increments;
- is built as ``Venue(market, config, faults)`` once the market holds its tapes (``tape_key(name,
  symbol)``), listens to the market's ticks for its streams, and answers the control API through the
  methods below.

The simulator's registry (``server.VENUES``) lists the venue classes; adding a venue is a new package
and one line there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from aiohttp import web

from .engine.market import Listing, Market, tape_key
from .engine.served import ServedTape
from .faults import Faults
from .symbols import SymbolSpec

if TYPE_CHECKING:
    from .config import SimConfig

Middleware = Callable[[web.Request, Callable[[web.Request], Awaitable[web.StreamResponse]]],
                      Awaitable[web.StreamResponse]]


class Venue(Protocol):
    """One exchange lookalike mounted on the simulator's port."""

    name: ClassVar[str]
    prefix: ClassVar[str]
    default_symbols: ClassVar[tuple[str, ...]]
    rate_factor: ClassVar[float]
    truth_kinds: ClassVar[tuple[str, ...]]  # what /_sim/truth?kind= accepts; the first is the default

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


def listings(venue: type[Venue], config: SimConfig) -> list[Listing]:
    """The synthetic venue symbols ``config`` asks of ``venue`` (its defaults unless named; none in replay
    mode, where only the replayed Binance symbols trade unless a venue's symbols are given)."""
    symbols = config.venue_symbols.get(venue.name)
    if symbols is None:
        symbols = () if config.replay else venue.default_symbols
    return [Listing(venue.name, venue.spec(s), venue.rate_factor) for s in symbols]


def served(market: Market, faults: Faults, venue: str, symbol: str) -> ServedTape:
    """A venue symbol's tape as its REST history serves it (forgotten ranges left out)."""
    key = tape_key(venue, symbol)
    return ServedTape(market.tapes[key], faults.forgotten.get(key, ()))

