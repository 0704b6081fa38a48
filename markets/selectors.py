"""Reads of market data: instruments, pages of ticks by trade id, gaps, feeds, the consolidated price of a base
asset, the live page's first view, and the trade-id ranges the gap scan and the fills check.

Ticks are read through pymongo, not the ORM: the unique index on (exchange, symbol, trade_id) is *partial*
(filtered on BSON type, ARCHITECTURE §5), and MongoDB only uses a partial index for a query that restates
its filter. The ORM's query does not, so it would sort every tick of the symbol in memory; the query here
adds the ``$type`` conditions and walks the index in trade-id order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bson import Int64
from django.conf import settings

from . import reads
from .consolidated import USD_QUOTES, Consolidated, ConsolidatedConfig, VenuePrice, consolidate
from .documents import as_decimal, as_utc, candle_of, tick_of
from .intervals import floor
from .models import Candle, Feed, Gap, Instrument, Tick
from .scan import holes_by_count
from .store import collection
from .types import CandleBar, TradeTick

TICK_INDEX = "tick_identity"  # the unique constraint's index on Tick
ONE_MINUTE = timedelta(minutes=1)


def instrument_list(*, exchange: str | None = None) -> list[Instrument]:
    """Stored instruments, by exchange and symbol; only ``exchange``'s when given."""
    qs = Instrument.objects.all()
    if exchange is not None:
        qs = qs.filter(exchange=exchange)
    return list(qs.order_by("exchange", "symbol"))


def streamed_symbols(*, exchange: str) -> tuple[str, ...]:
    """The symbols of ``exchange`` the stream workers stream: its stored instruments not removed, by symbol."""
    rows = Instrument.objects.filter(exchange=exchange, streamed=True).order_by("symbol")
    return tuple(rows.values_list("symbol", flat=True))


def instrument_exists(*, exchange: str | None, symbol: str) -> bool:
    """Whether ``symbol`` is a stored instrument of ``exchange`` (of any exchange when it is None). One pymongo
    ``find_one`` on the unique (exchange, symbol) index: every API request asks it, and the ORM's query costs a
    millisecond more (``bench/history_api.py``)."""
    query = {"symbol": symbol} if exchange is None else {"exchange": exchange, "symbol": symbol}
    return collection(Instrument).find_one(query, {"_id": 1}) is not None


def instrument_symbol_of(*, exchange: str | None, canonical: str) -> str | None:
    """The venue symbol whose canonical name is ``canonical`` (``BTC-USDT`` → ``BTCUSDT``), if one is stored."""
    qs = Instrument.objects.filter(canonical=canonical)
    if exchange is not None:
        qs = qs.filter(exchange=exchange)
    found = qs.order_by("exchange", "symbol").first()
    return found.symbol if found else None


@dataclass(frozen=True, slots=True)
class TickPage:
    """Ticks in trade-id order, and the id the next page starts from (None when there is no more)."""

    ticks: list[TradeTick]
    next_from_id: int | None


