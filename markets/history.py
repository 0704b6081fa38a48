"""Price history: MongoDB first; what is missing is fetched from the exchange, stored and returned.

``get_price_history`` is the one entry point (the API and ``manage.py backfill --what candles`` call it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from . import intervals as iv
from . import reads, rollups
from .documents import CANDLE_DECIMALS, as_utc, from_ms, to_ms
from .exchanges.base import RestAdapter
from .exchanges.retry import RetryPolicy
from .models import Candle, Gap
from .reconcile import VenueBudget, candles_from_other_venues
from .services import candles_upsert, instruments_store
from .store import collection
from .types import CandleBar
from .venues import KNOWN_EXCHANGES, rest_adapter


class InvalidRequest(ValueError):
    """A bad argument, named: ``field`` is the parameter, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Span:
    """A part of the requested range and where its candles came from: "mongodb", "exchange" (fetched by
    this call), "missing" (the exchange has none) or "future"."""

    start: datetime
    end: datetime
    source: str


@dataclass(frozen=True, slots=True)
class PriceHistory:
    """Candles of ``[start, end)`` in open-time order, with their provenance and completeness.

    ``complete`` is true when every candle of the range is stored and closed (a range reaching into
    the future is never complete). ``missing`` lists the sub-ranges that could exist but are not
    stored; ``spans`` cut the range by source ("mongodb", "exchange" for fetched by this call,
    "missing", "future"); ``exchange_requests`` counts the requests this call sent to the exchange.
    ``queued`` lists the parts of ``missing`` that a backfill task is queued for (``markets.history_queue``).
    ``rows`` holds the candles as output rows instead of ``candles`` when asked for (``shaped``).
    """

    exchange: str
    symbol: str
    interval: str
    start: datetime
    end: datetime
    candles: list[CandleBar]
    spans: list[Span]
    complete: bool
    missing: list[tuple[datetime, datetime]] = field(default_factory=list)
    exchange_requests: int = 0
    queued: list[tuple[datetime, datetime]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)


def get_price_history(
    symbol: str,
    start: datetime,
    end: datetime,
    interval: str = "1m",
    exchange: str = "binance",
    *,
    fetch: bool = True,
    adapter: RestAdapter | None = None,
    policy: RetryPolicy | None = None,
    progress: Callable[[int], None] | None = None,
    shaped: bool = False,
) -> PriceHistory:
    """Candles of ``symbol`` on ``exchange`` for ``[start, end)``; see the module docstring.

    Raises :class:`InvalidRequest` for a bad argument (unknown exchange/symbol/interval, naive or
    reversed times, a range over ``MAX_CANDLES``/``MAX_SPAN``), and
    :class:`markets.exchanges.errors.ExchangeError` when the exchange cannot be reached in time.
    With ``fetch=False`` only stored candles are returned. ``progress(n)`` is told of every ``n``
    one-minute candles fetched. ``adapter`` replaces the configured one (the caller keeps its counters
    and closes it); otherwise one is made, with ``policy`` for its retries, only if something is missing.
    ``shaped``: the candles come as output rows in ``rows`` (``markets.reads``: numbers printed, times ISO), not as
    ``CandleBar`` records in ``candles``.
    """
    _check(symbol, start, end, interval, exchange)
    with contextlib.ExitStack() as owned:

        def exchange_adapter() -> RestAdapter:
            nonlocal adapter
            if adapter is None:
                adapter = rest_adapter(exchange, policy=policy)
                owned.callback(adapter.close)
            return adapter

        places = reads.places_of(exchange, symbol)  # None: not stored
        if places is None:
            _learn_instrument(exchange, symbol, exchange_adapter() if fetch else None)

        # Stored and fetched data is one-minute candles; the range widens to whole candles of `interval`.
        lo, hi = iv.ceil(start, interval), iv.ceil(end, interval)
        now = datetime.now(UTC)
        reachable_hi = max(lo, min(hi, iv.floor(now, iv.BASE_INTERVAL) + iv.INTERVALS[iv.BASE_INTERVAL]))
        # A stored candle that was still open when fetched is fetched again; the rest is never asked twice.
        to_fetch = (
            iv.missing_ranges(lo, reachable_hi, iv.BASE_INTERVAL, _stored_opens(exchange, symbol, lo, hi))
            if fetch
            else []
        )
        fetched: list[tuple[datetime, datetime]] = []
        known_holes: list[tuple[datetime, datetime]] = []
        requests = 0
        if fetch and to_fetch:
            known_holes = unrecoverable_ranges(exchange, symbol, lo, hi)
            for r0, r1 in iv.subtract(to_fetch, known_holes):
                rest = exchange_adapter()
                before = rest.requests
                for p0, p1 in iv.pages(r0, r1, iv.BASE_INTERVAL, rest.capabilities.max_klines):
                    bars = rest.klines(symbol, iv.BASE_INTERVAL, p0, p1, limit=rest.capabilities.max_klines)
                    if rest.capabilities.klines_omit_quiet:  # a minute the answer skipped between two is quiet
                        bars += quiet_between(bars)
                    candles_upsert(candles=bars)
                    if progress:
                        progress(len(bars))
                requests += rest.requests - before
                fetched.append((r0, r1))
    places = places or reads.places_of(exchange, symbol) or reads.Places(0, 0)
    docs, missing = _read(exchange, symbol, interval, lo, hi, reachable_hi, places)
    if fetched:
        _record_unrecoverable(exchange, symbol, iv.subtract(missing, known_holes), now)
    if fetch and missing and _from_other_venues(exchange, symbol, missing, now):
        docs, missing = _read(exchange, symbol, interval, lo, hi, reachable_hi, places)

    spans = _spans(lo, reachable_hi, missing, fetched)
    if reachable_hi < hi:
        spans.append(Span(reachable_hi, hi, "future"))
    if shaped:
        rows, candles = reads.candle_rows(docs, places), []
    else:
        rows, candles = [], [_bar(d, exchange, symbol, interval) for d in docs]
    return PriceHistory(
        exchange=exchange,
        symbol=symbol,
        interval=interval,
        start=start,
        end=end,
        candles=candles,
        spans=spans,
        complete=not missing and reachable_hi == hi and all(d["closed"] for d in docs),
        missing=missing,
        exchange_requests=requests,
        rows=rows,
    )


