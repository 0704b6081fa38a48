"""The exchange's word on waiting, kept for every requester: one limiter per venue. No Django here.

A venue is an exchange at the host its REST requests go to (``binance@api.binance.com``): one host is one IP
address to the exchange, and Binance counts weight and bans per IP. When any requester is answered 429 or 418 with
``Retry-After: R`` (of any length), or 418 without one (a ban: :data:`DEFAULT_BAN_SECONDS`), the venue is blocked
until ``R`` (plus :data:`MARGIN`) from now, and no requester sends to it before then:

- :meth:`VenueLimiter.admit` is asked before every request (:func:`markets.exchanges.retry.call_with_retry` does
  it for the REST adapters, :class:`~markets.exchanges.binance.client.SignedClient` for signed requests). It returns
  at once when nothing blocks, sleeps out a block of at most ``max_wait`` seconds (a background requester), and
  raises :class:`~markets.exchanges.errors.RateLimited` naming the time for a longer one (an interactive request,
  or a requester that waits elsewhere: the stream's gap fill waits on its event loop until ``error.until``);
- :meth:`VenueLimiter.note` takes in a 429/418 and sets ``error.until``.

Between processes of one host (the stream, the Celery worker, the web) the block is shared through a
:class:`SharedWaits` store, installed by the composing layer with :func:`share_through` (Redis:
:mod:`markets.venue_limits`). Every block a process is told of is written there at once; each limiter reads the
venue's entry at most every ``refresh`` seconds and keeps it in between (a few microseconds a request), so another
process's block holds here within ``refresh``. A store that fails answers None and says so once: each process then
keeps to its own blocks until it is back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

from .. import metrics
from .errors import RateLimited

log = logging.getLogger(__name__)

MARGIN = 0.1  # seconds added to every Retry-After: clock granularity never makes a request early
DEFAULT_BAN_SECONDS = 120.0  # a 418 without Retry-After: Binance's first ban lasts two minutes
REFRESH_SECONDS = 0.1  # how long a limiter keeps the shared entry before reading it again
FROM_ANOTHER_PROCESS = "another process of this host was told to wait"
STORED_PRECISION = 0.001  # a store keeps times to the millisecond

Clock = Callable[[], float]
Announce = Callable[[float, str], None]


class SharedWaits(Protocol):
    """Where the processes of one host keep each venue's "blocked until" (Unix seconds). Never raises: a store that
    cannot be reached reads None and writes nothing."""

    def read(self, key: str) -> float | None:
        """The venue's blocked-until time, None when none is kept (or the store is unreachable)."""
        ...

    def extend(self, key: str, until: float) -> None:
        """Keep ``until`` for the venue unless a later time is kept already; it expires at ``until``."""
        ...

    def forget(self, key: str) -> None:
        """Drop the venue's entry (tests, and an operator who knows better)."""
        ...


@dataclass(frozen=True, slots=True)
class Block:
    """No request to the venue before ``until`` (Unix seconds); ``reason`` says who said so, ``status`` how."""

    until: float
    reason: str
    status: int = 429


def venue_key(exchange: str, base_url: str) -> str:
    """``binance@api.binance.com``: the exchange and the host (and port) its REST requests go to."""
    host = urlsplit(base_url).netloc or base_url
    return f"{exchange}@{host}"


def at_utc(t: float) -> str:
    """``12:34:56 UTC``: a Unix time as the logs and messages give it."""
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S UTC")


