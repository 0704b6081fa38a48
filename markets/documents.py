"""Records as MongoDB documents and back: the one place that knows the stored shape of ticks and candles.

Decimals are Decimal128, ids Int64 (the backend's unique indexes are partial on BSON type, ARCHITECTURE
§5), times UTC (pymongo hands them back naive, in UTC). Pure: bson only, no Django.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, encode
from bson.raw_bson import RawBSONDocument

from .intervals import EPOCH
from .types import CandleBar, Source, TradeTick

CANDLE_DECIMALS = (
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "taker_buy_volume",
    "taker_buy_quote_volume",
)
_D128: dict[str, Decimal128] = {}
_D128_MAX = 200_000


def d128(d: Decimal) -> Decimal128:
    """``Decimal128(d)``, memoised by the exact text (so 1.0 and 1.00 stay distinct): bson's conversion is
    pure Python and was most of the ingest time, while prices and quantities of a market repeat a lot."""
    key = str(d)
    got = _D128.get(key)
    if got is None:
        if len(_D128) >= _D128_MAX:
            _D128.clear()
        got = _D128[key] = Decimal128(d)
    return got


def as_decimal(v: Any) -> Decimal:
    """A stored Decimal128 (or anything Decimal accepts) as a Decimal."""
    return v.to_decimal() if hasattr(v, "to_decimal") else Decimal(v)


def as_utc(t: datetime) -> datetime:
    """A stored time as an aware UTC datetime."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def to_ms(t: datetime) -> Int64:
    """Epoch milliseconds of an aware time, as stored (Int64)."""
    return Int64((t - EPOCH) // timedelta(milliseconds=1))


def from_ms(ms: int) -> datetime:
    """An aware UTC time from epoch milliseconds."""
    return EPOCH + timedelta(milliseconds=ms)


def tick_doc(t: TradeTick) -> dict[str, object]:
    """The stored document of a tick."""
    return {
        "exchange": t.exchange,
        "symbol": t.symbol,
        "trade_id": Int64(t.trade_id),
        "price": d128(t.price),
        "qty": d128(t.qty),
        "taker_side": t.taker_side,
        "ts": t.ts,
        "received_at": t.received_at,
        "source": str(t.source),
        "first_trade_id": Int64(t.first_trade_id),
        "last_trade_id": Int64(t.last_trade_id),
    }


def tick_bson(t: TradeTick) -> RawBSONDocument:
    """The stored document of a tick, already encoded, for ``insert_many``: pymongo sends it as it is, without
    checking it or adding an ``_id`` (the server adds one), about 40% of the client CPU of an insert."""
    return RawBSONDocument(encode(tick_doc(t)))


def tick_of(d: dict[str, Any]) -> TradeTick:
    """A stored tick document as a record."""
    return TradeTick(
        exchange=d["exchange"],
        symbol=d["symbol"],
        trade_id=int(d["trade_id"]),
        price=as_decimal(d["price"]),
        qty=as_decimal(d["qty"]),
        taker_side=d["taker_side"],
        ts=as_utc(d["ts"]),
        received_at=as_utc(d["received_at"]),
        source=Source(d["source"]),
        first_trade_id=int(d["first_trade_id"]),
        last_trade_id=int(d["last_trade_id"]),
    )


def candle_doc(c: CandleBar) -> dict[str, object]:
    """The stored document of a candle."""
    doc: dict[str, object] = {k: (d128(v) if k in CANDLE_DECIMALS else v) for k, v in asdict(c).items()}
    doc["trades"] = Int64(c.trades)
    return doc


def candle_of(d: dict[str, Any], interval: str) -> CandleBar:
    """A stored (or aggregated) candle document as a record."""
    return CandleBar(
        exchange=d["exchange"],
        symbol=d["symbol"],
        interval=interval,
        open_time=as_utc(d["open_time"]),
        close_time=as_utc(d["close_time"]),
        **{k: as_decimal(d[k]) for k in CANDLE_DECIMALS},
        trades=int(d["trades"]),
        source=d["source"],
        closed=bool(d["closed"]),
        synthetic=bool(d.get("synthetic", False)),
    )