def quiet_between(bars: list[CandleBar]) -> list[CandleBar]:
    """Flat zero-volume ``synthetic`` candles for the minutes an exchange that omits quiet minutes (Coinbase)
    skipped between two candles of one answer: it answered for the whole stretch, so nothing traded there."""
    out = []
    ordered = sorted(bars, key=lambda b: b.open_time)
    for before, after in pairwise(ordered):
        t = before.open_time + ONE_MINUTE
        while t < after.open_time:
            p = before.close
            out.append(
                replace(
                    before,
                    open_time=t,
                    close_time=t + ONE_MINUTE - timedelta(milliseconds=1),
                    open=p,
                    high=p,
                    low=p,
                    close=p,
                    volume=Decimal(0),
                    quote_volume=Decimal(0),
                    trades=0,
                    taker_buy_volume=Decimal(0),
                    taker_buy_quote_volume=Decimal(0),
                    closed=True,
                    synthetic=True,
                )
            )
            t += ONE_MINUTE
    return out


def _from_other_venues(exchange: str, symbol: str, missing: list[tuple[datetime, datetime]], now: datetime) -> int:
    """Fill the settled missing ranges (the exchange no longer serves them, e.g. Kraken past its 720 bars) from
    another venue of the same base, marked with its name, within one :class:`VenueBudget` of requests and time;
    returns how many minutes were filled."""
    settled = now - UNRECOVERABLE_AFTER
    filled = 0
    budget = VenueBudget.from_settings()  # one for the whole call, however many ranges are missing
    for r0, r1 in missing:
        if r1 <= settled and budget.left():
            filled += len(
                candles_from_other_venues(
                    exchange=exchange, symbol=symbol, start=r0 - ONE_MINUTE, end=r1, budget=budget
                )
            )
    return filled


def _check(symbol: str, start: datetime, end: datetime, interval: str, exchange: str) -> None:
    if exchange not in KNOWN_EXCHANGES:
        raise InvalidRequest("exchange", f"unknown exchange {exchange!r}; known: {', '.join(KNOWN_EXCHANGES)}")
    if not symbol or not symbol.replace("-", "").isalnum() or not symbol.isupper():
        raise InvalidRequest("symbol", f"{symbol!r} is not an exchange symbol such as BTCUSDT or BTC-USD")
    if interval not in iv.INTERVALS:
        raise InvalidRequest("interval", f"unknown interval {interval!r}; use one of {', '.join(iv.INTERVALS)}")
    for name, t in (("start", start), ("end", end)):
        if t.tzinfo is None or t.utcoffset() is None:
            raise InvalidRequest(name, f"{t.isoformat()} has no timezone; give UTC times")
    if start >= end:
        raise InvalidRequest("start", f"must be before end (start={start.isoformat()}, end={end.isoformat()})")
    if end - start > iv.MAX_SPAN:
        raise InvalidRequest("end", f"the range may cover at most {iv.MAX_SPAN.days} days")
    n = iv.count(start, end, interval)
    if n > iv.MAX_CANDLES:
        raise InvalidRequest("end", f"the range holds {n} {interval} candles; at most {iv.MAX_CANDLES} per request")


def _learn_instrument(exchange: str, symbol: str, adapter: RestAdapter | None) -> None:
    """Store the instrument from the exchange, or say the symbol is unknown."""
    from .exchanges.errors import BadRequest

    if adapter is None:
        raise InvalidRequest("symbol", f"{symbol} is not a known {exchange} instrument")
    try:
        infos = adapter.instruments([symbol])
    except BadRequest as exc:
        raise InvalidRequest("symbol", f"{exchange} does not list {symbol}: {exc}") from exc
    if not infos:
        raise InvalidRequest("symbol", f"{exchange} does not list {symbol}")
    instruments_store(instruments=infos, streamed=False)  # known now, but streamed only when an operator adds it


