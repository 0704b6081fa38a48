"""The control API under ``/_sim/``: break things on purpose, steer the market, read the truth."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .binance import wire
from .engine.market import now_ms
from .faults import RestFault

if TYPE_CHECKING:
    from .server import Simulator

TRUTH_PAGE = 5000
TRUTH_MAX = 5_000_000
TRUTH_PARAMS = ("venue", "symbol", "kind", "from_id", "to_id", "start_ms", "end_ms")


class ControlError(Exception):
    """Bad input to the control API: answered 400 with a message naming the field."""


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ...,
           check: Callable[[Any], bool] | None = None, hint: str = "") -> Any:
    if name not in body:
        if default is ...:
            raise ControlError(f"'{name}' is required")
        return default
    value = body[name]
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ControlError(f"'{name}' must be {hint or kind}, got {value!r}")
    if not isinstance(value, kind) or (check is not None and not check(value)):
        raise ControlError(f"'{name}' must be {hint or kind}, got {value!r}")
    return value


class Control:
    """Handlers of /_sim/*."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_sim/ws/drop", self.ws_drop), web.post("/_sim/rest/fault", self.rest_fault),
            web.post("/_sim/ws/corrupt", self.ws_corrupt), web.post("/_sim/market", self.market),
            web.post("/_sim/config", self.config), web.post("/_sim/reset", self.reset),
            web.get("/_sim/truth", self.truth), web.get("/_sim/status", self.status),
        ]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        if not request.path.startswith("/_sim"):
            return await handler(request)
        try:
            if request.match_info.http_exception is not None:
                exc = request.match_info.http_exception
                return web.json_response({"error": f"{request.method} {request.path}: {exc.reason}"},
                                         status=exc.status)
            return await handler(request)
        except ControlError as err:
            return web.json_response({"error": str(err)}, status=400)

    async def _body(self, request: web.Request, *fields: str) -> dict[str, Any]:
        """The JSON object of a control request; a field other than ``venue`` and ``fields`` is an error
        (a misspelt option would otherwise be silently ignored)."""
        try:
            body = await request.json(loads=json.loads) if request.can_read_body else {}
        except ValueError as exc:
            raise ControlError(f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ControlError("the body must be a JSON object")
        unknown = [k for k in body if k != "venue" and k not in fields]
        if unknown:
            raise ControlError(f"unknown field {unknown[0]!r}; expected one of {['venue', *fields]}")
        venue = body.get("venue", "binance")
        if venue not in self.sim.venues:
            raise ControlError(f"unknown venue {venue!r}; known: {sorted(self.sim.venues)}")
        return body

    async def ws_drop(self, request: web.Request) -> web.Response:
        body = await self._body(request, "mode", "seconds", "reject_seconds")
        venue = body.get("venue", "binance")
        mode = _field(body, "mode", str, "close", lambda m: m in ("close", "reset", "stall"),
                      "one of 'close', 'reset', 'stall'")
        seconds = _field(body, "seconds", (int, float), 0, lambda s: 0 <= s <= 3600, "seconds between 0 and 3600")
        reject = _field(body, "reject_seconds", (int, float), 0, lambda s: 0 <= s <= 3600,
                        "seconds between 0 and 3600")
        faults = self.sim.faults
        t = now_ms()
        # A close or reset "for N seconds" keeps the venue unreachable that long: reconnects are refused.
        refuse = max(reject, seconds if mode != "stall" else 0)
        if refuse:
            faults.reject_until_ms[venue] = t + int(refuse * 1000)
        dropped = 0
        if mode == "stall":
            faults.stall_until_ms[venue] = t + int(seconds * 1000)
            dropped = len(self.sim.venues[venue].streams.conns)
        else:
            dropped = await self.sim.venues[venue].streams.drop(mode)
        faults.count(f"ws_{mode}")
        return web.json_response({"ok": True, "mode": mode, "sockets": dropped, "seconds": seconds,
                                  "reject_seconds": reject})

    async def rest_fault(self, request: web.Request) -> web.Response:
        body = await self._body(request, "path_prefix", "status", "count", "retry_after", "delay_ms")
        prefix = _field(body, "path_prefix", str, "/", lambda p: p.startswith("/"), "a path starting with '/'")
        status = _field(body, "status", (int, type(None)), None, lambda s: s is None or 400 <= s <= 599,
                        "an HTTP error status (400-599)")
        count = _field(body, "count", int, 1, lambda c: 1 <= c <= 1_000_000, "a count from 1 to 1000000")
        retry = _field(body, "retry_after", (int, type(None)), None, lambda r: r is None or 0 <= r <= 86400,
                       "seconds (0-86400)")
        delay = _field(body, "delay_ms", int, 0, lambda d: 0 <= d <= 600_000, "milliseconds (0-600000)")
        if status is None and not delay:
            raise ControlError("give 'status' or 'delay_ms' (or both)")
        if retry is None and status in (418, 429):
            retry = 1  # Binance always sends Retry-After with 418 and 429
        self.sim.faults.rest.append(RestFault(body.get("venue", "binance"), prefix, status, count, retry, delay))
        pending = [{"path_prefix": f.path_prefix, "status": f.status, "count": f.count,
                    "retry_after": f.retry_after, "delay_ms": f.delay_ms} for f in self.sim.faults.rest]
        return web.json_response({"ok": True, "pending": pending})

    async def ws_corrupt(self, request: web.Request) -> web.Response:
        body = await self._body(request, "kind", "count")
        kind = _field(body, "kind", str, check=lambda k: k in ("malformed", "duplicate", "reorder"),
                      hint="one of 'malformed', 'duplicate', 'reorder'")
        count = _field(body, "count", int, 1, lambda c: 1 <= c <= 100_000, "a count from 1 to 100000")
        self.sim.faults.corrupt.setdefault(body.get("venue", "binance"), []).extend([kind] * count)
        return web.json_response({"ok": True, "kind": kind, "count": count})

    async def market(self, request: web.Request) -> web.Response:
        body = await self._body(request, "rate", "paused")
        rate = _field(body, "rate", (int, float), None, lambda r: 0 <= r <= 200_000, "trades/s from 0 to 200000")
        paused = _field(body, "paused", bool, None, hint="true or false")
        self.sim.market.set_flow(rate=rate, paused=paused)
        return web.json_response({"ok": True, "rate": self.sim.market.rate, "paused": self.sim.market.paused})

    async def config(self, request: web.Request) -> web.Response:
        """Live settings: weight limit and server clock offset (for clock-skew tests)."""
        body = await self._body(request, "weight_limit", "clock_offset_ms")
        venue = self.sim.venues[body.get("venue", "binance")]
        limit = _field(body, "weight_limit", int, None, lambda v: v >= 1, "a positive integer")
        offset = _field(body, "clock_offset_ms", int, None, lambda v: abs(v) <= 86_400_000, "ms within a day")
        if limit is not None:
            venue.limiter.limit = limit
        if offset is not None:
            venue.clock_offset_ms = offset
        return web.json_response({"ok": True, "weight_limit": venue.limiter.limit,
                                  "clock_offset_ms": venue.clock_offset_ms})

    async def reset(self, request: web.Request) -> web.Response:
        """Clear every pending fault and the weight counters."""
        self.sim.faults.clear()
        for venue in self.sim.venues.values():
            venue.limiter.reset()
        return web.json_response({"ok": True})

    async def truth(self, request: web.Request) -> web.StreamResponse:
        """What was emitted, one JSON object a line, in the venue's REST shape."""
        q = request.query
        unknown = [k for k in q if k not in TRUTH_PARAMS]
        if unknown:  # a misspelt bound would otherwise stream the whole tape
            raise ControlError(f"unknown parameter {unknown[0]!r}; expected one of {list(TRUTH_PARAMS)}")
        if q.get("venue", "binance") not in self.sim.venues:
            raise ControlError(f"unknown venue {q.get('venue')!r}")
        symbol = q.get("symbol", "")
        tape = self.sim.market.tapes.get(symbol)
        if tape is None:
            raise ControlError(f"unknown symbol {symbol!r}; known: {sorted(self.sim.market.tapes)}")
        kind = q.get("kind", "trades")
        if kind not in ("trades", "aggTrades"):
            raise ControlError(f"'kind' must be 'trades' or 'aggTrades', got {kind!r}")
        spec = tape.spec
        nums = {}
        for name in ("from_id", "to_id", "start_ms", "end_ms"):
            raw = q.get(name)
            if raw not in (None, ""):
                if not re.fullmatch(r"[0-9]{1,18}", raw):
                    raise ControlError(f"'{name}' must be a non-negative integer, got {raw!r}")
                nums[name] = int(raw)
        if ("from_id" in nums or "to_id" in nums) and ("start_ms" in nums or "end_ms" in nums):
            raise ControlError("give ids (from_id/to_id) or times (start_ms/end_ms), not both")
        # Everything is paged by id; a time range first finds its first id.
        lo_id, hi_id = nums.get("from_id", 0), nums.get("to_id", 2**62)
        hi_t = nums.get("end_ms", 2**62)
        if "start_ms" in nums:
            first = (tape.trades_between if kind == "trades" else tape.aggs_between)(nums["start_ms"], hi_t, 1)
            lo_id = int(first.ids[0] if kind == "trades" else first.agg_ids[0]) if len(first) else 2**62
        page_of = tape.trades_from_id if kind == "trades" else tape.aggs_from_id
        to_rows = wire.rest_trades if kind == "trades" else wire.rest_aggs
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        sent = 0
        while sent < TRUTH_MAX and lo_id <= hi_id:
            page = page_of(lo_id, TRUTH_PAGE)
            ids = page.ids if kind == "trades" else page.agg_ids
            keep = int(((ids <= hi_id) & (page.times <= hi_t)).sum())
            if keep == 0:
                break
            page = page[:keep]
            await resp.write(("\n".join(json.dumps(r, separators=(",", ":")) for r in to_rows(spec, page))
                              + "\n").encode())
            sent += keep
            lo_id = int(ids[keep - 1]) + 1
            if keep < len(ids) or len(ids) < TRUTH_PAGE:
                break
        await resp.write_eof()
        return resp

    async def status(self, request: web.Request) -> web.Response:
        market = self.sim.market
        symbols = {}
        for sym, tape in market.tapes.items():
            info: dict[str, Any] = {
                "kind": market.kinds[sym], "trades_emitted": market.emitted[sym],
                "last_trade_id": tape.last_trade_id(), "last_agg_id": tape.last_agg_id(),
                "last_price": wire.fmt(tape.last_price(), tape.spec.price_dp),
                "first_trade_id": tape.blocks[0].first_id if tape.blocks else None, "history_from_ms": tape.first_time,
            }
            if sym in market.replays:
                r = market.replays[sym]
                info.update({"replay_source": r.source, "replay_time_shift_ms": r.time_shift,
                             "replay_loop_ms": r.loop_ms})
            symbols[sym] = info
        return web.json_response({
            "server_time": now_ms(), "started_ms": market.started_ms, "rate": market.rate, "paused": market.paused,
            "symbols": symbols, "faults_injected": dict(self.sim.faults.injected),
            "venues": {name: v.status() for name, v in self.sim.venues.items()},
        })
