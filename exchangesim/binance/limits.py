"""Request-weight accounting per client address, as Binance does per IP, and the ban of clients that do
not back off.

Weight is counted in fixed windows aligned to the epoch: a minute, as Binance does (``window_ms``; shorter in tests,
which then see the header Binance would send for such a window, ``X-MBX-USED-WEIGHT-5S``). Each client keeps the
weight of its last :data:`KEPT_WINDOWS` windows (``past``), for tests that check how a client paces itself.

A 429 (from the weight limit or an injected fault) or an injected 418 carries Retry-After R: the client must
send nothing for R seconds. Every request it sends before then is a violation; more than ``ban_after``
violations and it is banned (418 on every request) for ``ban_seconds``. A client that waits is never banned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import BinanceError

WINDOW_MS = 60_000
KEPT_WINDOWS = 100
UNITS = (("D", 86_400_000), ("H", 3_600_000), ("M", 60_000), ("S", 1000))


def interval(window_ms: int) -> tuple[str, int]:
    """Binance's name of a window: ``("MINUTE", 1)`` for 60 s, ``("SECOND", 5)`` for 5 s."""
    names = {"D": "DAY", "H": "HOUR", "M": "MINUTE", "S": "SECOND"}
    for letter, ms in UNITS:
        if window_ms % ms == 0:
            return names[letter], window_ms // ms
    raise ValueError(f"a weight window is a whole number of seconds, got {window_ms} ms")


@dataclass(slots=True)
class _Client:
    window: int = 0
    used: int = 0
    backoff_until: int = 0  # ms: a 429/418 told the client to send nothing before this
    violations: int = 0  # requests that came before backoff_until
    banned_until: int = 0
    past: dict[int, int] = field(default_factory=dict)  # window start (ms) -> weight used in it, the latest kept


class WeightLimiter:
    """``X-MBX-USED-WEIGHT-1M`` bookkeeping; 429 past the limit, 418 when a client ignores Retry-After."""

    def __init__(self, limit: int, ban_after: int, ban_seconds: int, window_ms: int = WINDOW_MS) -> None:
        unit, n = interval(window_ms)
        self.window_ms = window_ms
        self.header = f"X-MBX-USED-WEIGHT-{n}{unit[0]}"
        self.per = f"{n} {unit}"
        self.limit = limit
        self.ban_after = ban_after
        self.ban_seconds = ban_seconds
        self.clients: dict[str, _Client] = {}

    def admit(self, client: str, now_ms: int) -> bool:
        """Before anything else is done for a request: raise the 418 of a ban (which this request may start);
        return True when the request is a violation (it came before a Retry-After had passed)."""
        c = self.clients.setdefault(client, _Client())
        if c.banned_until <= now_ms:
            if now_ms >= c.backoff_until:
                c.violations = 0  # the client waited as told
                return False
            c.violations += 1
            if c.violations <= self.ban_after:
                return True
            c.banned_until = c.backoff_until = now_ms + self.ban_seconds * 1000
            c.violations = 0
        retry = math.ceil((c.banned_until - now_ms) / 1000)
        raise BinanceError(
            -1003,
            f"Way too much request weight used; IP banned until {c.banned_until}. "
            "Please use WebSocket Streams for live updates to avoid bans.",
            418,
            {"Retry-After": str(retry), self.header: str(self.used(client, now_ms))},
        )

    def told_to_wait(self, client: str, seconds: int, now_ms: int) -> None:
        """The client was answered 429/418 with Retry-After ``seconds``: nothing from it before then."""
        c = self.clients.setdefault(client, _Client())
        c.backoff_until = max(c.backoff_until, now_ms + seconds * 1000)

    def charge(self, client: str, weight: int, now_ms: int) -> int:
        """Add ``weight``; return the weight used this minute, or raise 429 past the limit as Binance would."""
        c = self.clients.setdefault(client, _Client())
        window = now_ms // self.window_ms
        if c.window != window:
            c.window, c.used = window, 0
        c.used += weight
        c.past[window * self.window_ms] = c.used
        if len(c.past) > KEPT_WINDOWS:
            del c.past[min(c.past)]
        if c.used > self.limit:
            retry = math.ceil(((window + 1) * self.window_ms - now_ms) / 1000)
            self.told_to_wait(client, retry, now_ms)
            raise BinanceError(
                -1003,
                f"Too much request weight used; current limit is {self.limit} request weight per {self.per}. "
                "Please use WebSocket Streams for live updates to avoid polling the API.",
                429,
                {"Retry-After": str(retry), self.header: str(c.used)},
            )
        return c.used

    def used(self, client: str, now_ms: int) -> int:
        c = self.clients.get(client)
        return 0 if c is None or c.window != now_ms // self.window_ms else c.used

    def reset(self) -> None:
        self.clients.clear()
