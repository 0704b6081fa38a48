"""The stream's work on its one database thread: storing batches, counting and writing the live candles, the
feed records, and what a start reads back (the last stored tick, the minutes to rebuild, the unfinished gaps).

Everything in ``Storage`` runs on that thread only, one job after another, so the live candles need no lock. The
listeners of the ``DATABASE`` kind run in the same jobs, right after the work they are told about.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection

from .. import metrics
from ..candles import CandleAccumulator, accumulate
from ..exchanges.base import CandleBar, TradeTick
from ..intervals import floor
from ..models import Candle, Feed, Gap, Tick
from ..services import CANDLE_GRACE, candles_rebuild, candles_upsert, ticks_ingest
from .candles import LiveCandles
from .config import ONE_MINUTE, StreamConfig, SymbolState
from .listeners import Listeners

log = logging.getLogger(__name__)
RESUME_LOOKBACK = timedelta(hours=1)  # how far back a restart looks for minutes left without their candle


class Storage:
    """The database side of one exchange's stream: its live candles and the jobs that store and write."""

    def __init__(self, config: StreamConfig, listeners: Listeners) -> None:
        self.exchange = config.exchange
        self.candles = {s: LiveCandles(CANDLE_GRACE) for s in config.symbols}
        self._listeners = listeners

    def track(self, symbol: str, horizon: datetime | None) -> None:
        """Keep ``symbol``'s live candles (a symbol added while streaming); ``horizon``: the minute of its last stored
        trade, whose candle is rebuilt from storage rather than started anew. A symbol removed before keeps what it
        had."""
        candles = self.candles.setdefault(symbol, LiveCandles(CANDLE_GRACE))
        if horizon is not None:
            candles.horizon = horizon if candles.horizon is None else max(candles.horizon, horizon)

    def store(
        self, batch: list[TradeTick], restore: dict[str, set[datetime]], quiet: list[CandleBar]
    ) -> tuple[str, Exception] | None:
        """Store ``batch`` and count it into the live candles (see ``count``), reporting a failure of the database
        instead of raising: ("ticks", error) when the ticks were not written, ("candles", error) when they were but
        the candle work failed; None when all went well. Once the ticks are stored, the listeners hear of them.
        The caller keeps what failed and logs it (``outage.DatabaseHealth``)."""
        stage = "ticks"
        began = time.perf_counter()
        try:
            if batch:
                ticks_ingest(ticks=batch)
            stage = "candles"
            self.count(batch, restore, quiet)
        except Exception as exc:  # any failure of the database (mongod down, a network error): nothing is lost
            metrics.store_failures.labels(self.exchange, stage).inc()
            if batch and stage == "candles":  # stored: the stops see them now
                self._listeners.ticks_stored(batch, datetime.now(UTC))
            return stage, exc
        if batch:
            metrics.flush_seconds.labels(self.exchange).observe(time.perf_counter() - began)
            self._listeners.ticks_stored(batch, datetime.now(UTC))
        return None

    def count(self, batch: list[TradeTick], restore: dict[str, set[datetime]], quiet: list[CandleBar]) -> None:
        """Once ``batch`` is stored: count it into the live candles. The minutes of ``restore``, and those that may
        hold stored ticks not counted here, are rebuilt from storage instead (which holds the batch by then).
        ``quiet``: synthetic candles of quiet minutes, taken as they are."""
        for bar in quiet:
            self.candles[bar.symbol].restored([bar])
        counted: dict[str, dict[datetime, CandleAccumulator]] = {symbol: {} for symbol in self.candles}
        for (_, symbol, minute), candle in accumulate(batch).items():
            counted[symbol][minute] = candle
        now = datetime.now(UTC)
        for symbol, candles in self.candles.items():
            rebuild = candles.count(counted[symbol], restore.get(symbol, set()))
            if rebuild:
                candles.restored(candles_rebuild(exchange=self.exchange, symbol=symbol, minutes=rebuild, now=now))

    def candles_write(self, now: datetime, held: datetime | None = None) -> dict[str, list[CandleBar]]:
        """Write the 1m candles that are due (see ``LiveCandles.due``; ``held``: the time of the oldest trade not
        stored yet) and tell the listeners; returns them by symbol. When the write fails the candles are due again
        (and the error raised): the next pass writes them."""
        written = {symbol: bars for symbol, candles in self.candles.items() if (bars := candles.due(now, held))}
        try:
            candles_upsert(candles=[bar for bars in written.values() for bar in bars])
        except BaseException:
            for symbol, bars in written.items():
                self.candles[symbol].put_back(bars)
            raise
        self._listeners.candles_written(written, now)
        return written

    def feeds_write(
        self,
        state: str,
        error: str,
        now: datetime,
        symbols: Mapping[str, SymbolState],
        reconnects: int,
        *,
        changed: bool,
        states: Mapping[str, str] | None = None,
    ) -> list[Feed]:
        """Write each symbol's Feed record in ``state`` (or its own in ``states``: the state of its socket); the
        listeners hear of ``state`` when it ``changed`` (not on a periodic refresh)."""
        feeds = []
        for symbol, st in symbols.items():
            own = state if states is None else states.get(symbol, state)
            lag = None if st.last_ts is None else max(0, int((now - st.last_ts).total_seconds() * 1000))
            metrics.feed_state.labels(self.exchange, symbol).state(own)
            if lag is not None:
                metrics.feed_lag.labels(self.exchange, symbol).set(lag / 1000)
                metrics.feed_last_trade.labels(self.exchange, symbol).set(st.last_ts.timestamp())
            feed, _ = Feed.objects.update_or_create(
                exchange=self.exchange,
                symbol=symbol,
                defaults={
                    "state": own,
                    "last_trade_id": st.last_id,
                    "last_trade_at": st.last_ts,
                    "lag_ms": lag,
                    "reconnects": reconnects,
                    **({"last_error": error} if error else {}),
                },
            )
            feeds.append(feed)
        if changed:
            self._listeners.feed_changed(state, error, now)
        return feeds

    def feeds_forget(self, symbols: list[str]) -> None:
        """The feed records of symbols no longer streamed are deleted (a feed that is not streamed is no feed:
        ``/readyz`` would call it stale forever), and their gauges with them."""
        Feed.objects.filter(exchange=self.exchange, symbol__in=symbols).delete()
        for symbol in symbols:
            for gauge in (metrics.feed_state, metrics.feed_lag, metrics.feed_last_trade):
                with contextlib.suppress(KeyError):  # never set
                    gauge.remove(self.exchange, symbol)


