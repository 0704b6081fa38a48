"""Price history for a client that may not spend the exchange's request budget (anyone but staff and the CLI).

:func:`history_read_or_queue` answers from MongoDB only (``get_price_history(fetch=False)``): no exchange is
asked, however wide the range. What is missing, less what the exchange already answered empty (an
unrecoverable Gap), is queued for :func:`markets.tasks.backfill_candles`, one task per UTC day, and each day at
most once per ``HISTORY_BACKFILL_DEDUP_SECONDS``: the request that adds the day's key to the cache (Redis
``SET NX`` with that TTL, :func:`dedup_key`) sends the task, later ones see the key and send nothing; a day that a
running backfill holds (``manage.py backfill``: :mod:`markets.leases.holds`) is left to it. The
answer's ``queued`` lists the missing parts whose day is queued, by this request or an earlier one.

If the cache or the broker cannot be reached nothing is queued (the failure is logged): the answer is the same
MongoDB read, with an empty ``queued``.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import replace
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from . import intervals as iv
from .documents import to_ms
from .history import PriceHistory, get_price_history, unrecoverable_ranges
from .leases.holds import live_holds
from .tasks import backfill_candles

log = logging.getLogger(__name__)
DAY = timedelta(days=1)
# Sending a task must not hold a web request for long when the broker is down.
SEND_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}


def history_read_or_queue(
    symbol: str,
    start: datetime,
    end: datetime,
    interval: str = "1m",
    exchange: str = "binance",
    *,
    queue: bool = True,
    shaped: bool = False,
) -> PriceHistory:
    """``get_price_history`` from MongoDB only; with ``queue`` the missing days are queued for backfill (see the
    module docstring). Raises :class:`markets.history.InvalidRequest` for a bad argument, like it. ``shaped``: the
    candles as output rows (``PriceHistory.rows``)."""
    history = get_price_history(symbol, start, end, interval, exchange, fetch=False, shaped=shaped)
    if not queue or not history.missing:
        return history
    lo, hi = history.missing[0][0], history.missing[-1][1]
    wanted = iv.subtract(history.missing, unrecoverable_ranges(exchange, symbol, lo, hi))
    queued: list[tuple[datetime, datetime]] = []
    for day, parts in by_day(wanted):
        try:
            backfill_queue(exchange=exchange, symbol=symbol, day=day)
        except QueueUnavailable as exc:  # the other days would fail alike: the answer is not held up by them
            log.warning("history backfill of %s %s from %s on not queued: %s", exchange, symbol, day.date(), exc)
            break
        for a, b in parts:  # reported merged: a day's part continues the day before's
            if queued and queued[-1][1] == a:
                queued[-1] = (queued[-1][0], b)
            else:
                queued.append((a, b))
    return replace(history, queued=queued)


def by_day(ranges: list[tuple[datetime, datetime]]) -> list[tuple[datetime, list[tuple[datetime, datetime]]]]:
    """``ranges`` (ordered, half-open) cut at UTC midnights and grouped by the day they fall in."""
    out: list[tuple[datetime, list[tuple[datetime, datetime]]]] = []
    for r0, r1 in ranges:
        t = r0
        while t < r1:
            day = iv.floor(t, "1d")
            part = (t, min(r1, day + DAY))
            if out and out[-1][0] == day:
                out[-1][1].append(part)
            else:
                out.append((day, [part]))
            t = part[1]
    return out


def dedup_key(exchange: str, symbol: str, day: datetime) -> str:
    """The cache key that marks ``day``'s backfill of ``exchange``/``symbol`` as queued."""
    return f"history-backfill:{exchange}:{symbol}:{int(to_ms(day))}"


def backfill_queue(*, exchange: str, symbol: str, day: datetime) -> bool:
    """Queue the 1m candles of ``day`` for backfill unless already queued or held by a running backfill
    (:mod:`markets.leases.holds`: logged, naming the holder); whether this call sent the task.
    :class:`QueueUnavailable` when the cache or the broker cannot be reached."""
    holder = next((h for h in live_holds(connection.database, exchange, symbol) if h.covers_time(day, day + DAY)), None)
    if holder is not None:  # a running backfill fills it (and its candles): a second fill would halve its budget
        log.info("history backfill of %s %s %s not queued: held by %s", exchange, symbol, day.date(), holder.describe())
        return False
    key = dedup_key(exchange, symbol, day)
    try:
        if not cache.add(key, 1, timeout=settings.HISTORY_BACKFILL_DEDUP_SECONDS):
            return False
    except (RedisError, OSError) as exc:
        raise QueueUnavailable(f"the cache cannot be reached ({exc})") from exc
    try:
        args = (exchange, symbol, int(to_ms(day)), int(to_ms(day + DAY)))
        backfill_candles.apply_async(args, retry_policy=SEND_RETRY)
    except (OperationalError, RedisError, OSError) as exc:
        with contextlib.suppress(RedisError, OSError):
            cache.delete(key)  # let a later request try again
        raise QueueUnavailable(f"the broker cannot be reached ({exc})") from exc
    log.info("history backfill of %s %s %s queued", exchange, symbol, day.date())
    return True


class QueueUnavailable(Exception):
    """A backfill could not be queued: the cache or the broker is down."""
