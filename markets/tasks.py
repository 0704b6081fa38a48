"""Celery tasks of market data: the safety net under the live stream (ARCHITECTURE §3).

Beat sends :func:`scan_gaps` every ``SCAN_GAPS_SECONDS`` (60). It looks over the last
``SCAN_GAPS_LOOKBACK_HOURS`` of stored ticks of every (exchange, symbol) for holes in the trade ids and for
closed minutes that have ticks but no closed 1m candle; it records each hole as a ``Gap`` (so
``/api/v1/gaps`` shows it) and queues :func:`backfill_range` per hole and :func:`rebuild_candles` for the
minutes. Storage is idempotent (duplicate ticks are ignored, candles are upserts), so a fill that races the
live stream, a second worker or a manual backfill does no harm.

What the live stream owns is left to it: the open tail after the last stored id, ticks newer than the
settle time (the stream records a hole it has just seen within milliseconds), and holes overlapping a Gap
it is filling right now.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import Task, shared_task
from django.conf import settings
from django.db import IntegrityError, connection

from . import metrics
from .backfill import trade_ids_fill
from .documents import as_utc, from_ms, to_ms
from .exchanges.base import RestAdapter
from .exchanges.errors import BadRequest, ExchangeError, RateLimited
from .exchanges.retry import RetryPolicy
from .gaps import hole_size
from .history import get_price_history
from .intervals import count, floor, missing_ranges
from .models import Candle, Gap, Tick
from .reconcile import candles_from_other_venues
from .scan import (
    HolePlan,
    ScanConfig,
    SymbolScan,
    hole_minutes,
    holes_by_count,
    minute_span,
    minutes_to_rebuild,
    plan_holes,
    rebuild_until,
    summarize,
)
from .selectors import ID_INDEX, hole_span, id_query
from .services import CANDLE_GRACE, candles_quiet, candles_rebuild, gap_close, gap_open
from .venues import KNOWN_EXCHANGES, rest_adapter

log = logging.getLogger(__name__)
# A few quick tries inside a task; a longer outage waits in Celery's back-off, which holds no worker thread.
TASK_REST_POLICY = RetryPolicy(attempts=3, base_delay=0.5, max_delay=5.0)
TOUCH_SECONDS = 10.0  # a running fill refreshes its Gap this often, so that scans see it as busy
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
    try:
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


@shared_task(max_retries=5, **EXCHANGE_TASK)
def backfill_candles(exchange: str, symbol: str, start_ms: int, end_ms: int) -> dict[str, int]:
    """Fetch and store the 1m candles of ``[start_ms, end_ms)`` (epoch ms; cut at now) that are not stored: what
    ``markets.history_queue`` queues for an anonymous history request. Returns the minutes still missing and the
    exchange requests sent."""
    start, end = from_ms(start_ms), min(from_ms(end_ms), floor(datetime.now(UTC), "1m") + ONE_MINUTE)
    if end <= start:
        return {"missing": 0, "exchange_requests": 0}
    history = get_price_history(symbol, start, end, "1m", exchange, policy=TASK_REST_POLICY)
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
    bars = candles_rebuild(
        exchange=exchange, symbol=symbol, minutes=[from_ms(m) for m in minutes], now=datetime.now(UTC)
    )
    return len(bars)


def scan_config() -> ScanConfig:
    """The scan's settings, read once per scan."""
    return ScanConfig(lookback=timedelta(hours=settings.SCAN_GAPS_LOOKBACK_HOURS), grace=CANDLE_GRACE)


# The reads and writes below are the scan's and the fill's services (they do the I/O around markets.scan).


def gaps_scan(*, config: ScanConfig, now: datetime) -> list[SymbolScan]:
    """Scan every (exchange, symbol) with stored ticks; each hole to fill is recorded as a Gap (``filling``)."""
    scans = []
    for exchange in KNOWN_EXCHANGES:
        adapter = rest_adapter(exchange)
        try:
            contiguous = adapter.capabilities.ids_contiguous
        finally:
            adapter.close()
        for symbol in sorted(_ticks().distinct("symbol", {"exchange": exchange})):
            scans.append(symbol_scan(exchange=exchange, symbol=symbol, config=config, now=now, contiguous=contiguous))
    return scans


