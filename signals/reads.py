"""Pages of stored signals as the rows ``/api/v1/signals`` prints, straight from MongoDB (as ``markets.reads`` does
for candles and ticks): the server projects the answer's fields and prints times and Decimal128; Python lays out
each row in ``SignalOut``'s order. No model instance on the way."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from markets.api.serializers import DecimalString
from markets.documents import as_utc
from markets.reads import iso, text
from markets.store import collection

from .models import Signal
from .selectors import ACTIONS, Cursor

_DECIMAL = DecimalString()  # confidence and net print as the schema's DecimalString prints them


@dataclass(frozen=True, slots=True)
class SignalRows:
    """Signals as output rows by candle time (then interval, strategy), and the cursor of the next page."""

    rows: list[dict[str, Any]]
    next: Cursor | None


def signal_rows(
    *,
    exchange: str,
    symbol: str,
    limit: int,
    interval: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    decisions: Sequence[str] = ACTIONS,
    after: Cursor | None = None,
) -> SignalRows:
    """``signals.selectors.signal_page``'s signals as output rows (``SignalOut``'s fields, in its order)."""
    query: dict[str, Any] = {"exchange": exchange, "symbol": symbol, "decision": {"$in": [str(d) for d in decisions]}}
    if interval is not None:
        query["interval"] = interval
    when: dict[str, datetime] = {}
    if start is not None:
        when["$gte"] = start
    if end is not None:
        when["$lt"] = end
    if when:
        query["candle_open_time"] = when
    if after is not None:
        t, i, s = after.candle_open_time, after.interval, after.strategy
        query["$or"] = [
            {"candle_open_time": {"$gt": t}},
            {"candle_open_time": t, "interval": {"$gt": i}},
            {"candle_open_time": t, "interval": i, "strategy": {"$gt": s}},
        ]
    pipeline = [
        {"$match": query},
        {"$sort": {"candle_open_time": 1, "interval": 1, "strategy": 1}},
        {"$limit": limit + 1},
        {
            "$project": {
                "_id": 0,
                "t": "$candle_open_time",
                "strategy": 1,
                "version": 1,
                "exchange": 1,
                "symbol": 1,
                "interval": 1,
                "candle_open_time": iso("$candle_open_time"),
                "decision": 1,
                "confidence": text("$confidence"),
                "net": text("$net"),
                "indicators": 1,
                "votes": 1,
                "reasons": 1,
                "created_at": iso("$created_at"),
                "updated_at": iso("$updated_at"),
            }
        },
    ]
    docs = list(collection(Signal).aggregate(pipeline))
    rows = [_row(d) for d in docs[:limit]]
    last = docs[limit - 1] if len(docs) > limit else None
    return SignalRows(rows, None if last is None else Cursor(as_utc(last["t"]), last["interval"], last["strategy"]))


def _row(d: dict[str, Any]) -> dict[str, Any]:
    return {
        "strategy": d["strategy"],
        "version": int(d["version"]),
        "exchange": d["exchange"],
        "symbol": d["symbol"],
        "interval": d["interval"],
        "candle_open_time": d["candle_open_time"],
        "decision": d["decision"],
        "confidence": _decimal(d["confidence"]),
        "net": _decimal(d["net"]),
        "indicators": {str(k): None if v is None else float(v) for k, v in (d.get("indicators") or {}).items()},
        "votes": [
            {"rule": str(v["rule"]), "weight": str(v["weight"]), "reason": str(v["reason"])}
            for v in d.get("votes") or []
        ],
        "reasons": [str(r) for r in d.get("reasons") or []],
        "created_at": d["created_at"],
        "updated_at": d["updated_at"],
    }


def _decimal(value: str) -> str:
    return _DECIMAL.to_representation(Decimal(value))
