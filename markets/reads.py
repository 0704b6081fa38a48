"""Reads shaped for output: stored candles and ticks as the rows the history API prints, straight from MongoDB.

The server does the work a per-object serializer did in Python: it projects only the fields of the answer, turns
Decimal128 into its decimal text (``$toString``, exact) and times into ISO-8601 UTC with milliseconds and a ``Z``
(``$dateToString``, what ``markets.api.serializers.utc_iso`` prints), and aggregates wider intervals
(``$dateTrunc`` groups of the stored 1m candles). Python then only prints each number by the one rule,
``markets.numbers.plain`` with the instrument's tick (prices, quote amounts) or step (quantities) places, and lays
the fields out in the serializers' order. No model instance, no ``Decimal``, no ``CandleBar`` on the way.

Rows are dicts whose keys are the JSON fields, in order: the same rows serve JSON and CSV (``CANDLE_FIELDS``,
``TICK_FIELDS``, the column contract of COMMON17/the README).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import Int64

from . import intervals as iv
from .models import Candle, Instrument, Tick
from .numbers import places, plain
from .store import collection

CANDLE_FIELDS = (
    "open_time",
    "close_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "source",
    "closed",
    "synthetic",
)
TICK_FIELDS = (
    "trade_id",
    "price",
    "qty",
    "taker_side",
    "ts",
    "received_at",
    "source",
    "first_trade_id",
    "last_trade_id",
)
SUMS = ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")
ISO = "%Y-%m-%dT%H:%M:%S.%LZ"  # utc_iso's form: $dateToString prints UTC by default
TICK_INDEX = "tick_identity"  # the partial unique index, walked in trade-id order (see markets.selectors)
_MS = timedelta(milliseconds=1)
_PRINTED: dict[int, dict[Any, Any]] = {}  # places -> text -> plain(text, places)
_PRINTED_MAX = 200_000
BATCH = 10_000  # candles in the first reply: an answer (at most MAX_CANDLES) in one round trip, not 101 and the rest


def iso(expr: Any) -> dict[str, Any]:
    """The expression's date as ISO-8601 UTC with milliseconds and ``Z``."""
    return {"$dateToString": {"date": expr, "format": ISO}}


def text(expr: Any) -> dict[str, Any]:
    """The expression's Decimal128 as its exact decimal text."""
    return {"$toString": expr}


@dataclass(frozen=True, slots=True)
class Places:
    """How many decimals an instrument's numbers print with at least: its tick's (prices and quote amounts) and
    its step's (base quantities); 0 when the instrument has none."""

    price: int
    qty: int


def places_of(exchange: str, symbol: str) -> Places | None:
    """The printing places of a stored instrument; None when it is not stored."""
    doc = collection(Instrument).find_one(
        {"exchange": exchange, "symbol": symbol}, {"_id": 0, "tick_size": 1, "step_size": 1}
    )
    if doc is None:
        return None
    tick, step = doc.get("tick_size"), doc.get("step_size")
    return Places(places(None if tick is None else str(tick)), places(None if step is None else str(step)))


# -- candles ----------------------------------------------------------------------------------------------------
def candle_match(exchange: str, symbol: str, lo: datetime, hi: datetime) -> dict[str, Any]:
    """The stored 1m candles of ``[lo, hi)``."""
    return {"exchange": exchange, "symbol": symbol, "interval": iv.BASE_INTERVAL, "open_time": {"$gte": lo, "$lt": hi}}


def _shape(fields: dict[str, Any]) -> dict[str, Any]:
    """A stage replacing each document by ``fields`` in this order (``$replaceWith`` keeps an object's order):
    the rows come out of the server with the answer's keys in the answer's order."""
    return {"$replaceWith": fields}


