"""Candles for what a venue can no longer serve, taken from another venue of the same base asset.

When a trade gap ends ``unrecoverable`` (Kraken keeps 720 candles, a REST outage outlasted the retries, the
exchange's history has a hole), the minutes inside it have no trade of ours. Their 1m candles are filled
from another venue quoting the same base in a dollar (USD, USDT or USDC): its stored candles first, else its
REST klines. Each such candle says so: ``source`` is that venue's name, never "trades", so the API and the
chart show it for what it is. Prices are the other venue's as they were (a dollar basis of a few bps between
USD, USDT and USDC is left, not guessed away); volume is the other venue's too.

The other venues' REST klines are bounded: one call (a history request, a backfill task) spends at most a
:class:`VenueBudget` of requests and seconds (``CROSS_VENUE_MAX_REQUESTS``, ``CROSS_VENUE_MAX_SECONDS``),
checked between requests, with short retries; what it leaves unfilled stays missing and is reported so.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.conf import settings

from .documents import as_utc, candle_of
from .exchanges.errors import ExchangeError
from .exchanges.retry import RetryPolicy
from .intervals import floor
from .models import Candle, Instrument
from .services import candles_upsert
from .store import collection
from .types import CandleBar
from .venues import rest_adapter

log = logging.getLogger(__name__)
DOLLARS = ("USD", "USDT", "USDC")
ONE_MINUTE = timedelta(minutes=1)
# Another venue's klines are a best effort inside a budget: no long Retry-After waits, few retries.
CROSS_VENUE_POLICY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=1.0, max_wait=2.0)


@dataclass
class VenueBudget:
    """The requests and time one call may spend on other venues' REST klines."""

    max_requests: int
    seconds: float
    spent: int = 0
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_settings(cls) -> VenueBudget:
        """``CROSS_VENUE_MAX_REQUESTS`` requests within ``CROSS_VENUE_MAX_SECONDS``, from now."""
        return cls(settings.CROSS_VENUE_MAX_REQUESTS, settings.CROSS_VENUE_MAX_SECONDS)

    def left(self) -> bool:
        """Whether another request may be sent."""
        return self.spent < self.max_requests and time.monotonic() - self.started < self.seconds


def candles_from_other_venues(
    *, exchange: str, symbol: str, start: datetime, end: datetime, budget: VenueBudget | None = None
) -> list[CandleBar]:
    """Fill the minutes strictly inside ``(start, end)`` (the last stored trade before an unrecoverable hole and
    the first after it) that have no 1m candle of ``exchange``/``symbol``, from other venues of the same base;
    returns the candles written. Minutes no venue has, or that ``budget`` (by default one from settings) leaves
    no request for, stay missing."""
    budget = budget or VenueBudget.from_settings()
    first, last = floor(start, "1m") + ONE_MINUTE, floor(end, "1m") - ONE_MINUTE
    if last < first:
        return []
    wanted = _missing_minutes(exchange, symbol, first, last)
    instrument = Instrument.objects.filter(exchange=exchange, symbol=symbol).first()
    if not wanted or instrument is None:
        return []
    written: list[CandleBar] = []
    for other in _other_venues(instrument):
        found = _candles_of(other, min(wanted), max(wanted) + ONE_MINUTE, wanted, budget)
        bars = [
            replace(bar, exchange=exchange, symbol=symbol, source=other.exchange, closed=True, synthetic=False)
            for bar in found
        ]
        candles_upsert(candles=bars)
        written += bars
        wanted -= {bar.open_time for bar in bars}
        if not wanted:
            break
    log.info(
        "%s %s: %d candles of an unrecoverable hole filled from %s; %d minutes no venue has%s",
        exchange,
        symbol,
        len(written),
        ", ".join(sorted({b.source for b in written})) or "no venue",
        len(wanted),
        "" if budget.left() else f" (or the budget of {budget.max_requests} requests in {budget.seconds:g} s ran out)",
    )
    return sorted(written, key=lambda b: b.open_time)


def _missing_minutes(exchange: str, symbol: str, first: datetime, last: datetime) -> set[datetime]:
    have = {
        d["open_time"]
        for d in collection(Candle).find(
            {"exchange": exchange, "symbol": symbol, "interval": "1m", "open_time": {"$gte": first, "$lte": last}},
            {"_id": 0, "open_time": 1},
        )
    }
    have = {as_utc(t) for t in have}
    minutes, t = set(), first
    while t <= last:
        if t not in have:
            minutes.add(t)
        t += ONE_MINUTE
    return minutes


def _other_venues(instrument: Instrument) -> list[Instrument]:
    """Instruments of the same base on other exchanges quoted in a dollar, the same quote first."""
    others = Instrument.objects.filter(base=instrument.base, quote__in=DOLLARS).exclude(exchange=instrument.exchange)
    return sorted(others, key=lambda i: (i.quote != instrument.quote, i.exchange, i.symbol))


def _candles_of(
    venue: Instrument, start: datetime, end: datetime, wanted: set[datetime], budget: VenueBudget
) -> list[CandleBar]:
    """``venue``'s real 1m candles (built from its trades or its own klines, never filled from elsewhere nor
    synthetic) for the ``wanted`` minutes of ``[start, end)``: stored ones, then its REST klines within ``budget``."""
    stored = [
        candle_of(d, "1m")
        for d in collection(Candle).find(
            {
                "exchange": venue.exchange,
                "symbol": venue.symbol,
                "interval": "1m",
                "open_time": {"$gte": start, "$lt": end},
                "source": {"$in": ["trades", "exchange"]},
                "synthetic": {"$ne": True},
                "closed": True,
            },
            {"_id": 0},
        )
    ]
    bars = {b.open_time: b for b in stored if b.open_time in wanted}
    if wanted - bars.keys() and budget.left():
        for bar in _klines(venue, start, end, budget):
            if bar.open_time in wanted and bar.closed:
                bars.setdefault(bar.open_time, bar)
    return [bars[m] for m in sorted(bars) if m in wanted]


def _klines(venue: Instrument, start: datetime, end: datetime, budget: VenueBudget) -> list[CandleBar]:
    """``venue``'s REST klines of ``[start, end)``, page by page while ``budget`` lasts."""
    adapter = rest_adapter(venue.exchange, policy=CROSS_VENUE_POLICY)
    out: list[CandleBar] = []
    try:
        cap = adapter.capabilities.max_klines
        t = start
        while t < end and budget.left():
            page_end = min(end, t + cap * ONE_MINUTE)
            before = adapter.requests
            try:
                out += adapter.klines(venue.symbol, "1m", t, page_end, limit=cap)
            finally:
                budget.spent += adapter.requests - before
            t = page_end
    except ExchangeError as exc:
        log.warning(
            "%s %s: its klines could not be read to fill another venue's hole: %s", venue.exchange, venue.symbol, exc
        )
    finally:
        adapter.close()
    return out
