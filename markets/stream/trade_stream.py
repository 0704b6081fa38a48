"""``TradeStream``: one exchange's live trades, from its socket to storage, the channel layer and the listeners.

It takes each frame's trades (a jump in the ids opens a gap, the next id minutes later marks quiet minutes),
buffers them, and flushes the buffer on its database thread every ``flush_seconds`` (or ``flush_size`` trades),
backing off while the database fails without losing anything; every ``candle_seconds`` it writes the 1m candles
that changed and refreshes the feed records. The socket (``connection``), gap recovery (``recovery``), the
database jobs (``storage``), the commands (``control``) and the listeners (``listeners``) are its parts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from channels.layers import get_channel_layer

from .. import metrics
from ..candles import quiet_candles
from ..exchanges.base import CandleBar, RestAdapter, StreamAdapter, StreamEvent, TradeTick
from ..intervals import floor
from ..live import Publisher
from ..models import Feed
from ..services import CANDLE_GRACE
from .config import ONE_MINUTE, StreamConfig, SymbolState
from .connection import Connection
from .control import receive_commands
from .listeners import Listeners, StreamListener
from .recovery import GapRecovery
from .storage import Storage, last_stored, resume_minutes, unfinished_gaps

log = logging.getLogger(__name__)
T = TypeVar("T")


class TradeStream:
    """Run with ``await TradeStream(config, feed, rest_factory, listeners).run()``; ``stop()`` ends it after a last
    flush. ``feed`` speaks the exchange's stream protocol; ``rest_factory`` makes the REST adapter gaps are filled
    with; ``listeners`` hear what the stream stored and wrote (``markets.stream.listeners``)."""

    def __init__(
        self,
        config: StreamConfig,
        feed: StreamAdapter,
        rest_factory: Callable[[], RestAdapter],
        listeners: Sequence[StreamListener] = (),
    ) -> None:
        self.config = config
        self.feed = feed
        self.state = {s: SymbolState() for s in config.symbols}
        self._buffer: list[TradeTick] = []
        self._flush_now = asyncio.Event()
        self._stopping = asyncio.Event()
        self._db = ThreadPoolExecutor(1, thread_name_prefix="stream-db")
        self._rest_pool = ThreadPoolExecutor(1, thread_name_prefix="stream-rest")
        self._restore: dict[str, set[datetime]] = {s: set() for s in config.symbols}  # to rebuild from storage
        self._quiet: list[CandleBar] = []  # synthetic candles of quiet minutes, for the database thread
        self._feed_state: str = Feed.State.DOWN
        self._pub = Publisher(None, config.exchange)  # the channel layer is bound in run(), on the loop
        self.listeners = Listeners(config.exchange, config.symbols, listeners, self._db)
        self._storage = Storage(config, self.listeners)
        self._connection = Connection(config, feed, self._on_message, self._feeds, self._stopping)
        self._recovery = GapRecovery(
            config.exchange, rest_factory, self._db, self._rest_pool, self._pub, self._restore, self._stopping
        )
        self.url = self._connection.url

    @property
    def reconnects(self) -> int:
        """How many times the socket went down since the stream started."""
        return self._connection.reconnects

    def stop(self) -> None:
        """End the stream: the socket is closed now; buffered ticks and running gap fills finish first."""
        self._stopping.set()
        self._connection.close()

    def drop(self, seconds: float, mode: str = "close") -> None:
        """Take the socket down for ``seconds`` (see ``Connection.drop``)."""
        self._connection.drop(seconds, mode)

    async def run(self) -> None:
        """Stream until ``stop()``: resume from storage, start the listeners, then connect, read, reconnect,
        forever; at the end, the last flush, candles and feed states, then the listeners stop."""
        self._pub.layer = get_channel_layer()
        self.listeners.bind(asyncio.get_running_loop(), self._pub)
        exchange = self.config.exchange
        for symbol in self.config.symbols:
            last = await self._in(self._db, last_stored, exchange, symbol)
            if last is not None:  # resume: the minutes a crash left without their candle are rebuilt
                st = self.state[symbol]
                st.last_id, st.last_ts, st.last_price = last
                self._storage.candles[symbol].horizon = floor(last[1], "1m")
                self._restore[symbol] |= await self._in(self._db, resume_minutes, exchange, symbol, last[1])
        await self.listeners.start(self._rest_pool, lambda: datetime.now(UTC))
        for gap in await self._in(self._db, unfinished_gaps, exchange, self.config.symbols):
            self._recovery.fill(gap.symbol, gap.start, gap.end, (None, None))
        flusher = asyncio.create_task(self._flusher())
        candler = asyncio.create_task(self._candler())
        control = asyncio.create_task(receive_commands(exchange, self.drop))
        try:
            await self._connection.run()
        finally:
            self._stopping.set()
            control.cancel()
            await flusher
            await self._recovery.finish()
            await candler
            await self._in(self._db, self._storage.count, [], self._take_restore(), [])  # what the last fills touched
            await self._write_candles()  # the last flush and fills are in: one final pass
            await self._feeds(Feed.State.DOWN, "stopped")
            await self.listeners.stop()  # what each was handed finishes, then its last announcements go out
            self._db.shutdown(wait=True)
            self._rest_pool.shutdown(wait=True, cancel_futures=True)

    async def _flusher(self) -> None:
        failures = 0
        while True:
            try:
                async with asyncio.timeout(self.config.flush_seconds):
                    await self._flush_now.wait()
            except TimeoutError:
                pass
            self._flush_now.clear()
            self._count_received()
            restore = self._take_restore()  # taken with the batch: every tick received before it is in the job
            if self._buffer or restore:
                batch, self._buffer = self._buffer, []
                quiet, self._quiet = self._quiet, []
                failed, _ = await asyncio.gather(
                    self._in(self._db, self._storage.store, batch, restore, quiet), self._pub.trades(batch)
                )
                if failed is not None:  # the database is failing: keep everything, retry with back-off
                    self._quiet[:0] = quiet
                    if failed == "ticks":
                        self._buffer[:0] = batch
                    else:  # stored, but the candles are not counted: rebuild their minutes from storage
                        for symbol, minute in {(t.symbol, floor(t.ts, "1m")) for t in batch}:
                            restore.setdefault(symbol, set()).add(minute)
                    self._put_back(restore)
                    failures += 1
                    await self._back_off(failures)
                else:
                    failures = 0
            elif self._stopping.is_set():
                return

    def _count_received(self) -> None:
        for symbol, st in self.state.items():
            if st.received:
                metrics.trades_received.labels(self.config.exchange, symbol).inc(st.received)
                st.received = 0

    def _put_back(self, restore: dict[str, set[datetime]]) -> None:
        for symbol, minutes in restore.items():
            self._restore[symbol] |= minutes

    async def _back_off(self, failures: int) -> None:
        """Wait before the next attempt after ``failures`` failed writes in a row (0.25 s doubling to 5 s), or
        until stopping."""
        try:
            async with asyncio.timeout(min(5.0, 0.25 * 2 ** (failures - 1))):
                await self._stopping.wait()
        except TimeoutError:
            pass

    def _take_restore(self) -> dict[str, set[datetime]]:
        restore = {symbol: minutes for symbol, minutes in self._restore.items() if minutes}
        for symbol in restore:
            self._restore[symbol] = set()
        return restore

    async def _candler(self) -> None:
        """Every ``candle_seconds`` until stopped, write the candles that changed and refresh the feeds."""
        while not self._stopping.is_set():
            await self._write_candles()
            await self._feeds(None, "")
            try:
                async with asyncio.timeout(self.config.candle_seconds):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def _write_candles(self) -> None:
        written = await self._in(self._db, self._storage.candles_write, datetime.now(UTC))
        for symbol, bars in written.items():
            await self._pub.candles(symbol, bars)

    async def _feeds(self, state: str | None, error: str) -> None:
        """Write each symbol's Feed record and announce it; ``state`` None keeps the current state (a periodic
        refresh)."""
        changed = state is not None
        self._feed_state = state = state or self._feed_state
        now = datetime.now(UTC)
        feeds = await self._in(
            self._db, lambda: self._storage.feeds_write(state, error, now, self.state, self.reconnects, changed=changed)
        )
        for feed in feeds:
            await self._pub.feed(feed, now)

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    def _on_message(self, message: str | bytes) -> None:
        try:
            got = self.feed.parse(message, datetime.now(UTC))
        except ValueError as exc:
            log.warning("%s: frame ignored: %s", self.config.exchange, exc)
            return
        if type(got) is TradeTick:  # the common case first: one trade a frame
            self._take(got)
        elif isinstance(got, StreamEvent):
            for tick in got.ticks:
                self._take(tick)
            for symbol, last_id in got.last_ids:
                self._vouched(symbol, last_id)
            if got.reply is not None:
                self._connection.send(got.reply)

    def _take(self, tick: TradeTick) -> None:
        st = self.state.get(tick.symbol)
        if st is None:
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
        st.last_id, st.last_ts, st.last_price = tick.trade_id, tick.ts, tick.price
        st.received += 1
        self._buffer.append(tick)
        if len(self._buffer) >= self.config.flush_size:
            self._flush_now.set()

    def _vouched(self, symbol: str, last_id: int) -> None:
        """A heartbeat says ``symbol``'s latest trade is ``last_id``: trades after the last one seen were missed
        (a feed may drop frames without closing the socket); they are filled like any gap."""
        st = self.state.get(symbol)
        if st is None or st.last_id is None or last_id <= st.last_id:
            return
        self._recovery.fill(symbol, st.last_id + 1, last_id, (st.last_ts, None))
        st.last_id = last_id
