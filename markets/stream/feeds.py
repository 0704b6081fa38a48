"""The feed records of one stream (``Feed``: state, last trade, lag, reconnects), kept best-effort.

The socket tells its state changes (``set``) and goes on at once: a reconnect never waits for the database. The
newest state is written by ``run``, a task of its own, when it changes and every ``every`` seconds (the lag and last
trade); a failed write is retried with back-off, the changed state kept until it is written (a state replaced
before that is not written: the newest wins). Each symbol's record carries the state of its own socket
(``state_of``); the listeners hear the stream's (connected when every socket is). The records of symbols no longer
streamed are deleted (``forget``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from ..live import Publisher
from ..models import Feed
from .config import SymbolState
from .outage import FEEDS, DatabaseHealth, back_off_delay, pause
from .storage import Storage


class FeedWriter:
    """Writes ``symbols``' feed records through ``storage`` on the ``db`` thread and announces them."""

    def __init__(
        self,
        storage: Storage,
        db: ThreadPoolExecutor,
        publisher: Publisher,
        health: DatabaseHealth,
        symbols: Mapping[str, SymbolState],
        reconnects: Callable[[], int],
        every: float,
        state_of: Callable[[str], str] | None = None,
    ) -> None:
        self.state: str = Feed.State.DOWN  # the newest state, written when the database answers
        self.reason = ""
        self.state_of = state_of  # a symbol's own state (its socket's); None: ``state`` for all
        self._changed = False
        self._forgotten: list[str] = []  # symbols no longer streamed, whose records are to be deleted
        self._wake = asyncio.Event()
        self._storage, self._db, self._pub, self._health = storage, db, publisher, health
        self._symbols, self._reconnects, self._every = symbols, reconnects, every

    async def set(self, state: str, reason: str) -> None:
        """The socket's state changed (connected, reconnecting): kept, written by ``run``; never waits."""
        self.state, self.reason, self._changed = state, reason, True
        self._wake.set()

    def forget(self, symbols: list[str]) -> None:
        """``symbols`` are no longer streamed: their records are deleted with the next write."""
        self._forgotten += symbols
        self._wake.set()

    def wake(self) -> None:
        """Write now (``run`` ends if ``stopping`` is set)."""
        self._wake.set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Write the records when the state changes and every ``every`` seconds, until ``stopping``."""
        failures = 0
        while True:
            await pause(max(self._every, back_off_delay(failures)) if failures else self._every, self._wake)
            if stopping.is_set():
                return
            self._wake.clear()
            changed, self._changed = self._changed, False
            try:
                await self.write(changed=changed)
                self._health.ok(FEEDS)
                failures = 0
            except Exception as exc:
                self._changed |= changed
                failures += 1
                self._health.failed(FEEDS, exc, f"the feed state ({self.state}) is written when it answers")

    async def write(self, *, changed: bool) -> None:
        """Write each symbol's Feed record and announce it; ``changed`` False is a periodic refresh."""
        state, reason, now = self.state, self.reason if changed else "", datetime.now(UTC)
        symbols = dict(self._symbols)  # the set may change on the loop while the database thread writes
        state_of = self.state_of
        states = None if state_of is None or state == Feed.State.DOWN else {s: state_of(s) for s in symbols}
        forgotten, self._forgotten = self._forgotten, []
        loop = asyncio.get_running_loop()
        try:
            if forgotten:
                await loop.run_in_executor(self._db, self._storage.feeds_forget, forgotten)
            feeds = await loop.run_in_executor(
                self._db,
                lambda: self._storage.feeds_write(
                    state, reason, now, symbols, self._reconnects(), changed=changed, states=states
                ),
            )
        except BaseException:
            self._forgotten[:0] = forgotten
            raise
        for feed in feeds:
            await self._pub.feed(feed, now)
