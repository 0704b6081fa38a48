"""Block: a stretch of one symbol's tape whose trades a producer can (re)generate on demand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from .aggregate import Agg
from .batch import TradeBatch


@dataclass(slots=True)
class Block:
    """Trades with times in ``[t_start, t_end)``: ``n`` trades from ``first_id``, ``k`` aggregates.

    ``gen`` is the producer's generation record. Truncation (a rate change or a pause) lowers
    ``t_end``, ``n`` and ``k``; the first ``n`` generated trades stay the block's trades.
    """

    t_start: int
    t_end: int
    first_id: int
    n: int
    first_agg: int
    k: int
    gen: Any
    agg: Agg | None = None
    agg_ready: bool = False


class Producer(Protocol):
    """What a tape needs from a market source (synthetic or replay)."""

    def generate(self, block: Block) -> TradeBatch: ...
