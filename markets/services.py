"""Writes to market data, and the periodic gap scan that records holes and rebuilds candles. Idempotent: a
duplicate is ignored, never stored twice, never an error.

Bulk writes go through pymongo on the models' collections (:func:`markets.store.collection`; the backend has no
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
from django.conf import settings
from django.db import IntegrityError
from pymongo import UpdateOne
from pymongo.errors import BulkWriteError

from . import metrics, rollups
from .candles import build_candles, quiet_candles
from .documents import candle_doc, d128, tick_bson, tick_of
from .intervals import floor, missing_ranges
from .leases.holds import holds_check
from .models import Candle, Gap, Instrument, Tick
from .scan import HolePlan, ScanConfig, SymbolScan, hole_minutes, minutes_to_rebuild, plan_holes, rebuild_until
from .selectors import (
    closed_candle_minutes,
    hole_span,
    stored_id_holes,
    tick_after,
    tick_edge,
    tick_minutes,
    tick_symbols,
)
from .store import collection
from .types import CandleBar, InstrumentInfo, TradeTick
from .venues import KNOWN_EXCHANGES, rest_adapter

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
    coll = collection(Tick)
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
    coll = collection(Candle)
    candles = list(candles)  # read twice: written, then their wider candles' rollups marked stale
    ops = []
    for c in candles:
        doc = candle_doc(c)
        key = {"exchange": c.exchange, "symbol": c.symbol, "interval": c.interval, "open_time": c.open_time}
        ops.append(UpdateOne(key, {"$set": doc}, upsert=True))
    if not ops:
        return WriteResult(0, 0)
    result = coll.bulk_write(ops, ordered=False)
    rollups.mark_stale(candles)  # after the write: a read that kept an aggregate of the old minutes is undone
    return WriteResult(result.upserted_count, len(ops) - result.upserted_count)


def instruments_store(*, instruments: Iterable[InstrumentInfo], streamed: bool | None = None) -> WriteResult:
    """Create or update instruments by (exchange, symbol), keeping the exchange's filters. ``streamed`` True streams
    each (again, if it was removed); None leaves a stored one's choice alone (a new one is streamed): seeding the
    defaults never brings back an instrument the operator removed. New ones are inserted together and stored ones
    updated together (``update_or_create`` took 8 ms an instrument, 12 s for Binance's whole list)."""
    rows = {(i.exchange, i.symbol): _instrument_fields(i) for i in instruments}
    if streamed is not None:
        for fields in rows.values():
            fields["streamed"] = streamed
    stored = Instrument.objects.filter(exchange__in={e for e, _ in rows}, symbol__in={s for _, s in rows}).values_list(
        "exchange", "symbol"
    )
    old = set(stored) & rows.keys()
    new = [Instrument(exchange=e, symbol=s, **f) for (e, s), f in rows.items() if (e, s) not in old]
    created = len(new)
    try:
        Instrument.objects.bulk_create(new)
    except IntegrityError:  # another writer stored one of them meanwhile: each is created or updated on its own
        created = sum(
            Instrument.objects.update_or_create(
                exchange=o.exchange, symbol=o.symbol, defaults=rows[o.exchange, o.symbol]
            )[1]
            for o in new
        )
    now = datetime.now(UTC)
    updates = [
        UpdateOne({"exchange": e, "symbol": s}, {"$set": {**_raw(rows[e, s]), "updated_at": now}}) for e, s in old
    ]
    if updates:  # in one round trip: a query per instrument took 8 ms each
        collection(Instrument).bulk_write(updates, ordered=False)
    return WriteResult(created, len(rows) - created)


def _raw(fields: dict[str, Any]) -> dict[str, Any]:
    """Instrument fields as the backend stores them (decimals as Decimal128)."""
    return {k: d128(v) if isinstance(v, Decimal) else v for k, v in fields.items()}


def _instrument_fields(info: InstrumentInfo) -> dict[str, Any]:
    """The exchange's data of an instrument, as stored."""
    return {
        "canonical": info.canonical,
        "base": info.base,
        "quote": info.quote,
        "status": info.status,
        "tick_size": info.tick_size,
        "step_size": info.step_size,
        "min_notional": info.min_notional,
        "filters": [_plain(f) for f in info.filters],
    }


def instruments_set_streamed(*, exchange: str, symbols: Iterable[str], streamed: bool) -> int:
    """Mark stored instruments of ``exchange`` streamed or removed (their record and market data stay); returns how
    many changed."""
    rows = Instrument.objects.filter(exchange=exchange, symbol__in=list(symbols)).exclude(streamed=streamed)
    return rows.update(streamed=streamed, updated_at=datetime.now(UTC))


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


def gap_record(*, exchange: str, symbol: str, first_id: int, last_id: int) -> Gap:
    """:func:`gap_open` for a caller that may lose a race to create the same Gap (a stream that has just seen the
    hole): then the record exists and the second call updates it."""
    try:
        return gap_open(exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)
    except IntegrityError:
        return gap_open(exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)


def gap_touch(*, gap: Gap) -> None:
    """Refresh ``gap.updated_at``: a fill in progress, so that scans leave its hole alone."""
    Gap.objects.filter(pk=gap.pk).update(updated_at=datetime.now(UTC))


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
    coll = collection(Tick)
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
    candles = collection(Candle)
    ticks = collection(Tick)
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


# -- the periodic gap scan (markets.tasks.scan_gaps): the I/O around the arithmetic of markets.scan -------------


def scan_config() -> ScanConfig:
    """The scan's settings (SCAN_GAPS_LOOKBACK_HOURS), read once per scan."""
    return ScanConfig(lookback=timedelta(hours=settings.SCAN_GAPS_LOOKBACK_HOURS), grace=CANDLE_GRACE)


def gaps_scan(*, config: ScanConfig, now: datetime) -> list[SymbolScan]:
    """Scan every (exchange, symbol) with stored ticks; each hole to fill is recorded as a Gap (``filling``)."""
    scans = []
    for exchange in KNOWN_EXCHANGES:
        adapter = rest_adapter(exchange)
        try:
            contiguous = adapter.capabilities.ids_contiguous
        finally:
            adapter.close()
        for symbol in tick_symbols(exchange=exchange):
            scans.append(symbol_scan(exchange=exchange, symbol=symbol, config=config, now=now, contiguous=contiguous))
    return scans


def symbol_scan(*, exchange: str, symbol: str, config: ScanConfig, now: datetime, contiguous: bool) -> SymbolScan:
    """Holes in the stored ids of ``symbol`` between its first tick within the lookback and its last tick
    older than the settle time, and the closed minutes of that range whose 1m candle is missing."""
    lo = floor(now - config.lookback, "1m")
    first = tick_edge(exchange, symbol, {"$gte": lo}, 1)
    last = tick_edge(exchange, symbol, {"$lte": now - config.settle}, -1)
    if first is None or last is None or last[0] < first[0]:
        return SymbolScan(exchange, symbol, HolePlan(), [])
    plan, spans = HolePlan(), []
    if contiguous:
        found = stored_id_holes(exchange, symbol, first[0], last[0], leaf=config.leaf)
        gaps = Gap.objects.filter(
            exchange=exchange, symbol=symbol, kind="trades", start__lte=last[0], end__gte=first[0]
        )
        busy = gaps.filter(state=Gap.State.FILLING, updated_at__gte=now - config.busy).values_list("start", "end")
        unrecoverable = gaps.filter(state=Gap.State.UNRECOVERABLE).values_list("start", "end")
        plan = plan_holes(found, busy=list(busy), unrecoverable=list(unrecoverable), held=holds_check(exchange, symbol))
        holes = (*plan.fill, *plan.busy, *((a, b) for a, b, _ in plan.held))
        spans = [span for a, b in holes if (span := hole_span(exchange, symbol, a, b))]
        for a, b in plan.fill:
            gap_record(exchange=exchange, symbol=symbol, first_id=a, last_id=b)
    until = rebuild_until(now=now, grace=config.grace, last=last, after=tick_after(exchange, symbol, last[0]))
    candles = closed_candle_minutes(exchange, symbol, lo, until) if lo < until else set()
    ticks = tick_minutes(exchange, symbol, missing_ranges(lo, until, "1m", candles)) if lo < until else []
    minutes = minutes_to_rebuild(ticks, candles, now=now, grace=config.grace, exclude=hole_minutes(spans))
    quiet = candles_quiet(exchange=exchange, symbol=symbol, start=lo, end=until, now=now) if contiguous else []
    return SymbolScan(exchange, symbol, plan, minutes, len(quiet))
