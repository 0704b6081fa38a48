"""Reads of stored signals: pages for the API, and the signals a restarted evaluation carries on from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from markets.documents import as_utc

from .models import Signal
from .rules import STRATEGY, Action

ACTIONS = (Signal.Decision.BUY, Signal.Decision.SELL)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: after the row (candle_open_time, interval, strategy) — the order of the pages."""

    candle_open_time: datetime
    interval: str
    strategy: str


@dataclass(frozen=True, slots=True)
class SignalPage:
    """Signals by candle time (then interval, strategy), and the cursor of the next page (None at the end)."""

    signals: list[Signal]
    next: Cursor | None


def signal_page(
    *,
    exchange: str,
    symbol: str,
    limit: int,
    interval: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    decisions: Sequence[str] = ACTIONS,
    after: Cursor | None = None,
) -> SignalPage:
    """Up to ``limit`` signals of (exchange, symbol) with a decision in ``decisions`` and candle open time in
    ``[start, end)``, on ``interval`` (every interval when None), oldest first; from after ``after``."""
    qs = Signal.objects.filter(exchange=exchange, symbol=symbol, decision__in=list(decisions))
    if interval is not None:
        qs = qs.filter(interval=interval)
    if start is not None:
        qs = qs.filter(candle_open_time__gte=start)
    if end is not None:
        qs = qs.filter(candle_open_time__lt=end)
    if after is not None:
        t, i, s = after.candle_open_time, after.interval, after.strategy
        qs = qs.filter(
            Q(candle_open_time__gt=t)
            | Q(candle_open_time=t, interval__gt=i)
            | Q(candle_open_time=t, interval=i, strategy__gt=s)
        )
    rows = list(qs.order_by("candle_open_time", "interval", "strategy")[: limit + 1])
    page = rows[:limit]
    last = page[-1] if len(rows) > limit else None
    return SignalPage(page, None if last is None else Cursor(last.candle_open_time, last.interval, last.strategy))


def signals_before(
    *, exchange: str, symbol: str, interval: str, since: datetime, before: datetime, strategy: str = STRATEGY
) -> list[tuple[datetime, Action]]:
    """The BUY/SELL signals ``strategy`` stored for the candles of ``[since, before)``, oldest first (what the
    cooldown of the candle ``before`` depends on)."""
    rows = Signal.objects.filter(
        strategy=strategy,
        exchange=exchange,
        symbol=symbol,
        interval=interval,
        decision__in=list(ACTIONS),
        candle_open_time__gte=since,
        candle_open_time__lt=before,
    )
    return [
        (as_utc(t), Action(a)) for t, a in rows.order_by("candle_open_time").values_list("candle_open_time", "decision")
    ]


def recent_signals(*, exchange: str, symbol: str, interval: str = "1m", limit: int = 20) -> list[Signal]:
    """The newest BUY/SELL signals of ``symbol`` (newest first), what the live page shows on opening."""
    rows = Signal.objects.filter(exchange=exchange, symbol=symbol, interval=interval, decision__in=list(ACTIONS))
    return list(rows.order_by("-candle_open_time")[:limit])
