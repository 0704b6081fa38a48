"""A Gap's bounds as times, whatever its kind: a candle gap stores its range in epoch ms; a trade gap stores ids,
and its times are those of the stored ticks either side of the hole (``selectors.hole_span``: two index look-ups)."""

from __future__ import annotations

from datetime import datetime

from . import selectors
from .documents import from_ms
from .models import Gap

TRADES = "trades"


def gap_ids(gap: Gap) -> tuple[int | None, int | None]:
    """The first and last missing trade id of a trade gap; ``(None, None)`` for a candle gap."""
    return (gap.start, gap.end) if gap.kind == TRADES else (None, None)


def gap_times(gap: Gap) -> tuple[datetime | None, datetime | None]:
    """A candle gap's ``[start, end)``; for a trade gap the exchange times of the stored ticks before and after its
    ids (each ``None`` while unknown), looked up once per object."""
    if gap.kind != TRADES:
        return from_ms(gap.start), from_ms(gap.end)
    cached: tuple[datetime | None, datetime | None] | None = getattr(gap, "_times", None)
    if cached is None:
        span = selectors.hole_span(gap.exchange, gap.symbol, gap.start, gap.end)
        cached = span if span is not None else (None, None)
        gap._times = cached  # type: ignore[attr-defined]
    return cached
