"""Control: the routes and middleware of /_sim/*, and the fault and market handlers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..engine.market import now_ms
from ..faults import RestFault
from .events import VenueEvents
from .inputs import ControlError, field, read_body
from .truth import Truth

HTTP_METHODS = ("GET", "POST", "PUT", "DELETE")

if TYPE_CHECKING:
    from ..server import Simulator


class Control:
    """Handlers of /_sim/*."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.events = VenueEvents(sim)
        self.truth = Truth(sim)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_sim/ws/drop", self.ws_drop),
            web.post("/_sim/rest/fault", self.rest_fault),
            web.post("/_sim/ws/corrupt", self.ws_corrupt),
            web.post("/_sim/market", self.market),
            web.post("/_sim/config", self.config),
            web.post("/_sim/reset", self.reset),
            *self.events.routes(),
            *self.truth.routes(),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if not request.path.startswith("/_sim"):
            return await handler(request)
        try:
            if request.match_info.http_exception is not None:
                exc = request.match_info.http_exception
                return web.json_response({"error": f"{request.method} {request.path}: {exc.reason}"}, status=exc.status)
            return await handler(request)
        except ControlError as err:
            return web.json_response({"error": str(err)}, status=400)

    async def _body(self, request: web.Request, *fields: str) -> dict[str, Any]:
        return await read_body(request, self.sim.venues, *fields)

    async def ws_drop(self, request: web.Request) -> web.Response:
        body = await self._body(request, "mode", "seconds", "reject_seconds")
        venue = body.get("venue", "binance")
        mode = field(
            body, "mode", str, "close", lambda m: m in ("close", "reset", "stall"), "one of 'close', 'reset', 'stall'"
        )
        seconds = field(body, "seconds", (int, float), 0, lambda s: 0 <= s <= 3600, "seconds between 0 and 3600")
        reject = field(body, "reject_seconds", (int, float), 0, lambda s: 0 <= s <= 3600, "seconds between 0 and 3600")
        faults = self.sim.faults
        t = now_ms()
        # A close or reset "for N seconds" keeps the venue unreachable that long: reconnects are refused.
        refuse = max(reject, seconds if mode != "stall" else 0)
        if refuse:
            faults.reject_until_ms[venue] = t + int(refuse * 1000)
        if mode == "stall":
            faults.stall_until_ms[venue] = t + int(seconds * 1000)
            dropped = self.sim.venues[venue].open_sockets()
        else:
            dropped = await self.sim.venues[venue].drop_sockets(mode)
        faults.count(f"ws_{mode}")
        return web.json_response(
            {"ok": True, "mode": mode, "sockets": dropped, "seconds": seconds, "reject_seconds": reject}
        )

    async def rest_fault(self, request: web.Request) -> web.Response:
        body = await self._body(request, "path_prefix", "status", "count", "retry_after", "delay_ms", "method")
        prefix = field(body, "path_prefix", str, "/", lambda p: p.startswith("/"), "a path starting with '/'")
        status = field(
            body,
            "status",
            (int, type(None)),
            None,
            lambda s: s is None or 400 <= s <= 599,
            "an HTTP error status (400-599)",
        )
        count = field(body, "count", int, 1, lambda c: 1 <= c <= 1_000_000, "a count from 1 to 1000000")
        retry = field(
            body, "retry_after", (int, type(None)), None, lambda r: r is None or 0 <= r <= 86400, "seconds (0-86400)"
        )
        delay = field(body, "delay_ms", int, 0, lambda d: 0 <= d <= 600_000, "milliseconds (0-600000)")
        method = field(
            body, "method", (str, type(None)), None, lambda m: m is None or m in HTTP_METHODS, f"one of {HTTP_METHODS}"
        )
        if status is None and not delay:
            raise ControlError("give 'status' or 'delay_ms' (or both)")
        if retry is None and status in (418, 429):
            retry = 1  # Binance always sends Retry-After with 418 and 429
        venue = body.get("venue", "binance")
        self.sim.faults.rest.append(RestFault(venue, prefix, status, count, retry, delay, method))
        pending = [
            {
                "venue": f.venue,
                "path_prefix": f.path_prefix,
                "status": f.status,
                "count": f.count,
                "retry_after": f.retry_after,
                "delay_ms": f.delay_ms,
                "method": f.method,
            }
            for f in self.sim.faults.rest
        ]
        return web.json_response({"ok": True, "pending": pending})

    async def ws_corrupt(self, request: web.Request) -> web.Response:
        body = await self._body(request, "kind", "count")
        kind = field(
            body,
            "kind",
            str,
            check=lambda k: k in ("malformed", "duplicate", "reorder"),
            hint="one of 'malformed', 'duplicate', 'reorder'",
        )
        count = field(body, "count", int, 1, lambda c: 1 <= c <= 100_000, "a count from 1 to 100000")
        self.sim.faults.corrupt.setdefault(body.get("venue", "binance"), []).extend([kind] * count)
        return web.json_response({"ok": True, "kind": kind, "count": count})

    async def market(self, request: web.Request) -> web.Response:
        """Rate and pause of the whole synthetic market (every venue: each trades its share of the rate)."""
        body = await self._body(request, "rate", "paused")
        rate = field(body, "rate", (int, float), None, lambda r: 0 <= r <= 200_000, "trades/s from 0 to 200000")
        paused = field(body, "paused", bool, None, hint="true or false")
        self.sim.market.set_flow(rate=rate, paused=paused)
        return web.json_response({"ok": True, "rate": self.sim.market.rate, "paused": self.sim.market.paused})

    async def config(self, request: web.Request) -> web.Response:
        """Live settings of one venue: weight limit (Binance) and server clock offset (for clock-skew tests)."""
        body = await self._body(request, "weight_limit", "clock_offset_ms")
        venue = self.sim.venues[body.get("venue", "binance")]
        limit = field(body, "weight_limit", int, None, lambda v: v >= 1, "a positive integer")
        offset = field(body, "clock_offset_ms", int, None, lambda v: abs(v) <= 86_400_000, "ms within a day")
        settings = {k: v for k, v in (("weight_limit", limit), ("clock_offset_ms", offset)) if v is not None}
        try:
            current = venue.configure(**settings)
        except ValueError as exc:
            raise ControlError(str(exc)) from exc
        return web.json_response({"ok": True, **current})

    async def reset(self, request: web.Request) -> web.Response:
        """Clear every pending fault (forgotten history included) and every venue's rate-limit counters."""
        self.sim.faults.clear()
        for venue in self.sim.venues.values():
            venue.reset()
        return web.json_response({"ok": True})
