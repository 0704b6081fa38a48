"""The exchanges' waits shared by the processes of this host through Redis (:class:`RedisWaits`), for the limiters of
:mod:`markets.exchanges.limiter`; :mod:`markets.venues` installs it with :func:`redis_waits`.

Binance bans per IP address, so a Retry-After told to the stream holds the Celery worker and the web too. Each venue
has one key, ``tradingsite:exchange-wait:<exchange>@<host>``, holding the Unix time no request goes to it before; it
expires at that time. A later time replaces an earlier one, never the reverse (one Lua script: compare and set).

Redis is the cache's (``CACHES["default"]``: database 1 of ``REDIS_URL`` unless ``CACHE_REDIS_URL`` names another),
asked with a short timeout (:data:`TIMEOUT_SECONDS`). When it fails, reads answer None and writes are dropped, the
failure is logged once, and Redis is not asked again for :data:`RETRY_SECONDS`: each process keeps to its own waits
until it is back (logged too). A request never waits on Redis longer than the timeout.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

PREFIX = "tradingsite:exchange-wait:"
TIMEOUT_SECONDS = 0.1  # Redis is on this host or next to it: an answer takes well under a millisecond
RETRY_SECONDS = 5.0  # after a failure, how long Redis is left alone

# KEYS[1]: the venue's key; ARGV[1]: until (Unix seconds); ARGV[2]: milliseconds until then. Keeps the later time.
EXTEND = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
    redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
    return 1
end
return 0
"""


class RedisWaits:
    """A :class:`markets.exchanges.limiter.SharedWaits` on the Redis at ``url``; never raises (see the module
    docstring). Thread-safe (redis-py's pool)."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT_SECONDS, retry_after: float = RETRY_SECONDS) -> None:
        self.url = url
        self._redis = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._extend = self._redis.register_script(EXTEND)
        self._retry_after = retry_after
        self._down_until = 0.0  # monotonic: Redis failed, leave it alone until then
        self._down = False
        self._lock = threading.Lock()

    def read(self, key: str) -> float | None:
        if self._resting():
            return None
        try:
            raw = self._redis.get(PREFIX + key)
        except RedisError as exc:
            self._failed(exc)
            return None
        self._up()
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    def extend(self, key: str, until: float) -> None:
        ms = int((until - time.time()) * 1000) + 1
        if ms <= 0 or self._resting():
            return
        try:
            self._extend(keys=[PREFIX + key], args=[f"{until:.3f}", ms])
        except RedisError as exc:
            self._failed(exc)
            return
        self._up()

    def forget(self, key: str) -> None:
        try:
            self._redis.delete(PREFIX + key)
        except RedisError as exc:
            self._failed(exc)

    def _resting(self) -> bool:
        return self._down and time.monotonic() < self._down_until

    def _failed(self, exc: RedisError) -> None:
        with self._lock:
            self._down_until = time.monotonic() + self._retry_after
            if self._down:
                return
            self._down = True
        log.warning(
            "exchange waits are not shared with the other processes of this host: Redis failed (%s); each process "
            "keeps to the Retry-After it was told until Redis answers again (asked every %g s)",
            type(exc).__name__ if not str(exc) else exc,
            self._retry_after,
        )

    def _up(self) -> None:
        if not self._down:
            return
        with self._lock:
            if not self._down:
                return
            self._down = False
        log.info("exchange waits are shared through Redis again")


def redis_waits() -> RedisWaits:
    """The store of this deployment: the cache's Redis (see the module docstring)."""
    location = settings.CACHES["default"]["LOCATION"]
    url = location[0] if isinstance(location, list | tuple) else str(location).split(",")[0]
    return RedisWaits(url)
