"""The request-weight budget of one venue, spent to the full without a 429. No Django here.

Binance counts the weight of every request of an address in fixed windows aligned to the epoch (a minute: the
count starts again at each whole minute), reports the count on every answer (``X-MBX-USED-WEIGHT-1M``: the
header names the window, ``-<n><S|M|H|D>``) and answers 429 past the limit (6,000 a minute, from exchangeInfo's
``rateLimits``). A requester that sends one request at a time and waits for the next window only once the reported
count nears the limit leaves part of the budget unused, and several requesters at once could all pass such a
check and overshoot together. :class:`WeightBudget` reserves each request's weight before it is sent instead:

- :meth:`WeightBudget.take` reserves ``cost`` in the current window when ``used + cost <= cap`` (the limit less
  :data:`RESERVE` of it, left to the host's other requesters), else sleeps to the next window's start (plus
  :data:`EDGE_MARGIN` for clock skew) and tries again;
- :meth:`WeightBudget.settle` ends a reservation with the count the answer reported, which raises ``used`` when
  others of this address spent weight too (never lowers it: requests still in flight are not in it yet);
- when a window starts, the weight of the requests still in flight is carried into it (the exchange may count them
  there).

One budget per venue and process (:func:`budget_for`), shared by every thread, so a few requesters at once (the
pipelined pages of a backfill) spend it together. It keeps no Retry-After: that is the venue's limiter
(:mod:`markets.exchanges.limiter`), which every request still passes.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .limiter import Announce, venue_key

log = logging.getLogger(__name__)

RESERVE = 0.01  # of the limit (rounded down), never reserved here: room for the host's other requesters
EDGE_MARGIN = 0.25  # seconds past a window's start before its budget is used: clock skew between us and Binance
UNITS = {"S": 1, "M": 60, "H": 3600, "D": 86400}
USED_WEIGHT = re.compile(r"x-mbx-used-weight-(\d+)([smhd])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Ticket:
    """A reservation: ``cost`` weight in window number ``window`` (Unix time // window seconds)."""

    cost: int
    window: int


def reported_weight(headers: Mapping[str, str] | None) -> tuple[int, int] | None:
    """``(used, window seconds)`` from an answer's ``X-MBX-USED-WEIGHT-<n><unit>`` header, None without one."""
    for name, value in (headers or {}).items():
        found = USED_WEIGHT.fullmatch(name)
        if found and str(value).isdigit():
            return int(value), int(found.group(1)) * UNITS[found.group(2).upper()]
    return None


class WeightBudget:
    """The weight one venue allows per window (see the module docstring). Thread-safe."""

    def __init__(
        self,
        exchange: str,
        limit: int,
        window: int = 60,
        *,
        clock: Callable[[], float] = time.time,
        reserve: float = RESERVE,
        margin: float = EDGE_MARGIN,
    ) -> None:
        self.exchange = exchange
        self._clock, self._reserve, self._margin = clock, reserve, margin
        self._lock = threading.Lock()
        self.limit, self.window = limit, window
        self._current = -1  # the window ``used`` counts
        self.used = 0  # weight reserved or reported in the current window
        self._flying = 0  # weight of requests sent and not answered yet

    @property
    def cap(self) -> int:
        """The most this process reserves in one window."""
        return max(1, self.limit - math.floor(self.limit * self._reserve))

    def learn(self, *, limit: int | None = None, window: int | None = None) -> None:
        """The venue's limit and window, as its exchangeInfo or a header tells them."""
        with self._lock:
            if limit is not None and limit > 0:
                self.limit = limit
            if window is not None and window > 0 and window != self.window:
                self._switch(window)

    def take(self, cost: int, sleep: Callable[[float], object], announce: Announce | None = None) -> Ticket:
        """Reserve ``cost`` in the current window, sleeping to the next one first when it has no room."""
        while True:
            with self._lock:
                now = self._clock()
                self._roll(now)
                if self.used + cost <= self.cap or self.used == self._flying == 0:
                    self.used += cost
                    self._flying += cost
                    return Ticket(cost, self._current)
                seconds = (self._current + 1) * self.window - now + self._margin
                reason = f"request weight {self.used} of {self.limit} used this window ({self.window} s)"
            log.debug("waiting %.2f s: %s", seconds, reason)
            if announce is not None:
                announce(seconds, reason)
            sleep(seconds)

    def settle(self, ticket: Ticket, reported: tuple[int, int] | None) -> None:
        """The request of ``ticket`` was answered (or failed) with ``reported`` (:func:`reported_weight`)."""
        with self._lock:
            self._flying = max(0, self._flying - ticket.cost)
            if reported is None:
                return
            used, window = reported
            switched = window != self.window
            if switched:  # the exchange counts over another window than we thought
                self._switch(window)
            if switched or ticket.window == self._current:
                self.used = max(self.used, used)

    def _switch(self, window: int) -> None:
        """Count over ``window`` seconds from now on, keeping what is counted (an over-count only waits)."""
        self.window, self._current = window, int(self._clock() // window)

    def _roll(self, now: float) -> None:
        current = int(now // self.window)
        if current != self._current:
            self._current, self.used = current, self._flying


# -- the process's budgets -------------------------------------------------------------------------------------

_budgets: dict[str, WeightBudget] = {}
_lock = threading.Lock()


def budget_for(exchange: str, base_url: str, limit: int, window: int = 60) -> WeightBudget:
    """The process's one budget of ``exchange`` at ``base_url``'s host (made on first use with ``limit`` and
    ``window``; what it learned since is kept)."""
    key = venue_key(exchange, base_url)
    with _lock:
        budget = _budgets.get(key)
        if budget is None:
            budget = _budgets[key] = WeightBudget(exchange, limit, window)
        return budget


def reset() -> None:
    """Forget every budget of the process (tests)."""
    with _lock:
        _budgets.clear()
