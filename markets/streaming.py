"""The live trade stream of one exchange: one WebSocket, idempotent batched writes, exact gap recovery.

Gap detection is by trade id, not by time (ARCHITECTURE §6): per symbol the stream knows the last id it
has seen (on start, the last one stored); a frame whose id jumps past ``last + 1`` opens a ``Gap`` of the
ids in between, which is filled from REST by id pages while live frames keep flowing. Gaps left
``filling`` by a process that died are filled again on start, so a crash or a restart loses nothing.

A watchdog treats ``stall_seconds`` without a frame as a dead socket; reconnects back off exponentially
with jitter (reset after a successful connect) and never give up; the socket is renewed before
Binance's 24-hour cut. Database and REST work run in their own threads, so the socket is never blocked.

The 1m candles are kept in memory as the ticks go (``LiveCandles``): each batch is counted into its
minutes right after it is stored, on the one database thread, and the candles that changed are written
every ``candle_seconds``. A minute holding ticks that did not pass through here (where a restart resumes,
what a gap fill recovered, a minute already forgotten) is rebuilt from storage in the job of the next
batch: storage then holds every tick received before, and each tick counted into it afterwards has a
higher id. (Rebuilding the current minute from storage every second cost time in proportion to its ticks,
every second, and held the stream to about 5,000 trades/s.)
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from channels.layers import get_channel_layer
from django.db import connection
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidURI, WebSocketException

from signals.evaluator import Evaluator
from signals.rules import Decision
from signals.services import live_evaluator, signals_store

if TYPE_CHECKING:
    from orders.trader import Trader

from . import metrics
from .backfill import trade_ids_fill
from .candles import CandleAccumulator, accumulate, merge_candles, quiet_candles
from .exchanges.base import CandleBar, RestAdapter, StreamAdapter, StreamEvent, TradeTick
from .exchanges.errors import ExchangeError
from .exchanges.retry import RetryPolicy, backoff_delay
from .gaps import hole_size
from .intervals import INTERVALS, floor
from .live import Publisher
from .models import Candle, Feed, Gap, Tick
from .reconcile import candles_from_other_venues
from .selectors import hole_span, ts_span
from .services import CANDLE_GRACE, candles_rebuild, candles_upsert, gap_close, gap_open, ticks_ingest

log = logging.getLogger(__name__)
T = TypeVar("T")
DROP_MODES = ("close", "stall")
ONE_MINUTE = INTERVALS["1m"]
CANDLE_MEMORY = timedelta(minutes=10)  # a closed minute's candle is kept this long for late ticks
RESUME_LOOKBACK = timedelta(hours=1)  # how far back a restart looks for minutes left without their candle


def control_group(exchange: str) -> str:
    """The channel-layer group the stream of ``exchange`` listens to for commands."""
    return f"feed.{exchange}"


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """What one stream process runs: the exchange's symbols, where to reach it, and its timings."""

    exchange: str
    symbols: tuple[str, ...]
    stall_seconds: float = 10.0  # no frame for this long means the socket is dead
    flush_seconds: float = 0.1  # buffered ticks are written at least this often
    flush_size: int = 2000  # ... or as soon as this many are buffered
    candle_seconds: float = 1.0  # how often the 1m candles that changed are written
    signals: bool = True  # decide the strategy's signals on every closed 1m candle
    max_age_seconds: float = 23.5 * 3600  # renew the socket before Binance's 24-hour limit
    reconnect: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(attempts=1_000_000, base_delay=0.25, max_delay=5.0)
    )


@dataclass(slots=True)
class SymbolState:
    last_id: int | None = None  # the highest trade id seen (or stored, at start)
    last_ts: datetime | None = None
    last_price: Decimal | None = None
    received: int = 0  # trades taken since the metrics were last told (a plain int: no lock per trade)


@dataclass(slots=True)
class LiveMinute:
    """One 1m candle in the making: ``stored``, rebuilt from storage when the minute holds ticks this process
    did not count itself, and ``live``, the ticks counted since (all with higher ids). One at least is set."""

    stored: CandleBar | None = None
    live: CandleAccumulator | None = None

    def bar(self, *, closed: bool) -> CandleBar:
        """The candle of every tick of the minute so far."""
        if self.live is None:
            if self.stored is None:
                raise ValueError("a minute without ticks has no candle")
            return replace(self.stored, closed=closed)
        live = self.live.bar(closed=closed)
        return live if self.stored is None else merge_candles([self.stored], [live])[0]