def minute_docs(exchange: str, symbol: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    """The stored 1m candles of ``[lo, hi)`` in open-time order, shaped for output (numbers still unprinted): the
    output fields in order, then ``t``, the open time as a datetime."""
    pipeline = [
        {"$match": candle_match(exchange, symbol, lo, hi)},
        {"$sort": {"open_time": 1}},
        _shape(
            {
                "open_time": iso("$open_time"),
                "close_time": iso("$close_time"),
                **{k: text(f"${k}") for k in ("open", "high", "low", "close", "volume", "quote_volume")},
                "trades": "$trades",
                **{k: text(f"${k}") for k in ("taker_buy_volume", "taker_buy_quote_volume")},
                "source": "$source",
                "closed": "$closed",
                "synthetic": {"$ifNull": ["$synthetic", False]},
                "t": "$open_time",
            }
        ),
    ]
    return list(collection(Candle).aggregate(pipeline, batchSize=BATCH))


def bucket_docs(exchange: str, symbol: str, interval: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
    """The ``interval`` candles of ``[lo, hi)`` aggregated from the stored 1m candles, in open-time order, shaped
    for output like :func:`minute_docs`'s; ``minutes`` (last) is how many 1m candles each holds."""
    width = iv.INTERVALS[interval]
    unit, size = trunc_unit(width)
    pipeline = [
        {"$match": candle_match(exchange, symbol, lo, hi)},
        {"$sort": {"open_time": 1}},
        {
            "$group": {
                "_id": {"$dateTrunc": {"date": "$open_time", "unit": unit, "binSize": size}},
                "open": {"$first": "$open"},
                "high": {"$max": "$high"},
                "low": {"$min": "$low"},
                "close": {"$last": "$close"},
                **{k: {"$sum": f"${k}"} for k in (*SUMS, "trades")},
                "sources": {"$addToSet": "$source"},
                "closed": {"$min": "$closed"},
                "synthetic": {"$min": "$synthetic"},
                "minutes": {"$sum": 1},
            }
        },
        {"$sort": {"_id": 1}},
        _shape(
            {
                "open_time": iso("$_id"),
                "close_time": iso({"$add": ["$_id", width // _MS - 1]}),
                **{k: text(f"${k}") for k in ("open", "high", "low", "close", "volume", "quote_volume")},
                "trades": "$trades",
                **{k: text(f"${k}") for k in ("taker_buy_volume", "taker_buy_quote_volume")},
                "source": "$sources",
                "closed": "$closed",
                "synthetic": {"$ifNull": ["$synthetic", False]},
                "t": "$_id",
                "minutes": "$minutes",
            }
        ),
    ]
    per = width // iv.INTERVALS[iv.BASE_INTERVAL]
    docs = list(collection(Candle).aggregate(pipeline, batchSize=BATCH))
    for d in docs:
        d["source"] = "+".join(sorted(d["source"]))
        d["closed"] = bool(d["closed"]) and d["minutes"] == per
    return docs


def trunc_unit(width: timedelta) -> tuple[str, int]:
    """``$dateTrunc``'s unit and bin size for an interval (its bins start at 2000-01-01, epoch-aligned)."""
    for unit, step in (("day", timedelta(days=1)), ("hour", timedelta(hours=1)), ("minute", timedelta(minutes=1))):
        if width % step == timedelta(0):
            return unit, width // step
    raise ValueError(f"no $dateTrunc unit for {width}")


def printed(places: int) -> dict[Any, Any]:
    """The memo of ``plain(text, places)`` by text, shared by the reads of every request (bounded): prices and
    quantities repeat a lot, and ``plain`` was the largest cost of an answer after MongoDB's. Use ``_print``."""
    memo = _PRINTED.get(places)
    if memo is None or len(memo) >= _PRINTED_MAX:
        memo = _PRINTED[places] = {}
    return memo


def _print(memo: dict[Any, Any], text: str, places: int) -> str | None:
    """``plain(text, places)``, kept in ``memo`` (``printed(places)``): what a row calls when ``memo`` lacks it."""
    got = memo[text] = plain(text, places)
    return got


def candle_rows(docs: list[dict[str, Any]], p: Places, *, keep: bool = False) -> list[dict[str, Any]]:
    """Shaped candle documents made the output rows, in place: every number printed by ``plain`` with the places
    ``p``, the keys after the output fields (``t``, ``minutes``, ``printed``) dropped (with ``keep``, kept). A
    document whose ``printed`` is true is printed with ``p`` already (``markets.rollups``)."""
    pp, qp = p.price, p.qty
    pm, qm = printed(pp), printed(qp)
    for d in docs:
        if not d.pop("printed", False):
            for k in ("open", "high", "low", "close", "quote_volume", "taker_buy_quote_volume"):
                d[k] = pm.get(d[k]) or _print(pm, d[k], pp)
            d["volume"] = qm.get(d["volume"]) or _print(qm, d["volume"], qp)
            d["taker_buy_volume"] = qm.get(d["taker_buy_volume"]) or _print(qm, d["taker_buy_volume"], qp)
        if not keep:
            del d["t"]
            d.pop("minutes", None)
    return docs


def holes(lo: datetime, hi: datetime, step: timedelta, opens: list[datetime]) -> list[tuple[datetime, datetime]]:
    """The sub-ranges of ``[lo, hi)`` (aligned to ``step``) not covered by the candles opening at ``opens``
    (ascending): ``intervals.missing_ranges`` in one pass over what is stored rather than every candle's time."""
    out: list[tuple[datetime, datetime]] = []
    t = lo
    for o in opens:
        if o < t:
            continue
        if o >= hi:
            break
        if o > t:
            out.append((t, o))
        t = o + step
    if t < hi:
        out.append((t, hi))
    return out


# -- ticks ------------------------------------------------------------------------------------------------------
def tick_query(exchange: str, symbol: str, from_id: int | None, to_id: int | None) -> dict[str, Any]:
    """Ticks with an id in ``[from_id, to_id]``, restating the partial unique index's filter so that MongoDB walks
    it in id order (``markets.selectors`` says why)."""
    trade_id: dict[str, Any] = {"$type": "long"}
    if from_id is not None:
        trade_id["$gte"] = Int64(from_id)
    if to_id is not None:
        trade_id["$lte"] = Int64(to_id)
    return {
        "exchange": {"$eq": exchange, "$type": "string"},
        "symbol": {"$eq": symbol, "$type": "string"},
        "trade_id": trade_id,
    }


def tick_docs(query: dict[str, Any], limit: int | None, *, batch_size: int = 1000) -> Iterator[dict[str, Any]]:
    """The ticks of ``query`` in id order (at most ``limit``), shaped for output (numbers still unprinted): a
    cursor, read ``batch_size`` at a time."""
    stages: list[dict[str, Any]] = [{"$match": query}, {"$sort": {"trade_id": 1}}]
    if limit is not None:
        stages.append({"$limit": limit})
    stages.append(
        _shape(
            {
                "trade_id": "$trade_id",
                "price": text("$price"),
                "qty": text("$qty"),
                "taker_side": "$taker_side",
                "ts": iso("$ts"),
                "received_at": iso("$received_at"),
                "source": "$source",
                "first_trade_id": "$first_trade_id",
                "last_trade_id": "$last_trade_id",
            }
        )
    )
    return collection(Tick).aggregate(stages, hint=TICK_INDEX, batchSize=batch_size)


def tick_rows(docs: Iterable[dict[str, Any]], p: Places) -> Iterator[dict[str, Any]]:
    """Shaped tick documents made the output rows as they are read: price and quantity printed with ``p``."""
    pp, qp = p.price, p.qty
    pm, qm = printed(pp), printed(qp)
    for d in docs:
        d["price"] = pm.get(d["price"]) or _print(pm, d["price"], pp)
        d["qty"] = qm.get(d["qty"]) or _print(qm, d["qty"], qp)
        yield d