def last_stored(exchange: str, symbol: str) -> tuple[int, datetime, Decimal] | None:
    """The id, exchange time and price of the last stored tick."""
    doc = connection.database[Tick._meta.db_table].find_one(
        {"exchange": exchange, "symbol": symbol}, {"trade_id": 1, "ts": 1, "price": 1}, sort=[("trade_id", -1)]
    )
    return (int(doc["trade_id"]), doc["ts"].replace(tzinfo=UTC), doc["price"].to_decimal()) if doc else None


def stored_below(exchange: str, symbol: str, trade_id: int) -> tuple[int, datetime] | None:
    """The id and exchange time of the highest stored tick below ``trade_id``."""
    doc = connection.database[Tick._meta.db_table].find_one(
        {"exchange": exchange, "symbol": symbol, "trade_id": {"$lt": trade_id}},
        {"trade_id": 1, "ts": 1},
        sort=[("trade_id", -1)],
    )
    return (int(doc["trade_id"]), doc["ts"].replace(tzinfo=UTC)) if doc else None


def resume_minutes(exchange: str, symbol: str, last_ts: datetime) -> set[datetime]:
    """The minutes to rebuild on a restart: from the newest stored 1m candle (perhaps written mid-minute) to the
    last stored tick's, at most ``RESUME_LOOKBACK`` back (beat's scan_gaps builds older missing candles). A stream
    killed before its candle pass wrote a minute it had stored leaves that minute without a candle otherwise."""
    last_minute = floor(last_ts, "1m")
    key = {"exchange": exchange, "symbol": symbol}
    newest = connection.database[Candle._meta.db_table].find_one(
        {**key, "interval": "1m", "open_time": {"$lte": last_minute}}, {"open_time": 1}, sort=[("open_time", -1)]
    )
    if newest is not None:
        first = max(newest["open_time"].replace(tzinfo=UTC), last_minute - RESUME_LOOKBACK)
    else:  # never a candle: from the oldest tick within the look-back (the last one at least)
        oldest = connection.database[Tick._meta.db_table].find_one(
            {**key, "ts": {"$gte": last_minute - RESUME_LOOKBACK}}, {"ts": 1}, sort=[("ts", 1)]
        )
        first = floor(oldest["ts"].replace(tzinfo=UTC), "1m") if oldest else last_minute
    count = int((last_minute - first) / ONE_MINUTE) + 1
    return {first + i * ONE_MINUTE for i in range(count)}


def resume_point(exchange: str, symbol: str) -> tuple[tuple[int, datetime, Decimal] | None, set[datetime]]:
    """The last stored trade of ``symbol`` and the minutes to rebuild from it."""
    last = last_stored(exchange, symbol)
    return last, (resume_minutes(exchange, symbol, last[1]) if last is not None else set())


def unfinished_gaps(exchange: str, symbols: tuple[str, ...]) -> list[Gap]:
    """The trade-id gaps of these symbols a stream left open or filling (it died or stopped mid-fill)."""
    return list(
        Gap.objects.filter(
            exchange=exchange, symbol__in=symbols, kind="trades", state__in=[Gap.State.OPEN, Gap.State.FILLING]
        )
    )
