"""One exchange socket of a stream, carrying its share of the symbols: connect, subscribe, read, reconnect forever.

A watchdog judges the connection, not the trades: a quiet market is not a dead socket. Anything the server sends
is a sign of life (a trade, a heartbeat, a ping of its own, a pong to ours), noted as the bytes arrive. A socket
silent for a third of ``stall_seconds`` is pinged (on an exchange whose ``liveness`` says it answers pings), again
every third while the silence lasts; one that has said nothing at all for ``stall_seconds`` is dead and is
replaced. So a socket that is alive is never reconnected however long nothing trades, and a dead one (no pong,
no heartbeat) still is within about ``stall_seconds``. Reconnects back off exponentially with jitter (reset after a
successful connect) and never give up; the socket is renewed before Binance's 24-hour cut. A requested drop
(``drop``) takes the socket down as an outage would. Each frame goes to ``on_frame`` on the event loop; the socket
is never blocked by storage or REST work, which run in threads of their own.

The socket's symbols may change while it runs (``add``, ``remove``): an open socket is sent the venue's subscribe or
unsubscribe messages for the difference, a socket connecting takes the new set. Everything sent on it (those
messages, pings, replies) goes through its message pacer, under the venue's per-socket rate; every connect, first or
again, waits for the venue's connection pacer (``pacing``). A socket left with no symbol closes and ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI, WebSocketException

from .. import metrics
from ..exchanges.base import StreamAdapter
from ..exchanges.registry import venue
from ..exchanges.retry import backoff_delay
from ..models import Feed
from .config import StreamConfig
from .pacing import Pacer, connection_pacer, message_pacer

log = logging.getLogger(__name__)
PING_SEND_SECONDS = 1.0  # a ping that cannot even be written this soon is left to the silence rule
MIN_PING_SECONDS = 0.25  # at most 4 pings a second (and the message pacer holds every message sent)
PACER_LOG_SECONDS = 1.0  # a connect held longer than this by the connection pacer is logged


class HeardConnection(ClientConnection):
    """A client connection that notes when the server was last heard from (``heard_at``, monotonic seconds): any
    bytes count, data frames, heartbeats, pings and pongs alike, as they arrive and before they are parsed
    (once per read from the socket, not per frame)."""

    heard_at = 0.0

    def data_received(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        super().data_received(data)


class Connection:
    """A socket of ``config.exchange`` through ``feed`` for ``symbols`` (the feed's own by default); ``on_frame``
    takes each frame (and returns what to answer, if anything), ``on_state(state, reason)`` records the socket's
    state (connected, reconnecting), ``stopping`` ends it. ``pacer`` paces what is sent on it, ``connections`` its
    connects (by default the venue's limits)."""

    def __init__(
        self,
        config: StreamConfig,
        feed: StreamAdapter,
        on_frame: Callable[[str | bytes], str | None],
        on_state: Callable[[str, str], Awaitable[None]],
        stopping: asyncio.Event,
        *,
        symbols: tuple[str, ...] | None = None,
        pacer: Pacer | None = None,
        connections: Pacer | None = None,
        name: str = "",
    ) -> None:
        self.config = config
        self.feed = feed
        self.symbols: list[str] = list(feed.symbols if symbols is None else symbols)
        self.name = name or config.exchange
        self.reconnects = 0
        self.connects = 0  # sockets opened
        self._on_frame = on_frame
        self._on_state = on_state
        self._stopping = stopping
        limits = venue(config.exchange).sockets
        self._pacer = pacer or message_pacer(limits)
        self._connections = connections or connection_pacer(config.exchange, limits)
        self._rng = random.Random()
        self._ws: Any = None
        self._told: set[str] = set()  # the symbols the open socket was asked for
        self._outbox: asyncio.Queue[str] | None = None  # what the open socket is to be sent, in order
        self._retired = False  # no symbol left: the socket closes and ``run`` ends
        self._down_until = 0.0  # monotonic time a requested drop lasts until
        self._deaf_from = self._deaf_until = 0.0  # a requested stall: what arrives meanwhile is not heard
        liveness = feed.liveness
        self._pings = liveness.answers_pings
        if not self._pings and (
            liveness.heartbeat_seconds is None or liveness.heartbeat_seconds >= config.stall_seconds
        ):
            log.warning(
                "%s neither answers pings nor sends heartbeats within %g s: a quiet market will look like a dead "
                "socket and be reconnected",
                config.exchange,
                config.stall_seconds,
            )

    @property
    def url(self) -> str:
        """The URL the socket connects to for its symbols now."""
        return self.feed.for_symbols(tuple(self.symbols)).url()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    def add(self, symbols: list[str]) -> None:
        """Carry ``symbols`` too: subscribed on the open socket now (paced), else at the next connect."""
        self.symbols += [s for s in symbols if s not in self.symbols]
        self._sync()

    def remove(self, symbols: list[str]) -> None:
        """Carry ``symbols`` no more: unsubscribed on the open socket now (paced); with none left, closed for good."""
        gone = set(symbols)
        self.symbols = [s for s in self.symbols if s not in gone]
        if not self.symbols:
            self._retired = True
            self.close()
            return
        self._sync()

    def _sync(self) -> None:
        """Queue the messages that make the open socket's subscriptions the symbols it carries."""
        if self._ws is None or self._outbox is None:
            return  # connecting or down: the next connect subscribes the whole set
        wanted = set(self.symbols)
        gone = [s for s in sorted(self._told) if s not in wanted]
        new = [s for s in self.symbols if s not in self._told]
        messages = (self.feed.unsubscribe_from(gone) if gone else []) + (self.feed.subscribe_to(new) if new else [])
        for message in messages:
            self._outbox.put_nowait(message)
        self._told = wanted

    async def _sender(self, ws: HeardConnection, outbox: asyncio.Queue[str]) -> None:
        """Send what is queued for the open socket, in order, each message when the pacer allows it."""
        while True:
            message = await outbox.get()
            await self._pacer.wait()
            await ws.send(message)

    async def _connect_allowed(self) -> bool:
        """Wait for the connection pacer (False: stopping first)."""
        waiting = asyncio.ensure_future(self._connections.wait())
        stopping = asyncio.ensure_future(self._stopping.wait())
        began = time.monotonic()
        await asyncio.wait({waiting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not waiting.done():
            waiting.cancel()
            return False
        if time.monotonic() - began > PACER_LOG_SECONDS:
            log.info("%s: connect held %.1f s by the venue's connection limit", self.name, time.monotonic() - began)
        return True

    async def run(self) -> None:
        """Connect, read, reconnect, until ``stopping`` is set or no symbol is left."""
        attempt = 0
        while not self._stopping.is_set() and not self._retired and self.symbols:
            reason = "closed by the exchange"
            if not await self._connect_allowed():
                return
            share = self.feed.for_symbols(tuple(self.symbols))
            sender: asyncio.Task[None] | None = None
            try:
                # No permessage-deflate: inflating each frame doubled the socket's CPU per frame (4 → 8 µs),
                # which matters more than the bandwidth at 10,000+ frames/s.
                # Keepalive is the watchdog's (ping_interval=None): it pings only a silent socket, and judges the
                # answer together with every other sign of life.
                async with connect(
                    share.url(),
                    ping_interval=None,
                    open_timeout=10,
                    close_timeout=2,
                    max_queue=None,
                    compression=None,
                    create_connection=HeardConnection,
                ) as ws:
                    assert isinstance(ws, HeardConnection)
                    self.connects += 1
                    outbox: asyncio.Queue[str] = asyncio.Queue()
                    for message in share.subscribe():
                        outbox.put_nowait(message)
                    self._ws, self._outbox, self._told = ws, outbox, set(share.symbols)
                    sender = asyncio.create_task(self._sender(ws, outbox))
                    self._sync()  # what changed while it connected
                    attempt = 0
                    log.info("%s connected: %s (%d symbols)", self.name, share.url().split("?")[0], len(share.symbols))
                    await self._on_state(Feed.State.CONNECTED, "")
                    reason = await self._read(ws, sender) or reason
            except (OSError, WebSocketException, InvalidHandshake, InvalidURI) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = self._outbox = None
                if sender is not None:
                    if sender.done() and not sender.cancelled():
                        sender.exception()  # told by the watchdog already
                    sender.cancel()
            if self._stopping.is_set() or self._retired:
                return
            self.reconnects += 1
            metrics.reconnects.labels(self.config.exchange).inc()
            attempt += 1
            delay = max(backoff_delay(attempt, self.config.reconnect, self._rng), self._down_until - time.monotonic())
            if time.monotonic() < self._down_until:
                reason = f"dropped on request ({reason})"
            log.warning("%s: socket down (%s); reconnecting in %.2f s", self.name, reason, delay)
            await self._on_state(Feed.State.RECONNECTING, reason)
            try:
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def _read(self, ws: HeardConnection, sender: asyncio.Task[None]) -> str | None:
        """Frames until the socket closes (None), goes dead or ages out (the reason), or the stream stops. A
        watchdog task judges the socket and pings it when silent (when the pacer allows); a timeout around every
        frame cost a quarter of the parse time. A send that fails (``sender``) closes the socket too."""
        opened = time.monotonic()
        why: list[str] = []
        stall = self.config.stall_seconds

        async def watchdog() -> None:
            ping_after, pinged = max(stall / 3, MIN_PING_SECONDS), opened
            while True:
                await asyncio.sleep(min(0.5, stall / 4))
                now = time.monotonic()
                silent = now - self._heard(ws, opened, now)
                if silent > stall:
                    why.append(f"nothing heard for {stall:g} s: no frame, heartbeat or pong (stalled)")
                    break
                if now - opened > self.config.max_age_seconds:
                    why.append("renewing the socket before the exchange's 24-hour limit")
                    break
                if sender.done():
                    why.append(f"a message could not be sent ({sender.exception()!r:.200})")
                    break
                if self._retired:  # no symbol left (removed while it connected)
                    break
                if self._pings and silent >= ping_after and now - pinged >= ping_after and self._pacer.take():
                    pinged = now
                    if not await self._ping(ws):
                        break
            await ws.close()

        dog = asyncio.create_task(watchdog())
        try:
            async for message in ws:
                if self._stopping.is_set():
                    break
                if self._deaf_until and time.monotonic() < self._deaf_until:
                    continue  # a requested stall: these frames are lost, as on a silent socket
                if (reply := self._on_frame(message)) is not None:
                    self.send(reply)  # an answer the exchange asked for (an application-level pong)
        finally:
            dog.cancel()
        return why[0] if why else None

    def _heard(self, ws: HeardConnection, opened: float, now: float) -> float:
        """When the server was last heard from on ``ws`` (opened at ``opened``); during a requested stall nothing
        it sends counts."""
        heard = max(ws.heard_at, opened)
        return min(heard, self._deaf_from) if now < self._deaf_until else heard

    @staticmethod
    async def _ping(ws: HeardConnection) -> bool:
        """Ask a silent socket whether it is there: its pong, when it comes, is heard like any frame. False when
        the socket is already closed."""
        try:
            async with asyncio.timeout(PING_SEND_SECONDS):
                await ws.ping()  # the pong waiter is not awaited: any answer at all is what counts
        except TimeoutError:
            pass
        except ConnectionClosed:
            return False
        return True

    def drop(self, seconds: float, mode: str = "close") -> None:
        """Take the socket down for ``seconds``, as an outage would: ``close`` it now, or ``stall`` (nothing the
        server sends is heard, frames and pongs alike, until the watchdog gives the socket up). Reconnecting waits
        until the time is over."""
        now = time.monotonic()
        self._down_until = now + seconds
        log.warning("%s: drop requested (%s, %g s)", self.name, mode, seconds)
        if mode == "stall":
            self._deaf_from, self._deaf_until = now, now + seconds
        elif self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    def send(self, message: str) -> None:
        """Send ``message`` on the open socket (a reply the exchange asked for), if there is one (paced)."""
        if self._outbox is not None:
            self._outbox.put_nowait(message)

    def close(self) -> None:
        """Close the open socket now, if there is one (the stream is stopping)."""
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())
