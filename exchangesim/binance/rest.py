"""Binance public REST endpoints under /api/v3, and the middleware every /api request goes through."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import numpy as np
from aiohttp import web

from ..engine.aggregate import INTERVAL_MS, interval_next
from ..engine.market import now_ms
from ..sockets import client_gone
from . import wire
from .errors import BAD_INTERVAL, OPTIONAL_COMBINATION, START_AFTER_END, BinanceError
from .limits import WeightLimiter
from .params import Params

if TYPE_CHECKING:
    from .venue import BinanceVenue

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/trades"): 25,
    ("GET", "/api/v3/historicalTrades"): 25,
    ("GET", "/api/v3/aggTrades"): 4,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/uiKlines"): 2,
    ("POST", "/api/v3/order"): 1,
    ("POST", "/api/v3/order/test"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/openOrders"): 6,
    ("POST", "/api/v3/orderList/oco"): 1,
    ("GET", "/api/v3/orderList"): 4,
    ("DELETE", "/api/v3/orderList"): 1,
    ("GET", "/api/v3/openOrderList"): 6,
    ("GET", "/api/v3/allOrders"): 20,
}


def _depth_weight(limit: int) -> int:
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def request_weight(request: web.Request) -> int:
    path = request.path
    if path == "/api/v3/depth":
        raw = request.query.get("limit", "100")
        return _depth_weight(int(raw) if re.fullmatch(r"[0-9]{1,9}", raw) else 100)
    if path == "/api/v3/ticker/price":
        return 2 if "symbol" in request.query else 4
    return WEIGHTS.get((request.method, path), 1)


def _compact(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


def json_response(data: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """JSON written compactly, as Binance does."""
    return web.json_response(data, status=status, headers=headers, dumps=_compact)


async def read_params(request: web.Request) -> Params:
    """Query string and form body merged; the query string wins, as on Binance."""
    data: dict[str, str] = {}
    if request.method != "GET" and request.can_read_body:
        body = (await request.read()).decode("utf-8", "replace")
        data.update(parse_qsl(body, keep_blank_values=True))
    data.update({k: v for k, v in request.query.items()})
    return Params(data)


def make_middleware(venue: BinanceVenue) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Weight, faults and Binance's error shape for every /api request."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != "/api" and not request.path.startswith("/api/"):
            return await handler(request)
        venue.count_request(request.path)
        client = request.remote or "?"
        headers: dict[str, str] = {}
        try:
            _admit(venue, client)
            fault = venue.faults.take_rest("binance", request.path, method=request.method)
            if fault and fault.status:
                if fault.delay_ms:
                    await asyncio.sleep(fault.delay_ms / 1000)
                if fault.status in (418, 429) and fault.retry_after is not None:
                    venue.limiter.told_to_wait(client, fault.retry_after, now_ms())
                raise _fault_error(fault.status, fault.retry_after, venue.limiter)
            try:
                used = venue.limiter.charge(client, request_weight(request), now_ms())
            except BinanceError:
                venue.faults.count("weight_429")
                raise
            headers[venue.limiter.header] = str(used)
            if request.match_info.http_exception is not None:
                exc = request.match_info.http_exception
                raise BinanceError(
                    -1000 if exc.status == 405 else -1100,
                    "Method not allowed." if exc.status == 405 else "Not found.",
                    exc.status,
                )
            response = await handler(request)
            if fault and fault.delay_ms:
                await asyncio.sleep(fault.delay_ms / 1000)
        except BinanceError as err:
            headers.update(err.headers)
            headers.setdefault(venue.limiter.header, str(venue.limiter.used(client, now_ms())))
            return json_response(err.body(), err.status, headers)
        except web.HTTPException:
            raise
        except Exception:  # never a traceback on the wire: Binance's unknown-error shape instead
            log.exception("internal error on %s %s", request.method, request.path_qs)
            return json_response(
                {"code": -1000, "msg": "An unknown error occurred while processing the request."}, 500, headers
            )
        response.headers.update(headers)
        return response

    return middleware


def _admit(venue: BinanceVenue, client: str) -> None:
    """Refuse a banned client (418); count a request sent before a 429/418's Retry-After had passed.

    Counted in ``/_sim/status`` ``faults_injected``: ``backoff_violation`` per early request let through and
    ``ban_418`` per 418 answered because of a ban (an injected 418 is ``rest_418``; a weight-limit 429 is
    ``weight_429``). No 418 was ever sent when neither ``ban_418`` nor ``rest_418`` is there.
    """
    try:
        early = venue.limiter.admit(client, now_ms())
    except BinanceError:
        venue.faults.count("ban_418")
        raise
    if early:
        venue.faults.count("backoff_violation")


def _fault_error(status: int, retry_after: int | None, limiter: WeightLimiter) -> BinanceError:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if status == 429:
        return BinanceError(
            -1003,
            f"Too much request weight used; current limit is {limiter.limit} request weight per {limiter.per}. "
            "Please use WebSocket Streams for live updates to avoid polling the API.",
            429,
            headers,
        )
    if status == 418:
        until = now_ms() + (retry_after or 120) * 1000
        return BinanceError(
            -1003,
            f"Way too much request weight used; IP banned until {until}. Please use "
            "WebSocket Streams for live updates to avoid bans.",
            418,
            headers,
        )
    if status == 503:
        return BinanceError(
            -1008,
            "Server is currently overloaded with other requests. Please try again in a few minutes.",
            503,
            headers,
        )
    return BinanceError(-1000, "An unknown error occurred while processing the request.", status, headers)


class PublicRest:
    """Handlers of the unsigned endpoints."""

    def __init__(self, venue: BinanceVenue) -> None:
        self.venue = venue
        self.market = venue.market

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/v3/ping", self.ping),
            web.get("/api/v3/time", self.time),
            web.get("/api/v3/exchangeInfo", self.exchange_info),
            web.get("/api/v3/klines", self.klines),
            web.get("/api/v3/uiKlines", self.klines),
            web.get("/api/v3/aggTrades", self.agg_trades),
            web.get("/api/v3/trades", self.trades),
            web.get("/api/v3/historicalTrades", self.historical_trades),
            web.get("/api/v3/ticker/price", self.ticker_price),
            web.get("/api/v3/depth", self.depth),
        ]

    async def ping(self, request: web.Request) -> web.Response:
        return json_response({})

    async def time(self, request: web.Request) -> web.Response:
        return json_response({"serverTime": self.venue.server_time()})

    async def exchange_info(self, request: web.Request) -> web.Response:
        p = await read_params(request)
        specs = self.venue.specs
        if p.raw("symbol") and p.raw("symbols"):
            raise BinanceError(*OPTIONAL_COMBINATION)
        chosen = p.symbols(specs) or ([p.symbol(specs)] if p.raw("symbol") else list(specs.values()))
        return json_response(self.venue.exchange_info([s.symbol for s in chosen]))

    async def klines(self, request: web.Request) -> web.Response:
        p = await read_params(request)
        spec = p.symbol(self.venue.specs)
        interval = p.raw("interval")
        if interval is None:
            raise BinanceError(-1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed.")
        if interval not in INTERVAL_MS:
            raise BinanceError(*BAD_INTERVAL)
        limit = p.int("limit", default=500, lo=1, hi=1000)
        start, end = p.time("startTime"), p.time("endTime")
        if start is not None and end is not None and start > end:
            raise BinanceError(*START_AFTER_END)
        tape = self.market.tapes[spec.symbol]
        served = self.venue.served(spec.symbol)

        def rows() -> list:  # on a history worker: a cold answer may aggregate a thousand minutes
            opens = served.visible_opens(tape.kline_opens(interval, start, end, limit or 500), interval)
            return [
                wire.kline_row(spec, o, interval_next(o, interval) - 1, agg, prev)
                for o, agg, prev in tape.klines(interval, opens)
            ]

        return json_response(await self.market.offload.run(rows, kind="candles", gone=client_gone(request)))

    async def agg_trades(self, request: web.Request) -> web.Response:
        p = await read_params(request)
        spec = p.symbol(self.venue.specs)
        limit = p.int("limit", default=500, lo=1, hi=1000) or 500
        from_id = p.int("fromId")
        start, end = p.time("startTime"), p.time("endTime")
        tape = self.venue.served(spec.symbol)
        if from_id is not None and (start is not None or end is not None):
            raise BinanceError(*OPTIONAL_COMBINATION)
        if start is not None and end is not None and start > end:
            raise BinanceError(*START_AFTER_END)

        def page() -> list:  # on a history worker: the page may lie in blocks not generated yet
            if from_id is not None:
                aggs = tape.aggs_from_id(from_id, limit)
            elif start is not None:
                aggs = tape.aggs_between(start, end if end is not None else tape.tape.emitted_ms, limit)
            else:
                aggs = tape.aggs_recent(limit, end)
            return wire.rest_aggs(spec, aggs)

        return json_response(await self.market.offload.run(page, gone=client_gone(request)))

    async def trades(self, request: web.Request) -> web.Response:
        p = await read_params(request)
        spec = p.symbol(self.venue.specs)
        limit = p.int("limit", default=500, lo=1, hi=1000) or 500
        tape = self.venue.served(spec.symbol)
        rows = await self.market.offload.run(
            lambda: wire.rest_trades(spec, tape.trades_recent(limit)), gone=client_gone(request)
        )
        return json_response(rows)

    async def historical_trades(self, request: web.Request) -> web.Response:
        p = await read_params(request)
        spec = p.symbol(self.venue.specs)
        limit = p.int("limit", default=500, lo=1, hi=1000) or 500
        from_id = p.int("fromId")
        tape = self.venue.served(spec.symbol)

        def page() -> list:
            trades = tape.trades_recent(limit) if from_id is None else tape.trades_from_id(from_id, limit)
            return wire.rest_trades(spec, trades)

        return json_response(await self.market.offload.run(page, gone=client_gone(request)))

    async def ticker_price(self, request: web.Request) -> web.Response:
        p = await read_params(request)
        specs = self.venue.specs
        if p.raw("symbol") and p.raw("symbols"):
            raise BinanceError(*OPTIONAL_COMBINATION)
        if p.raw("symbol"):
            spec = p.symbol(specs)
            return json_response(self._price(spec.symbol))
        chosen = p.symbols(specs) or list(specs.values())
        return json_response([self._price(s.symbol) for s in chosen])

    def _price(self, symbol: str) -> dict[str, str]:
        tape = self.market.tapes[symbol]
        return {"symbol": symbol, "price": wire.fmt(tape.last_price(), tape.spec.price_dp)}

    async def depth(self, request: web.Request) -> web.Response:
        p = await read_params(request)
        spec = p.symbol(self.venue.specs)
        limit = min(p.int("limit", default=100, lo=1) or 100, 5000)
        tape = self.market.tapes[spec.symbol]
        update_id = tape.last_trade_id() or 0
        bids, asks = book(tape.last_price(), limit, spec.symbol, update_id, spec.qty_scale)
        pdp, qdp = spec.price_dp, spec.qty_dp
        return json_response(
            {
                "lastUpdateId": update_id,
                "bids": [[wire.fmt(px, pdp), wire.fmt(q, qdp)] for px, q in bids],
                "asks": [[wire.fmt(px, pdp), wire.fmt(q, qdp)] for px, q in asks],
            }
        )


def book(last: int, levels: int, symbol: str, update_id: int, qty_scale: int) -> tuple[list, list]:
    """A plausible order book around ``last``: one-tick spread, thinning steps, heavy-tailed sizes."""
    rng = np.random.default_rng([update_id % 2**63, sum(symbol.encode())])
    gaps = rng.geometric(0.6, size=(2, levels))
    gaps[:, 0] = 1  # best bid at the last price, best ask one tick above: bookTicker shows the same
    depth_ticks = np.cumsum(gaps, axis=1)
    sizes = np.maximum(1, (rng.pareto(1.3, size=(2, levels)) + 0.05) * qty_scale * 0.2).astype(np.int64)
    bids = [(last - int(d) + 1, int(q)) for d, q in zip(depth_ticks[0], sizes[0], strict=True)]
    asks = [(last + int(d), int(q)) for d, q in zip(depth_ticks[1], sizes[1], strict=True)]
    return [b for b in bids if b[0] > 0], asks
