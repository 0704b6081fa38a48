"""Writes to market data. Idempotent: a duplicate is ignored, never stored twice, never an error.

Bulk writes go through pymongo on the models' collections (django-mongodb-backend has no
``ignore_conflicts``). The unique indexes the backend creates are *partial*, filtered on BSON type
(``long`` for a BigIntegerField): an id sent as a plain int below 2**31 would be stored as ``int``
and escape the index, so every id is sent as ``bson.Int64`` here (ARCHITECTURE §5).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any

from bson.raw_bson import RawBSONDocument
from django.db import connection
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from . import metrics
from .candles import build_candles, quiet_candles
from .documents import candle_doc, tick_bson, tick_of
from .models import Candle, Gap, Instrument, Tick
from .types import CandleBar, InstrumentInfo, TradeTick

DUPLICATE_KEY = 11000
ONE_MINUTE = timedelta(minutes=1)
BATCH = 5000
_METRIC_KEY = attrgetter("exchange", "symbol", "source")


@dataclass(frozen=True, slots=True)
class WriteResult:
    """How many records were new, and how many were already stored (or repeated in the input)."""

    written: int
    duplicates: int


def ticks_ingest(*, ticks: Iterable[TradeTick]) -> WriteResult:
    """Insert ticks in unordered batches; duplicates of stored ticks (or within the input) are skipped."""
    coll = connection.database[Tick._meta.db_table]
    written = duplicates = 0
    batch: list[RawBSONDocument] = []
    chunk: list[TradeTick] = []  # the ticks of ``batch``, to count the new ones by (exchange, symbol, source)

    def flush() -> None:
        nonlocal written, duplicates
        if not batch:
            return
        new = Counter(map(_METRIC_KEY, chunk))  # at C speed: a key built per tick in Python cost 5x more
        try:
            coll.insert_many(batch, ordered=False)
            written += len(batch)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            others = [e for e in errors if e.get("code") != DUPLICATE_KEY]
            if others:
                raise
            written += exc.details.get("nInserted", 0)
            duplicates += len(errors)
            new.subtract(_METRIC_KEY(chunk[e["index"]]) for e in errors)
        metrics.count_stored(new)
        batch.clear()
        chunk.clear()

    for t in ticks:
        batch.append(tick_bson(t))
        chunk.append(t)
        if len(batch) >= BATCH:
            flush()
    flush()
    return WriteResult(written, duplicates)


def candles_upsert(*, candles: Iterable[CandleBar]) -> WriteResult:
    """Insert or replace candles by (exchange, symbol, interval, open_time); returns new vs updated."""
    coll = connection.database[Candle._meta.db_table]
    ops = []
    for c in candles:
        doc = candle_doc(c)
        key = {"exchange": c.exchange, "symbol": c.symbol, "interval": c.interval, "open_time": c.open_time}
        ops.append(UpdateOne(key, {"$set": doc}, upsert=True))
    if not ops:
        return WriteResult(0, 0)
    result = coll.bulk_write(ops, ordered=False)
    return WriteResult(result.upserted_count, len(ops) - result.upserted_count)


def instruments_store(*, instruments: Iterable[InstrumentInfo]) -> WriteResult:
    """Create or update instruments by (exchange, symbol), keeping the exchange's filters."""
    created = updated = 0
    for info in instruments:
        _, new = Instrument.objects.update_or_create(
            exchange=info.exchange,
            symbol=info.symbol,
            defaults={
                "canonical": info.canonical,
                "base": info.base,
                "quote": info.quote,
                "status": info.status,
                "tick_size": info.tick_size,
                "step_size": info.step_size,
                "min_notional": info.min_notional,
                "filters": [_plain(f) for f in info.filters],
            },
        )
        created += new
        updated += not new
    return WriteResult(created, updated)


