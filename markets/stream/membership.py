"""Which symbols a ``TradeStream`` takes, and how that set changes while it runs (``Membership``, a part of
``TradeStream``), and the database calls of its event loop.

At start, and for every symbol added later, the stream resumes as on a restart: from the symbol's last stored trade
(the minutes a crash left without their candle rebuilt, the hole since then filled by id from the first live frame,
the gaps left unfinished filled again); a symbol with nothing stored starts at its first live trade, and nothing
before it counts as missing (its history is a backfill's job, not the socket's). Only then is it subscribed, so no
frame of it is taken before the stream knows where it was. A removed symbol is unsubscribed; the trades already
received of it are still written, and its feed record is deleted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from ..intervals import floor
from .config import StreamConfig, SymbolState
from .feeds import FeedWriter
from .outage import DatabaseHealth, back_off_delay, pause
from .recovery import GapRecovery
from .sockets import SocketPool
from .storage import Storage, resume_point, stored_below, unfinished_gaps

log = logging.getLogger(__name__)
T = TypeVar("T")


class Membership:
    """The symbol set of a ``TradeStream`` (which sets the attributes below) and its database calls."""

    config: StreamConfig
    state: dict[str, SymbolState]
    sockets: SocketPool
    health: DatabaseHealth
    _db: ThreadPoolExecutor
    _stopping: asyncio.Event
    _storage: Storage
    _restore: dict[str, set[datetime]]
    _recovery: GapRecovery
    _feeds: FeedWriter
    _following: asyncio.Lock

    def _count_received(self) -> None: ...

    async def follow(self, symbols: Iterable[str]) -> tuple[list[str], list[str]]:
        """Stream exactly ``symbols`` from now on, with no restart: the new ones are resumed (``_resume``) and then
        subscribed, on sockets with room or new ones; the others are unsubscribed. Returns (added, removed)."""
        wanted = list(dict.fromkeys(symbols))
        async with self._following:
            keep = set(wanted)
            removed = [s for s in self.state if s not in keep]
            added = [s for s in wanted if s not in self.state]
            if removed:
                self._count_received()
                for symbol in removed:
                    del self.state[symbol]
                self.sockets.remove(removed)
                self._feeds.forget(removed)
            if added and not await self._add(added):
                added = []
        return added, removed

    async def _add(self, symbols: list[str]) -> bool:
        """Resume ``symbols`` from storage, fill their unfinished gaps, then subscribe them (False: stopped first)."""
        tracked = {s: SymbolState() for s in symbols}
        if not await self._resume(tracked, lambda s, h: self._in(self._db, self._storage.track, s, h)):
            return False
        exchange = self.config.exchange
        gaps = await self._db_retrying("reading unfinished gaps", unfinished_gaps, exchange, tuple(symbols))
        self.state.update(tracked)  # from now on their frames are taken
        for gap in gaps or []:
            self._recovery.fill(gap.symbol, gap.start, gap.end, (None, None))
        self.sockets.add(symbols)
        return True

    async def check_seams(self, symbols: list[str], after: float) -> None:
        """A symbol taken with nothing stored starts at its first trade taken here; the worker that streamed it
        before may write its last trades (or the resume point it stored on taking it) only later, below that first
        trade, leaving a hole nobody saw. So, ``after`` seconds and again twice as late, the highest stored id
        below the first one taken is read, and a hole between them is filled by id like any gap."""
        for _ in range(2):  # ``after`` seconds after taking them, and as long again
            if await pause(after, self._stopping):
                return
            for symbol in symbols:
                st = self.state.get(symbol)
                if st is None or st.first_id is None:
                    continue
                first = st.first_id
                below = await self._db_retrying(
                    "reading the stored trades below a seam", stored_below, self.config.exchange, symbol, first
                )
                if below is not None and below[0] < first - 1:
                    log.info(
                        "%s %s: %d trades between what an earlier holder stored and this stream's first are missing",
                        self.config.exchange,
                        symbol,
                        first - 1 - below[0],
                    )
                    self._recovery.fill(symbol, below[0] + 1, first - 1, (below[1], None))

    async def _resume(
        self, states: dict[str, SymbolState], track: Callable[[str, datetime | None], Awaitable[None]]
    ) -> bool:
        """Per symbol of ``states``, the last stored trade and the minutes a crash left without their candle
        (retried while the database is down); ``track`` keeps its live candles from the minute of that trade. A
        symbol with nothing stored starts at its first live trade. False when stopped first."""
        exchange = self.config.exchange
        for symbol, st in states.items():
            got = await self._db_retrying("reading the last stored trade", lambda s=symbol: resume_point(exchange, s))
            if got is None:
                return False
            last, minutes = got
            self._restore.setdefault(symbol, set())
            await track(symbol, None if last is None else floor(last[1], "1m"))
            if last is not None:  # resume: the minutes a crash left without their candle are rebuilt
                st.last_id, st.last_ts, st.last_price = last
                self._restore[symbol] |= minutes
        return True

    async def _track_now(self, symbol: str, horizon: datetime | None) -> None:
        self._storage.track(symbol, horizon)  # before the database thread runs any job: no race

    async def _db_retrying(self, what: str, fn: Callable[..., T], *args: Any) -> T | None:
        """``fn(*args)`` on the database thread, retried with back-off while the database fails; None if stopped
        first."""
        failures = 0
        while not self._stopping.is_set():
            try:
                got = await self._in(self._db, fn, *args)
            except Exception as exc:
                failures += 1
                self.health.failed(what, exc, "the stream starts once it answers")
                await pause(back_off_delay(failures), self._stopping)
                continue
            self.health.ok(what)
            return got
        return None

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)
