"""TradeBatch: a run of consecutive trades of one symbol as parallel numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class TradeBatch:
    """Consecutive trades, oldest first: ids, times (ms), prices (ticks), quantities (steps), sides.

    ``buyer_maker`` is Binance's ``m``: True when the buyer was the maker, i.e. the taker sold.
    """

    ids: np.ndarray
    times: np.ndarray
    prices: np.ndarray
    qtys: np.ndarray
    buyer_maker: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, item: slice) -> TradeBatch:
        return TradeBatch(self.ids[item], self.times[item], self.prices[item], self.qtys[item], self.buyer_maker[item])

    def shifted(self, id_offset: int, time_offset: int) -> TradeBatch:
        """The same trades with ids and times moved (a replay loop)."""
        return TradeBatch(self.ids + id_offset, self.times + time_offset, self.prices, self.qtys, self.buyer_maker)

    @staticmethod
    def empty() -> TradeBatch:
        i = np.empty(0, dtype=np.int64)
        return TradeBatch(i, i, i, i, np.empty(0, dtype=bool))

    @staticmethod
    def concat(batches: list[TradeBatch]) -> TradeBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return TradeBatch.empty()
        if len(batches) == 1:
            return batches[0]
        return TradeBatch(
            np.concatenate([b.ids for b in batches]),
            np.concatenate([b.times for b in batches]),
            np.concatenate([b.prices for b in batches]),
            np.concatenate([b.qtys for b in batches]),
            np.concatenate([b.buyer_maker for b in batches]),
        )


@dataclass(frozen=True, slots=True)
class AggBatch:
    """Aggregate trades derived from a TradeBatch (Binance's aggTrades), oldest first."""

    agg_ids: np.ndarray
    prices: np.ndarray
    qtys: np.ndarray
    first_ids: np.ndarray
    last_ids: np.ndarray
    times: np.ndarray
    buyer_maker: np.ndarray

    def __len__(self) -> int:
        return len(self.agg_ids)

    def __getitem__(self, item: slice) -> AggBatch:
        return AggBatch(
            self.agg_ids[item],
            self.prices[item],
            self.qtys[item],
            self.first_ids[item],
            self.last_ids[item],
            self.times[item],
            self.buyer_maker[item],
        )

    @staticmethod
    def concat(batches: list[AggBatch]) -> AggBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return aggregate_trades(TradeBatch.empty(), 0)
        if len(batches) == 1:
            return batches[0]
        fields = [np.concatenate([getattr(b, f) for b in batches]) for f in AggBatch.__slots__]
        return AggBatch(*fields)


def group_starts(trades: TradeBatch) -> np.ndarray:
    """Indices where a new aggregate trade starts.

    Binance aggregates consecutive trades with the same time, price and taker side.
    """
    n = len(trades)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    change = np.empty(n, dtype=bool)
    change[0] = True
    change[1:] = (
        (trades.times[1:] != trades.times[:-1])
        | (trades.prices[1:] != trades.prices[:-1])
        | (trades.buyer_maker[1:] != trades.buyer_maker[:-1])
    )
    return np.flatnonzero(change)


def count_groups(trades: TradeBatch) -> int:
    """How many aggregate trades ``trades`` make (``len(group_starts(trades))`` without the indices)."""
    n = len(trades)
    if n < 2:
        return n
    same = (
        (trades.times[1:] == trades.times[:-1])
        & (trades.prices[1:] == trades.prices[:-1])
        & (trades.buyer_maker[1:] == trades.buyer_maker[:-1])
    )
    return n - int(np.count_nonzero(same))


def aggregate_trades(trades: TradeBatch, first_agg_id: int) -> AggBatch:
    """Aggregate trades of ``trades``, numbered from ``first_agg_id``.

    The batch must start at a group boundary (the simulator's blocks always do).
    """
    starts = group_starts(trades)
    k = len(starts)
    if k == 0:
        e = np.empty(0, dtype=np.int64)
        return AggBatch(e, e, e, e, e, e, np.empty(0, dtype=bool))
    ends = np.empty(k, dtype=np.int64)
    ends[:-1] = starts[1:] - 1
    ends[-1] = len(trades) - 1
    return AggBatch(
        agg_ids=np.arange(first_agg_id, first_agg_id + k, dtype=np.int64),
        prices=trades.prices[starts],
        qtys=np.add.reduceat(trades.qtys, starts),
        first_ids=trades.ids[starts],
        last_ids=trades.ids[ends],
        times=trades.times[starts],
        buyer_maker=trades.buyer_maker[starts],
    )
