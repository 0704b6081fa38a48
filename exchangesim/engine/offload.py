"""Off-loop history work, and the bounded cache of generated blocks it shares with the clock.

A query into the past may have to generate blocks of trades (a minute of history at 30,000 trades/s is
1.8 million trades, about half a second of work), and a klines answer may aggregate a thousand of them.
Run on the event loop, such a request stopped the clock, every socket and ``/_sim/status`` for minutes,
and a SIGTERM was not even seen until it ended. History queries therefore run on a few worker threads
(:class:`Offload`); the clock, the sockets and the control API stay on the loop. Numpy releases the GIL
for most of the generating work, and a CPython thread holding it gives it up within the switch interval,
so the loop answers in milliseconds while a worker grinds.

What is shared between the loop and the workers is made safe for it: the generated blocks live in one
:class:`BlockCache` (a lock around the dictionary, generation outside it), and every other cache of the
tape (per-block and per-minute aggregates) is written whole by a single assignment, so a race can only
compute the same value twice. Stopping sets :attr:`Offload.stopping`; work in flight gives up at the
next block it would generate, so a stop never waits for more than one block.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar, TypeVar

from .batch import TradeBatch

T = TypeVar("T")


class Stopped(RuntimeError):
    """The market is stopping: history work in flight gives up."""


class BlockCache:
    """Generated trades of recently used blocks, least recently used dropped first, at most ``max_trades``
    trades held (about 33 bytes each) whatever the block sizes; thread-safe. A block larger than the whole
    budget is still held alone, so paging through it does not regenerate it per page."""

    def __init__(self, max_trades: int = 4_000_000, stopping: threading.Event | None = None) -> None:
        self.max_trades = max_trades
        self.stopping = stopping or threading.Event()
        self.held = 0
        self._items: OrderedDict[Hashable, TradeBatch] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> TradeBatch | None:
        with self._lock:
            batch = self._items.get(key)
            if batch is not None:
                self._items.move_to_end(key)
            return batch

    def put(self, key: Hashable, batch: TradeBatch) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = batch
            self.held += len(batch)
            while self.held > self.max_trades and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self.held -= len(old)

    def check(self) -> None:
        """Raise :class:`Stopped` once the market is stopping, or once the client of the work this thread is doing
        went away (called before each block is generated)."""
        if self.stopping.is_set():
            raise Stopped("the simulator is stopping")
        cancelled = getattr(_work, "cancelled", None)
        if cancelled is not None and cancelled.is_set():
            raise Stopped("the client went away")

    def __len__(self) -> int:
        return len(self._items)


class Offload:
    """Worker threads for history queries: ``await offload.run(fn, *args)`` runs ``fn`` on one.

    Candles (klines, candles, OHLC and the history warm-up: they may aggregate a thousand minutes) and trade pages
    (at most a few blocks each) have threads of their own, so a queue of cold klines requests never holds up the
    pages a stream's gap recovery is waiting for; bulk files (a day of trades: seconds of work) have one thread.
    ``gone`` (polled every half second) tells that the client went away: its work is then given up at the next
    block, so a client that times out and asks again does not leave the first attempt grinding beside the second.
    """

    WORKERS: ClassVar[dict[str, int]] = {"candles": 2, "trades": 2, "files": 1}
    POLL_S = 0.5

    def __init__(self, stopping: threading.Event | None = None) -> None:
        self.stopping = stopping or threading.Event()
        self._pools: dict[str, ThreadPoolExecutor] = {}

    def _pool(self, kind: str) -> ThreadPoolExecutor:
        if kind not in self._pools:  # created on first use: a market ticked by hand in a test starts no thread
            self._pools[kind] = ThreadPoolExecutor(self.WORKERS[kind], thread_name_prefix=f"exchangesim-{kind}")
        return self._pools[kind]

    async def run(
        self, fn: Callable[..., T], *args: object, kind: str = "trades", gone: Callable[[], bool] | None = None
    ) -> T:
        """``fn(*args)`` on a ``kind`` worker thread; raises :class:`Stopped` once stopping or once ``gone()``."""
        if self.stopping.is_set():
            raise Stopped("the simulator is stopping")
        cancelled = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(
            self._pool(kind), functools.partial(_cancellable, cancelled, fn, *args)
        )
        try:
            while gone is not None and not future.done():
                await asyncio.wait((future,), timeout=self.POLL_S)
                if not future.done() and gone():
                    cancelled.set()
            return await future
        except asyncio.CancelledError:
            cancelled.set()
            raise
        except Stopped:
            if gone is None:
                raise
            # A request whose client left, or the simulator is stopping: nothing is answered, as when a client
            # drops a connection (aiohttp closes it quietly instead of logging an internal error).
            raise asyncio.CancelledError from None

    def close(self) -> None:
        """Stop: queued work is dropped, work in flight gives up at its next block, nothing waits for it."""
        self.stopping.set()
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)


_work = threading.local()  # the cancel flag of the work a worker thread is doing


def _cancellable(cancelled: threading.Event, fn: Callable[..., T], *args: object) -> T:
    _work.cancelled = cancelled
    try:
        return fn(*args)
    finally:
        _work.cancelled = None