def tick_page(
    *,
    exchange: str,
    symbol: str,
    limit: int,
    from_id: int | None = None,
    to_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> TickPage:
    """Up to ``limit`` ticks with ``from_id <= trade_id <= to_id`` and exchange time in ``[start, end)``,
    ordered by trade id. Time bounds are first turned into id bounds (trade ids follow exchange time), so
    the id index walk never passes over ticks outside the time range."""
    query = tick_filter(exchange=exchange, symbol=symbol, from_id=from_id, to_id=to_id, start=start, end=end)
    if query is None:
        return TickPage([], None)
    docs = list(collection(Tick).find(query, {"_id": 0}).sort("trade_id", 1).hint(TICK_INDEX).limit(limit + 1))
    ticks = [tick_of(d) for d in docs[:limit]]
    more = len(docs) > limit
    return TickPage(ticks, ticks[-1].trade_id + 1 if more else None)


def tick_filter(
    *,
    exchange: str,
    symbol: str,
    from_id: int | None = None,
    to_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any] | None:
    """The query of the ticks with ``from_id <= trade_id <= to_id`` and exchange time in ``[start, end)``, on the
    id index (time bounds turned into id bounds); None when no tick can match."""
    if start is not None:
        first = tick_edge(exchange, symbol, {"$gte": start}, 1)
        if first is None:
            return None
        from_id = max(from_id or 0, first[0])
    if end is not None:
        last = tick_edge(exchange, symbol, {"$lt": end}, -1)
        if last is None:
            return None
        to_id = last[0] if to_id is None else min(to_id, last[0])
    if from_id is not None and to_id is not None and from_id > to_id:
        return None
    query = reads.tick_query(exchange, symbol, from_id, to_id)
    ts: dict[str, datetime] = {}
    if start is not None:
        ts["$gte"] = start
    if end is not None:
        ts["$lt"] = end
    if ts:
        query["ts"] = ts
    return query


@dataclass(frozen=True, slots=True)
class TickRows:
    """Ticks in trade-id order as output rows (``markets.reads``), and the id the next page starts from (None when
    there is no more). ``rows`` may be a cursor, read as it is iterated (a CSV answer streams it)."""

    rows: Iterable[dict[str, Any]]
    next_from_id: int | None


def tick_rows(
    *,
    exchange: str,
    symbol: str,
    limit: int,
    from_id: int | None = None,
    to_id: int | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    stream: bool = False,
) -> TickRows:
    """:func:`tick_page`'s ticks as output rows (numbers printed by the instrument's tick and step). With
    ``stream`` the rows are a cursor read as it is iterated, and the end of the page is found first (one index
    walk past ``limit`` ids), so that a page of any size holds in constant memory."""
    query = tick_filter(exchange=exchange, symbol=symbol, from_id=from_id, to_id=to_id, start=start, end=end)
    if query is None:
        return TickRows([], None)
    places = reads.places_of(exchange, symbol) or reads.Places(0, 0)
    if stream:
        after = list(
            collection(Tick)
            .find(query, {"_id": 0, "trade_id": 1})
            .sort("trade_id", 1)
            .hint(TICK_INDEX)
            .skip(limit)
            .limit(1)
        )
        next_from_id = int(after[0]["trade_id"]) if after else None
        if next_from_id is not None:
            query["trade_id"]["$lt"] = Int64(next_from_id)
        return TickRows(reads.tick_rows(reads.tick_docs(query, None), places), next_from_id)
    docs = list(reads.tick_docs(query, limit + 1, batch_size=limit + 1))
    rows = list(reads.tick_rows(docs[:limit], places))
    return TickRows(rows, rows[-1]["trade_id"] + 1 if len(docs) > limit else None)


def gap_list(
    *,
    exchange: str | None = None,
    symbol: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 500,
) -> list[Gap]:
    """Gaps matching the given filters, newest first, at most ``limit``."""
    filters = {
        k: v for k, v in {"exchange": exchange, "symbol": symbol, "state": state, "kind": kind}.items() if v is not None
    }
    return list(Gap.objects.filter(**filters).order_by("-detected_at", "-start")[:limit])


def recent_ticks(*, exchange: str, symbol: str, limit: int = 50) -> list[TradeTick]:
    """The last ``limit`` stored ticks of (exchange, symbol), oldest first."""
    docs = collection(Tick).find(
        {"exchange": exchange, "symbol": symbol}, {"_id": 0}, sort=[("trade_id", -1)], limit=limit
    )
    return [tick_of(d) for d in docs][::-1]


def recent_candles(*, exchange: str, symbol: str, limit: int = 240) -> list[CandleBar]:
    """The last ``limit`` stored 1m candles of (exchange, symbol), oldest first."""
    docs = collection(Candle).find(
        {"exchange": exchange, "symbol": symbol, "interval": "1m"}, {"_id": 0}, sort=[("open_time", -1)], limit=limit
    )
    return [candle_of(d, "1m") for d in docs][::-1]


def feed_of(*, exchange: str, symbol: str) -> Feed | None:
    """The Feed record of (exchange, symbol), if the stream has written one."""
    return Feed.objects.filter(exchange=exchange, symbol=symbol).first()


def feed_list(*, exchange: str | None = None) -> list[Feed]:
    """Every Feed record, by exchange and symbol; only ``exchange``'s when given."""
    qs = Feed.objects.all()
    if exchange is not None:
        qs = qs.filter(exchange=exchange)
    return list(qs.order_by("exchange", "symbol"))


def base_exists(*, base: str) -> bool:
    """Whether any stored instrument, of any exchange and quote, has ``base`` as its base asset."""
    return Instrument.objects.filter(base=base).exists()


def venue_prices(*, base: str) -> list[VenuePrice]:
    """The last stored trade of each instrument of ``base`` quoted in US dollars (USD, USDT, USDC), by exchange
    and symbol. One read per instrument, on the tick identity index walked from the highest trade id (trade ids,
    not times, order a venue's trades); an instrument without ticks comes back without a price."""
    coll = collection(Tick)
    venues = []
    for i in Instrument.objects.filter(base=base, quote__in=USD_QUOTES).order_by("exchange", "symbol"):
        query = {
            "exchange": {"$eq": i.exchange, "$type": "string"},
            "symbol": {"$eq": i.symbol, "$type": "string"},
            "trade_id": {"$type": "long"},
        }
        doc = coll.find_one(
            query, {"_id": 0, "price": 1, "ts": 1, "trade_id": 1}, sort=[("trade_id", -1)], hint=TICK_INDEX
        )
        venues.append(
            VenuePrice(
                exchange=i.exchange,
                symbol=i.symbol,
                canonical=i.canonical,
                quote=i.quote,
                price=None if doc is None else as_decimal(doc["price"]),
                ts=None if doc is None else as_utc(doc["ts"]),
                trade_id=None if doc is None else int(doc["trade_id"]),
            )
        )
    return venues


def consolidated_config() -> ConsolidatedConfig:
    """The consolidation's limits from settings (CONSOLIDATED_STALE_SECONDS, CONSOLIDATED_OUTLIER_BPS)."""
    return ConsolidatedConfig(
        stale_after=timedelta(seconds=settings.CONSOLIDATED_STALE_SECONDS),
        outlier_bps=Decimal(settings.CONSOLIDATED_OUTLIER_BPS),
    )


def consolidated_price(*, base: str, now: datetime | None = None) -> Consolidated | None:
    """The consolidated price of ``base`` now (``markets.consolidated``), or None when no stored instrument has
    that base at all."""
    if not base_exists(base=base):
        return None
    return consolidate(
        base=base, venues=venue_prices(base=base), now=now or datetime.now(UTC), config=consolidated_config()
    )


# -- trade-id ranges (the gap scan, the fills and the stream) --------------------------------------------
# Counts and id reads walk Tick's plain (exchange, symbol, trade_id) index: a count on it is a COUNT_SCAN, four
# to five times faster than on the unique index, which is partial and so needs $type filters on every key
# (ARCHITECTURE §5). Stored ids are always Int64 (markets.services), so each id has one entry there as well.
ID_INDEX = "tick_order"


def id_query(exchange: str, symbol: str, first_id: int, last_id: int) -> dict[str, Any]:
    """Ticks with an id in ``[first_id, last_id]``."""
    return {"exchange": exchange, "symbol": symbol, "trade_id": {"$gte": Int64(first_id), "$lte": Int64(last_id)}}


def hole_span(exchange: str, symbol: str, first_id: int, last_id: int) -> tuple[datetime, datetime] | None:
    """The times every trade of ids ``first_id..last_id`` lies between: those of the stored ticks either side
    of the range (or, missing one, of the range's own first or last stored tick). None when nothing is stored."""
    ticks = collection(Tick)
    below = ticks.find_one(
        id_query(exchange, symbol, 0, first_id - 1), {"ts": 1}, sort=[("trade_id", -1)], hint=ID_INDEX
    )
    above = ticks.find_one(
        id_query(exchange, symbol, last_id + 1, 2**63 - 1), {"ts": 1}, sort=[("trade_id", 1)], hint=ID_INDEX
    )
    lo = as_utc(below["ts"]) if below else None
    hi = as_utc(above["ts"]) if above else None
    if (lo is None or hi is None) and (inside := ts_span(exchange, symbol, first_id, last_id)):
        lo, hi = lo or inside[0], hi or inside[1]
    lo, hi = lo or hi, hi or lo
    return (lo, hi) if lo and hi else None


def ts_span(exchange: str, symbol: str, first_id: int, last_id: int) -> tuple[datetime, datetime] | None:
    """Times of the first and last stored tick with an id in ``first_id..last_id``."""
    query = id_query(exchange, symbol, first_id, last_id)
    lo = collection(Tick).find_one(query, {"ts": 1}, sort=[("trade_id", 1)], hint=ID_INDEX)
    hi = collection(Tick).find_one(query, {"ts": 1}, sort=[("trade_id", -1)], hint=ID_INDEX)
    return (as_utc(lo["ts"]), as_utc(hi["ts"])) if lo and hi else None


def id_count(exchange: str, symbol: str, first_id: int, last_id: int) -> int:
    """How many ticks are stored with an id in ``[first_id, last_id]`` (one COUNT_SCAN)."""
    return collection(Tick).count_documents(id_query(exchange, symbol, first_id, last_id), hint=ID_INDEX)


def id_list(exchange: str, symbol: str, first_id: int, last_id: int) -> list[int]:
    """The stored ids in ``[first_id, last_id]``, ascending."""
    cursor = collection(Tick).find(id_query(exchange, symbol, first_id, last_id), {"trade_id": 1, "_id": 0})
    return [int(d["trade_id"]) for d in cursor.sort("trade_id", 1).hint(ID_INDEX)]


def stored_id_holes(
    exchange: str, symbol: str, first_id: int, last_id: int, *, leaf: int = 4096
) -> list[tuple[int, int]]:
    """The ids of ``[first_id, last_id]`` not stored, as inclusive ranges: found by counting, read only where a
    count falls short (``markets.scan.holes_by_count``)."""
    return holes_by_count(
        lambda a, b: id_count(exchange, symbol, a, b),
        lambda a, b: id_list(exchange, symbol, a, b),
        first_id,
        last_id,
        leaf=leaf,
    )


def tick_symbols(*, exchange: str) -> list[str]:
    """The symbols of ``exchange`` with stored ticks, sorted."""
    return sorted(collection(Tick).distinct("symbol", {"exchange": exchange}))


def tick_edge(exchange: str, symbol: str, ts: dict[str, datetime], direction: int) -> tuple[int, datetime] | None:
    """The (id, time) of the earliest (direction 1) or latest (-1) tick within the time bound ``ts``: found on
    the time index, ties within a millisecond broken by id."""
    ticks = collection(Tick)
    key = {"exchange": exchange, "symbol": symbol}
    edge = ticks.find_one({**key, "ts": ts}, {"ts": 1}, sort=[("ts", direction)])
    if edge is None:
        return None
    tie = ticks.find_one({**key, "ts": edge["ts"]}, {"trade_id": 1, "ts": 1}, sort=[("trade_id", direction)])
    return int(tie["trade_id"]), as_utc(tie["ts"])


def tick_after(exchange: str, symbol: str, trade_id: int) -> tuple[int, datetime] | None:
    """The (id, time) of the first stored tick after ``trade_id``."""
    query = id_query(exchange, symbol, trade_id + 1, 2**63 - 1)
    doc = collection(Tick).find_one(query, {"trade_id": 1, "ts": 1}, sort=[("trade_id", 1)], hint=ID_INDEX)
    return (int(doc["trade_id"]), as_utc(doc["ts"])) if doc else None


def tick_minutes(exchange: str, symbol: str, ranges: list[tuple[datetime, datetime]]) -> list[datetime]:
    """The minutes within ``ranges`` that hold at least one tick: one indexed look-up per such minute (a skip
    scan), rather than reading every tick."""
    ticks = collection(Tick)
    out = []
    for start, end in ranges:
        t = start
        while t < end:
            doc = ticks.find_one(
                {"exchange": exchange, "symbol": symbol, "ts": {"$gte": t, "$lt": end}}, {"ts": 1}, sort=[("ts", 1)]
            )
            if doc is None:
                break
            minute = floor(as_utc(doc["ts"]), "1m")
            out.append(minute)
            t = minute + ONE_MINUTE
    return out


def closed_candle_minutes(exchange: str, symbol: str, start: datetime, end: datetime) -> set[datetime]:
    """Open times of the closed 1m candles stored for ``[start, end)``."""
    docs = collection(Candle).find(
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
