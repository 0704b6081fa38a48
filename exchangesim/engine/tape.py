"""Tape: the ground truth of one symbol, as blocks that are (re)generated on demand.

The tape knows every trade it has made public (``emitted_ms``: every trade with a time at or before
it has been emitted) and answers every query from the same blocks, so REST, WebSocket and the
truth endpoint can never disagree. The clock advances it on the event loop; queries may run on a
history worker thread at the same time (see ``offload.py`` for what keeps that safe).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator

import numpy as np

from ..symbols import SymbolSpec
from .aggregate import MINUTE, Agg, aggregate, combine, interval_ceil, interval_floor, interval_next
from .batch import AggBatch, TradeBatch, aggregate_trades, group_starts
from .blocks import Block, Producer
from .offload import BlockCache

NextBlock = Callable[[Block | None, int], Block]
_NOTHING = TradeBatch.empty()
Rows = TradeBatch | AggBatch
View = Callable[[Block], Rows]


class Tape:
    """Blocks of one symbol, oldest first, plus the emission watermark. ``cache`` holds generated blocks (the
    market shares one between its tapes, so its bound is the market's); a tape built alone has its own."""

    def __init__(
        self,
        spec: SymbolSpec,
        producer: Producer,
        blocks: list[Block],
        live_from: int,
        next_block: NextBlock,
        cache: BlockCache | None = None,
    ) -> None:
        self.spec = spec
        self.producer = producer
        self.next_block = next_block
        self.blocks: list[Block] = []
        self.starts: list[int] = []
        self.first_ids: list[int] = []
        self.first_aggs: list[int] = []
        for b in blocks:
            self._append(b)
        self.emitted_ms = live_from - 1
        self.offsets: list[tuple[int, int, int]] = []  # (from_ms, until_ms, ticks): outlier prints
        self.cache = cache if cache is not None else BlockCache()
        self._minutes: dict[int, Agg | None] = {}

    # -- structure ------------------------------------------------------------------------------
    def _append(self, block: Block) -> None:
        self.blocks.append(block)
        self.starts.append(block.t_start)
        self.first_ids.append(block.first_id)
        self.first_aggs.append(block.first_agg)

    def _ensure(self, t_ms: int) -> None:
        """Create blocks until one covers ``t_ms``."""
        while not self.blocks or self.blocks[-1].t_end <= t_ms:
            prev = self.blocks[-1] if self.blocks else None
            self._append(self.next_block(prev, t_ms))

    def trades_of(self, block: Block, *, keep: bool = True) -> TradeBatch:
        """The kept trades of a block: from the cache, or generated (and cached unless ``keep`` is false: an
        aggregate of a past block is computed once and kept, its trades need not be)."""
        key = (id(self), block.t_start)
        full = self.cache.get(key)
        if full is None:
            self.cache.check()
            full = self.producer.generate(block)
            if keep:
                self.cache.put(key, full)
        return self._offset(block, full[: block.n])

    def _offset(self, block: Block, trades: TradeBatch) -> TradeBatch:
        """Trades with the outlier offsets of the windows they fall in added to their prices (a constant
        number of ticks, so no two aggregate-trade groups become one)."""
        for lo, hi, ticks in self.offsets:
            if lo < block.t_end and hi > block.t_start and len(trades):
                inside = (trades.times >= lo) & (trades.times < hi)
                prices = np.maximum(1, trades.prices + np.where(inside, ticks, 0))
                trades = TradeBatch(trades.ids, trades.times, prices, trades.qtys, trades.buyer_maker)
        return trades

    def _public(self, block: Block, *, keep: bool = True) -> TradeBatch:
        """The emitted part of a block."""
        trades = self.trades_of(block, keep=keep)
        if block.t_end - 1 <= self.emitted_ms:
            return trades
        return trades[: int(np.searchsorted(trades.times, self.emitted_ms, side="right"))]

    def _block_index_at(self, t_ms: int) -> int:
        return max(0, bisect_right(self.starts, t_ms) - 1)

    @property
    def first_time(self) -> int:
        return self.blocks[0].t_start if self.blocks else self.emitted_ms + 1

    # -- emission -------------------------------------------------------------------------------
    # No trade is due before ``_due`` (ms): the time of the next trade of the current block, or its end. Until
    # then ``advance`` only moves the watermark, so a tape with nothing to print (most of a universe, most ticks)
    # costs the clock next to nothing. Cutting a block (``truncate``) forgets it.
    _due = 0

    def advance(self, now_ms: int) -> TradeBatch:
        """Make public every trade with a time in ``(emitted_ms, now_ms]`` and return them."""
        if now_ms <= self.emitted_ms:
            return TradeBatch.empty()
        if now_ms < self._due:
            self.emitted_ms = now_ms
            return _NOTHING
        self._ensure(now_ms)
        out = []
        due = 0
        i = self._block_index_at(self.emitted_ms + 1)
        while i < len(self.blocks) and self.blocks[i].t_start <= now_ms:
            b = self.blocks[i]
            due = b.t_end
            if b.t_end - 1 > self.emitted_ms and b.n:
                t = self.trades_of(b)
                lo = int(np.searchsorted(t.times, self.emitted_ms, side="right"))
                hi = int(np.searchsorted(t.times, now_ms, side="right"))
                out.append(t[lo:hi])
                if hi < len(t):
                    due = int(t.times[hi])
            i += 1
        self.emitted_ms = now_ms
        self._due = due
        return TradeBatch.concat(out)

    def skip_to(self, now_ms: int) -> None:
        """Make public every trade up to ``now_ms`` without reading them (the market's start: nobody was
        listening), so no block is generated for it."""
        if now_ms > self.emitted_ms:
            self._ensure(now_ms)
            self.emitted_ms = now_ms

    def truncate(self, now_ms: int) -> Block | None:
        """Cut the block holding ``now_ms`` right after it (a rate change or a pause starts now)."""
        self.advance(now_ms)
        self._due = 0
        b = self.blocks[self._block_index_at(now_ms)]
        if not b.t_start <= now_ms < b.t_end - 1:
            return None
        t = self.trades_of(b)
        kept = int(np.searchsorted(t.times, now_ms, side="right"))
        b.k = len(group_starts(t[:kept]))
        b.n = kept
        b.t_end = now_ms + 1
        b.agg, b.agg_ready = None, False
        return b

    def last_trade_id(self) -> int | None:
        """Id of the newest emitted trade."""
        b = self._last_nonempty_before(self.emitted_ms + 1)
        return None if b is None else int(b.ids[-1])

    def last_agg_id(self) -> int | None:
        """Id of the newest emitted aggregate trade."""
        i = self._block_index_at(self.emitted_ms)
        while i >= 0:
            b = self.blocks[i]
            t = self._public(b)
            if len(t):
                return b.first_agg + len(group_starts(t)) - 1
            i -= 1
        return None

    def _last_nonempty_before(self, t_ms: int) -> TradeBatch | None:
        """The public trades of the newest block with a trade before ``t_ms``, cut at ``t_ms``."""
        i = self._block_index_at(t_ms - 1)
        while i >= 0 and self.blocks:
            t = self._public(self.blocks[i])
            t = t[: int(np.searchsorted(t.times, t_ms, side="left"))]
            if len(t):
                return t
            i -= 1
        return None

    def price_before(self, t_ms: int) -> int | None:
        """Price of the last trade before ``t_ms`` (ticks)."""
        t = self._last_nonempty_before(t_ms)
        return None if t is None else int(t.prices[-1])

    def raw_price_before(self, t_ms: int) -> int | None:
        """``price_before`` without the outlier offset it may carry: where the generator continues from."""
        t = self._last_nonempty_before(t_ms)
        if t is None:
            return None
        at = int(t.times[-1])
        return int(t.prices[-1]) - sum(k for lo, hi, k in self.offsets if lo <= at < hi)

    def last_price(self) -> int:
        """Price of the newest emitted trade, or the start price when nothing traded yet (ticks)."""
        p = self.price_before(self.emitted_ms + 1)
        return p if p is not None else round(self.spec.start_price * self.spec.price_scale)

    # -- trades and aggregate trades ---------------------------------------------------------------
    # Both are read the same way from a per-block view: forward from an id or a time, or backward
    # from a time. ``_trades`` and ``_aggs`` name the view and the id array each query searches.
    def _aggs_of(self, block: Block) -> AggBatch:
        return aggregate_trades(self._public(block), block.first_agg)

    def _forward(self, view: View, i: int, stop_ms: int, limit: int, cut: Callable[[Rows], tuple[int, int]]) -> list:
        """Rows of ``view`` from block ``i`` on (blocks starting at or before ``stop_ms``), each cut to
        ``cut(rows)``, until ``limit`` rows."""
        out, got = [], 0
        while i < len(self.blocks) and got < limit and self.blocks[i].t_start <= stop_ms:
            rows = view(self.blocks[i])
            lo, hi = cut(rows)
            rows = rows[lo:hi][: limit - got]
            out.append(rows)
            got += len(rows)
            i += 1
        return out

    def _backward(self, view: View, end_ms: int, limit: int) -> list:
        """The newest ``limit`` rows of ``view`` at or before ``end_ms``, oldest first."""
        out, got = [], 0
        i = self._block_index_at(end_ms)
        while i >= 0 and got < limit and self.blocks:
            rows = view(self.blocks[i])
            rows = rows[: int(np.searchsorted(rows.times, end_ms, side="right"))]
            rows = rows[max(0, len(rows) - (limit - got)) :]
            out.append(rows)
            got += len(rows)
            i -= 1
        return out[::-1]

    def _from_id(
        self, view: View, firsts: list[int], ids: Callable[[Rows], np.ndarray], from_id: int, limit: int
    ) -> list:
        i = max(0, bisect_right(firsts, from_id) - 1)
        return self._forward(
            view, i, self.emitted_ms, limit, lambda r: (int(np.searchsorted(ids(r), from_id, side="left")), len(r))
        )

    def _between(self, view: View, start_ms: int, end_ms: int, limit: int) -> list:
        end_ms = min(end_ms, self.emitted_ms)
        return self._forward(
            view,
            self._block_index_at(start_ms),
            end_ms,
            limit,
            lambda r: (
                int(np.searchsorted(r.times, start_ms, side="left")),
                int(np.searchsorted(r.times, end_ms, side="right")),
            ),
        )

    def _end(self, end_ms: int | None) -> int:
        return self.emitted_ms if end_ms is None else min(end_ms, self.emitted_ms)

    def trades_from_id(self, from_id: int, limit: int) -> TradeBatch:
        """Up to ``limit`` public trades from id ``from_id`` on."""
        return TradeBatch.concat(self._from_id(self._public, self.first_ids, lambda r: r.ids, from_id, limit))

    def trades_between(self, start_ms: int, end_ms: int, limit: int) -> TradeBatch:
        """Up to ``limit`` public trades with ``start_ms <= time <= end_ms``, oldest first."""
        return TradeBatch.concat(self._between(self._public, start_ms, end_ms, limit))

    def trades_recent(self, limit: int, end_ms: int | None = None) -> TradeBatch:
        """The newest ``limit`` public trades at or before ``end_ms`` (default: now), oldest first."""
        return TradeBatch.concat(self._backward(self._public, self._end(end_ms), limit))

    def aggs_from_id(self, from_agg: int, limit: int) -> AggBatch:
        """Up to ``limit`` public aggregate trades from aggregate id ``from_agg`` on."""
        return AggBatch.concat(self._from_id(self._aggs_of, self.first_aggs, lambda r: r.agg_ids, from_agg, limit))

    def aggs_between(self, start_ms: int, end_ms: int, limit: int) -> AggBatch:
        """Up to ``limit`` public aggregate trades with ``start_ms <= time <= end_ms``, oldest first."""
        return AggBatch.concat(self._between(self._aggs_of, start_ms, end_ms, limit))

    def aggs_recent(self, limit: int, end_ms: int | None = None) -> AggBatch:
        """The newest ``limit`` public aggregate trades at or before ``end_ms``, oldest first."""
        return AggBatch.concat(self._backward(self._aggs_of, self._end(end_ms), limit))

    # -- klines ---------------------------------------------------------------------------------
    def _block_agg(self, block: Block) -> Agg | None:
        if block.agg_ready:
            return block.agg
        agg = aggregate(self._public(block, keep=False))
        if block.t_end - 1 <= self.emitted_ms:
            block.agg, block.agg_ready = agg, True
        return agg

    def agg_range(self, a: int, b: int) -> Agg | None:
        """Aggregate of the public trades with ``a <= time < b``."""
        parts: list[Agg | None] = []
        i = self._block_index_at(a)
        while i < len(self.blocks) and self.blocks[i].t_start < b and self.blocks[i].t_start <= self.emitted_ms:
            blk = self.blocks[i]
            if a <= blk.t_start and blk.t_end <= b:
                parts.append(self._block_agg(blk))
            else:
                t = self._public(blk)
                lo = int(np.searchsorted(t.times, a, side="left"))
                hi = int(np.searchsorted(t.times, b, side="left"))
                parts.append(aggregate(t[lo:hi]))
            i += 1
        return combine(parts)

    def minute_agg(self, m: int) -> Agg | None:
        """Aggregate of one minute, cached once the minute is over."""
        if m in self._minutes:
            return self._minutes[m]
        agg = self.agg_range(m, m + MINUTE)
        if m + MINUTE - 1 <= self.emitted_ms:
            self._minutes[m] = agg
        return agg

    def warm_minutes(self, minutes: Iterator[int], budget: int) -> bool:
        """Aggregate minutes taken from ``minutes`` until about ``budget`` trades have been read (an empty minute
        counts as a thousand); False once ``minutes`` is exhausted. A slice of the background warm-up."""
        done = 0
        for m in minutes:
            agg = self.minute_agg(m)
            done += 1000 + (agg.count if agg is not None else 0)
            if done >= budget:
                return True
        return False

    def cold_minutes(self, start_ms: int, end_ms: int) -> list[int]:
        """The whole minutes of ``[start_ms, end_ms)`` that are over but not aggregated yet: what a kline or a
        rolling aggregate over them would have to compute first."""
        m0 = interval_ceil(start_ms, "1m")
        m1 = min(interval_floor(end_ms, "1m"), interval_floor(self.emitted_ms + 1, "1m"))
        return [m for m in range(m0, m1, MINUTE) if m not in self._minutes]

    def kline_agg(self, open_ms: int, interval: str) -> Agg | None:
        """Aggregate of the kline opening at ``open_ms``."""
        end = interval_next(open_ms, interval)
        if interval == "1s":
            return self.agg_range(open_ms, end)
        last = min(end, self.emitted_ms + 1)
        return combine([self.minute_agg(m) for m in range(open_ms, last, MINUTE)])

    def rolling_agg(self, start_ms: int, end_ms: int) -> Agg | None:
        """Aggregate of ``start_ms <= time < end_ms`` using whole cached minutes where possible."""
        m0 = interval_ceil(start_ms, "1m")
        m1 = interval_floor(end_ms, "1m")
        if m1 <= m0:
            return self.agg_range(start_ms, end_ms)
        return combine(
            [
                self.agg_range(start_ms, m0),
                *(self.minute_agg(m) for m in range(m0, m1, MINUTE)),
                self.agg_range(m1, end_ms),
            ]
        )

    def kline_opens(self, interval: str, start_ms: int | None, end_ms: int | None, limit: int) -> list[int]:
        """Open times of the klines a klines request returns (Binance's start/end/limit rules)."""
        first = interval_floor(self.first_time, interval)
        last = interval_floor(self.emitted_ms, interval)
        if end_ms is not None:
            last = min(last, interval_floor(end_ms, interval))
        opens: list[int] = []
        if start_ms is not None:
            if start_ms > last:  # nothing yet (and no calendar arithmetic near year 9999)
                return []
            o = max(first, interval_ceil(start_ms, interval))
            while o <= last and len(opens) < limit:
                opens.append(o)
                o = interval_next(o, interval)
            return opens
        o = last
        while o >= first and len(opens) < limit:
            opens.append(o)
            o = interval_floor(o - 1, interval)
        return opens[::-1]

    def klines(self, interval: str, opens: list[int]) -> list[tuple[int, Agg | None, int]]:
        """``(open time, aggregate or None, previous close)`` for each kline; empty klines are flat."""
        rows = []
        prev = None
        for o in opens:
            agg = self.kline_agg(o, interval)
            if agg is None and prev is None:
                prev = self.price_before(o)
                if prev is None:
                    prev = round(self.spec.start_price * self.spec.price_scale)
            rows.append((o, agg, prev or 0))
            if agg is not None:
                prev = agg.close
        return rows
