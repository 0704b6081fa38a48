"""Trades of an id range fetched a few pages at a time: a backfill bound by the exchange's weight budget, not by
one request's round trip.

One request at a time spends at most ``cost / round trip`` of the budget: aggTrades weighs 4 and Binance allows
6,000 a minute (25 a second), so a page that takes more than 160 ms to fetch and store (a round trip to Binance is
often 100-250 ms) leaves budget unused however the requests are paced. Where ids are contiguous and an adapter can
make a :meth:`twin` for another thread (Binance), :func:`id_pages` asks :data:`WORKERS` pages at once, each from
its own twin, and hands them over in id order; the venue's weight budget
(:mod:`markets.exchanges.weight`) shared by the twins keeps them all within the limit, and its limiter holds
them all during a Retry-After. The caller stores each page as it comes, in order (one thread writes).

A page is the ids ``[a, a + width - 1]`` asked with ``fromId=a`` and ``limit=width``: every id of it that the
exchange still has comes back in that one answer, so ids it no longer has are simply absent (reported by the
caller as unreturned) and the pages never overlap.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .exchanges.base import RestAdapter
from .gaps import id_holes
from .types import TradeTick

WORKERS = 4  # pages in flight at once: with a 250 ms round trip, 16 pages a second, more than 25 weight a second
Page = tuple[int, int, list[TradeTick]]


def pipelined(adapter: RestAdapter) -> bool:
    """Whether ``adapter`` can fetch an id range a few pages at once (contiguous ids, and a ``twin`` method)."""
    return bool(adapter.capabilities.ids_contiguous) and callable(getattr(adapter, "twin", None))


def page_bounds(first: int, last: int, width: int) -> Iterator[tuple[int, int]]:
    """``[first, last]`` cut into pages of ``width`` ids (the last one shorter)."""
    if width < 1:
        raise ValueError(f"a page is at least one id wide, got {width}")
    a = first
    while a <= last:
        yield a, min(a + width - 1, last)
        a += width


def id_pages(adapter: RestAdapter, symbol: str, first: int, last: int, *, workers: int = WORKERS) -> Iterator[Page]:
    """``(a, b, trades)`` for each page of ``[first, last]`` in order, ``trades`` those with ids in ``[a, b]``;
    up to ``workers`` pages are fetched at once by twins of ``adapter`` (one page: by ``adapter`` itself). An
    exchange error ends the iteration (raised here); pages not yet handed over are dropped."""
    width = adapter.capabilities.max_trades
    bounds = list(page_bounds(first, last, width))
    if len(bounds) <= 1 or workers <= 1 or not pipelined(adapter):
        for a, b in bounds:
            yield a, b, _page(adapter, symbol, a, b)
        return
    local = threading.local()
    twins: list[Any] = []
    lock = threading.Lock()

    def fetch(a: int, b: int) -> list[TradeTick]:
        twin = getattr(local, "adapter", None)
        if twin is None:
            twin = local.adapter = adapter.twin()  # type: ignore[attr-defined]
            with lock:
                twins.append(twin)
        return _page(twin, symbol, a, b)

    pool = ThreadPoolExecutor(max_workers=min(workers, len(bounds)), thread_name_prefix=f"pages-{symbol}")
    ahead: deque[tuple[int, int, Future[list[TradeTick]]]] = deque()
    todo = iter(bounds)
    try:
        _fill(pool, fetch, todo, ahead, workers)
        while ahead:
            a, b, future = ahead.popleft()
            trades = future.result()
            _fill(pool, fetch, todo, ahead, workers)
            yield a, b, trades
    finally:
        for _, _, future in ahead:
            future.cancel()
        pool.shutdown(wait=True)
        for twin in twins:
            twin.close()


def _fill(
    pool: ThreadPoolExecutor,
    fetch: Callable[[int, int], list[TradeTick]],
    todo: Iterator[tuple[int, int]],
    ahead: deque[tuple[int, int, Future[list[TradeTick]]]],
    workers: int,
) -> None:
    """Keep ``workers`` pages in flight, plus one fetched ahead for the writer."""
    while len(ahead) < workers + 1:
        nxt = next(todo, None)
        if nxt is None:
            return
        ahead.append((nxt[0], nxt[1], pool.submit(fetch, *nxt)))


def _page(adapter: RestAdapter, symbol: str, a: int, b: int) -> list[TradeTick]:
    return [t for t in adapter.trades_from_id(symbol, a, limit=b - a + 1) if a <= t.trade_id <= b]


def ids_fill_pipelined(
    *,
    adapter: RestAdapter,
    symbol: str,
    first_id: int,
    last_id: int,
    store: Callable[[list[TradeTick]], int],
    progress: Callable[[int], None] | None = None,
) -> tuple[int, int, list[tuple[int, int]]]:
    """Trades ``first_id..last_id`` fetched by :func:`id_pages` and stored page by page in id order with
    ``store(page) -> new``; returns (fetched, newly stored, the id ranges the exchange did not return)."""
    fetched = written = 0
    unreturned: list[tuple[int, int]] = []
    for a, b, page in id_pages(adapter, symbol, first_id, last_id):
        if page:
            written += store(page)
            fetched += len(page)
        for hole in id_holes((t.trade_id for t in page), a, b):
            if unreturned and unreturned[-1][1] + 1 == hole[0]:
                unreturned[-1] = (unreturned[-1][0], hole[1])
            else:
                unreturned.append(hole)
        if progress and page:
            progress(len(page))
    return fetched, written, unreturned
