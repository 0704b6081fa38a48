"""Wider candles (5m to 1d) kept as they are first read, so that a month of 1h candles is 720 documents to read
rather than 43,200 minutes to aggregate.

- A read (:func:`wide_docs`) takes the stored rollups of its range; the candles without a valid one are aggregated
  from the 1m candles (``markets.reads.bucket_docs``), and those whose minutes are all stored and closed are kept.
- A write of a closed 1m candle (:func:`mark_stale`, called by ``markets.services.candles_upsert``) marks the
  rollups of the wider candles holding its minute stale: ``candle`` null and a new ``version``. A write of a
  candle still open marks nothing: the wider candle holding it cannot be complete, so it has no rollup.
- A read keeps what it aggregated only if the rollup is as it found it (no rollup: inserted, a duplicate key
  means a write marked it meanwhile; a stale one: replaced only while its ``version`` is the one read). So a
  write between the read of the minutes and the keeping of their aggregate leaves the rollup stale, never wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import InsertOne, UpdateOne
from pymongo.errors import BulkWriteError

from . import intervals as iv
from .documents import as_utc
from .models import CandleRollup
from .reads import Places, bucket_docs, candle_rows
from .store import collection
from .types import CandleBar

WIDER = tuple(i for i in iv.INTERVALS if i != iv.BASE_INTERVAL)
DUPLICATE_KEY = 11000
CLOCK_MARGIN = timedelta(minutes=1)


def mark_stale(candles: Iterable[CandleBar]) -> int:
    """Mark stale the rollups of the wider candles holding the closed 1m ``candles`` (creating the marks where
    there is no rollup yet, so that a read under way cannot keep an aggregate of the minutes before this write).
    A wider candle that ends later than a minute from now is not marked: until its last minute is over it cannot be
    complete, so no read keeps it (the minute covers an exchange clock ahead of ours). The stream's closing minutes
    thus mark only the wider candles they complete. Returns how many wider candles were marked."""
    soon = datetime.now(UTC) + CLOCK_MARGIN
    keys = {
        (c.exchange, c.symbol, wide, t)
        for c in candles
        if c.closed and c.interval == iv.BASE_INTERVAL
        for wide in WIDER
        if (t := iv.floor(c.open_time, wide)) + iv.INTERVALS[wide] <= soon
    }
    if not keys:
        return 0
    ops = [
        UpdateOne(
            {"exchange": e, "symbol": s, "interval": i, "open_time": t},
            {"$set": {"version": str(ObjectId()), "candle": None}},
            upsert=True,
        )
        for e, s, i, t in keys
    ]
    _write(ops)
    return len(ops)


def wide_docs(
    exchange: str, symbol: str, interval: str, lo: datetime, hi: datetime, places: Places
) -> list[dict[str, Any]]:
    """The ``interval`` candles of ``[lo, hi)`` shaped like ``markets.reads.bucket_docs``'s, in open-time order:
    from their rollups where valid, aggregated from the 1m candles otherwise (and kept when complete). A rollup
    keeps its numbers printed with ``places`` (``plain`` again with other places prints what it would print of the
    unprinted value); those read back printed with ``places`` carry ``printed`` (``reads.candle_rows`` skips them)."""
    key = {"exchange": exchange, "symbol": symbol, "interval": interval}
    kept = {
        as_utc(d["open_time"]): d
        for d in collection(CandleRollup).find(
            {**key, "open_time": {"$gte": lo, "$lt": hi}}, {"_id": 0, "open_time": 1, "version": 1, "candle": 1}
        )
    }
    todo = [t for t in iv.opens(lo, hi, interval) if (kept.get(t) or {}).get("candle") is None]
    mark = [places.price, places.qty]
    out = {
        t: {**d["candle"], "t": t, "printed": d["candle"].pop("printed", None) == mark}
        for t, d in kept.items()
        if d.get("candle") is not None
    }
    if todo:
        width = iv.INTERVALS[interval]
        fresh = bucket_docs(exchange, symbol, interval, todo[0], min(todo[-1] + width, hi))
        per = width // iv.INTERVALS[iv.BASE_INTERVAL]
        ops: list[Any] = []
        for d in fresh:
            t = as_utc(d["t"])
            out[t] = d
            seen = kept.get(t)
            if seen is not None and seen.get("candle") is not None:
                continue  # valid already (a candle inside the aggregated stretch)
            if d["closed"] and d["minutes"] == per:
                candle = {k: v for k, v in d.items() if k != "t"}
                candle_rows([candle], places, keep=True)
                candle["printed"] = mark
                if seen is None:
                    ops.append(InsertOne({**key, "open_time": t, "version": str(ObjectId()), "candle": candle}))
                else:
                    ops.append(
                        UpdateOne(
                            {**key, "open_time": t, "version": seen["version"], "candle": None},
                            {"$set": {"candle": candle}},
                        )
                    )
        _write(ops)
    return [out[t] for t in sorted(out)]


def _write(ops: list[Any]) -> None:
    """``ops`` in any order; a duplicate key (a concurrent write kept or marked the same rollup) is no error."""
    if not ops:
        return
    try:
        collection(CandleRollup).bulk_write(ops, ordered=False)
    except BulkWriteError as exc:
        if any(e.get("code") != DUPLICATE_KEY for e in exc.details.get("writeErrors", [])):
            raise