def _stored_opens(
    exchange: str, symbol: str, lo: datetime, hi: datetime, *, closed_only: bool = True
) -> list[datetime]:
    """Open times of the stored one-minute candles in ``[lo, hi)`` (by default only the closed ones)."""
    query: dict[str, Any] = {
        "exchange": exchange,
        "symbol": symbol,
        "interval": iv.BASE_INTERVAL,
        "open_time": {"$gte": lo, "$lt": hi},
    }
    if closed_only:
        query["closed"] = True
    cursor = collection(Candle).find(query, {"open_time": 1, "_id": 0})
    return [as_utc(d["open_time"]) for d in cursor]


def unrecoverable_ranges(exchange: str, symbol: str, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Candle ranges the exchange already answered empty (not asked again)."""
    gaps = Gap.objects.filter(
        exchange=exchange,
        symbol=symbol,
        kind=GAP_KIND,
        state=Gap.State.UNRECOVERABLE,
        start__lt=to_ms(hi),
        end__gt=to_ms(lo),
    )
    return [(from_ms(g.start), from_ms(g.end)) for g in gaps]


def _record_unrecoverable(exchange: str, symbol: str, missing: list[tuple[datetime, datetime]], now: datetime) -> None:
    """A range still missing after asking the exchange, and old enough to be final, becomes a Gap."""
    settled = now - UNRECOVERABLE_AFTER
    for r0, r1 in missing:
        if r1 > settled:
            continue
        Gap.objects.update_or_create(
            exchange=exchange,
            symbol=symbol,
            kind=GAP_KIND,
            start=to_ms(r0),
            defaults={
                "end": to_ms(r1),
                "state": Gap.State.UNRECOVERABLE,
                "missing": iv.count(r0, r1, iv.BASE_INTERVAL),
                "reason": f"{exchange} returned no {iv.BASE_INTERVAL} candles for this range",
            },
        )


def _spans(
    lo: datetime, hi: datetime, missing: list[tuple[datetime, datetime]], fetched: list[tuple[datetime, datetime]]
) -> list[Span]:
    """Cut ``[lo, hi)`` into runs by source: missing, fetched from the exchange in this call, or MongoDB."""
    cuts = sorted({lo, hi, *(t for r in missing + fetched for t in r if lo <= t <= hi)})
    spans: list[Span] = []
    for a, b in pairwise(cuts):
        if any(r0 <= a and b <= r1 for r0, r1 in missing):
            source = "missing"
        elif any(r0 <= a and b <= r1 for r0, r1 in fetched):
            source = "exchange"
        else:
            source = "mongodb"
        if spans and spans[-1].source == source and spans[-1].end == a:
            spans[-1] = Span(spans[-1].start, b, source)
        else:
            spans.append(Span(a, b, source))
    return spans


def _read(
    exchange: str, symbol: str, interval: str, lo: datetime, hi: datetime, reachable_hi: datetime, places: reads.Places
) -> tuple[list[dict[str, Any]], list[tuple[datetime, datetime]]]:
    """The stored candles of ``[lo, hi)`` shaped for output (``markets.reads``; wider than 1m: from the rollups or
    aggregated in MongoDB, ``markets.rollups``, numbers maybe printed with ``places``), and the 1m ranges of
    ``[lo, reachable_hi)`` that have no stored candle."""
    if interval == iv.BASE_INTERVAL:
        docs = reads.minute_docs(exchange, symbol, lo, hi)
        return docs, reads.holes(lo, reachable_hi, ONE_MINUTE, [as_utc(d["t"]) for d in docs])
    docs = rollups.wide_docs(exchange, symbol, interval, lo, hi, places)
    width = iv.INTERVALS[interval]
    full = {as_utc(d["t"]) for d in docs if d["minutes"] == width // ONE_MINUTE}
    partial = [t for t in iv.opens(lo, reachable_hi, interval) if t not in full]
    if not partial:  # every candle holds all its minutes: nothing is missing, no minute need be read
        return docs, []
    # Only the stretch from the first to the last candle short of minutes is read minute by minute.
    a, b = partial[0], min(partial[-1] + width, reachable_hi)
    return docs, reads.holes(a, b, ONE_MINUTE, sorted(_stored_opens(exchange, symbol, a, b, closed_only=False)))


def _bar(d: dict[str, Any], exchange: str, symbol: str, interval: str) -> CandleBar:
    """A shaped candle document (``markets.reads``) as a record."""
    return CandleBar(
        exchange=exchange,
        symbol=symbol,
        interval=interval,
        open_time=as_utc(d["t"]),
        close_time=datetime.fromisoformat(d["close_time"]),
        **{k: Decimal(d[k]) for k in CANDLE_DECIMALS},
        trades=int(d["trades"]),
        source=d["source"],
        closed=bool(d["closed"]),
        synthetic=bool(d["synthetic"]),
    )


GAP_KIND = "candles"
ONE_MINUTE = timedelta(minutes=1)
UNRECOVERABLE_AFTER = timedelta(minutes=5)  # a range this old that the exchange answers empty stays empty
