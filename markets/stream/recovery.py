"""Gap recovery by trade id, while the live frames keep flowing.

A hole in the ids (``first_id..last_id``) is recorded as a ``Gap``, filled from REST pages by id on the stream's
REST thread, and announced as it opens and as it ends. The minutes it touched are rebuilt from storage with the
recovered trades (the next batch's job does it). What the exchange no longer returns is filled, candle by candle,
from another venue and marked as such (``markets.reconcile``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from .. import metrics
from ..backfill import trade_ids_fill
from ..exchanges.base import RestAdapter
from ..exchanges.errors import ExchangeError, RateLimited
from ..exchanges.limiter import at_utc
from ..gaps import hole_size
from ..intervals import floor
from ..live import Publisher
from ..reconcile import candles_from_other_venues
from ..selectors import hole_span, ts_span
from ..services import gap_close, gap_open
from .config import ONE_MINUTE

log = logging.getLogger(__name__)
T = TypeVar("T")
Span = tuple[datetime | None, datetime | None]
FINISH_SECONDS = 60.0  # how long a stopping stream waits for its gap fills
RETRY_SECONDS = 5.0  # between tries of a gap whose exchange failed (a Retry-After is waited out instead)


class GapRecovery:
    """Fills one exchange's trade-id gaps, each in a task of its own. ``restore`` is the stream's set of minutes to
    rebuild from storage, by symbol (the next batch's job rebuilds them); ``stopping`` ends the waits."""

    def __init__(
        self,
        exchange: str,
        rest_factory: Callable[[], RestAdapter],
        db: ThreadPoolExecutor,
        rest: ThreadPoolExecutor,
        publisher: Publisher,
        restore: dict[str, set[datetime]],
        stopping: asyncio.Event,
    ) -> None:
        self.exchange = exchange
        self._rest_factory = rest_factory
        self._rest: RestAdapter | None = None
        self._db = db
        self._rest_pool = rest
        self._pub = publisher
        self._restore = restore
        self._stopping = stopping
        self._fills: set[asyncio.Task[None]] = set()
        self._filling: set[tuple[str, int, int]] = set()  # (symbol, first id, last id) of the fills running

    def fill(self, symbol: str, first_id: int, last_id: int, span: Span) -> None:
        """Start filling the ids ``first_id..last_id`` of ``symbol``; ``span``: the exchange times around the hole,
        when known. A hole already being filled here is not started twice (a symbol removed and added again)."""
        key = (symbol, first_id, last_id)
        if key in self._filling:
            return
        self._filling.add(key)
        log.info(
            "%s %s: gap of %d trades (ids %d..%d); filling from REST",
            self.exchange,
            symbol,
            last_id - first_id + 1,
            first_id,
            last_id,
        )
        task = asyncio.create_task(self._fill_retrying(symbol, first_id, last_id, span))
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)
        task.add_done_callback(lambda _: self._filling.discard(key))

    async def finish(self) -> None:
        """Wait for the running fills, up to ``FINISH_SECONDS`` (at shutdown; one cut short stays "filling" and is
        filled on the next start)."""
        if self._fills:
            await asyncio.wait(self._fills, timeout=FINISH_SECONDS)

    async def _fill_retrying(self, symbol: str, first_id: int, last_id: int, span: Span) -> None:
        """``_fill_gap``, started again with back-off while the database fails (recording the gap, storing what
        REST returned, closing it): the gap is never dropped. A stop ends the retries; the gap recorded stays open
        and is filled on the next start."""
        failures = 0
        while True:
            try:
                await self._fill_gap(symbol, first_id, last_id, span)
                return
            except Exception as exc:  # the database (an exchange error is retried inside)
                failures += 1
                if failures == 1:
                    log.warning(
                        "%s %s: gap %d..%d: the fill failed (%s: %s; the database, most likely); it is started "
                        "again with back-off until it goes through",
                        self.exchange,
                        symbol,
                        first_id,
                        last_id,
                        type(exc).__name__,
                        str(exc)[:200],
                    )
                try:
                    async with asyncio.timeout(min(5.0, 0.5 * 2 ** min(failures - 1, 4))):
                        await self._stopping.wait()
                except TimeoutError:
                    continue
                log.warning(
                    "%s %s: gap %d..%d not filled at stop (its fill kept failing); the next start fills it once "
                    "recorded (else beat's scan_gaps finds the hole)",
                    self.exchange,
                    symbol,
                    first_id,
                    last_id,
                )
                return

    async def _fill_gap(self, symbol: str, first_id: int, last_id: int, span: Span) -> None:
        exchange = self.exchange
        gap = await self._in(
            self._db, lambda: gap_open(exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)
        )
        await self._pub.gap(gap, span=span)
        began = time.monotonic()
        told: float | None = None  # the exchange's wait last logged
        while True:
            try:
                fill = await self._in(
                    self._rest_pool,
                    lambda: trade_ids_fill(
                        adapter=self._rest_adapter(),
                        exchange=exchange,
                        symbol=symbol,
                        first_id=first_id,
                        last_id=last_id,
                        since=span[0],
                    ),
                )
                break
            except ExchangeError as exc:  # retried inside already: wait, then try the gap again
                until = exc.until if isinstance(exc, RateLimited) else None
                if until is None:
                    log.warning("%s %s: gap %d..%d not filled yet: %s", exchange, symbol, first_id, last_id, exc)
                    delay = RETRY_SECONDS
                else:  # the exchange's word: nothing goes to it before `until` (the adapter refuses to send)
                    delay = max(0.0, until - time.time())
                    if until != told:
                        told = until
                        log.warning(
                            "%s %s: waiting for the exchange's Retry-After until %s (%.0f s); gap %d..%d will be "
                            "filled then",
                            exchange,
                            symbol,
                            at_utc(until),
                            delay,
                            first_id,
                            last_id,
                        )
                try:
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
                    return  # stopping: the gap stays "filling" and is filled on the next start
                except TimeoutError:
                    continue
        unreturned = hole_size(fill.unreturned)
        span = await self._in(self._db, ts_span, exchange, symbol, first_id, last_id)
        if span:  # the candles of the minutes the gap touched are rebuilt with the recovered trades
            t = floor(span[0], "1m")
            while t <= span[1]:
                self._restore.setdefault(symbol, set()).add(t)
                t += ONE_MINUTE
        await self._in(self._db, lambda: gap_close(gap=gap, recovered=fill.fetched, unreturned=unreturned))
        metrics.gap_fill_seconds.labels(exchange).observe(time.monotonic() - began)
        edges = await self._in(self._db, hole_span, exchange, symbol, first_id, last_id) if unreturned else None
        if edges:  # the exchange no longer has them: those minutes come from another venue, marked
            bars = await self._in(
                self._rest_pool,
                lambda: candles_from_other_venues(exchange=exchange, symbol=symbol, start=edges[0], end=edges[1]),
            )
            await self._pub.candles(symbol, bars)
        await self._pub.gap(gap, span=span, seconds=time.monotonic() - began)
        log.info(
            "%s %s: gap %d..%d filled: %d trades recovered in %.2f s%s",
            exchange,
            symbol,
            first_id,
            last_id,
            fill.fetched,
            time.monotonic() - began,
            f", {unreturned} not returned" if unreturned else "",
        )

    def _rest_adapter(self) -> RestAdapter:
        if self._rest is None:  # made and used only on the REST thread
            self._rest = self._rest_factory()
        return self._rest

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
