"""Coinbase Exchange public REST under ``/coinbase``: products, time, trades (cursor paging), candles.

Readings of the documented behaviour (``reference/exchange-protocols.md`` section 4) the simulator
commits to, where the docs leave room:
- trades: ``after=N`` is the page of the ``limit`` trades just older than N (ids below N), ``before=N``
  the page of the ``limit`` trades just newer than N (ids above N, the ones closest to N, so paging
  forward with ``before=CB-BEFORE`` misses nothing); both together bound the page from both sides,
  closest to ``after``. Pages are newest first; ``CB-BEFORE`` is the newest id on the page and
  ``CB-AFTER`` the oldest; an empty page carries neither header. ``limit`` outside 1..1000 is a 400.
- candles: ``granularity`` defaults to 60; when ``start`` or ``end`` is missing both are ignored and
  the 300 buckets ending now are used; buckets are those opening from the one holding ``start`` up to
  ``end``; ``(end - start) / granularity > 300`` is a 400; a bucket without trades (or holding a trade
  the venue has forgotten) is left out.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING

from aiohttp import web

from ..engine.batch import TradeBatch
from ..engine.served import ServedTape
from ..sockets import client_gone
from ..symbols import SymbolSpec
from . import wire

if TYPE_CHECKING:
    from .venue import CoinbaseVenue

GRANULARITIES = {60: "1m", 300: "5m", 900: "15m", 3600: "1h", 21600: "6h", 86400: "1d"}
MAX_CANDLES = 300
MAX_TRADES = 1000


def _compact(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON written compactly, as Coinbase does."""
    return web.json_response(data, status=status, headers=headers, dumps=_compact)


class CoinbaseError(Exception):
    """An error answered as ``{"message": ...}`` with ``status``."""

    def __init__(self, message: str, status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.headers = message, status, headers or {}


def _int(raw: str | None, name: str, lo: int = 0, hi: int = 2**62) -> int | None:
    if raw is None:
        return None
    if not re.fullmatch(r"-?[0-9]{1,19}", raw) or not lo <= int(raw) <= hi:
        raise CoinbaseError(f"Invalid {name}")
    return int(raw)


def parse_time(raw: str, name: str) -> int:
    """Unix seconds (integer or decimal) or ISO-8601 (``Z`` or an offset; no zone is UTC), in ms."""
    try:
        if re.fullmatch(r"[0-9]{1,12}(\.[0-9]*)?", raw):
            return round(float(raw) * 1000)
        d = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
        if d.tzinfo is None:
            return round(datetime.fromisoformat(raw + "+00:00").timestamp() * 1000)
        return round(d.timestamp() * 1000)
    except (ValueError, OverflowError) as exc:
        raise CoinbaseError(f"Invalid {name} time: {raw!r} is neither ISO-8601 nor unix seconds") from exc


class PublicRest:
    """Handlers of the public endpoints."""

    def __init__(self, venue: CoinbaseVenue) -> None:
        self.venue = venue
        self.market = venue.market

    def routes(self) -> list[web.RouteDef]:
        p = self.venue.prefix
        return [
            web.get(f"{p}/products", self.products),
            web.get(f"{p}/products/{{pid}}", self.product),
            web.get(f"{p}/time", self.time),
            web.get(f"{p}/products/{{pid}}/trades", self.trades),
            web.get(f"{p}/products/{{pid}}/candles", self.candles),
        ]

    def _spec(self, request: web.Request) -> SymbolSpec:
        spec = self.venue.specs.get(request.match_info["pid"].upper())
        if spec is None:
            raise CoinbaseError("NotFound", 404)
        return spec

    async def products(self, request: web.Request) -> web.Response:
        return json_response([wire.product(s) for s in self.venue.specs.values()])

    async def product(self, request: web.Request) -> web.Response:
        return json_response(wire.product(self._spec(request)))

    async def time(self, request: web.Request) -> web.Response:
        t = self.venue.server_time()
        return json_response({"iso": wire.iso_ms(t), "epoch": t / 1000})

    async def trades(self, request: web.Request) -> web.Response:
        spec = self._spec(request)
        q = request.query
        limit = _int(q.get("limit"), "limit", 1, MAX_TRADES) or MAX_TRADES
        before, after = _int(q.get("before"), "before"), _int(q.get("after"), "after")
        tape = self.venue.served(spec.symbol)
        page = await self.market.offload.run(_trade_page, tape, limit, before, after, gone=client_gone(request))
        headers = {"CB-BEFORE": str(int(page.ids[-1])), "CB-AFTER": str(int(page.ids[0]))} if len(page) else {}
        return json_response(wire.rest_trades(spec, page), headers=headers)

    async def candles(self, request: web.Request) -> web.Response:
        spec = self._spec(request)
        q = request.query
        raw_g = q.get("granularity", "60")
        g = int(raw_g) if re.fullmatch(r"[0-9]{1,6}", raw_g) else 0
        if g not in GRANULARITIES:
            raise CoinbaseError("Unsupported granularity")
        step = g * 1000
        tape = self.market.tapes[self.venue.key(spec.symbol)]
        if q.get("start") and q.get("end"):
            start, end = parse_time(q["start"], "start"), parse_time(q["end"], "end")
            if end < start:
                raise CoinbaseError("Invalid end time: end is before start")
            if (end - start) / step > MAX_CANDLES:
                raise CoinbaseError(
                    "granularity too small for the requested time range. Count of aggregations requested exceeds 300"
                )
        else:
            end = tape.emitted_ms
            start = end // step * step - (MAX_CANDLES - 1) * step
        first = max(start // step * step, tape.first_time // step * step)
        opens = list(range(first, min(end, tape.emitted_ms) + 1, step))
        interval = GRANULARITIES[g]
        opens = self.venue.served(spec.symbol).visible_opens(opens, interval)

        def rows() -> list:  # on a history worker: a cold answer may aggregate hundreds of minutes
            return [wire.candle(spec, o, agg) for o in opens if (agg := tape.kline_agg(o, interval)) is not None]

        return json_response((await self.market.offload.run(rows, kind="candles", gone=client_gone(request)))[::-1])


def _trade_page(tape: ServedTape, limit: int, before: int | None, after: int | None) -> TradeBatch:
    """The trades of one page (Coinbase's cursors: ``after`` pages back, ``before`` forward), newest last."""
    if after is not None:
        page = tape.trades_below_id(after, limit)
        return page[int((page.ids <= before).sum()) :] if before is not None else page
    if before is not None:
        return tape.trades_from_id(before + 1, limit)
    return tape.trades_recent(limit)
