"""Request-weight accounting per client address, as Binance does per IP."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import BinanceError

WINDOW_MS = 60_000


@dataclass(slots=True)
class _Client:
    window: int = 0
    used: int = 0
    over: int = 0  # requests answered 429 in this window
    banned_until: int = 0


class WeightLimiter:
    """``X-MBX-USED-WEIGHT-1M`` bookkeeping; 429 past the limit, 418 when a client keeps going."""

    def __init__(self, limit: int, ban_after: int, ban_seconds: int) -> None:
        self.limit = limit
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.clients: dict[str, _Client] = {}

    def charge(self, client: str, weight: int, now_ms: int) -> int:
        """Add ``weight``; return the weight used this minute, or raise 429/418 as Binance would."""
        c = self.clients.setdefault(client, _Client())
        window = now_ms // WINDOW_MS
        if c.window != window:
            c.window, c.used, c.over = window, 0, 0
        if c.banned_until > now_ms:
            retry = math.ceil((c.banned_until - now_ms) / 1000)
            raise BinanceError(
                -1003,
                f"Way too much request weight used; IP banned until {c.banned_until}. "
                "Please use WebSocket Streams for live updates to avoid bans.",
                418, {"Retry-After": str(retry), "X-MBX-USED-WEIGHT-1M": str(c.used)},
            )
        c.used += weight
        if c.used > self.limit:
            c.over += 1
            if c.over > self.ban_after:
                c.banned_until = now_ms + self.ban_seconds * 1000
                return self.charge(client, 0, now_ms)
            retry = math.ceil(((window + 1) * WINDOW_MS - now_ms) / 1000)
            raise BinanceError(
                -1003,
                f"Too much request weight used; current limit is {self.limit} request weight per 1 MINUTE. "
                "Please use WebSocket Streams for live updates to avoid polling the API.",
                429, {"Retry-After": str(retry), "X-MBX-USED-WEIGHT-1M": str(c.used)},
            )
        return c.used

    def used(self, client: str, now_ms: int) -> int:
        c = self.clients.get(client)
        return 0 if c is None or c.window != now_ms // WINDOW_MS else c.used

    def reset(self) -> None:
        self.clients.clear()
