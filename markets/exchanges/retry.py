"""The one retry/back-off helper every adapter uses. No Django here.

- :class:`RateLimited` (429/418): wait exactly the exchange's Retry-After (plus a small margin) and try again;
  a request never goes out before Retry-After has passed. A wait longer than ``max_wait`` is not taken: the
  error is raised at once, saying how long the exchange asked for.
- :class:`ExchangeUnavailable` (5xx, timeouts, refused connections): wait an exponential back-off with full
  jitter (AWS: ``uniform(0, min(max_delay, base_delay * 2**(attempt-1)))``) and try again.
- :class:`BadRequest` and anything else: raised at once.

After ``attempts`` tries the last error is raised (an :class:`ExchangeUnavailable` names the attempts).

Given the venue's ``limiter`` (:mod:`markets.exchanges.limiter`), every attempt first waits out what blocks the
venue (another requester's Retry-After, of this process or another of the host) when it ends within ``max_wait``, and
is not sent at all when it ends later (a RateLimited naming the time); every 429/418 answered blocks the venue.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from .errors import ExchangeError, ExchangeUnavailable, RateLimited
from .limiter import VenueLimiter, at_utc

T = TypeVar("T")
OnWait = Callable[[float, str], None]
log = logging.getLogger(__name__)
_RNG = random.Random()


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. Times in seconds.

    ``attempts`` counts every try, the first included; ``max_wait`` is the longest Retry-After we agree to
    sleep; ``margin`` is added to every Retry-After so that clock granularity never makes us early.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_wait: float = 120.0
    margin: float = 0.1

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_wait < 0 or self.margin < 0:
            raise ValueError("base_delay, max_delay, max_wait and margin must not be negative")


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Seconds to wait after the ``attempt``-th failure (1-based): full jitter, never above ``max_delay``."""
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** min(attempt - 1, 64))
    return rng.uniform(0.0, ceiling)


def next_wait(error: ExchangeError, attempt: int, policy: RetryPolicy, rng: random.Random) -> tuple[float, str]:
    """How long to wait after ``error`` ended the ``attempt``-th try, and why (for ``on_wait``).

    Re-raises ``error`` when it is not worth retrying, when ``attempt`` was the last one, or when the exchange
    asked for a longer wait than ``policy.max_wait``.
    """
    if isinstance(error, RateLimited):
        if error.retry_after is not None and error.retry_after > policy.max_wait:
            until = f"; nothing is sent to it before {at_utc(error.until)}" if error.until is not None else ""
            raise RateLimited(
                error.exchange,
                f"{error.message}; the exchange asked to wait {error.retry_after:g} s, longer "
                f"than the {policy.max_wait:g} s we wait{until}",
                status=error.status,
                retry_after=error.retry_after,
                used_weight=error.used_weight,
                code=error.code,
                until=error.until,
            ) from error
        if attempt >= policy.attempts:
            raise error
        if error.retry_after is not None:
            seconds = error.retry_after + policy.margin
        else:  # Binance always sends Retry-After; without one, wait the back-off ceiling (no jitter)
            seconds = min(policy.max_delay, policy.base_delay * 2.0 ** min(attempt - 1, 64)) + policy.margin
        return seconds, f"rate limited ({error.status}{', banned' if error.banned else ''})"
    if isinstance(error, ExchangeUnavailable):
        if attempt >= policy.attempts:
            raise error.after_attempts(attempt) from error
        reason = f"unavailable: {error.cause} (attempt {attempt} of {policy.attempts})"
        return backoff_delay(attempt, policy, rng), reason
    raise error


def call_with_retry(
    fn: Callable[[], T],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], object] = time.sleep,
    rng: random.Random | None = None,
    on_wait: OnWait | None = None,
    limiter: VenueLimiter | None = None,
) -> T:
    """``fn()``, retried as the module docstring says; ``on_wait(seconds, reason)`` is told of every wait, and
    ``limiter`` (the venue's) admits every attempt and hears of every 429/418."""
    policy = policy or RetryPolicy()
    rng = rng or _RNG
    attempt = 0
    while True:
        attempt += 1
        if limiter is not None:
            limiter.admit(policy.max_wait, sleep, lambda seconds, reason: _announce(seconds, reason, on_wait))
        try:
            return fn()
        except ExchangeError as error:
            if limiter is not None and isinstance(error, RateLimited):
                limiter.note(error)
            seconds, reason = next_wait(error, attempt, policy, rng)
        _announce(seconds, reason, on_wait)
        sleep(seconds)


async def acall_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
    on_wait: OnWait | None = None,
) -> T:
    """The async twin of :func:`call_with_retry`: ``await fn()``, waiting with ``await sleep(seconds)``."""
    policy = policy or RetryPolicy()
    rng = rng or _RNG
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except ExchangeError as error:
            seconds, reason = next_wait(error, attempt, policy, rng)
        _announce(seconds, reason, on_wait)
        await sleep(seconds)


def _announce(seconds: float, reason: str, on_wait: OnWait | None) -> None:
    log.info("waiting %.1f s: %s", seconds, reason)
    if on_wait is not None:
        on_wait(seconds, reason)
