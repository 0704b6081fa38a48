"""Venue events: a venue printing outliers, going stale, or losing a stretch of its REST history.

Outliers and silences change what the venue printed, so ``/_sim/truth`` shows them; forgotten history
only changes what its REST serves (``engine/served.py``), and truth still reports those trades.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .inputs import ControlError, field, read_body, venue_tape

if TYPE_CHECKING:
    from ..server import Simulator

MAX_MS = 10**15


class VenueEvents:
    """Handlers of /_sim/venue/* and /_sim/rest/forget."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_sim/venue/outlier", self.outlier),
            web.post("/_sim/venue/stale", self.stale),
            web.post("/_sim/rest/forget", self.forget),
        ]

    async def _target(self, request: web.Request, *fields: str) -> tuple[dict[str, Any], str, str]:
        body = await read_body(request, self.sim.venues, "symbol", *fields)
        venue = body.get("venue", "binance")
        symbol = field(body, "symbol", str, hint="a symbol name")
        return body, venue, venue_tape(self.sim, venue, symbol)

    async def outlier(self, request: web.Request) -> web.Response:
        """``{venue, symbol, bps, seconds}``: the symbol's trades printed from now for ``seconds`` are ``bps``
        away from the market (a constant number of ticks)."""
        body, venue, key = await self._target(request, "bps", "seconds")
        bps = field(
            body,
            "bps",
            (int, float),
            check=lambda b: b != 0 and abs(b) <= 5000,
            hint="a non-zero number of bps within +-5000",
        )
        seconds = field(body, "seconds", (int, float), check=lambda s: 0 < s <= 3600, hint="seconds (0-3600]")
        start, until, ticks = self.sim.market.set_outlier(key, float(bps), float(seconds))
        self.sim.faults.count("venue_outlier")
        return web.json_response(
            {"ok": True, "venue": venue, "symbol": body["symbol"], "from_ms": start, "until_ms": until, "ticks": ticks}
        )

    async def stale(self, request: web.Request) -> web.Response:
        """``{venue, symbol, seconds}``: the symbol prints no trade for ``seconds`` (sockets stay open,
        heartbeats go on, trade ids stay contiguous)."""
        body, venue, key = await self._target(request, "seconds")
        seconds = field(body, "seconds", (int, float), check=lambda s: 0 < s <= 3600, hint="seconds (0-3600]")
        if self.sim.market.kinds[key] != "synthetic":
            raise ControlError(f"'symbol' {body['symbol']!r} is replayed; only synthetic symbols can go stale")
        until = self.sim.market.set_stale(key, float(seconds))
        self.sim.faults.count("venue_stale")
        return web.json_response({"ok": True, "venue": venue, "symbol": body["symbol"], "until_ms": until})

    async def forget(self, request: web.Request) -> web.Response:
        """``{venue, symbol, start_ms, end_ms}``: the venue's REST no longer serves the trades with times in
        ``[start_ms, end_ms]`` nor any candle holding one of them."""
        body, venue, key = await self._target(request, "start_ms", "end_ms")
        start = field(body, "start_ms", int, check=lambda v: 0 <= v < MAX_MS, hint="ms since the epoch")
        end = field(body, "end_ms", int, check=lambda v: 0 <= v < MAX_MS, hint="ms since the epoch")
        if end < start:
            raise ControlError(f"'end_ms' ({end}) is before 'start_ms' ({start})")
        ranges = self.sim.faults.forgotten.setdefault(key, [])
        ranges.append((start, end))
        self.sim.faults.count("rest_forget")
        return web.json_response(
            {"ok": True, "venue": venue, "symbol": body["symbol"], "forgotten": [list(r) for r in ranges]}
        )
