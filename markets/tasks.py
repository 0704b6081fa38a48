"""Celery tasks of market data: the safety net under the live stream (ARCHITECTURE §3).

Beat sends :func:`scan_gaps` every ``SCAN_GAPS_SECONDS`` (60). It looks over the last
``SCAN_GAPS_LOOKBACK_HOURS`` of stored ticks of every (exchange, symbol) for holes in the trade ids and for
closed minutes that have ticks but no closed 1m candle; it records each hole as a ``Gap`` (so
``/api/v1/gaps`` shows it) and queues :func:`backfill_range` per hole and :func:`rebuild_candles` for the
minutes. Storage is idempotent (duplicate ticks are ignored, candles are upserts), so a fill that races the
live stream, a second worker or a manual backfill does no harm.

What the live stream owns is left to it: the open tail after the last stored id, ticks newer than the
settle time (the stream records a hole it has just seen within milliseconds), and holes overlapping a Gap
it is filling right now. What a running backfill holds (``manage.py backfill``, these tasks: a hold in MongoDB,
:mod:`markets.leases.holds`) is left to it too, and logged naming the holder.

The tasks are thin: the scan is ``markets.services.gaps_scan`` (over the arithmetic of ``markets.scan`` and the
reads of ``markets.selectors``), a hole's fill ``markets.backfill.gap_backfill``, a range of candles
``markets.history.get_price_history``. Task names are what Celery sends, so they stay ``markets.tasks.*``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task, shared_task

from .backfill import gap_backfill
from .documents import from_ms, to_ms
from .exchanges.errors import BadRequest, ExchangeError, RateLimited
from .exchanges.retry import RetryPolicy
from .history import get_price_history
from .intervals import count, floor
from .leases.holds import backfill_held
from .listing import instrument_history_fill
from .rebuild import candles_of_minutes
from .scan import summarize
from .services import gaps_scan, scan_config
from .venues import rest_adapter

# gap_backfill and gaps_scan are the services the tasks call, importable from here as before.
__all__ = [
    "backfill_candles",
    "backfill_history",
    "backfill_range",
    "gap_backfill",
    "gaps_scan",
    "rebuild_candles",
    "scan_gaps",
]

log = logging.getLogger(__name__)
# A few quick tries inside a task; a longer outage waits in Celery's back-off, which holds no worker thread.
TASK_REST_POLICY = RetryPolicy(attempts=3, base_delay=0.5, max_delay=5.0)
ONE_MINUTE = timedelta(minutes=1)


# A task that asks an exchange: retried with jittered back-off on its failures (a refused request is not retried),
# acknowledged once done, so a worker that dies mid-fill leaves it queued.
EXCHANGE_TASK: dict[str, Any] = {
    "ignore_result": True,
    "autoretry_for": (ExchangeError,),
    "dont_autoretry_for": (BadRequest,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "acks_late": True,
}


@shared_task(ignore_result=True)
def scan_gaps() -> dict[str, int]:
    """Find holes and missing 1m candles in stored data, queue their fills; returns the counts."""
    scans = gaps_scan(config=scan_config(), now=datetime.now(UTC))
    for s in scans:
        for first_id, last_id, holder in s.holes.held:
            log.info(
                "scan_gaps: %s %s ids %d..%d not queued: held by %s", s.exchange, s.symbol, first_id, last_id, holder
            )
        for first_id, last_id in s.holes.fill:
            backfill_range.delay(s.exchange, s.symbol, first_id, last_id)
        if s.minutes:
            rebuild_candles.delay(s.exchange, s.symbol, [int(to_ms(m)) for m in s.minutes])
    summary = summarize(scans)
    log.info("scan_gaps: %s", ", ".join(f"{k} {v}" for k, v in summary.items()))
    return summary


@shared_task(bind=True, max_retries=10, **EXCHANGE_TASK)
def backfill_range(self: Task, exchange: str, symbol: str, first_id: int, last_id: int) -> dict[str, Any]:
    """Store trades ``first_id..last_id`` that are not stored yet, rebuild the 1m candles they touch, and
    close their Gap (filled, or unrecoverable when the exchange lacks ids). Idempotent: a rerun or a race
    with the live stream fetches at most what is still missing. Exchange errors are retried with
    exponential back-off; a rate limit waits at least the exchange's Retry-After."""
    adapter = rest_adapter(exchange, policy=TASK_REST_POLICY)
    hold = {"exchange": exchange, "symbol": symbol, "first_id": first_id, "last_id": last_id}
    try:
        with backfill_held("celery backfill_range", **hold):
            gap = gap_backfill(adapter=adapter, exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)
    except RateLimited as exc:
        if exc.retry_after is None:
            raise
        raise self.retry(exc=exc, countdown=exc.retry_after + 1) from exc
    finally:
        adapter.close()
    log.info(
        "backfill_range %s %s %d..%d: %s, %d of %d recovered",
        exchange,
        symbol,
        first_id,
        last_id,
        gap.state,
        gap.recovered,
        gap.missing,
    )
    return {"state": gap.state, "missing": gap.missing, "recovered": gap.recovered}