def _plain(value: Any) -> Any:
    """A raw exchange payload as JSON-able values: exact decimals (Kraken's fees, decoded without float) become
    their text, so the filters stored are the exchange's own digits."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def gap_open(*, exchange: str, symbol: str, first_id: int, last_id: int) -> Gap:
    """Record a hole of trade ids ``first_id..last_id`` as being filled (idempotent by its start)."""
    gap, created = Gap.objects.update_or_create(
        exchange=exchange,
        symbol=symbol,
        kind="trades",
        start=first_id,
        defaults={"end": last_id, "state": Gap.State.FILLING, "missing": last_id - first_id + 1, "reason": ""},
    )
    if created:  # reopened after a restart: the same hole, counted once
        metrics.gaps_opened.labels(exchange, symbol).inc()
    return gap


def gap_close(*, gap: Gap, recovered: int, unreturned: int, reason: str = "") -> Gap:
    """Mark ``gap`` filled, or unrecoverable with the reason when the exchange did not return every id."""
    gap.recovered = recovered
    if unreturned:
        gap.state = Gap.State.UNRECOVERABLE
        gap.reason = reason or f"the exchange did not return {unreturned} of the {gap.missing} trades"
    else:
        gap.state = Gap.State.FILLED
        gap.reason = reason
    gap.save(update_fields=["recovered", "state", "reason", "updated_at"])
    ended = metrics.gaps_unrecoverable if unreturned else metrics.gaps_filled
    ended.labels(gap.exchange, gap.symbol).inc()
    return gap


CANDLE_GRACE = timedelta(seconds=2)  # a minute's candle is closed this long after the minute ends


def candles_rebuild(*, exchange: str, symbol: str, minutes: Iterable[datetime], now: datetime) -> list[CandleBar]:
    """Rebuild the 1m candles of ``minutes`` from the stored ticks (exchange time), closed once the minute
    is over plus the grace; returns the candles written (new or replaced). Minutes without ticks are left alone."""
    coll = connection.database[Tick._meta.db_table]
    bars = []
    for m in sorted(set(minutes)):
        docs = coll.find({"exchange": exchange, "symbol": symbol, "ts": {"$gte": m, "$lt": m + ONE_MINUTE}}, {"_id": 0})
        closed = m + ONE_MINUTE + CANDLE_GRACE <= now
        bars += build_candles((tick_of(d) for d in docs), "1m", source="trades", closed=closed)
    candles_upsert(candles=bars)
    return bars


def candles_quiet(*, exchange: str, symbol: str, start: datetime, end: datetime, now: datetime) -> list[CandleBar]:
    """Write flat ``synthetic`` 1m candles for the quiet minutes of ``[start, end)``: those after a stored
    candle with no candle of their own, where the stored trade after that candle's last one has the next id
    (a venue whose ids have no holes; callers check that). Minutes in an id hole are left to the backfill.
    Returns the candles written. Cheap: one read of the range's candle times, two indexed reads a stretch."""
    candles = connection.database[Candle._meta.db_table]
    ticks = connection.database[Tick._meta.db_table]
    key = {"exchange": exchange, "symbol": symbol}
    times = [
        d["open_time"]
        for d in candles.find(
            {**key, "interval": "1m", "open_time": {"$gte": start, "$lt": end}}, {"_id": 0, "open_time": 1}
        ).sort("open_time", 1)
    ]
    bars: list[CandleBar] = []
    for i, t in enumerate(times):
        if i + 1 < len(times) and times[i + 1] - t == ONE_MINUTE:
            continue
        last = ticks.find_one(
            {**key, "ts": {"$gte": t, "$lt": t + ONE_MINUTE}},
            {"_id": 0, "trade_id": 1, "ts": 1, "price": 1},
            sort=[("trade_id", -1)],
        )
        if last is None:  # a candle from the exchange's klines, without our ticks: nothing to vouch with
            continue
        after = ticks.find_one(
            {**key, "trade_id": {"$gt": last["trade_id"]}}, {"_id": 0, "trade_id": 1, "ts": 1}, sort=[("trade_id", 1)]
        )
        if after is None:
            continue
        bars += quiet_candles(
            exchange,
            symbol,
            (int(last["trade_id"]), _utc(last["ts"]), last["price"].to_decimal()),
            (int(after["trade_id"]), _utc(after["ts"])),
            now=now,
            grace=CANDLE_GRACE,
        )
    candles_upsert(candles=bars)
    return bars


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)
