"""The Coinbase Exchange feed at ``/coinbase/ws``: ``matches`` and ``heartbeat`` channels.

A socket must subscribe within ``subscribe_timeout`` seconds (5 on Coinbase) or it gets an error and
is closed. Subscribing to ``matches`` sends the product's latest trade as ``last_match``, then a
``match`` for every trade; ``heartbeat`` sends, every second per product, the last trade id. Each
socket has a writer task fed in order (replies, then trades and heartbeats as the market ticks), so
a slow client holds back no one else. Drops, stalls and corrupted frames come from ``faults``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import streams
from ..engine.market import Emission
from . import wire
from .rest import json_response

if TYPE_CHECKING:
    from .venue import CoinbaseVenue

CHANNELS = ("matches", "heartbeat")


@dataclass(eq=False)
class Feed(streams.Socket):
    """One feed connection and its subscriptions (channel -> products)."""

    subs: dict[str, list[str]] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    last_heartbeat_ms: int = 0


class SubscribeError(Exception):
    """A subscribe or unsubscribe that cannot be honoured; ``reason`` goes in the error message."""


class FeedServer(streams.StreamServer[Feed]):
    """Connections, subscriptions and the fan-out of market ticks."""

    venue: CoinbaseVenue
    client_noun = "a feed client"

    def routes(self) -> list[web.RouteDef]:
        return [web.get(f"{self.venue.prefix}{self.venue.ws_path}", self.handle)]

    # -- connection lifecycle -------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.venue.count_request(request.path)
        if self.refusing():
            return json_response({"message": "Service Unavailable"}, status=503)
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)  # no pong in a stall
        await ws.prepare(request)
        conn = Feed(ws, request)
        return await self.serve(conn, self._deadline(conn))

    async def _deadline(self, conn: Feed) -> None:
        """Close a socket that has not subscribed in time."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(conn.subscribed.wait(), self.venue.config.subscribe_timeout)
            return
        self.venue.faults.count("coinbase_subscribe_timeout")
        conn.send(
            [
                wire.error(
                    "Failed to subscribe",
                    "You must subscribe to a channel within "
                    f"{self.venue.config.subscribe_timeout:g} seconds of connecting",
                )
            ]
        )
        conn.queue.put_nowait(streams.CloseAfter(1008, b"subscribe timeout"))  # once the error has gone out

    # -- subscriptions --------------------------------------------------------------------------
    def control(self, conn: Feed, text: str) -> list[str]:
        """The frames answering one client message: ``subscriptions`` (and ``last_match`` per product newly
        subscribed to matches), or an ``error``."""
        try:
            msg = json.loads(text)
        except json.JSONDecodeError as exc:
            return [wire.error("Malformed JSON", str(exc))]
        try:
            if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
                kind = msg.get("type") if isinstance(msg, dict) else None
                raise SubscribeError(f"{kind!r} is not a valid type; expected 'subscribe' or 'unsubscribe'")
            wanted = self._wanted(msg)
        except SubscribeError as err:
            return [wire.error("Failed to subscribe", str(err))]
        new_matches: list[str] = []
        for channel, products in wanted.items():
            have = conn.subs.setdefault(channel, [])
            if msg["type"] == "subscribe":
                added = [p for p in products if p not in have]
                have.extend(added)
                if channel == "matches":
                    new_matches.extend(added)
            else:
                conn.subs[channel] = [p for p in have if p not in products] if products else []
        conn.subs = {c: ps for c, ps in conn.subs.items() if ps}
        if msg["type"] == "subscribe":
            conn.subscribed.set()
        reply = json.dumps(
            {"type": "subscriptions", "channels": [{"name": c, "product_ids": ps} for c, ps in conn.subs.items()]},
            separators=(",", ":"),
        )
        return [reply, *(f for p in new_matches for f in self._last_match(p))]

    def _wanted(self, msg: dict[str, Any]) -> dict[str, list[str]]:
        """Channel -> products of a subscribe/unsubscribe (products of a channel object, else the top-level
        ``product_ids``); an unsubscribe naming no product means the whole channel."""
        top = msg.get("product_ids", [])
        channels = msg.get("channels")
        if not isinstance(top, list) or not all(isinstance(p, str) for p in top):
            raise SubscribeError("product_ids must be a list of product ids")
        if not isinstance(channels, list) or not channels:
            raise SubscribeError("No channels provided")
        wanted: dict[str, list[str]] = {}
        for ch in channels:
            name, products = (
                (ch, top)
                if isinstance(ch, str)
                else ((ch.get("name"), ch.get("product_ids", top)) if isinstance(ch, dict) else (None, None))
            )
            if name not in CHANNELS:
                raise SubscribeError(f"{name} is not a valid channel")
            if not isinstance(products, list) or (not products and msg["type"] == "subscribe"):
                raise SubscribeError(f"No product ids provided for channel {name}")
            for p in products:
                if p not in self.venue.specs:
                    raise SubscribeError(f"{p} is not a valid product")
            wanted.setdefault(name, []).extend(p for p in products if p not in wanted.get(name, []))
        return wanted

    def _last_match(self, product: str) -> list[str]:
        tape = self.market.tapes[self.venue.key(product)]
        last = tape.trades_recent(1)
        return wire.matches(tape.spec, last, "last_match") if len(last) else []

    # -- fan-out --------------------------------------------------------------------------------
    def on_tick(self, t_ms: int, emissions: list[Emission]) -> None:
        """Matches of this tick's trades, then heartbeats that are due, to every subscriber."""
        if not self.conns:
            return
        frames: dict[str, list[str]] = {}
        wanted = {p for c in self.conns for p in c.subs.get("matches", ())}
        for e in emissions:
            if e.venue == self.venue.name:
                spec = self.market.tapes[e.symbol].spec
                if spec.symbol in wanted:
                    frames[spec.symbol] = wire.matches(spec, e.trades)
        for conn in list(self.conns):
            batch = [f for p in conn.subs.get("matches", ()) for f in frames.get(p, ())]
            if conn.subs.get("heartbeat") and t_ms - conn.last_heartbeat_ms >= 1000:
                conn.last_heartbeat_ms = t_ms
                batch.extend(self._heartbeat(p, t_ms) for p in conn.subs["heartbeat"])
            if batch:
                self.deliver(conn, batch)

    def _heartbeat(self, product: str, t_ms: int) -> str:
        return wire.heartbeat(product, self.market.tapes[self.venue.key(product)].last_trade_id(), t_ms)
