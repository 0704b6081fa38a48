"""Binance market streams: ``/ws/<stream>``, ``/ws/...`` + SUBSCRIBE, ``/stream?streams=a/b``.

Each connection has a writer task fed by the market's ticks, so one slow client never holds the
others back; pings go out every ``ping_interval`` and a connection whose pong does not come back
within ``pong_timeout`` is closed, as is one older than ``max_connection_age``. A client's ping is
answered with its pong, except during a stall, when the socket answers nothing (no data, no ping,
no pong, no reply), as a dead TCP connection would.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .. import streams
from ..engine.aggregate import DAY, INTERVAL_MS, interval_floor, interval_next
from ..engine.market import Emission, now_ms
from . import wire

if TYPE_CHECKING:
    from .venue import BinanceVenue

log = logging.getLogger(__name__)

_STREAM = re.compile(r"([a-z0-9]+)@(trade|aggTrade|bookTicker|miniTicker|kline_(\w+))")
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
# Python's json error messages in the words of Binance's parser (serde_json), for code 3 replies
_JSON_ERRORS = {
    "Expecting value": "expected value",
    "Expecting property name enclosed in double quotes": "key must be a string",
    "Expecting ':' delimiter": "expected `:`",
    "Extra data": "trailing characters",
    "Invalid \\escape": "invalid escape",
    "Unterminated string starting at": "EOF while parsing a string",
}


def normalize_stream(name: str) -> str | None:
    """A valid stream name with its symbol lower-cased, or None."""
    if not isinstance(name, str):
        return None
    sym, _, kind = name.partition("@")
    candidate = f"{sym.lower()}@{kind}"
    m = _STREAM.fullmatch(candidate)
    if not m or (m.group(3) is not None and m.group(3) not in INTERVAL_MS):
        return None
    return candidate


@dataclass(eq=False)
class Conn(streams.Socket):
    """One market-stream connection; its queue holds batches of (stream, payload)."""

    combined: bool
    subs: list[str] = field(default_factory=list)
    opened: float = field(default_factory=time.monotonic)
    unanswered_since: float | None = None
    ping_payloads: deque[bytes] = field(default_factory=lambda: deque(maxlen=8))
    incoming: deque[float] = field(default_factory=deque)


@dataclass(slots=True)
class _KlineState:
    open_ms: int
    last_push_ms: int = 0


class StreamServer(streams.StreamServer[Conn]):
    """Connections, subscriptions and the fan-out of every market tick."""

    venue: BinanceVenue

    def __init__(self, venue: BinanceVenue) -> None:
        self.cfg = venue.config
        self._klines: dict[str, _KlineState] = {}
        self._last_mini_ms = 0
        super().__init__(venue)

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/ws", self.handle), web.get("/ws/{tail:.*}", self.handle), web.get("/stream", self.handle)]

    # -- connection lifecycle -------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        venue = self.venue
        venue.count_request(request.path)
        if self.refusing():
            return web.json_response({"code": -1003, "msg": "Connections are refused for now."}, status=503)
        if request.path == "/stream":
            combined = True
            names = [n for n in request.query.get("streams", "").split("/") if n]
        else:
            combined = False
            tail = request.match_info.get("tail", "")
            names = [n for n in tail.split("/") if n] if tail else []
        streams = [s for s in (normalize_stream(n) for n in names) if s]
        # /ws/<anything> without a stream name is an empty connection (ccxt opens /ws/0); a name that
        # looks like a stream but is not one is refused, as on /stream.
        named = names if request.path == "/stream" else [n for n in names if "@" in n or n.startswith("!")]
        if (request.path == "/stream" and not streams) or any(normalize_stream(n) is None for n in named):
            return web.json_response({"code": 2, "msg": "Invalid request: invalid stream name"}, status=400)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Conn(ws, request, combined, subs=list(dict.fromkeys(streams))[: self.cfg.ws_max_streams])
        for s in conn.subs:
            self._subscribed(s)
        return await self.serve(conn, self._keepalive(conn))

    async def _reader(self, conn: Conn) -> None:
        async for msg in conn.ws:
            # A pong answering our own ping is not counted: Binance counts it, but at its 20 s ping interval
            # that is negligible, while a test-sized ping_interval would otherwise eat the whole budget.
            counted = msg.type in (WSMsgType.TEXT, WSMsgType.PING, WSMsgType.BINARY) or (
                msg.type == WSMsgType.PONG and msg.data not in conn.ping_payloads
            )
            if counted and not self._within_rate(conn):
                log.info("closing a connection that sent more than %s messages/s", self.cfg.ws_max_incoming_per_s)
                await conn.ws.close(code=1008, message=b"Too many requests")
                return
            if msg.type == WSMsgType.TEXT:
                reply = self.control(conn, msg.data)
                if reply is not None and not self.stalled():  # a stalled socket answers nothing
                    await conn.ws.send_str(json.dumps(reply, separators=(",", ":")))
            elif msg.type == WSMsgType.PING:
                if not self.stalled():
                    await conn.ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                if msg.data in conn.ping_payloads:
                    conn.unanswered_since = None
                    conn.ping_payloads.clear()
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    def _within_rate(self, conn: Conn) -> bool:
        t = time.monotonic()
        conn.incoming.append(t)
        while conn.incoming and conn.incoming[0] < t - 1:
            conn.incoming.popleft()
        return len(conn.incoming) <= self.cfg.ws_max_incoming_per_s

    async def _keepalive(self, conn: Conn) -> None:
        """Ping every ping_interval; close on a missing pong or at the connection age limit."""
        cfg = self.cfg
        step = max(0.05, min(cfg.ping_interval, cfg.pong_timeout, cfg.max_connection_age) / 4)
        next_ping = time.monotonic() + cfg.ping_interval
        while not conn.ws.closed:
            await asyncio.sleep(step)
            t = time.monotonic()
            if self.stalled():
                conn.unanswered_since = None
                next_ping = t + cfg.ping_interval
                continue
            if t - conn.opened >= cfg.max_connection_age:
                await conn.ws.close(code=1000, message=b"Connection lifetime reached")
                return
            if conn.unanswered_since is not None and t - conn.unanswered_since >= cfg.pong_timeout:
                self.venue.faults.count("ws_pong_timeouts")
                await conn.ws.close(code=1008, message=b"Pong timeout")
                return
            if t >= next_ping:
                payload = str(now_ms()).encode()
                conn.ping_payloads.append(payload)
                if conn.unanswered_since is None:
                    conn.unanswered_since = t
                await conn.ws.ping(payload)
                next_ping = t + cfg.ping_interval

    def render(self, conn: Conn, batch: list[tuple[str, str]]) -> list[str]:
        """Payloads as they go out: wrapped with their stream name on a combined connection."""
        return [f'{{"stream":"{s}","data":{p}}}' if conn.combined else p for s, p in batch]

    # -- control messages -----------------------------------------------------------------------
    def control(self, conn: Conn, text: str) -> dict[str, object] | None:
        """The reply to one SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS/SET_PROPERTY/GET_PROPERTY."""
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as exc:
            why = _JSON_ERRORS.get(exc.msg, exc.msg.lower())
            return {"code": 3, "msg": f"Invalid JSON: {why} at line {exc.lineno} column {exc.colno}"}
        if not isinstance(msg, dict):
            return {"code": 2, "msg": "Invalid request: expected a JSON object"}
        rid = msg.get("id")
        if not (
            rid is None
            or (isinstance(rid, int) and not isinstance(rid, bool) and -(2**63) <= rid < 2**63)
            or (isinstance(rid, str) and re.fullmatch(r"[A-Za-z0-9]{1,36}", rid))
        ):
            return {
                "code": 2,
                "msg": "Invalid request: request ID must be an unsigned integer or a string of "
                "up to 36 alphanumeric characters",
            }
        method = msg.get("method")
        if not isinstance(method, str):
            return {"code": 2, "msg": "Invalid request: missing field `method`", "id": rid}
        if method not in METHODS:
            return {
                "code": 2,
                "msg": f"Invalid request: unknown variant `{method}`, expected one of "
                + ", ".join(f"`{m}`" for m in METHODS),
                "id": rid,
            }
        params = msg.get("params", [])
        if not isinstance(params, list):
            return {"code": 2, "msg": "Invalid request: invalid type: expected a sequence for `params`", "id": rid}
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            streams = [normalize_stream(p) for p in params]
            if not params or any(s is None for s in streams):
                bad = next((p for p, s in zip(params, streams, strict=True) if s is None), None)
                return {"code": 2, "msg": f"Invalid request: invalid stream name {json.dumps(bad)}", "id": rid}
            if method == "SUBSCRIBE":
                new = [s for s in dict.fromkeys(streams) if s not in conn.subs]  # type: ignore[arg-type]
                if len(conn.subs) + len(new) > self.cfg.ws_max_streams:
                    return {
                        "code": 2,
                        "msg": f"Invalid request: too many streams (max {self.cfg.ws_max_streams})",
                        "id": rid,
                    }
                for s in new:
                    conn.subs.append(s)  # type: ignore[arg-type]
                    self._subscribed(s)  # type: ignore[arg-type]
            else:
                conn.subs = [s for s in conn.subs if s not in streams]
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": list(conn.subs), "id": rid}
        if not params or params[0] != "combined":
            return {"code": 0, "msg": "Unknown property", "id": rid}
        if method == "GET_PROPERTY":
            return {"result": conn.combined, "id": rid}
        if len(params) != 2 or not isinstance(params[1], bool):
            return {"code": 1, "msg": "Invalid value type: expected Boolean", "id": rid}
        conn.combined = params[1]
        return {"result": None, "id": rid}

    def _subscribed(self, stream: str) -> None:
        if "@kline_" in stream and stream not in self._klines:
            interval = stream.split("@kline_", 1)[1]
            self._klines[stream] = _KlineState(interval_floor(now_ms(), interval))

    # -- fan-out --------------------------------------------------------------------------------
    def on_tick(self, t_ms: int, emissions: list[Emission]) -> None:
        """Turn one market tick into frames for every subscriber."""
        if not self.conns:
            self._klines.clear()  # a kline stream subscribed later starts at its current kline
            return
        wanted = {s for c in self.conns for s in c.subs}
        payloads: dict[str, list[str]] = {}
        tapes = self.market.tapes
        for e in emissions:
            if e.venue != "binance":
                continue
            sym = e.symbol.lower()
            spec = tapes[e.symbol].spec
            if f"{sym}@trade" in wanted:
                payloads[f"{sym}@trade"] = wire.ws_trades(spec, e.trades, t_ms)
            if f"{sym}@aggTrade" in wanted:
                payloads[f"{sym}@aggTrade"] = wire.ws_aggs(spec, e.aggs, t_ms)
            if f"{sym}@bookTicker" in wanted:
                # The update id is the last trade id, as depth's lastUpdateId, so the two can be matched.
                uid = int(e.trades.ids[-1])
                last = int(e.trades.prices[-1])
                payloads[f"{sym}@bookTicker"] = [
                    wire.ws_book_ticker(spec, uid, last, last + 1, int(e.trades.qtys[-1]), int(e.trades.qtys[0]))
                ]
        self._kline_payloads(t_ms, wanted, payloads)
        if t_ms - self._last_mini_ms >= 1000:
            self._last_mini_ms = t_ms
            for s in wanted:
                if s.endswith("@miniTicker"):
                    tape = tapes.get(s.split("@", 1)[0].upper())
                    if tape is not None and self.minutes_ready(tape, t_ms - DAY, t_ms + 1):
                        agg = tape.rolling_agg(t_ms - DAY, t_ms + 1)
                        opened = tape.price_before(t_ms - DAY) or (agg.open if agg else tape.last_price())
                        payloads[s] = [wire.ws_mini_ticker(tape.spec, agg, opened, tape.last_price(), t_ms)]
        if not payloads:
            return
        for conn in list(self.conns):
            batch = [(s, p) for s in conn.subs for p in payloads.get(s, ())]
            if batch:
                self.deliver(conn, batch)

    def _kline_payloads(self, t_ms: int, wanted: set[str], payloads: dict[str, list[str]]) -> None:
        for stream in [s for s in self._klines if s not in wanted]:
            del self._klines[stream]
        for stream, st in self._klines.items():
            sym, interval = stream.split("@kline_", 1)
            tape = self.market.tapes.get(sym.upper())
            cur = interval_floor(t_ms, interval)
            if tape is None or not self.minutes_ready(tape, st.open_ms, t_ms + 1):
                continue
            out: list[str] = []
            while st.open_ms < cur:  # the kline (or klines) that ended since the last tick
                nxt = interval_next(st.open_ms, interval)
                agg = tape.kline_agg(st.open_ms, interval)
                prev = tape.price_before(st.open_ms) or tape.last_price()
                out.append(wire.ws_kline(tape.spec, interval, st.open_ms, nxt - 1, agg, prev, True, t_ms))
                st.open_ms, st.last_push_ms = nxt, 0
            push_every = 1000 if interval == "1s" else self.cfg.kline_push_ms
            if t_ms - st.last_push_ms >= push_every:
                agg = tape.kline_agg(cur, interval)
                prev = tape.price_before(cur) or tape.last_price()
                out.append(
                    wire.ws_kline(tape.spec, interval, cur, interval_next(cur, interval) - 1, agg, prev, False, t_ms)
                )
                st.last_push_ms = t_ms
            if out:
                payloads[stream] = out
