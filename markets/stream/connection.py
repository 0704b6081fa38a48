"""The exchange socket of one stream: connect, subscribe, read, and reconnect forever.

A watchdog judges the connection, not the trades: a quiet market is not a dead socket. Anything the server sends
is a sign of life (a trade, a heartbeat, a ping of its own, a pong to ours), noted as the bytes arrive. A socket
silent for a third of ``stall_seconds`` is pinged (on an exchange whose ``liveness`` says it answers pings), again
every third while the silence lasts; one that has said nothing at all for ``stall_seconds`` is dead and is
replaced. So a socket that is alive is never reconnected however long nothing trades, and a dead one (no pong,
no heartbeat) still is within about ``stall_seconds``. Reconnects back off exponentially with jitter (reset after a
successful connect) and never give up; the socket is renewed before Binance's 24-hour cut. A requested drop
(``drop``) takes the socket down as an outage would. Each frame goes to ``on_frame`` on the event loop; the socket
is never blocked by storage or REST work, which run in threads of their own.
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
from ..exchanges.retry import backoff_delay
from ..models import Feed
from .config import StreamConfig

log = logging.getLogger(__name__)
PING_SEND_SECONDS = 1.0  # a ping that cannot even be written this soon is left to the silence rule
MIN_PING_SECONDS = 0.25  # at most 4 pings a second: Binance closes a socket sent more than 5 messages a second


class HeardConnection(ClientConnection):
    """A client connection that notes when the server was last heard from (``heard_at``, monotonic seconds): any
    bytes count, data frames, heartbeats, pings and pongs alike, as they arrive and before they are parsed
    (once per read from the socket, not per frame)."""

    heard_at = 0.0

    def data_received(self, data: bytes) -> None:
        self.heard_at = time.monotonic()
        super().data_received(data)


class Connection:
    """The socket of ``config.exchange`` through ``feed``; ``on_frame`` takes each frame, ``on_state(state,
    reason)`` records the feed's state (connected, reconnecting), ``stopping`` ends it."""

    def __init__(
        self,
        config: StreamConfig,
        feed: StreamAdapter,
        on_frame: Callable[[str | bytes], None],
        on_state: Callable[[str, str], Awaitable[None]],
        stopping: asyncio.Event,
    ) -> None:
        self.config = config
        self.feed = feed
        self.url = feed.url()
        self.reconnects = 0
        self._on_frame = on_frame
        self._on_state = on_state
        self._stopping = stopping
        self._rng = random.Random()
        self._ws: Any = None
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

    async def run(self) -> None:
        """Connect, read, reconnect, until ``stopping`` is set."""
        attempt = 0
        while not self._stopping.is_set():
            reason = "closed by the exchange"
            try:
                # No permessage-deflate: inflating each frame doubled the socket's CPU per frame (4 → 8 µs),
                # which matters more than the bandwidth at 10,000+ frames/s.
                # Keepalive is the watchdog's (ping_interval=None): it pings only a silent socket, and judges the
                # answer together with every other sign of life.
                async with connect(
                    self.url,
                    ping_interval=None,
                    open_timeout=10,
                    close_timeout=2,
                    max_queue=None,
                    compression=None,
                    create_connection=HeardConnection,
                ) as ws:
                    assert isinstance(ws, HeardConnection)
                    self._ws = ws
                    for message in self.feed.subscribe():
                        await ws.send(message)
                    attempt = 0
                    log.info("%s connected: %s", self.config.exchange, self.url)
                    await self._on_state(Feed.State.CONNECTED, "")
                    reason = await self._read(ws) or reason
            except (OSError, WebSocketException, InvalidHandshake, InvalidURI) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
            if self._stopping.is_set():
                return
            self.reconnects += 1
            metrics.reconnects.labels(self.config.exchange).inc()
            attempt += 1
            delay = max(backoff_delay(attempt, self.config.reconnect, self._rng), self._down_until - time.monotonic())
            if time.monotonic() < self._down_until:
                reason = f"dropped on request ({reason})"
            log.warning("%s socket down (%s); reconnecting in %.2f s", self.config.exchange, reason, delay)
            await self._on_state(Feed.State.RECONNECTING, reason)
            try:
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def _read(self, ws: HeardConnection) -> str | None:
        """Frames until the socket closes (None), goes dead or ages out (the reason), or the stream stops. A
        watchdog task judges the socket and pings it when silent; a timeout around every frame cost a quarter of
        the parse time."""
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
                if self._pings and silent >= ping_after and now - pinged >= ping_after:
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
                self._on_frame(message)
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
        log.warning("%s: drop requested (%s, %g s)", self.config.exchange, mode, seconds)
        if mode == "stall":
            self._deaf_from, self._deaf_until = now, now + seconds
        elif self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    def send(self, message: str) -> None:
        """Send ``message`` on the open socket (a reply the exchange asked for), if there is one."""
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.send(message))

    def close(self) -> None:
        """Close the open socket now, if there is one (the stream is stopping)."""
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())
