"""What the stream announces, to whom, on which thread: the listener Protocol and its dispatcher.

The stream knows nothing of what is built on the record (signals, trading); it announces what happened and the
listeners attached to it act. The events, in the order they happen for one batch or one candle pass:

- ``ticks_stored(batch, now)``: a batch of live trades is stored (only once its ticks are in the database);
- ``candles_written(written, now)``: the 1m candles just written, by symbol (``closed`` tells the closed ones);
- ``feed_changed(state, reason, now)``: the stream set its feeds' state (connected, reconnecting with the reason,
  down when it stops), not on the periodic refresh.

Each listener declares its thread (``ListenerThread``):

- ``DATABASE``: the stream's database thread, in order, right after the job that stored the batch or wrote the
  candles. For cheap database work (deciding signals): it holds up storing the record while it runs.
- ``OWN``: one thread the stream creates for this listener, its jobs run in the order they were announced. For
  work that may wait on an exchange (the trader): it never holds up storing the record.

``start(now)`` runs before the socket opens, and the stream waits for it: on the stream's REST thread for a
``DATABASE`` listener (a warm-up may fetch candles from the exchange), on its own thread for an ``OWN`` one.
``stop()`` runs at shutdown after the last candles and feed states were announced, on the listener's thread,
after every job queued there; what it announces still goes out.

A listener that raises is logged with the exchange and the event (with its traceback the first time in a row, then
now and then, and once when it works again), counted in ``tradingsite_stream_listener_failures_total``, and never
stops the record nor the other listeners. What a failed event carried is the listener's to keep: the signal
listener and the trader keep what their database refused and retry it (``signals.listener``, ``orders.listener``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from .. import metrics
from ..exchanges.base import CandleBar, TradeTick
from ..live import Publisher

log = logging.getLogger(__name__)


class ListenerThread(StrEnum):
    """Where a listener's events run (see the module docstring)."""

    DATABASE = "database"
    OWN = "own"


@dataclass(frozen=True, slots=True)
class ListenerContext:
    """What the stream gives a listener when it is attached.

    ``announce(group, event)`` sends a channel-layer event (``{"type": ..., "data": ...}``) to ``group`` through the
    stream's publisher, from any thread; a failure is logged, never raised. ``submit(fn, *args)`` queues ``fn`` on
    the listener's own thread (the database thread for a ``DATABASE`` listener), after what is queued there
    already; a failure is logged, and the returned future then holds None.
    """

    exchange: str
    symbols: tuple[str, ...]
    announce: Callable[[str, dict[str, Any]], None]
    submit: Callable[..., Future[Any]]


class StreamListener(Protocol):
    """A listener of one stream. Subclass it to inherit do-nothing events and implement only those needed."""

    name: str  # for logs, metrics and the thread's name
    thread: ListenerThread

    def attach(self, context: ListenerContext) -> None:
        """Called once when the stream is made, on the caller's thread; keep ``context`` for later."""

    def start(self, now: datetime) -> None:
        """Before the socket opens; the stream waits for it."""

    def ticks_stored(self, batch: Sequence[TradeTick], now: datetime) -> None:
        """A batch of live trades is stored."""

    def candles_written(self, written: Mapping[str, Sequence[CandleBar]], now: datetime) -> None:
        """The 1m candles just written, by symbol; the closed ones have ``closed`` set."""

    def feed_changed(self, state: str, reason: str, now: datetime) -> None:
        """The stream set its feeds' state (``markets.models.Feed.State``); ``reason`` says why it is down."""

    def stop(self) -> None:
        """At shutdown, after every job queued on the listener's thread."""