@shared_task(bind=True, max_retries=5, **EXCHANGE_TASK)
def backfill_candles(self: Task, exchange: str, symbol: str, start_ms: int, end_ms: int) -> dict[str, int]:
    """Fetch and store the 1m candles of ``[start_ms, end_ms)`` (epoch ms; cut at now) that are not stored: what
    ``markets.history_queue`` queues for an anonymous history request. Returns the minutes still missing and the
    exchange requests sent. A rate limit is retried after the exchange's Retry-After."""
    start, end = from_ms(start_ms), min(from_ms(end_ms), floor(datetime.now(UTC), "1m") + ONE_MINUTE)
    if end <= start:
        return {"missing": 0, "exchange_requests": 0}
    try:
        history = get_price_history(symbol, start, end, "1m", exchange, policy=TASK_REST_POLICY)
    except RateLimited as exc:  # retried once the exchange's Retry-After has passed (nothing is sent before)
        if exc.retry_after is None:
            raise
        raise self.retry(exc=exc, countdown=exc.retry_after + 1) from exc
    missing = sum(count(a, b, "1m") for a, b in history.missing)
    log.info(
        "backfill_candles %s %s %s..%s: %d requests, %d minutes still missing",
        exchange,
        symbol,
        start.isoformat(),
        end.isoformat(),
        history.exchange_requests,
        missing,
    )
    return {"missing": missing, "exchange_requests": history.exchange_requests}


@shared_task(ignore_result=True)
def rebuild_candles(exchange: str, symbol: str, minutes: list[int]) -> int:
    """Rebuild the 1m candles of ``minutes`` (open times in epoch ms) from stored ticks; returns how many."""
    return candles_of_minutes(exchange=exchange, symbol=symbol, minutes=[from_ms(m) for m in minutes])


@shared_task(bind=True, max_retries=5, **EXCHANGE_TASK)
def backfill_history(self: Task, exchange: str, symbol: str, start_ms: int) -> dict[str, int]:
    """An added instrument's history (``manage.py instruments add --since``): every trade from ``start_ms`` (epoch
    ms) to now stored by id, and its 1m candles built from them (``markets.listing.instrument_history_fill``).
    Idempotent, so a rerun or a race with the live stream stores nothing twice. A rate limit is retried after the
    exchange's Retry-After; other exchange errors with back-off (what was stored before stays)."""
    start, end = from_ms(start_ms), datetime.now(UTC)
    if end <= start:
        return {"trades": 0, "candles": 0, "still_missing": 0}
    adapter = rest_adapter(exchange, policy=TASK_REST_POLICY)
    try:
        with backfill_held("celery backfill_history", exchange=exchange, symbol=symbol, start=start, end=end):
            summary, candles = instrument_history_fill(
                adapter=adapter, exchange=exchange, symbol=symbol, start=start, end=end
            )
    except RateLimited as exc:
        if exc.retry_after is None:
            raise
        raise self.retry(exc=exc, countdown=exc.retry_after + 1) from exc
    finally:
        adapter.close()
    log.info(
        "backfill_history %s %s from %s: %d trades stored (%d were already), %d missing, %d candles, %d requests",
        exchange,
        symbol,
        start.isoformat(),
        summary.written,
        summary.already_present,
        summary.still_missing,
        candles,
        summary.requests,
    )
    return {"trades": summary.written, "candles": candles, "still_missing": summary.still_missing}