class LiveCandles:
    """The 1m candles of one symbol, kept up from its ticks as they are stored. Pure: the stream calls it
    from its database thread only, and does the reading and writing around it.

    ``horizon`` is the newest minute that may hold stored ticks not counted here (the minute a restart resumes
    in, or one forgotten): such a minute is rebuilt from storage rather than started from new ticks.
    """

    def __init__(self, horizon: datetime | None = None) -> None:
        self.horizon = horizon
        self.minutes: dict[datetime, LiveMinute] = {}
        self._changed: set[datetime] = set()  # since the candles were last written
        self._open: set[datetime] = set()  # written while the minute was not over

    def count(self, counted: dict[datetime, CandleAccumulator], restore: set[datetime]) -> set[datetime]:
        """Take in the candles of newly stored ticks, by minute. Returns the minutes to rebuild from storage
        instead: ``restore``, and those that may hold stored ticks not counted here (storage has the new ones)."""
        rebuild = set(restore)
        for minute, candle in counted.items():
            held = self.minutes.get(minute)
            if minute in rebuild:
                continue
            if held is None and self.horizon is not None and minute <= self.horizon:
                rebuild.add(minute)
                continue
            if held is None:
                self.minutes[minute] = LiveMinute(live=candle)
            elif held.live is None:
                held.live = candle
            else:
                held.live.merge(candle)
            self._changed.add(minute)
        return rebuild

    def restored(self, bars: list[CandleBar]) -> None:
        """Minutes just rebuilt from storage; the ticks counted into them from now on have higher ids."""
        for bar in bars:
            self.minutes[bar.open_time] = LiveMinute(stored=bar)
            self._changed.add(bar.open_time)

    def due(self, now: datetime) -> list[CandleBar]:
        """The candles to write: of the minutes changed since the last call, and of those closing now (their
        minute and the grace are over). Minutes closed ``CANDLE_MEMORY`` ago are forgotten."""
        closing = {m for m in self._open if m + ONE_MINUTE + CANDLE_GRACE <= now}
        minutes = sorted((self._changed | closing) & self.minutes.keys())
        self._changed = set()
        bars = [self.minutes[m].bar(closed=m + ONE_MINUTE + CANDLE_GRACE <= now) for m in minutes]
        self._open = (self._open - set(minutes)) | {b.open_time for b in bars if not b.closed}
        for m in [m for m in self.minutes if m + ONE_MINUTE + CANDLE_GRACE + CANDLE_MEMORY <= now]:
            if m not in self._open:
                del self.minutes[m]
                self.horizon = m if self.horizon is None else max(self.horizon, m)
        return bars


