"""Simulator: the aiohttp application on one port, startable in-process (tests) or from the CLI.

Every venue in ``VENUES`` is mounted on the one port under its own path prefix, over one market.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

from .binance.venue import BinanceVenue
from .coinbase.venue import CoinbaseVenue
from .config import SimConfig
from .control import Control
from .engine.market import Market
from .faults import Faults
from .kraken.venue import KrakenVenue
from .universe import Universe
from .venues import Venue, listings

log = logging.getLogger(__name__)

# The registry: every venue the simulator serves. Binance's symbols come from ``SimConfig.symbols`` (and
# replays), every other venue's from ``SimConfig.venue_symbols`` or its defaults.
VENUES: tuple[type[Venue], ...] = (BinanceVenue, CoinbaseVenue, KrakenVenue)


class Simulator:
    """A running exchange simulator: market engine, venues and control API on one port."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        others = tuple(item for v in VENUES if v is not BinanceVenue for item in listings(v, config))
        symbols = config.symbols if (not config.replay or config.explicit_symbols) else ()
        self.universe = Universe(config, VENUES) if config.universe else None
        if self.universe is not None:  # it lists every venue's synthetic symbols, each with its share of the rate
            symbols, others = (), self.universe.listings
        self.market = Market(
            symbols=symbols,
            rate=config.rate,
            seed=config.seed,
            replay=config.replay,
            speed=config.speed,
            history_days=config.history_days,
            listings=others,
        )
        self.faults = Faults()
        self.venues: dict[str, Venue] = {
            v.name: v(self.market, config, self.faults)  # type: ignore[call-arg]
            for v in VENUES
        }
        self.control = Control(self)
        self.app = web.Application(
            middlewares=[_timed, self.control.middleware, *(v.middleware() for v in self.venues.values())],
            client_max_size=1 << 20,
        )
        for venue in self.venues.values():
            self.app.add_routes(venue.routes())
        self.app.add_routes(self.control.routes())
        self._runner: web.AppRunner | None = None
        self.port = config.port

    @property
    def binance(self) -> BinanceVenue:
        venue = self.venues["binance"]
        assert isinstance(venue, BinanceVenue)
        return venue

    def venue_url(self, venue: str, *, ws: bool = False) -> str:
        """Base URL of a venue (``http://host:port/coinbase``); with ``ws`` its WebSocket base (Coinbase's feed is
        ``/ws`` under it, Kraken's v2 socket ``/v2``)."""
        return f"{self.ws_url if ws else self.url}{self.venues[venue].prefix}"

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}"

    async def start(self) -> None:
        """Bind (port 0 picks a free one) and start the market clock."""
        # Long Binance-style queries (symbols=[...]) must reach the middleware, not aiohttp's plain 400.
        self._runner = web.AppRunner(
            self.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=1,
            max_line_size=65536,
            max_field_size=65536,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port, reuse_address=True)
        await site.start()
        server = site._server
        if server is not None and server.sockets:  # the real port when 0 was asked for
            self.port = server.sockets[0].getsockname()[1]
        self.market.start(self.config.tick_ms, warm_history=self.config.warm_history)
        kinds = self.market.kinds
        log.info(
            "exchange simulator listening on %s (%s)",
            self.url,
            ", ".join(f"{s}: {k}" for s, k in kinds.items())
            if len(kinds) <= 12  # a universe is counted, not listed
            else ", ".join(f"{n} {k}" for k, n in Counter(kinds.values()).items()) + " symbols",
        )

    async def stop(self) -> None:
        """Stop the clock, close every socket, release the port."""
        await self.market.stop()
        for venue in self.venues.values():
            await venue.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


SLOW_REQUEST_S = 2.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _timed(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log a request that took ``SLOW_REQUEST_S`` or longer to answer: history queries may (a cold klines answer
    aggregates up to a thousand minutes). Streamed answers (WebSockets, ``/_sim/truth``) last as long as they
    stream, so only whole answers are timed."""
    started = time.monotonic()
    response = await handler(request)
    took = time.monotonic() - started
    if took >= SLOW_REQUEST_S and isinstance(response, web.Response):
        log.warning("slow request: %s %s answered in %.1f s", request.method, request.path_qs, took)
    return response


@contextlib.contextmanager
def running_in_thread(config: SimConfig) -> Iterator[Simulator]:
    """A simulator on its own event loop in a background thread, for synchronous callers."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            sim = Simulator(config)
            loop.run_until_complete(sim.start())
            holder["sim"] = sim
        except BaseException as exc:  # report start-up failures to the caller
            holder["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(sim.stop())
        loop.close()

    thread = threading.Thread(target=run, name="exchangesim", daemon=True)
    thread.start()
    ready.wait(60)
    if "error" in holder:
        raise holder["error"]  # type: ignore[misc]
    sim = holder["sim"]
    assert isinstance(sim, Simulator)
    try:
        yield sim
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