class VenueLimiter:
    """The blocks of one venue (see the module docstring). Thread-safe: every requester of the process shares it.

    ``shared`` returns the host's store (None: this process only); ``clock`` is Unix time, the same on every process
    of the host (injected in tests).
    """

    def __init__(
        self,
        exchange: str,
        key: str,
        *,
        shared: Callable[[], SharedWaits | None] | None = None,
        clock: Clock = time.time,
        refresh: float = REFRESH_SECONDS,
    ) -> None:
        self.exchange = exchange
        self.key = key
        self._shared = shared if shared is not None else shared_store
        self._clock = clock
        self._refresh = refresh
        self._lock = threading.Lock()
        self._local: Block | None = None  # what a requester of this process was told
        self._remote: Block | None = None  # what the store held when last read
        self._read_at = -math.inf
        self._told = 0.0  # the latest until logged, so each block is logged once

    def note(self, error: RateLimited) -> float | None:
        """Take in a 429/418: block the venue for its Retry-After (a 418 without one for
        :data:`DEFAULT_BAN_SECONDS`) and set ``error.until``. A 429 without Retry-After blocks nobody (its requester
        backs off on its own); returns the time blocked until, or None."""
        seconds = error.retry_after
        if seconds is None and error.banned:
            seconds = DEFAULT_BAN_SECONDS
        if seconds is None:
            return None
        until = self._clock() + seconds + MARGIN
        reason = f"HTTP {error.status}{' (banned)' if error.banned else ''} with Retry-After {seconds:g} s"
        block = self.block(until, reason, error.status)
        error.until = block.until
        return block.until

    def block(self, until: float, reason: str, status: int = 429) -> Block:
        """Block the venue until ``until`` (kept if later than what blocks it already) here and on the store;
        returns what blocks it now."""
        with self._lock:
            if self._local is None or until > self._local.until:
                self._local = Block(until, reason, status)
            current = self._local
        self._tell(current, f"every requester waits ({reason})")
        store = self._store()
        if store is not None:
            store.extend(self.key, current.until)
        return current

    def blocked(self) -> Block | None:
        """What blocks the venue now (this process's block or the host's, the later), None when nothing does."""
        now = self._clock()
        remote = self._read(now)
        local = self._local
        found = [b for b in (local, remote) if b is not None and b.until > now]
        return max(found, key=lambda b: b.until) if found else None

    def admit(self, max_wait: float, sleep: Callable[[float], object], announce: Announce | None = None) -> None:
        """Return when a request may go: at once when nothing blocks, after sleeping out a block that ends within
        ``max_wait`` seconds (``announce(seconds, reason)`` told first); a longer block raises :meth:`refusal`."""
        while (block := self.blocked()) is not None:
            remaining = block.until - self._clock()
            if remaining > max_wait:
                metrics.exchange_requests_held.labels(self.exchange, "refused").inc()
                raise self.refusal(block)
            metrics.exchange_requests_held.labels(self.exchange, "waited").inc()
            if announce is not None:
                announce(remaining, f"{self.exchange} asked us to wait until {at_utc(block.until)}: {block.reason}")
            sleep(remaining)

    def refusal(self, block: Block) -> RateLimited:
        """The RateLimited of a request not sent because ``block`` holds (``retry_after``: whole seconds left)."""
        remaining = max(0.0, block.until - self._clock())
        return RateLimited(
            self.exchange,
            f"no request goes to {self.exchange} until {at_utc(block.until)} ({remaining:.0f} s from now): "
            f"{block.reason}",
            status=block.status,
            retry_after=math.ceil(remaining),
            until=block.until,
        )

    def forget(self) -> None:
        """Drop every block of the venue, here and on the store."""
        with self._lock:
            self._local = self._remote = None
            self._read_at = -math.inf
        store = self._store()
        if store is not None:
            store.forget(self.key)

    def _read(self, now: float) -> Block | None:
        if now - self._read_at < self._refresh:
            return self._remote
        store = self._store()
        until = store.read(self.key) if store is not None else None
        with self._lock:
            self._read_at = now
            if until is None or until <= now:
                self._remote = None
            elif self._remote is None or until != self._remote.until:
                local = self._local
                mine = local is not None and until <= local.until + STORED_PRECISION  # ours, read back
                self._remote = Block(
                    until,
                    local.reason if mine and local else FROM_ANOTHER_PROCESS,
                    local.status if mine and local else 429,
                )
                if not mine:
                    self._tell(self._remote, FROM_ANOTHER_PROCESS)
            return self._remote

    def _tell(self, block: Block, why: str) -> None:
        """Log a block once (a later one again) and show it in the metrics."""
        if block.until <= self._told:
            return
        self._told = block.until
        metrics.exchange_blocked_until.labels(self.exchange).set(block.until)
        seconds = block.until - self._clock()
        log.warning(
            "%s: no request goes to %s until %s (%.0f s): %s",
            self.exchange,
            self.key,
            at_utc(block.until),
            seconds,
            why,
        )

    def _store(self) -> SharedWaits | None:
        return self._shared()


# -- the process's limiters ------------------------------------------------------------------------------------

_limiters: dict[str, VenueLimiter] = {}
_registry_lock = threading.Lock()
_store_factory: Callable[[], SharedWaits | None] | None = None
_store: SharedWaits | None = None
_store_made = False


def limiter_for(exchange: str, base_url: str) -> VenueLimiter:
    """The process's one limiter of ``exchange`` at ``base_url``'s host (made on first use)."""
    key = venue_key(exchange, base_url)
    with _registry_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = _limiters[key] = VenueLimiter(exchange, key)
        return limiter


def share_through(factory: Callable[[], SharedWaits | None] | None) -> None:
    """Share the blocks with the other processes of the host through the store ``factory()`` makes (on first use;
    None: this process only). Called by the composing layer (:mod:`markets.venues`)."""
    global _store_factory, _store, _store_made
    with _registry_lock:
        _store_factory, _store, _store_made = factory, None, False


def shared_store() -> SharedWaits | None:
    """The host's store of blocks, made on first use; None when none is configured or it cannot be made."""
    global _store, _store_made
    if _store_made:
        return _store
    with _registry_lock:
        if not _store_made:
            try:
                _store = _store_factory() if _store_factory is not None else None
            except Exception as exc:  # a misconfigured store must not stop a request: this process keeps its own
                log.warning("exchange waits are kept by this process only: the shared store failed: %s", exc)
                _store = None
            _store_made = True
        return _store


def reset() -> None:
    """Forget every limiter of the process and its entries on the store, and the weight budgets (tests)."""
    from . import weight  # it builds on this module

    weight.reset()
    with _registry_lock:
        limiters = list(_limiters.values())
        _limiters.clear()
    for limiter in limiters:
        limiter.forget()
