"""``TradeStream``: one exchange's live trades, from its sockets to storage, the channel layer and the listeners.

It takes each frame's trades (a jump in the ids opens a gap, the next id minutes later marks quiet minutes),
buffers them, and flushes the buffer on its database thread every ``flush_seconds`` (or ``flush_size`` trades);
every ``candle_seconds`` it writes the 1m candles that changed, and a task of its own keeps the feed records. The
sockets (``sockets``, each a ``connection``), gap recovery (``recovery``), the database jobs (``storage``), the feed
records (``feeds``), the commands (``control``) and the listeners (``listeners``) are its parts.

Its symbols may change while it runs (``follow``, or a ``source`` it polls: ``following``). An added symbol resumes
as on a restart: from its last stored trade, the hole since then filled by id; a symbol never stored starts at its
first live trade (nothing before it is "missing": its history is a backfill's job). A removed one is unsubscribed,
what was received of it is still written, and its feed record goes.

A database outage of any length loses nothing (``outage``): the trades stay buffered, up to ``buffer_max_ticks``
(past it none are taken until half are written; the hole is recovered by id); failed candle passes keep their
candles due; the feed state never holds the socket; the backlog is then written in order, in parts of
``catch_up_batch``, closing no minute while older trades wait. Every long-lived task is supervised (logged,
restarted with back-off); stopping always flushes, for at most ``stop_flush_seconds`` with the database down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from channels.layers import get_channel_layer

from .. import metrics
from ..candles import quiet_candles
from ..exchanges.base import CandleBar, RestAdapter, StreamAdapter, StreamEvent, TradeTick
from ..intervals import floor
from ..live import Publisher
from ..models import Feed
from ..services import CANDLE_GRACE
from .config import ONE_MINUTE, StreamConfig, SymbolState
from .control import receive_commands
from .feeds import FeedWriter
from .following import Source, follow_source
from .listeners import Listeners, StreamListener
from .membership import Membership
from .outage import CANDLES, COUNTING, STORING, DatabaseHealth, back_off_delay, pause, supervised
from .recovery import GapRecovery
from .sockets import SocketPool
from .storage import Storage, unfinished_gaps

log = logging.getLogger(__name__)
T = TypeVar("T")
FINAL_JOB_SECONDS = 60.0  # at shutdown, how long one last database job (candles, feeds) is waited for
SLOW_SECONDS = 5.0  # a write taking longer is told as an outage


class TradeStream(Membership):
    """Run with ``await TradeStream(config, feed, rest_factory, listeners).run()``; ``stop()`` ends it after a last
    flush. ``feed`` speaks the exchange's stream protocol (a template: each socket streams its share of the symbols);
    ``rest_factory`` makes the REST adapter gaps are filled with; ``listeners`` hear what the stream stored and wrote
    (``markets.stream.listeners``); ``source``, when given, is polled every ``config.follow_seconds`` for the symbols
    to stream (``following``), starting from ``config.symbols``.

    After ``run()``: ``written`` live trades were written, ``unwritten`` were left in the buffer because the database
    was still down at shutdown (the next start recovers them by id)."""

    def __init__(
        self,
        config: StreamConfig,
        feed: StreamAdapter,
        rest_factory: Callable[[], RestAdapter],
        listeners: Sequence[StreamListener] = (),
        source: Source | None = None,
    ) -> None:
        self.config = config
        self.feed = feed
        self.source = source
        self.state = {s: SymbolState() for s in config.symbols}
        self.written = 0
        self.unwritten = 0
        self._buffer: list[TradeTick] = []  # received, not stored yet, oldest first; the socket appends
        self._unpublished = 0  # where in the buffer the ticks not yet pushed to the channel layer begin
        self._shedding = False  # the buffer is full: no trade is taken until half of it is written
        self._flush_now = asyncio.Event()
        self._stopping = asyncio.Event()
        self._stop_began: float | None = None
        self._db = ThreadPoolExecutor(1, thread_name_prefix="stream-db")
        self._rest_pool = ThreadPoolExecutor(1, thread_name_prefix="stream-rest")
        self._restore: dict[str, set[datetime]] = {s: set() for s in config.symbols}  # to rebuild from storage
        self._quiet: list[CandleBar] = []  # synthetic candles of quiet minutes, for the database thread
        self._pub = Publisher(None, config.exchange)  # the channel layer is bound in run(), on the loop
        self.health = DatabaseHealth(config.exchange, lambda: len(self._buffer))
        self.listeners = Listeners(config.exchange, config.symbols, listeners, self._db)
        self._storage = Storage(config, self.listeners)
        self._feeds = FeedWriter(
            self._storage, self._db, self._pub, self.health, self.state, lambda: self.reconnects, config.candle_seconds
        )
        self.sockets = SocketPool(config, feed, self._on_message, self._feeds.set, self._stopping)
        self._feeds.state_of = self.sockets.state_of
        self._recovery = GapRecovery(
            config.exchange, rest_factory, self._db, self._rest_pool, self._pub, self._restore, self._stopping
        )
        self._following = asyncio.Lock()
        self.url = feed.for_symbols(config.symbols).url() if config.symbols else "(no symbol yet)"

    @property
    def reconnects(self) -> int:
        """How many times a socket went down since the stream started."""
        return self.sockets.reconnects

    def stop(self) -> None:
        """End the stream: the sockets are closed now; buffered ticks and running gap fills finish first."""
        self._stopping.set()
        self._stop_began = self._stop_began or time.monotonic()
        self._feeds.wake()
        self.sockets.close()

    def drop(self, seconds: float, mode: str = "close") -> None:
        """Take the sockets down for ``seconds`` (see ``Connection.drop``)."""
        self.sockets.drop(seconds, mode)

    async def run(self) -> None:
        """Stream until ``stop()``: resume from storage, start the listeners, then connect, read, reconnect,
        forever; at the end, the last flush, candles and feed states, then the listeners stop."""
        self._pub.layer = get_channel_layer()
        self.listeners.bind(asyncio.get_running_loop(), self._pub)
        if not await self._resume(self.state, self._track_now):
            log.warning("%s: stopped before the database answered; nothing was streamed", self.config.exchange)
            self._shutdown_pools(wait=False)
            return
        await self.listeners.start(self._rest_pool, lambda: datetime.now(UTC))
        gaps = await self._db_retrying(
            "reading unfinished gaps", unfinished_gaps, self.config.exchange, self.config.symbols
        )
        for gap in gaps or []:
            self._recovery.fill(gap.symbol, gap.start, gap.end, (None, None))
        self.sockets.add(self.config.symbols)
        exchange = self.config.exchange
        flusher = asyncio.create_task(supervised(exchange, "flusher", self._flusher, self._stopping, until_done=True))
        candler = asyncio.create_task(supervised(exchange, "candle writer", self._candler, self._stopping))
        feeder = asyncio.create_task(
            supervised(exchange, "feed writer", lambda: self._feeds.run(self._stopping), self._stopping)
        )
        control = asyncio.create_task(
            supervised(exchange, "control", lambda: receive_commands(exchange, self.drop), self._stopping)
        )
        follower = None
        if (source := self.source) is not None:
            every = self.config.follow_seconds
            follower = asyncio.create_task(
                supervised(
                    exchange,
                    "symbol follower",
                    lambda: follow_source(self, source, every, self._stopping, name=exchange),
                    self._stopping,
                )
            )
        try:
            await supervised(exchange, "sockets", self.sockets.run, self._stopping)
        finally:
            self._stopping.set()
            self._stop_began = self._stop_began or time.monotonic()
            self._feeds.wake()
            control.cancel()
            if follower is not None:
                follower.cancel()
            await flusher
            await self._recovery.finish()
            await asyncio.wait({candler, feeder}, timeout=FINAL_JOB_SECONDS)  # not for ever on a hung database
            for task in (candler, feeder):
                task.cancel()
            await self._last_passes()
            try:  # what each was handed finishes, then its last announcements go out (not on a hung database)
                await asyncio.wait_for(self.listeners.stop(), None if self.health.up else FINAL_JOB_SECONDS)
            except TimeoutError:
                log.error("%s: the listeners did not stop (the database hangs); leaving them", exchange)
            self._shutdown_pools(wait=self.health.up)

    async def _last_passes(self) -> None:
        """At shutdown, once the flush and the gap fills are done: the candles they touched, and the feeds DOWN.
        Skipped while the database is down (the next start rebuilds those candles from the stored trades)."""
        if not self.health.up:
            log.warning(
                "%s: the database is down: the last candle pass and the feeds' DOWN state are skipped",
                self.config.exchange,
            )
            return
        try:
            async with asyncio.timeout(FINAL_JOB_SECONDS):
                await self._in(self._db, self._storage.count, [], self._take_restore(), [])  # what the fills touched
                await self._write_candles()  # the last flush and fills are in: one final pass
                self._feeds.state, self._feeds.reason = Feed.State.DOWN, "stopped"
                await self._feeds.write(changed=True)
        except Exception as exc:  # TimeoutError included: the database went away just now
            self.health.failed(
                "the last candle pass", exc, "the candles are rebuilt from the stored trades on the next start"
            )

    def _shutdown_pools(self, *, wait: bool) -> None:
        # A database job hung on a stopped mongod cannot be interrupted: then the pool is not waited for.
        self._db.shutdown(wait=wait, cancel_futures=not wait)
        self._rest_pool.shutdown(wait=wait, cancel_futures=True)

    async def _flusher(self) -> None:
        """Write the buffer, in parts of ``catch_up_batch``, every ``flush_seconds`` or sooner when it fills; keep
        everything while the database fails and retry with back-off; end, once stopping, when all is written (or
        ``stop_flush_seconds`` after the stop while the database is down)."""
        failures = 0
        while True:
            if not self._flush_now.is_set():
                await pause(self.config.flush_seconds, self._flush_now)
            self._flush_now.clear()
            self._count_received()
            fresh = self._buffer[self._unpublished :]  # pushed once, when first taken, not on every retry
            self._unpublished = len(self._buffer)
            restore = self._take_restore()  # taken with the batch: every tick received before it is in the job
            if not self._buffer and not restore:
                if self._stopping.is_set():
                    return
                continue
            batch = self._buffer[: self.config.catch_up_batch]
            quiet, self._quiet = self._quiet, []
            pushed = asyncio.ensure_future(self._pub.trades(fresh))
            failed = await self._waited(self._in(self._db, self._storage.store, batch, restore, quiet))
            await pushed
            if failed is None or failed[0] == "candles":  # the ticks are stored
                del self._buffer[: len(batch)]
                self._unpublished -= len(batch)
                self.written += len(batch)
            metrics.buffered_ticks.labels(self.config.exchange).set(len(self._buffer))
            if failed is None:
                failures = 0
                self.health.ok(STORING, COUNTING)
                self._drained()
                continue
            stage, exc = failed
            self._quiet[:0] = quiet
            if stage == "candles":  # stored, but the candles are not counted: rebuild their minutes from storage
                for symbol, minute in {(t.symbol, floor(t.ts, "1m")) for t in batch}:
                    restore.setdefault(symbol, set()).add(minute)
            self._put_back(restore)
            failures += 1
            if stage == "ticks":
                self.health.failed(STORING, exc, "every trade received is kept for a retry (in order)")
            else:
                self.health.failed(COUNTING, exc, "their minutes are rebuilt from storage")
                self.health.ok(STORING)
            if self._gave_up():
                return
            delay = back_off_delay(failures)
            if await pause(delay, self._stopping):
                await asyncio.sleep(delay)  # stopping: still tried until stop_flush_seconds are over

    async def _waited(self, job: Awaitable[tuple[str, Exception] | None]) -> tuple[str, Exception] | None:
        """``job``'s result; while the database takes more than ``SLOW_SECONDS`` to answer (a mongod gone away
        makes pymongo wait 30 s to select a server, a hung one forever), the outage is told as it would be by a
        failure, and the buffer's gauge kept up. Stopping, it is not waited for past ``stop_flush_seconds``."""
        task = asyncio.ensure_future(job)
        began = time.monotonic()
        while True:
            done, _ = await asyncio.wait({task}, timeout=SLOW_SECONDS)
            if done:
                return task.result()
            metrics.buffered_ticks.labels(self.config.exchange).set(len(self._buffer))
            waited = TimeoutError(f"no answer for {time.monotonic() - began:.0f} s")
            self.health.failed(STORING, waited, "every trade received is kept (in order)")
            if self._past_stop_deadline():
                return "ticks", waited

    def _drained(self) -> None:
        """After a write: go on at once while a backlog is left; take trades again once half the full buffer is
        written."""
        left = len(self._buffer)
        if left >= self.config.flush_size:
            self._flush_now.set()
        if self._shedding and left <= self.config.buffer_max_ticks // 2:
            self._shedding = False
            log.warning(
                "%s: %d trades left to write; taking trades again (the hole is recovered by id)",
                self.config.exchange,
                left,
            )

    def _gave_up(self) -> bool:
        """Stopping with the database still down, ``stop_flush_seconds`` after the stop: what is buffered stays
        unwritten (the next start resumes from the last stored id and recovers it from the exchange)."""
        if not self._past_stop_deadline():
            return False
        self.unwritten = len(self._buffer)
        log.error(
            "%s: stopping with the database still down: %d trades not written; the next start resumes from the last "
            "stored trade and recovers them by id from the exchange",
            self.config.exchange,
            self.unwritten,
        )
        return True

    def _past_stop_deadline(self) -> bool:
        began = self._stop_began
        return began is not None and time.monotonic() - began >= self.config.stop_flush_seconds

    def _count_received(self) -> None:
        for symbol, st in self.state.items():
            if st.received:
                metrics.trades_received.labels(self.config.exchange, symbol).inc(st.received)
                st.received = 0

    def _put_back(self, restore: dict[str, set[datetime]]) -> None:
        for symbol, minutes in restore.items():
            self._restore[symbol] |= minutes

    def _take_restore(self) -> dict[str, set[datetime]]:
        restore = {symbol: minutes for symbol, minutes in self._restore.items() if minutes}
        for symbol in restore:
            self._restore[symbol] = set()
        return restore

    async def _candler(self) -> None:
        """Every ``candle_seconds`` until stopped, write the candles that changed; a failed pass keeps them due and
        the next ones back off."""
        failures = 0
        while not self._stopping.is_set():
            try:
                if await self._write_candles():
                    self.health.ok(CANDLES)
                failures = 0
            except Exception as exc:
                failures += 1
                kept = "the candles due are kept and written when it answers"
                self.health.failed(CANDLES, exc, kept)
            delay = max(self.config.candle_seconds, back_off_delay(failures) if failures else 0.0)
            if await pause(delay, self._stopping):
                return

    async def _write_candles(self) -> bool:
        held = self._buffer[0].ts if self._buffer else None  # no minute closes before its trades are stored
        written = await self._in(self._db, self._storage.candles_write, datetime.now(UTC), held)
        for symbol, bars in written.items():
            await self._pub.candles(symbol, bars)
        return bool(written)

    def _on_message(self, message: str | bytes) -> str | None:
        """Take one frame's trades; returns what to answer on its socket, if anything."""
        try:
            got = self.feed.parse(message, datetime.now(UTC))
        except ValueError as exc:
            log.warning("%s: frame ignored: %s", self.config.exchange, exc)
            return None
        if self._shedding:  # the buffer is full: trades are not taken (recovered by id later); replies still go
            metrics.shed_frames.labels(self.config.exchange).inc()
            return got.reply if isinstance(got, StreamEvent) else None
        if type(got) is TradeTick:  # the common case first: one trade a frame
            self._take(got)
        elif isinstance(got, StreamEvent):
            for tick in got.ticks:
                self._take(tick)
            for symbol, last_id in got.last_ids:
                self._vouched(symbol, last_id)
            return got.reply
        return None

    def _take(self, tick: TradeTick) -> None:
        st = self.state.get(tick.symbol)
        if st is None or self._shedding:
            return
        if st.last_id is not None:
            if tick.trade_id <= st.last_id:
                return  # a repeat (or a late frame of a hole being filled): storage would ignore it anyway
            if tick.trade_id > st.last_id + 1:
                self._recovery.fill(tick.symbol, st.last_id + 1, tick.trade_id - 1, (st.last_ts, tick.ts))
            elif st.last_ts is not None and tick.ts - st.last_ts > ONE_MINUTE and st.last_price is not None:
                # the next id over a minute later: the minutes between were quiet, not missed
                self._quiet += quiet_candles(
                    tick.exchange,
                    tick.symbol,
                    (st.last_id, st.last_ts, st.last_price),
                    (tick.trade_id, tick.ts),
                    now=tick.ts + CANDLE_GRACE,
                    grace=CANDLE_GRACE,
                )
        else:
            st.first_id = tick.trade_id  # nothing stored when it was added: see ``membership.check_seams``
        st.last_id, st.last_ts, st.last_price = tick.trade_id, tick.ts, tick.price
        st.received += 1
        self._buffer.append(tick)
        if len(self._buffer) >= self.config.flush_size:
            self._flush_now.set()
            if len(self._buffer) >= self.config.buffer_max_ticks:
                self._shed()

    def _shed(self) -> None:
        self._shedding = True
        log.error(
            "%s: %d trades buffered while the database is down (STREAM_BUFFER_MAX_TICKS): no more are taken until "
            "half are written; the trades missed meanwhile are recovered by id from the exchange",
            self.config.exchange,
            len(self._buffer),
        )

    def _vouched(self, symbol: str, last_id: int) -> None:
        """A heartbeat says ``symbol``'s latest trade is ``last_id``: trades after the last one seen were missed
        (a feed may drop frames without closing the socket); they are filled like any gap."""
        st = self.state.get(symbol)
        if st is None or st.last_id is None or last_id <= st.last_id:
            return
        self._recovery.fill(symbol, st.last_id + 1, last_id, (st.last_ts, None))
        st.last_id = last_id