def symbol_scan(*, exchange: str, symbol: str, config: ScanConfig, now: datetime, contiguous: bool) -> SymbolScan:
    """Holes in the stored ids of ``symbol`` between its first tick within the lookback and its last tick
    older than the settle time, and the closed minutes of that range whose 1m candle is missing."""
    lo = floor(now - config.lookback, "1m")
    first = _edge(exchange, symbol, {"$gte": lo}, 1)
    last = _edge(exchange, symbol, {"$lte": now - config.settle}, -1)
    if first is None or last is None or last[0] < first[0]:
        return SymbolScan(exchange, symbol, HolePlan(), [])
    plan, spans = HolePlan(), []
    if contiguous:
        found = holes_by_count(
            lambda a, b: _count(exchange, symbol, a, b),
            lambda a, b: _ids(exchange, symbol, a, b),
            first[0],
            last[0],
            leaf=config.leaf,
        )
        gaps = Gap.objects.filter(
            exchange=exchange, symbol=symbol, kind="trades", start__lte=last[0], end__gte=first[0]
        )
        busy = gaps.filter(state=Gap.State.FILLING, updated_at__gte=now - config.busy).values_list("start", "end")
        unrecoverable = gaps.filter(state=Gap.State.UNRECOVERABLE).values_list("start", "end")
        plan = plan_holes(found, busy=list(busy), unrecoverable=list(unrecoverable))
        spans = [span for a, b in (*plan.fill, *plan.busy) if (span := hole_span(exchange, symbol, a, b))]
        for a, b in plan.fill:
            _gap_open(exchange=exchange, symbol=symbol, first_id=a, last_id=b)
    until = rebuild_until(now=now, grace=config.grace, last=last, after=_after(exchange, symbol, last[0]))
    candles = _closed_candle_minutes(exchange, symbol, lo, until) if lo < until else set()
    ticks = _tick_minutes(exchange, symbol, missing_ranges(lo, until, "1m", candles)) if lo < until else []
    minutes = minutes_to_rebuild(ticks, candles, now=now, grace=config.grace, exclude=hole_minutes(spans))
    quiet = candles_quiet(exchange=exchange, symbol=symbol, start=lo, end=until, now=now) if contiguous else []
    return SymbolScan(exchange, symbol, plan, minutes, len(quiet))


def gap_backfill(*, adapter: RestAdapter, exchange: str, symbol: str, first_id: int, last_id: int) -> Gap:
    """Fill what is still missing of ids ``first_id..last_id``, rebuild the candles of the minutes they
    span (from the stored tick before them to the one after: the minutes a scan leaves to this fill), and
    record the outcome on the range's Gap."""
    began = time.monotonic()
    gap = _gap_open(exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)
    touch = _toucher(gap)
    for a, b in _holes(exchange, symbol, first_id, last_id):
        trade_ids_fill(adapter=adapter, exchange=exchange, symbol=symbol, first_id=a, last_id=b, progress=touch)
    still = hole_size(_holes(exchange, symbol, first_id, last_id))
    span = hole_span(exchange, symbol, first_id, last_id)
    if span:
        now = datetime.now(UTC)
        candles_rebuild(exchange=exchange, symbol=symbol, minutes=minute_span(*span), now=now)
        candles_quiet(exchange=exchange, symbol=symbol, start=floor(span[0], "1m"), end=span[1], now=now)
    gap = gap_close(gap=gap, recovered=gap.missing - still, unreturned=still)
    metrics.gap_fill_seconds.labels(exchange).observe(time.monotonic() - began)
    if still and span:  # what the exchange no longer has: the minutes inside come from another venue, so marked
        candles_from_other_venues(exchange=exchange, symbol=symbol, start=span[0], end=span[1])
    return gap