class TradeStream:
    """Run with ``await TradeStream(config, feed, rest_factory).run()``; ``stop()`` ends it after a last flush.
    ``feed`` speaks the exchange's stream protocol; ``rest_factory`` makes the REST adapter gaps are filled with."""

    def __init__(
        self,
        config: StreamConfig,
        feed: StreamAdapter,
        rest_factory: Callable[[], RestAdapter],
        trader: Trader | None = None,
    ) -> None:
        self.config = config
        self.trader = trader  # acts on the signals (risk, orders) and watches positions on every trade
        self.feed = feed
        self.url = feed.url()
        self.state = {s: SymbolState() for s in config.symbols}
        self.reconnects = 0
        self._rest_factory = rest_factory
        self._rest: RestAdapter | None = None
        self._buffer: list[TradeTick] = []
        self._flush_now = asyncio.Event()
        self._stopping = asyncio.Event()
        self._db = ThreadPoolExecutor(1, thread_name_prefix="stream-db")
        self._rest_pool = ThreadPoolExecutor(1, thread_name_prefix="stream-rest")
        # The trader's own thread: its executor may call the exchange (and wait on it), which must never hold up
        # storing the record; its jobs run in the order they were handed over.
        self._trade_pool = ThreadPoolExecutor(1, thread_name_prefix="stream-trade")
        self._fills: set[asyncio.Task[None]] = set()
        self._restore: dict[str, set[datetime]] = {s: set() for s in config.symbols}  # to rebuild from storage
        self._quiet: list[CandleBar] = []  # synthetic candles of quiet minutes, for the database thread
        self._evaluators: dict[str, Evaluator] = {}  # the strategy's, per symbol; on the database thread
        self._candles = {s: LiveCandles() for s in config.symbols}  # on the database thread only
        self._rng = random.Random()
        self._ws: Any = None
        self._down_until = 0.0  # monotonic time a requested drop lasts until
        self._deaf_until = 0.0
        self._last_frame = 0.0
        self._feed_state: str = Feed.State.DOWN
        self._pub = Publisher(None, config.exchange)  # the channel layer is bound in run(), on the loop

    def stop(self) -> None:
        """End the stream: the socket is closed now; buffered ticks and running gap fills finish first."""
        self._stopping.set()
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def run(self) -> None:
        """Stream until ``stop()``: resume from storage, then connect, read, reconnect, forever."""
        self._pub = Publisher(get_channel_layer(), self.config.exchange)
        for symbol in self.config.symbols:
            last = await self._in(self._db, _last_stored, self.config.exchange, symbol)
            if last is not None:  # resume: the minutes a crash left without their candle are rebuilt
                st = self.state[symbol]
                st.last_id, st.last_ts, st.last_price = last
                self._candles[symbol].horizon = floor(last[1], "1m")
                self._restore[symbol] |= await self._in(
                    self._db, _resume_minutes, self.config.exchange, symbol, last[1]
                )
        if self.config.signals:
            await self._in(self._rest_pool, self._warm_signals)
        if self.trader is not None:
            await self._in(self._trade_pool, self.trader.start, datetime.now(UTC))
        for gap in await self._in(self._db, _unfinished_gaps, self.config.exchange, self.config.symbols):
            self._fill(gap.symbol, gap.start, gap.end, (None, None))
        flusher = asyncio.create_task(self._flusher())
        candler = asyncio.create_task(self._candler())
        control = asyncio.create_task(self._control())
        try:
            await self._connect_forever()
        finally:
            self._stopping.set()
            control.cancel()
            await flusher
            if self._fills:
                await asyncio.wait(self._fills, timeout=60)
            await candler
            await self._in(self._db, self._count, [], self._take_restore(), [])  # minutes the last fills touched
            await self._write_candles()  # the last flush and fills are in: one final pass
            await self._feeds(Feed.State.DOWN, "stopped")
            if self.trader is not None:  # what the trader was handed finishes, and its last changes go out
                await asyncio.get_running_loop().run_in_executor(None, self._trade_pool.shutdown, True)
                await self._push_orders()
            self._trade_pool.shutdown(wait=False)
            self._db.shutdown(wait=True)
            self._rest_pool.shutdown(wait=True, cancel_futures=True)

    async def _connect_forever(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            reason = "closed by the exchange"
            try:
                # No permessage-deflate: inflating each frame doubled the socket's CPU per frame (4 → 8 µs),
                # which matters more than the bandwidth at 10,000+ frames/s.
                async with connect(
                    self.url, ping_interval=None, open_timeout=10, close_timeout=2, max_queue=None, compression=None
                ) as ws:
                    self._ws = ws
                    for message in self.feed.subscribe():
                        await ws.send(message)
                    attempt = 0
                    log.info("%s connected: %s", self.config.exchange, self.url)
                    await self._feeds(Feed.State.CONNECTED, "")
                    reason = await self._read(ws) or reason
            except (OSError, WebSocketException, InvalidHandshake, InvalidURI) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
            if self._stopping.is_set():
                return
            self.reconnects += 1
            metrics.reconnects.labels(self.config.exchange).inc()
            attempt += 1
            delay = max(backoff_delay(attempt, self.config.reconnect, self._rng), self._down_until - time.monotonic())
            if time.monotonic() < self._down_until:
                reason = f"dropped on request ({reason})"
            log.warning("%s socket down (%s); reconnecting in %.2f s", self.config.exchange, reason, delay)
            await self._feeds(Feed.State.RECONNECTING, reason)
            try:
                async with asyncio.timeout(delay):
                    await self._stopping.wait()
            except TimeoutError:
                pass

    async def _read(self, ws: Any) -> str | None:
        """Frames until the socket closes (None), stalls or ages out (the reason), or the stream stops. A
        watchdog task ends a silent socket; a timeout around every frame cost a quarter of the parse time."""
        opened = self._last_frame = time.monotonic()
        why: list[str] = []

        async def watchdog() -> None:
            while True:
                await asyncio.sleep(min(0.5, self.config.stall_seconds / 4))
                now = time.monotonic()
                if now - self._last_frame > self.config.stall_seconds:
                    why.append(f"no frame for {self.config.stall_seconds:g} s (stalled)")
                    break
                if now - opened > self.config.max_age_seconds:
                    why.append("renewing the socket before the exchange's 24-hour limit")
                    break
            await ws.close()

        dog = asyncio.create_task(watchdog())
        try:
            async for message in ws:
                if self._stopping.is_set():
                    break
                now = time.monotonic()
                if now < self._deaf_until:
                    continue  # a requested stall: these frames are lost, as on a silent socket
                self._last_frame = now
                self._on_message(message)
        finally:
            dog.cancel()
        return why[0] if why else None

    def drop(self, seconds: float, mode: str = "close") -> None:
        """Take the socket down for ``seconds``, as an outage would: ``close`` it now, or ``stall`` (frames
        are lost until the watchdog gives the socket up). Reconnecting waits until the time is over."""
        now = time.monotonic()
        self._down_until = now + seconds
        log.warning("%s: drop requested (%s, %g s)", self.config.exchange, mode, seconds)
        if mode == "stall":
            self._deaf_until = now + seconds
        elif self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def _control(self) -> None:
        """Commands from ``manage.py feed`` and the live page, over the channel layer (group ``feed.<exchange>``)."""
        layer = get_channel_layer()
        if layer is None:
            return
        try:
            channel = await layer.new_channel()
            await layer.group_add(control_group(self.config.exchange), channel)
        except (OSError, ConnectionError) as exc:
            log.warning(
                "%s: no channel layer (%s); feed commands will not reach this stream", self.config.exchange, exc
            )
            return
        while True:
            try:
                message = await layer.receive(channel)
            except Exception as exc:  # the control channel must outlive any Redis hiccup
                log.warning("%s: channel layer error: %r", self.config.exchange, exc)
                await asyncio.sleep(1)
                continue
            if message.get("type") == "feed.drop":
                seconds = message.get("seconds")
                mode = message.get("mode", "close")
                if isinstance(seconds, int | float) and 0 < seconds <= 3600 and mode in DROP_MODES:
                    self.drop(float(seconds), mode)
                else:
                    log.warning("%s: bad feed command ignored: %r", self.config.exchange, message)

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
            if got.reply is not None and self._ws is not None:
                asyncio.get_running_loop().create_task(self._ws.send(got.reply))

    def _take(self, tick: TradeTick) -> None:
        st = self.state.get(tick.symbol)
        if st is None:
            return
        if st.last_id is not None:
            if tick.trade_id <= st.last_id:
                return  # a repeat (or a late frame of a hole being filled): storage would ignore it anyway
            if tick.trade_id > st.last_id + 1:
                self._fill(tick.symbol, st.last_id + 1, tick.trade_id - 1, (st.last_ts, tick.ts))
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
        self._fill(symbol, st.last_id + 1, last_id, (st.last_ts, None))
        st.last_id = last_id

    def _fill(self, symbol: str, first_id: int, last_id: int, span: tuple[datetime | None, datetime | None]) -> None:
        log.info(
            "%s %s: gap of %d trades (ids %d..%d); filling from REST",
            self.config.exchange,
            symbol,
            last_id - first_id + 1,
            first_id,
            last_id,
        )
        task = asyncio.create_task(self._fill_gap(symbol, first_id, last_id, span))
        self._fills.add(task)
        task.add_done_callback(self._fills.discard)

    async def _fill_gap(
        self, symbol: str, first_id: int, last_id: int, span: tuple[datetime | None, datetime | None]
    ) -> None:
        exchange = self.config.exchange
        gap = await self._in(
            self._db, lambda: gap_open(exchange=exchange, symbol=symbol, first_id=first_id, last_id=last_id)
        )
        await self._pub.gap(gap, span=span)
        began = time.monotonic()
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
            except ExchangeError as exc:  # retried inside already: wait a little and try the gap again
                log.warning("%s %s: gap %d..%d not filled yet: %s", exchange, symbol, first_id, last_id, exc)
                try:
                    async with asyncio.timeout(5):
                        await self._stopping.wait()
                    return  # stopping: the gap stays "filling" and is filled on the next start
                except TimeoutError:
                    continue
        unreturned = hole_size(fill.unreturned)
        span = await self._in(self._db, ts_span, exchange, symbol, first_id, last_id)
        if span:  # the candles of the minutes the gap touched are rebuilt with the recovered trades
            t = floor(span[0], "1m")
            while t <= span[1]:
                self._restore[symbol].add(t)
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
                    self._in(self._db, self._store_safely, batch, restore, quiet), self._pub.trades(batch)
                )
                if self.trader is not None and batch and failed != "ticks":  # stored: the stops see them now
                    self._trade_pool.submit(self.trader.on_ticks, batch, datetime.now(UTC))
                await self._push_orders()
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

    def _store_safely(
        self, batch: list[TradeTick], restore: dict[str, set[datetime]], quiet: list[CandleBar]
    ) -> str | None:
        """On the database thread: store ``batch`` and count it into the live candles (see ``_count``), reporting a
        failure of the database instead of raising: "ticks" when the ticks were not written, "candles" when they
        were but the candle work failed; None when all went well."""
        stage = "ticks"
        began = time.perf_counter()
        try:
            if batch:
                ticks_ingest(ticks=batch)
            stage = "candles"
            self._count(batch, restore, quiet)
        except Exception as exc:  # any failure of the database (mongod down, a network error): nothing is lost
            metrics.store_failures.labels(self.config.exchange, stage).inc()
            log.warning(
                "%s: storing %d ticks failed at the %s (%s: %s); kept for a retry",
                self.config.exchange,
                len(batch),
                stage,
                type(exc).__name__,
                exc,
            )
            return stage
        if batch:
            metrics.flush_seconds.labels(self.config.exchange).observe(time.perf_counter() - began)
        return None

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

    def _count(self, batch: list[TradeTick], restore: dict[str, set[datetime]], quiet: list[CandleBar]) -> None:
        """On the database thread, once ``batch`` is stored: count it into the live candles. The minutes of
        ``restore``, and those that may hold stored ticks not counted here, are rebuilt from storage instead
        (which holds the batch by then). ``quiet``: synthetic candles of quiet minutes, taken as they are."""
        for bar in quiet:
            self._candles[bar.symbol].restored([bar])
        counted: dict[str, dict[datetime, CandleAccumulator]] = {symbol: {} for symbol in self._candles}
        for (_, symbol, minute), candle in accumulate(batch).items():
            counted[symbol][minute] = candle
        now = datetime.now(UTC)
        for symbol, candles in self._candles.items():
            rebuild = candles.count(counted[symbol], restore.get(symbol, set()))
            if rebuild:
                candles.restored(
                    candles_rebuild(exchange=self.config.exchange, symbol=symbol, minutes=rebuild, now=now)
                )

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
        written, signals = await self._in(self._db, self._candles_write, datetime.now(UTC))
        for symbol, bars in written.items():
            await self._pub.candles(symbol, bars)
        for symbol, decisions in signals.items():
            await self._pub.signals(symbol, decisions)
        if self.trader is not None and signals:
            self._trade_pool.submit(self._trade_decisions, signals, datetime.now(UTC))
        await self._push_orders()

    async def _push_orders(self) -> None:
        changes = self.trader.drain() if self.trader is not None else None
        if changes:
            await self._pub.orders(changes)

    def _candles_write(self, now: datetime) -> tuple[dict[str, list[CandleBar]], dict[str, list[Decision]]]:
        """On the database thread: write the 1m candles that are due (see ``LiveCandles.due``), then decide and
        store the strategy's signals on those that are closed; returns both."""
        written = {symbol: bars for symbol, candles in self._candles.items() if (bars := candles.due(now))}
        candles_upsert(candles=[bar for bars in written.values() for bar in bars])
        signals: dict[str, list[Decision]] = {}
        for symbol, bars in written.items():
            evaluator = self._evaluators.get(symbol)
            closed = [b for b in bars if b.closed]
            if evaluator is None or not closed:
                continue
            try:  # the record goes on whatever the strategy does
                decisions = [d for b in closed for d in evaluator.feed(b)]
                signals_store(decisions=decisions)
            except Exception:
                log.exception(
                    "%s %s: signals not decided for %s",
                    self.config.exchange,
                    symbol,
                    ", ".join(f"{b.open_time:%H:%M}" for b in closed),
                )
                continue
            signals[symbol] = decisions
        return written, signals

    def _trade_decisions(self, signals: dict[str, list[Decision]], now: datetime) -> None:
        """On the trader's thread: closed candle → signal → risk → executor → stored (pushed by the next pass),
        at each symbol's live price."""
        assert self.trader is not None
        for symbol, decisions in signals.items():
            self.trader.on_decisions(decisions, {symbol: self.state[symbol].last_price}, now)

    def _warm_signals(self) -> None:
        """On the REST thread, before the socket opens: an evaluator per symbol, warmed with the window of
        candles before now (stored, else fetched) and the signals stored within the cooldown."""
        for symbol in self.config.symbols:
            try:
                self._evaluators[symbol] = live_evaluator(
                    exchange=self.config.exchange, symbol=symbol, now=datetime.now(UTC)
                )
            except Exception:  # no signals for this symbol, but its trades are recorded all the same
                log.exception("%s %s: the strategy could not be warmed up; no signals", self.config.exchange, symbol)

    async def _feeds(self, state: str | None, error: str) -> None:
        """Write each symbol's Feed record and announce it; ``state`` None keeps the current state (a periodic
        refresh)."""
        self._feed_state = state = state or self._feed_state
        now = datetime.now(UTC)
        feeds = await self._in(self._db, self._feeds_write, state, error, now)
        for feed in feeds:
            await self._pub.feed(feed, now)

    def _feeds_write(self, state: str, error: str, now: datetime) -> list[Feed]:
        feeds = []
        exchange = self.config.exchange
        for symbol, st in self.state.items():
            lag = None if st.last_ts is None else max(0, int((now - st.last_ts).total_seconds() * 1000))
            metrics.feed_state.labels(exchange, symbol).state(state)
            if lag is not None:
                metrics.feed_lag.labels(exchange, symbol).set(lag / 1000)
                metrics.feed_last_trade.labels(exchange, symbol).set(st.last_ts.timestamp())
            feed, _ = Feed.objects.update_or_create(
                exchange=self.config.exchange,
                symbol=symbol,
                defaults={
                    "state": state,
                    "last_trade_id": st.last_id,
                    "last_trade_at": st.last_ts,
                    "lag_ms": lag,
                    "reconnects": self.reconnects,
                    **({"last_error": error} if error else {}),
                },
            )
            feeds.append(feed)
        return feeds

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


def _last_stored(exchange: str, symbol: str) -> tuple[int, datetime, Decimal] | None:
    """The id, exchange time and price of the last stored tick."""
    doc = connection.database[Tick._meta.db_table].find_one(
        {"exchange": exchange, "symbol": symbol}, {"trade_id": 1, "ts": 1, "price": 1}, sort=[("trade_id", -1)]
    )
    return (int(doc["trade_id"]), doc["ts"].replace(tzinfo=UTC), doc["price"].to_decimal()) if doc else None


def _resume_minutes(exchange: str, symbol: str, last_ts: datetime) -> set[datetime]:
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


def _unfinished_gaps(exchange: str, symbols: tuple[str, ...]) -> list[Gap]:
    return list(
        Gap.objects.filter(
            exchange=exchange, symbol__in=symbols, kind="trades", state__in=[Gap.State.OPEN, Gap.State.FILLING]
        )
    )
