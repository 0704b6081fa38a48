"""ServedTape: a tape as a venue's REST history serves it, after ``/_sim/rest/forget``.

A venue that lost a stretch of its history answers as if those trades never existed there: they are
left out of every trade page, a page is filled from the trades after (or before) the hole, and a
candle any of whose trades were lost is not served. The tape itself, the WebSocket and
``/_sim/truth`` are unchanged. Ranges are inclusive ``(start_ms, end_ms)`` pairs of trade times.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable

import numpy as np

from .aggregate import interval_next
from .batch import AggBatch, TradeBatch
from .blocks import Block
from .tape import Rows, Tape

View = Callable[[Block], Rows]


class ServedTape:
    """Read-only queries of a tape with forgotten time ranges left out."""

    def __init__(self, tape: Tape, forgotten: Iterable[tuple[int, int]] = ()) -> None:
        self.tape = tape
        self.spec = tape.spec
        self.ranges = sorted(forgotten)

    # -- filtering ------------------------------------------------------------------------------
    def _visible(self, rows: Rows) -> Rows:
        if not self.ranges or not len(rows):
            return rows
        hidden = np.zeros(len(rows), dtype=bool)
        for a, b in self.ranges:
            hidden |= (rows.times >= a) & (rows.times <= b)
        return rows[~hidden] if hidden.any() else rows  # type: ignore[index]

    def _hidden(self, block: Block) -> bool:
        """The whole block lies in a forgotten range (skipped without generating it)."""
        return any(a <= block.t_start and block.t_end - 1 <= b for a, b in self.ranges)

    def visible_opens(self, opens: list[int], interval: str) -> list[int]:
        """Candle open times whose candle holds no forgotten trade."""
        if not self.ranges:
            return opens
        return [o for o in opens if not any(a < interval_next(o, interval) and o <= b for a, b in self.ranges)]

    def _collect(
        self, view: View, indices: Iterable[int], cut: Callable[[Rows], Rows], limit: int, newest: bool = False
    ) -> list[Rows]:
        """Visible rows of ``view`` over blocks ``indices`` (each cut by ``cut``) until ``limit``; with
        ``newest`` the blocks go backward and the newest rows are kept. Oldest first."""
        out: list[Rows] = []
        got = 0
        for i in indices:
            if got >= limit:
                break
            block = self.tape.blocks[i]
            if self._hidden(block):
                continue
            rows = self._visible(cut(view(block)))
            rows = rows[max(0, len(rows) - (limit - got)) :] if newest else rows[: limit - got]
            out.append(rows)
            got += len(rows)
        return out[::-1] if newest else out

    # -- queries --------------------------------------------------------------------------------
    def _from_id(
        self, view: View, firsts: list[int], ids: Callable[[Rows], np.ndarray], from_id: int, limit: int
    ) -> list[Rows]:
        t = self.tape
        start = max(0, bisect_right(firsts, from_id) - 1)
        stop = bisect_right(t.starts, t.emitted_ms)
        return self._collect(
            view, range(start, stop), lambda r: r[int(np.searchsorted(ids(r), from_id, side="left")) :], limit
        )

    def _below_id(
        self, view: View, firsts: list[int], ids: Callable[[Rows], np.ndarray], below: int, limit: int
    ) -> list[Rows]:
        start = min(bisect_right(firsts, below - 1), bisect_right(self.tape.starts, self.tape.emitted_ms)) - 1
        return self._collect(
            view,
            range(start, -1, -1),
            lambda r: r[: int(np.searchsorted(ids(r), below, side="left"))],
            limit,
            newest=True,
        )

    def _between(self, view: View, start_ms: int, end_ms: int, limit: int) -> list[Rows]:
        t = self.tape
        end_ms = min(end_ms, t.emitted_ms)
        stop = bisect_right(t.starts, end_ms)
        return self._collect(
            view,
            range(t._block_index_at(start_ms), stop),
            lambda r: r[
                int(np.searchsorted(r.times, start_ms, side="left")) : int(
                    np.searchsorted(r.times, end_ms, side="right")
                )
            ],
            limit,
        )

    def _recent(self, view: View, limit: int, end_ms: int | None) -> list[Rows]:
        t = self.tape
        end = t._end(end_ms)
        return self._collect(
            view,
            range(t._block_index_at(end), -1, -1) if t.blocks else (),
            lambda r: r[: int(np.searchsorted(r.times, end, side="right"))],
            limit,
            newest=True,
        )

    def trades_from_id(self, from_id: int, limit: int) -> TradeBatch:
        """Up to ``limit`` served trades with ids from ``from_id`` on (past any forgotten ones)."""
        if not self.ranges:
            return self.tape.trades_from_id(from_id, limit)
        return TradeBatch.concat(self._from_id(self.tape._public, self.tape.first_ids, lambda r: r.ids, from_id, limit))

    def trades_below_id(self, below: int, limit: int) -> TradeBatch:
        """The ``limit`` served trades with the highest ids below ``below``, oldest first."""
        return TradeBatch.concat(self._below_id(self.tape._public, self.tape.first_ids, lambda r: r.ids, below, limit))

    def trades_recent(self, limit: int, end_ms: int | None = None) -> TradeBatch:
        """The newest ``limit`` served trades at or before ``end_ms`` (default: now), oldest first."""
        if not self.ranges:
            return self.tape.trades_recent(limit, end_ms)
        return TradeBatch.concat(self._recent(self.tape._public, limit, end_ms))

    def aggs_from_id(self, from_agg: int, limit: int) -> AggBatch:
        """Up to ``limit`` served aggregate trades from aggregate id ``from_agg`` on."""
        if not self.ranges:
            return self.tape.aggs_from_id(from_agg, limit)
        return AggBatch.concat(
            self._from_id(self.tape._aggs_of, self.tape.first_aggs, lambda r: r.agg_ids, from_agg, limit)
        )

    def aggs_between(self, start_ms: int, end_ms: int, limit: int) -> AggBatch:
        """Up to ``limit`` served aggregate trades with ``start_ms <= time <= end_ms``, oldest first."""
        if not self.ranges:
            return self.tape.aggs_between(start_ms, end_ms, limit)
        return AggBatch.concat(self._between(self.tape._aggs_of, start_ms, end_ms, limit))

    def aggs_recent(self, limit: int, end_ms: int | None = None) -> AggBatch:
        """The newest ``limit`` served aggregate trades at or before ``end_ms``, oldest first."""
        if not self.ranges:
            return self.tape.aggs_recent(limit, end_ms)
        return AggBatch.concat(self._recent(self.tape._aggs_of, limit, end_ms))