def _ticks() -> Any:
    return connection.database[Tick._meta.db_table]


def _count(exchange: str, symbol: str, first_id: int, last_id: int) -> int:
    return _ticks().count_documents(id_query(exchange, symbol, first_id, last_id), hint=ID_INDEX)


def _ids(exchange: str, symbol: str, first_id: int, last_id: int) -> list[int]:
    cursor = _ticks().find(id_query(exchange, symbol, first_id, last_id), {"trade_id": 1, "_id": 0})
    return [int(d["trade_id"]) for d in cursor.sort("trade_id", 1).hint(ID_INDEX)]


def _holes(exchange: str, symbol: str, first_id: int, last_id: int) -> list[tuple[int, int]]:
    return holes_by_count(
        lambda a, b: _count(exchange, symbol, a, b), lambda a, b: _ids(exchange, symbol, a, b), first_id, last_id
    )


def _edge(exchange: str, symbol: str, ts: dict[str, datetime], direction: int) -> tuple[int, datetime] | None:
    """The (id, time) of the earliest (direction 1) or latest (-1) tick within the time bound ``ts``: found
    on the time index, ties within a millisecond broken by id."""
    key = {"exchange": exchange, "symbol": symbol}
    edge = _ticks().find_one({**key, "ts": ts}, {"ts": 1}, sort=[("ts", direction)])
    if edge is None:
        return None
    tie = _ticks().find_one({**key, "ts": edge["ts"]}, {"trade_id": 1, "ts": 1}, sort=[("trade_id", direction)])
    return int(tie["trade_id"]), as_utc(tie["ts"])


def _after(exchange: str, symbol: str, trade_id: int) -> tuple[int, datetime] | None:
    """The (id, time) of the first stored tick after ``trade_id``."""
    query = id_query(exchange, symbol, trade_id + 1, 2**63 - 1)
    doc = _ticks().find_one(query, {"trade_id": 1, "ts": 1}, sort=[("trade_id", 1)], hint=ID_INDEX)
    return (int(doc["trade_id"]), as_utc(doc["ts"])) if doc else None


def _closed_candle_minutes(exchange: str, symbol: str, start: datetime, end: datetime) -> set[datetime]:
    coll = connection.database[Candle._meta.db_table]
    docs = coll.find(
        {
            "exchange": exchange,
            "symbol": symbol,
            "interval": "1m",
            "open_time": {"$gte": start, "$lt": end},
            "closed": True,
        },
        {"open_time": 1, "_id": 0},
    )
    return {as_utc(d["open_time"]) for d in docs}


def _tick_minutes(exchange: str, symbol: str, ranges: list[tuple[datetime, datetime]]) -> list[datetime]:
    """The minutes within ``ranges`` that hold at least one tick: one indexed look-up per such minute (a
    skip scan), rather than reading every tick."""
    out = []
    for start, end in ranges:
        t = start
        while t < end:
            doc = _ticks().find_one(
                {"exchange": exchange, "symbol": symbol, "ts": {"$gte": t, "$lt": end}}, {"ts": 1}, sort=[("ts", 1)]
            )
            if doc is None:
                break
            minute = floor(as_utc(doc["ts"]), "1m")
            out.append(minute)
            t = minute + ONE_MINUTE
    return out


def _gap_open(*, exchange: str, symbol: str, first_id: int, last_id: int) -> Gap:
    """``gap_open``, which may lose a race to create the same Gap (a stream that has just seen the hole):
    then the record exists and the second call updates it."""
    try:
        return gap_open(exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)
    except IntegrityError:
        return gap_open(exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)


def _toucher(gap: Gap) -> Callable[[int], None]:
    """A progress callback that refreshes ``gap.updated_at`` every TOUCH_SECONDS while pages arrive."""
    last = time.monotonic()

    def touch(_: int) -> None:
        nonlocal last
        if time.monotonic() - last >= TOUCH_SECONDS:
            Gap.objects.filter(pk=gap.pk).update(updated_at=datetime.now(UTC))
            last = time.monotonic()

    return touch
