"""Kraken WebSocket v2 at ``/kraken/v2``: the ``trade`` and ``ohlc`` channels, heartbeats and ping/pong.

On connect the socket gets a ``status`` update. ``subscribe``/``unsubscribe`` are answered with one
acknowledgement per symbol (``success`` false with an ``error`` for a pair the venue does not list, a
repeated subscription or an unknown one); symbols are v2 names (``BTC/USD``). ``trade``: with
``snapshot`` (default false) the latest 50 trades first, then one ``update`` per symbol and engine tick
holding that tick's trades. ``ohlc``: ``interval`` (minutes, default 1) and ``snapshot`` (default true:
the bars REST's OHLC would serve, forgotten history aside), then, on every tick the symbol traded, an
``update`` with the bars those trades touched, as they stand. ``{"channel":"heartbeat"}`` goes out once a
second to a subscribed socket that was sent nothing else in that second. Each socket has a writer task
fed in order, so a slow client holds back no one else. Drops, stalls and corrupted frames come from
``faults``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from .. import streams
from ..engine.aggregate import MINUTE, Agg, combine
from ..engine.market import Emission, now_ms
from ..engine.tape import Tape
from . import wire
from .rest import INTERVALS, MAX_BARS, bar_aggs

if TYPE_CHECKING:
    from .venue import KrakenVenue

VERSION = "2.0.10"
SNAPSHOT_TRADES = 50
HEARTBEAT = '{"channel":"heartbeat"}'
SNAPSHOT_DEFAULT = {"trade": False, "ohlc": True}


def now_iso() -> str:
    return wire.iso(time.time_ns(), 6)


def _compact(data: object) -> str:
    return json.dumps(data, separators=(",", ":"))


@dataclass(eq=False)
class Conn(streams.Socket):
    """One v2 connection and its subscriptions: ``trade`` -> v2 symbols, ``ohlc`` -> (v2 symbol, minutes)."""

    subs: dict[str, set[Any]] = field(default_factory=lambda: {"trade": set(), "ohlc": set()})
    last_sent_ms: int = 0

    def subscribed(self) -> bool:
        return any(self.subs.values())


class RequestError(Exception):
    """A request that cannot be honoured at all; ``str`` goes in the ``error`` of the answer."""


class StreamServer(streams.StreamServer[Conn]):
    """Connections, subscriptions and the fan-out of market ticks."""

    venue: KrakenVenue
    client_noun = "a Kraken client"
    quiet_drop = True

    def __init__(self, venue: KrakenVenue) -> None:
        self._bars: dict[tuple[str, int, int], tuple[int, Agg | None]] = {}  # (tape, step, open) -> whole minutes
        super().__init__(venue)

    def routes(self) -> list[web.RouteDef]:
        return [web.get(f"{self.venue.prefix}{self.venue.ws_path}", self.handle)]

    # -- connection lifecycle -------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.venue.count_request(request.path)
        if self.refusing():
            return web.Response(status=503, text="Service Unavailable")
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)  # no pong in a stall
        await ws.prepare(request)
        return await self.serve(Conn(ws, request))

    def on_open(self, conn: Conn) -> None:
        conn.send([self._status()])

    def _status(self) -> str:
        digest = hashlib.blake2b(f"kraken:{self.market.started_ms}:{self.opened}".encode(), digest_size=8).digest()
        return _compact(
            {
                "channel": "status",
                "type": "update",
                "data": [
                    {
                        "api_version": "v2",
                        "connection_id": int.from_bytes(digest) >> 1,
                        "system": "online",
                        "version": VERSION,
                    }
                ],
            }
        )

    # -- requests -------------------------------------------------------------------------------
    def control(self, conn: Conn, text: str) -> list[str]:
        """The frames answering one client message."""
        time_in = now_iso()
        try:
            msg = json.loads(text)
        except json.JSONDecodeError:
            return [
                _compact({"error": "Malformed request", "success": False, "time_in": time_in, "time_out": now_iso()})
            ]
        if not isinstance(msg, dict):
            return [
                _compact({"error": "Malformed request", "success": False, "time_in": time_in, "time_out": now_iso()})
            ]
        method = msg.get("method")
        tail = {"req_id": msg["req_id"]} if isinstance(msg.get("req_id"), int) else {}
        if method == "ping":
            return [_compact({"method": "pong", **tail, "time_in": time_in, "time_out": now_iso()})]
        try:
            if method not in ("subscribe", "unsubscribe"):
                raise RequestError(f"Method not found: {method!r}")
            return self._subscription(conn, method, msg.get("params"), time_in, tail)
        except RequestError as err:
            return [
                _compact(
                    {
                        "error": str(err),
                        "method": method if isinstance(method, str) else "",
                        "success": False,
                        "time_in": time_in,
                        "time_out": now_iso(),
                        **tail,
                    }
                )
            ]

    def _subscription(self, conn: Conn, method: str, params: Any, time_in: str, tail: dict[str, int]) -> list[str]:
        """One acknowledgement per symbol (and the snapshots of new subscriptions)."""
        if not isinstance(params, dict):
            raise RequestError("Missing field: params")
        channel = params.get("channel")
        if channel not in SNAPSHOT_DEFAULT:
            raise RequestError(f"Channel not supported: {channel!r} (the simulator serves 'trade' and 'ohlc')")
        symbols = params.get("symbol")
        if not isinstance(symbols, list) or not symbols or not all(isinstance(s, str) for s in symbols):
            raise RequestError("Missing field: symbol (a list of pairs such as 'BTC/USD')")
        snapshot = params.get("snapshot", SNAPSHOT_DEFAULT[channel])
        if not isinstance(snapshot, bool):
            raise RequestError("Invalid field: snapshot must be true or false")
        minutes = params.get("interval", 1)
        if channel == "ohlc" and (isinstance(minutes, bool) or minutes not in INTERVALS):
            raise RequestError(f"Invalid field: interval must be one of {list(INTERVALS)}")
        out: list[str] = []
        for v2 in symbols:
            result: dict[str, object] = {"channel": channel}
            if channel == "ohlc":
                result["interval"] = minutes
            if method == "subscribe":
                result["snapshot"] = snapshot
            result["symbol"] = v2
            key = v2 if channel == "trade" else (v2, minutes)
            have = conn.subs[channel]
            error = None
            snap: list[str] = []
            if v2 not in self.venue.by_v2:
                error = f"Currency pair not supported {v2}"
            elif method == "subscribe" and key in have:
                error = "Already subscribed"
            elif method == "unsubscribe" and key not in have:
                error = "Subscription Not Found"
            elif method == "subscribe":
                have.add(key)
                conn.last_sent_ms = now_ms()  # the first heartbeat is due a second after subscribing
                if snapshot:
                    snap = [self._trade_snapshot(v2) if channel == "trade" else self._ohlc_snapshot(v2, minutes)]
            else:
                have.discard(key)
            if error is None:
                out.append(
                    _compact(
                        {
                            "method": method,
                            "result": result,
                            "success": True,
                            "time_in": time_in,
                            "time_out": now_iso(),
                            **tail,
                        }
                    )
                )
            else:
                out.append(
                    _compact(
                        {
                            "error": error,
                            "method": method,
                            "success": False,
                            "symbol": v2,
                            "time_in": time_in,
                            "time_out": now_iso(),
                            **tail,
                        }
                    )
                )
            out.extend(snap)
        return out

    def _trade_snapshot(self, v2: str) -> str:
        symbol = self.venue.by_v2[v2]
        tape = self.venue.tape(symbol)
        data = wire.ws_trades(tape.spec, v2, tape, tape.trades_recent(SNAPSHOT_TRADES))
        return wire.channel_message("trade", "snapshot", data)

    def _ohlc_snapshot(self, v2: str, minutes: int) -> str:
        tape = self.venue.tape(self.venue.by_v2[v2])
        step = minutes * MINUTE
        current = tape.emitted_ms // step * step
        first = max(current - MAX_BARS * step, tape.first_time // step * step)
        data = [
            wire.ws_ohlc(tape.spec, v2, minutes, o, agg, prev)
            for o, agg, prev in bar_aggs(tape, list(range(first, current + step, step)), step)
        ]
        return wire.channel_message("ohlc", "snapshot", data, wire.iso(time.time_ns(), 9))

    # -- fan-out --------------------------------------------------------------------------------
    def on_tick(self, t_ms: int, emissions: list[Emission]) -> None:
        """Trades and touched bars of this tick to every subscriber; heartbeats to the idle ones."""
        if not self.conns:
            return
        wanted_trades = {s for c in self.conns for s in c.subs["trade"]}
        wanted_bars = {s for c in self.conns for s in c.subs["ohlc"]}
        frames: dict[Any, str] = {}
        for e in emissions:
            if e.venue != self.venue.name:
                continue
            tape = self.market.tapes[e.symbol]
            v2 = self.venue.names[tape.spec.symbol].v2
            if v2 in wanted_trades:
                frames[v2] = wire.channel_message("trade", "update", wire.ws_trades(tape.spec, v2, tape, e.trades))
            for sym, minutes in wanted_bars:
                if sym == v2:
                    step = minutes * MINUTE
                    opens = (np.unique(e.trades.times // step) * step).tolist()
                    data = [
                        wire.ws_ohlc(tape.spec, v2, minutes, o, self._live_bar(e.symbol, tape, o, step), 0)
                        for o in opens
                    ]
                    frames[(v2, minutes)] = wire.channel_message("ohlc", "update", data, wire.iso(time.time_ns(), 9))
        for conn in list(self.conns):
            batch = [frames[k] for ch in ("trade", "ohlc") for k in conn.subs[ch] if k in frames]
            if batch:
                conn.last_sent_ms = t_ms
            elif conn.subscribed() and t_ms - conn.last_sent_ms >= 1000:
                conn.last_sent_ms = t_ms
                batch = [HEARTBEAT]
            if batch:
                self.deliver(conn, batch)

    def _live_bar(self, key: str, tape: Tape, open_ms: int, step: int) -> Agg | None:
        """The bar opening at ``open_ms`` as it stands; its whole minutes are combined once a minute (a
        15-day bar would otherwise combine thousands of minutes every tick)."""
        minute = tape.emitted_ms // MINUTE * MINUTE
        cached = self._bars.get((key, step, open_ms))
        if cached is None or cached[0] != minute:
            if len(self._bars) > 256:
                self._bars.clear()
            whole = range(open_ms, min(minute, open_ms + step), MINUTE)
            cached = (minute, combine([tape.minute_agg(m) for m in whole]))
            self._bars[(key, step, open_ms)] = cached
        if minute >= open_ms + step:
            return cached[1]
        return combine([cached[1], tape.minute_agg(minute)])