class Listeners:
    """The listeners of one stream, in the order they were attached, each with its thread. The stream calls the
    events from its database thread; ``DATABASE`` listeners run then and there, ``OWN`` ones are queued."""

    def __init__(
        self, exchange: str, symbols: tuple[str, ...], listeners: Sequence[StreamListener], db: ThreadPoolExecutor
    ) -> None:
        self.exchange = exchange
        self._db = db
        self._entries: list[tuple[StreamListener, ThreadPoolExecutor]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publisher: Publisher | None = None
        self._pending: set[Future[None]] = set()  # announcements not sent yet
        self._in_order = asyncio.Lock()  # FIFO: announcements go out in the order they were made
        self._lock = threading.Lock()
        self._failing: dict[tuple[str, str], int] = {}  # (listener, event): failures in a row
        for listener in listeners:
            own = listener.thread == ListenerThread.OWN
            pool = ThreadPoolExecutor(1, thread_name_prefix=f"stream-{listener.name}") if own else db
            self._entries.append((listener, pool))
            context = ListenerContext(exchange, symbols, self.announce, self._submitter(listener, pool))
            self._call(listener, "attach", listener.attach, context)

    def bind(self, loop: asyncio.AbstractEventLoop, publisher: Publisher) -> None:
        """Announcements go through ``publisher`` on ``loop`` from now on (the stream's, once it runs)."""
        self._loop, self._publisher = loop, publisher

    def announce(self, group: str, event: dict[str, Any]) -> None:
        """Send ``event`` to ``group`` on the stream's loop, from any thread; logged, never raised."""
        loop, publisher = self._loop, self._publisher
        if loop is None or publisher is None:  # not running yet: nothing listens on the channel layer
            log.debug("%s: %s to %s dropped: the stream is not running", self.exchange, event.get("type"), group)
            return
        try:
            future = asyncio.run_coroutine_threadsafe(self._send(publisher, group, event), loop)
        except RuntimeError as exc:  # the loop has closed
            log.warning("%s: %s to %s not sent (%s)", self.exchange, event.get("type"), group, exc)
            return
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._sent)

    async def _send(self, publisher: Publisher, group: str, event: dict[str, Any]) -> None:
        # One at a time, in order: a channel-layer send awaits several times, so two sends running side by side
        # could swap (an unrealised-PnL update landing after the position's close would show it open again).
        async with self._in_order:
            await publisher.event(group, event)

    def _sent(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning("%s: an announcement failed: %r", self.exchange, future.exception())

    async def start(self, rest: ThreadPoolExecutor, now: Callable[[], datetime]) -> None:
        """Start each listener in turn, waiting for each: a ``DATABASE`` one on ``rest``, an ``OWN`` one on its
        thread; ``now`` is read as each one starts."""
        loop = asyncio.get_running_loop()
        for listener, pool in self._entries:
            where = rest if pool is self._db else pool
            await loop.run_in_executor(where, lambda lr=listener: self._call(lr, "start", lr.start, now()))

    def ticks_stored(self, batch: Sequence[TradeTick], now: datetime) -> None:
        """On the database thread, once ``batch`` is stored."""
        self._dispatch("ticks_stored", batch, now)

    def candles_written(self, written: Mapping[str, Sequence[CandleBar]], now: datetime) -> None:
        """On the database thread, once the candles of ``written`` are."""
        if written:
            self._dispatch("candles_written", written, now)

    def feed_changed(self, state: str, reason: str, now: datetime) -> None:
        """On the database thread, once the feeds' records hold ``state``."""
        self._dispatch("feed_changed", state, reason, now)

    async def stop(self) -> None:
        """Each listener in turn: the jobs queued on its thread finish, then its ``stop()``; then every
        announcement made goes out. An ``OWN`` listener's thread ends here."""
        loop = asyncio.get_running_loop()
        for listener, pool in self._entries:
            if pool is self._db:
                await loop.run_in_executor(pool, self._call, listener, "stop", listener.stop)
            else:
                pool.submit(self._call, listener, "stop", listener.stop)
                await loop.run_in_executor(None, pool.shutdown, True)
        with self._lock:
            pending = list(self._pending)
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending], timeout=10)

    def _dispatch(self, event: str, *args: Any) -> None:
        for listener, pool in self._entries:
            fn = getattr(listener, event)
            if pool is self._db:
                self._call(listener, event, fn, *args)
            else:
                self._queue(pool, listener, event, fn, *args)

    def _submitter(self, listener: StreamListener, pool: ThreadPoolExecutor) -> Callable[..., Future[Any]]:
        def submit(fn: Callable[..., Any], *args: Any) -> Future[Any]:
            return self._queue(pool, listener, getattr(fn, "__name__", "job"), fn, *args)

        return submit

    def _queue(
        self, pool: ThreadPoolExecutor, listener: StreamListener, event: str, fn: Callable[..., Any], *args: Any
    ) -> Future[Any]:
        try:
            return pool.submit(self._call, listener, event, fn, *args)
        except RuntimeError:  # the listener's thread has ended (the stream stopped): the job goes nowhere
            log.warning("%s: %s for the %s listener after it stopped; dropped", self.exchange, event, listener.name)
            dropped: Future[Any] = Future()
            dropped.set_result(None)
            return dropped

    def _call(self, listener: StreamListener, event: str, fn: Callable[..., Any], *args: Any) -> Any:
        key = (listener.name, event)
        try:
            got = fn(*args)
        except Exception as exc:  # a listener's failure is its own: the record and the other listeners go on
            metrics.listener_failures.labels(self.exchange, listener.name, event).inc()
            with self._lock:
                row = self._failing[key] = self._failing.get(key, 0) + 1
            if row == 1:
                log.exception("%s: the %s listener failed on %s", self.exchange, listener.name, event)
            elif row <= 3 or row % 100 == 0:  # a database outage: said again now and then, not on every event
                log.warning(
                    "%s: the %s listener failed on %s again (%d in a row; %s: %s)",
                    self.exchange,
                    listener.name,
                    event,
                    row,
                    type(exc).__name__,
                    str(exc)[:200],
                )
            return None
        if key in self._failing:
            with self._lock:
                row = self._failing.pop(key, 0)
            log.warning(
                "%s: the %s listener works on %s again after %d failures (what it missed, it keeps or logged)",
                self.exchange,
                listener.name,
                event,
                row,
            )
        return got
