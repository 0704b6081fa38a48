"""Pacing what the stream sends to a venue: at most ``limit`` events in any ``window`` seconds (pure: the clock is
injected, so tests need not wait).

Two pacers keep the stream within a venue's socket rules (``markets.exchanges.registry.SocketLimits``): one per
socket for the messages sent on it (subscribes, unsubscribes, pings, replies: Binance closes a socket sent more than
5 a second), and one per venue, shared by every stream of the process, for the new connections it opens (Binance
allows 300 per 5 minutes per IP); reconnects go through it too, so a storm of them cannot break the rule.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

from ..exchanges.registry import SocketLimits

Clock = Callable[[], float]
JITTER_SECONDS = 0.2  # a message pacer's window is a second and this: what the network may bunch together
Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """At most ``limit`` events in any ``window`` seconds of ``clock`` (a sliding window: the times of the last
    ``limit`` events are kept)."""

    def __init__(self, limit: int, window: float, *, clock: Clock = time.monotonic) -> None:
        if limit < 1 or window <= 0:
            raise ValueError(f"a pacer needs a positive limit and window, got {limit} per {window} s")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: deque[float] = deque(maxlen=limit)

    def delay(self) -> float:
        """How long until one more event keeps within the limit (0.0: now)."""
        if len(self._times) < self.limit:
            return 0.0
        return max(0.0, self._times[0] + self.window - self._clock())

    def take(self) -> bool:
        """Count one event now if the limit allows it (True), else nothing (False)."""
        if self.delay() > 0:
            return False
        self._times.append(self._clock())
        return True

    async def wait(self, sleep: Sleep = asyncio.sleep) -> float:
        """Wait until one more event keeps within the limit, and count it; returns how long it waited."""
        waited = 0.0
        while (delay := self.delay()) > 0:
            await sleep(delay)
            waited += delay
        self._times.append(self._clock())
        return waited


_connections: dict[str, Pacer] = {}


def connection_pacer(exchange: str, limits: SocketLimits) -> Pacer:
    """The pacer of new connections to ``exchange``, one for the whole process (its limit is per IP)."""
    pacer = _connections.get(exchange)
    if pacer is None:
        pacer = _connections[exchange] = Pacer(limits.connections, limits.window_seconds)
    return pacer


def message_pacer(limits: SocketLimits) -> Pacer:
    """A new pacer of the messages sent on one socket: at most ``messages_per_second`` in any second and
    ``JITTER_SECONDS`` (the venue counts arrivals: a burst delayed on the way and the next one not would otherwise
    land in one of its seconds)."""
    return Pacer(limits.messages_per_second, 1.0 + JITTER_SECONDS)
