"""WebSocket consumers (routed by ``live.routing``): the live page's ``/ws/market/<exchange>/<symbol>/`` and the
admin's ``/ws/prices/``.

They relay what the stream process publishes (``markets.live``, ``signals.live``, ``orders.live``) to browsers. A
client first gets a snapshot (feed state, the last candles and trades, recent gaps and signals, and, for staff, the
trading records: open positions of every symbol, recently closed ones and recent orders), then events. Changes to
positions and orders (``orders.update`` on ``orders.live.ORDERS_GROUP``, from the stream's trader or a staff action)
reach staff pages only: anyone else's socket never joins that group, and its snapshot has no ``positions`` or
``orders`` (``"trading": false``), unless ``TRADING_DATA_PUBLIC`` makes them public (:mod:`orders.access`).
Trades are coalesced per client: at most one ``trades`` message every ``TRADES_INTERVAL`` seconds (~10 a second),
holding the trades since the last one (the newest ``TRADES_PER_MESSAGE``) and their count; the first goes out at once.
This is the composition layer: it may read markets, signals and orders together; none of them imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from markets import selectors
from markets.gap_bounds import gap_times
from markets.live import (
    PRICES_GROUP,
    TRADES_PER_MESSAGE,
    candle_data,
    feed_data,
    gap_data,
    market_group,
    trade_data,
)
from markets.places import instrument_places
from markets.venues import KNOWN_EXCHANGES
from orders.access import may_see_trading
from orders.live import ORDERS_GROUP, order_data, position_data
from orders.models import Position
from orders.selectors import position_list, recent_orders, recent_positions
from signals.live import signal_row_data
from signals.selectors import recent_signals

from .payloads import CANDLE, ORDER, POSITION, TRADE, Memo, known, priced, priced_rows

TRADES_INTERVAL = 0.1
NOT_FOUND = 4404  # WebSocket close code (4000-4999 are the application's): no such instrument
RECENT_POSITIONS = 20  # closed ones among the newest positions, besides every open one
RECENT_ORDERS = 50


def snapshot(exchange: str, symbol: str, *, trading: bool = False) -> dict[str, Any] | None:
    """What a new client sees first, or None when the instrument is unknown; the trading records only when
    ``trading`` (the client may see them)."""
    if exchange not in KNOWN_EXCHANGES or not selectors.instrument_exists(exchange=exchange, symbol=symbol):
        return None
    feed = selectors.feed_of(exchange=exchange, symbol=symbol)
    places = instrument_places(exchange, symbol)
    gaps = selectors.gap_list(exchange=exchange, symbol=symbol, kind="trades", limit=20)
    first: dict[str, Any] = {
        "type": "snapshot",
        "exchange": exchange,
        "symbol": symbol,
        "simulated": settings.MARKET_SIMULATED,
        "feed": feed_data(feed, now=timezone.now()) if feed else None,
        "candles": [
            priced(candle_data(c), CANDLE, places) for c in selectors.recent_candles(exchange=exchange, symbol=symbol)
        ],
        "trades": [
            priced(trade_data(t), TRADE, places) for t in selectors.recent_ticks(exchange=exchange, symbol=symbol)
        ],
        "gaps": [gap_data(g, span=gap_times(g)) for g in gaps],
        "signals": [signal_row_data(s) for s in recent_signals(exchange=exchange, symbol=symbol)][::-1],
        "trading": trading,
    }
    if trading:
        memo: Memo = {(exchange, symbol): places}
        first["positions"] = priced_rows([position_data(p) for p in trading_positions()], POSITION, memo)
        first["orders"] = priced_rows([order_data(o) for o in recent_orders(limit=RECENT_ORDERS)], ORDER, memo)
    return first


def trading_positions() -> list[Position]:
    """Every open position (of every mode and symbol), then the recently closed ones."""
    opened = position_list(limit=1000, status=Position.Status.OPEN)[::-1]  # oldest first, every mode
    closed = [p for p in recent_positions(limit=RECENT_POSITIONS) if p.status == Position.Status.CLOSED]
    return opened + closed


class BrowserConsumer(AsyncJsonWebsocketConsumer):
    """A consumer whose browser may leave at any moment. An event relayed in the instant between the socket
    closing and the consumer hearing of it finds Daphne's socket closed (autobahn raises ``Disconnected``): that
    browser is gone, so the event is dropped quietly and the disconnect that follows cleans up as usual."""

    async def send_json(self, content: Any, close: bool = False) -> None:
        with contextlib.suppress(Disconnected):
            await super().send_json(content, close=close)


class MarketConsumer(BrowserConsumer):
    """One (exchange, symbol)'s live events for one browser."""

    async def connect(self) -> None:
        kwargs = self.scope["url_route"]["kwargs"]
        self.exchange, self.symbol = kwargs["exchange"], kwargs["symbol"].upper()
        self.group = market_group(self.exchange, self.symbol)
        self._pending: list[dict[str, Any]] = []
        self._pending_count = 0
        self._next_send = 0.0
        self._sender: asyncio.Task[None] | None = None
        self.trading = may_see_trading(self.scope.get("user"))
        self.places = await database_sync_to_async(instrument_places)(self.exchange, self.symbol)
        self.memo: Memo = {(self.exchange, self.symbol): self.places}
        await self.accept()
        first = await database_sync_to_async(snapshot)(self.exchange, self.symbol, trading=self.trading)
        if first is None:
            await self.send_json({"type": "error", "error": f"unknown instrument {self.exchange}:{self.symbol}"})
            await self.close(code=NOT_FOUND)
            return
        await self.channel_layer.group_add(self.group, self.channel_name)
        if self.trading:
            await self.channel_layer.group_add(ORDERS_GROUP, self.channel_name)
        await self.send_json(first)

    async def disconnect(self, code: int) -> None:
        if self._sender is not None:
            self._sender.cancel()
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.channel_layer.group_discard(ORDERS_GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The page sends nothing but pings; anything else is ignored."""
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "time": content.get("time")})

    async def market_trades(self, event: dict[str, Any]) -> None:
        data = event["data"]
        trades = [priced(t, TRADE, self.places) for t in data["trades"][-TRADES_PER_MESSAGE:]]
        self._pending = (self._pending + trades)[-TRADES_PER_MESSAGE:]
        self._pending_count += data["count"]
        now = time.monotonic()
        if now >= self._next_send:
            await self._send_trades(now)
        elif self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_later(self._next_send - now))

    async def _send_later(self, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._send_trades(time.monotonic())

    async def _send_trades(self, now: float) -> None:
        if not self._pending:
            return
        trades, count, self._pending, self._pending_count = self._pending, self._pending_count, [], 0
        self._next_send = now + TRADES_INTERVAL
        await self.send_json({"type": "trades", "trades": trades, "count": count})

    async def market_candles(self, event: dict[str, Any]) -> None:
        data = event["data"]
        candles = [priced(c, CANDLE, self.places) for c in data.get("candles", [])]
        await self.send_json({"type": "candles", **data, "candles": candles})

    async def market_feed(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "feed", "feed": event["data"]})

    async def market_gap(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "gap", "gap": event["data"]})

    async def market_signals(self, event: dict[str, Any]) -> None:
        await self.send_json({"type": "signals", **event["data"]})

    async def orders_update(self, event: dict[str, Any]) -> None:
        """Positions and orders that changed, of every symbol (``orders.live``); the page merges them by id. Only
        sockets that may see them join the group; the check here keeps it so whatever joined."""
        if not getattr(self, "trading", False):
            return
        data = event["data"]
        positions, orders = data.get("positions", []), data.get("orders", [])
        if known([*positions, *orders], self.memo):
            positions, orders = priced_rows(positions, POSITION, self.memo), priced_rows(orders, ORDER, self.memo)
        else:  # an instrument not seen yet: its places are read from MongoDB, off the event loop
            positions = await database_sync_to_async(priced_rows)(positions, POSITION, self.memo)
            orders = await database_sync_to_async(priced_rows)(orders, ORDER, self.memo)
        await self.send_json({"type": "orders", "positions": positions, "orders": orders})


class PricesConsumer(BrowserConsumer):
    """Every instrument's last price (the admin's instrument list); staff only, at most ~2 messages a second."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_staff:
            await self.close(code=4403)
            return
        self._latest: dict[str, dict[str, Any]] = {}
        self._sender: asyncio.Task[None] | None = None
        self.memo: Memo = {}
        await self.accept()
        await self.channel_layer.group_add(PRICES_GROUP, self.channel_name)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "_sender", None) is not None:
            self._sender.cancel()
        await self.channel_layer.group_discard(PRICES_GROUP, self.channel_name)

    async def prices_update(self, event: dict[str, Any]) -> None:
        data = event["data"]
        self._latest[f"{data['exchange']}:{data['symbol']}"] = data
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_later())

    async def _send_later(self) -> None:
        await asyncio.sleep(0.5)
        prices, self._latest = list(self._latest.values()), {}
        if known(prices, self.memo):
            prices = priced_rows(prices, TRADE, self.memo)
        else:  # an instrument not seen yet: its places are read from MongoDB, off the event loop
            prices = await database_sync_to_async(priced_rows)(prices, TRADE, self.memo)
        await self.send_json({"type": "prices", "prices": prices})
