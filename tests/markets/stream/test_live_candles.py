"""``LiveCandles``, the stream's 1m candles kept in memory as its ticks are stored: pure, no database.

Ticks of a minute are counted in as they come; a minute that may hold ticks not counted here (asked to be
restored, or at or before the horizon) is handed back to be rebuilt from storage; ``due`` gives the candles that
changed, and closes a written minute once it and the grace are over; a minute closed long enough is forgotten,
and a late tick for it is then rebuilt from storage.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from markets.candles import CandleAccumulator, accumulate
from markets.exchanges.base import CandleBar, Source, TradeTick
from markets.stream.candles import CANDLE_MEMORY, LiveCandles, LiveMinute

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
GRACE = timedelta(seconds=2)
SECOND = timedelta(seconds=1)


def tick(trade_id: int, ts: datetime, price: str, qty: str = "1") -> TradeTick:
    return TradeTick(
        "binance", "BTCUSDT", trade_id, Decimal(price), Decimal(qty), "buy", ts, ts, Source.WS, trade_id, trade_id
    )


def counted(*ticks: TradeTick) -> dict[datetime, CandleAccumulator]:
    """The candles of ``ticks`` by minute, as the stream's database thread counts a stored batch."""
    return {minute: candle for (_, _, minute), candle in accumulate(ticks).items()}


def built(*ticks: TradeTick) -> CandleBar:
    """The closed candle storage would rebuild from ``ticks`` (one minute)."""
    (candle,) = accumulate(ticks).values()
    return candle.bar(closed=True)


def test_a_minute_is_written_open_then_closed_after_the_grace() -> None:
    """Counted ticks make an open candle, written once; nothing is due again until the minute and the grace are
    over, and then the same candle comes once more, closed."""
    live = LiveCandles(GRACE)
    assert live.count(counted(tick(1, T0 + SECOND, "10"), tick(2, T0 + 30 * SECOND, "12")), set()) == set()
    (bar,) = live.due(T0 + 40 * SECOND)
    assert (bar.open_time, bar.open, bar.high, bar.close, bar.trades, bar.closed) == (
        T0,
        Decimal(10),
        Decimal(12),
        Decimal(12),
        2,
        False,
    )
    assert live.due(T0 + 50 * SECOND) == []
    assert live.due(T0 + MINUTE + GRACE - timedelta(milliseconds=1)) == []
    (closed,) = live.due(T0 + MINUTE + GRACE)
    assert closed.closed
    assert (closed.open, closed.close, closed.trades) == (bar.open, bar.close, bar.trades)
    assert live.due(T0 + MINUTE + GRACE + SECOND) == []


def test_a_minute_first_seen_after_its_grace_is_written_closed_once() -> None:
    live = LiveCandles(GRACE)
    live.count(counted(tick(1, T0 + SECOND, "10")), set())
    assert [b.closed for b in live.due(T0 + 5 * MINUTE)] == [True]
    assert live.due(T0 + 6 * MINUTE) == []


def test_later_ticks_of_a_held_minute_are_merged_into_it() -> None:
    live = LiveCandles(GRACE)
    live.count(counted(tick(1, T0 + SECOND, "10")), set())
    live.due(T0 + 2 * SECOND)
    live.count(counted(tick(2, T0 + 3 * SECOND, "9"), tick(3, T0 + 4 * SECOND, "11")), set())
    (bar,) = live.due(T0 + 5 * SECOND)
    assert (bar.open, bar.low, bar.high, bar.close, bar.trades, bar.volume) == (
        Decimal(10),
        Decimal(9),
        Decimal(11),
        Decimal(11),
        3,
        Decimal(3),
    )


def test_minutes_to_restore_are_handed_back_not_counted() -> None:
    """A minute asked to be restored (a gap fill touched it) is rebuilt from storage, which holds the batch."""
    live = LiveCandles(GRACE)
    batch = counted(tick(1, T0 + SECOND, "10"), tick(2, T0 + MINUTE + SECOND, "11"))
    assert live.count(batch, {T0, T0 - MINUTE}) == {T0, T0 - MINUTE}
    assert [b.open_time for b in live.due(T0 + MINUTE + 2 * SECOND)] == [T0 + MINUTE]


def test_minutes_up_to_the_horizon_are_rebuilt_from_storage() -> None:
    """Where a restart resumes, a minute at or before the horizon may hold stored ticks not counted here."""
    live = LiveCandles(GRACE, horizon=T0)
    batch = counted(tick(1, T0 - MINUTE + SECOND, "9"), tick(2, T0 + SECOND, "10"), tick(3, T0 + MINUTE, "11"))
    assert live.count(batch, set()) == {T0 - MINUTE, T0}
    assert [b.open_time for b in live.due(T0 + MINUTE + SECOND)] == [T0 + MINUTE]


def test_a_restored_minute_goes_on_with_the_ticks_counted_after_it() -> None:
    """The rebuilt candle opens the minute; ticks counted afterwards (higher ids) extend it."""
    live = LiveCandles(GRACE, horizon=T0)
    stored = built(tick(1, T0 + SECOND, "10"), tick(2, T0 + 2 * SECOND, "8"))
    assert live.count(counted(tick(2, T0 + 2 * SECOND, "8")), set()) == {T0}
    live.restored([stored])
    assert live.due(T0 + 3 * SECOND) == [replace(stored, closed=False)]
    live.count(counted(tick(3, T0 + 4 * SECOND, "12")), set())
    (bar,) = live.due(T0 + 5 * SECOND)
    assert (bar.open, bar.low, bar.high, bar.close, bar.trades, bar.closed) == (
        Decimal(10),
        Decimal(8),
        Decimal(12),
        Decimal(12),
        3,
        False,
    )


def test_a_closed_minute_is_forgotten_and_a_late_tick_then_rebuilds_it() -> None:
    """A minute is kept ``CANDLE_MEMORY`` after it closed for late ticks, then forgotten: the horizon moves up to
    it, so a tick for it counted later is handed back to be rebuilt from storage."""
    live = LiveCandles(GRACE)
    live.count(counted(tick(1, T0 + SECOND, "10")), set())
    live.due(T0 + 2 * SECOND)
    live.due(T0 + MINUTE + GRACE)  # written closed
    kept_until = T0 + MINUTE + GRACE + CANDLE_MEMORY
    live.due(kept_until - SECOND)
    assert T0 in live.minutes
    assert live.horizon is None
    live.due(kept_until)
    assert T0 not in live.minutes
    assert live.horizon == T0
    assert live.count(counted(tick(2, T0 + 5 * SECOND, "11")), set()) == {T0}


def test_an_open_minute_is_not_forgotten_before_it_is_written_closed() -> None:
    """A minute written open is closed (written once more) before it may be forgotten, however late ``due`` is."""
    live = LiveCandles(GRACE)
    live.count(counted(tick(1, T0 + SECOND, "10")), set())
    live.due(T0 + 2 * SECOND)
    (bar,) = live.due(T0 + MINUTE + GRACE + CANDLE_MEMORY + MINUTE)
    assert bar.closed
    assert live.due(T0 + MINUTE + GRACE + CANDLE_MEMORY + 2 * MINUTE) == []
    assert live.horizon == T0


def test_a_minute_without_ticks_has_no_candle() -> None:
    with pytest.raises(ValueError, match="without ticks"):
        LiveMinute().bar(closed=True)


def test_candles_whose_write_failed_are_due_again_whole() -> None:
    """A pass the database refused is put back: the next pass writes the same candles (closed by then), and a
    minute forgotten in the failed pass is kept again, as it was, with later ticks merged into it."""
    live = LiveCandles(GRACE)
    live.count(counted(tick(1, T0 + SECOND, "10"), tick(2, T0 + 2 * SECOND, "11")), set())
    live.count(counted(tick(3, T0 + MINUTE + SECOND, "12")), set())
    late = T0 + 2 * MINUTE + GRACE + CANDLE_MEMORY  # the first minute is forgotten by this pass
    failed = live.due(late)
    assert [b.open_time for b in failed] == [T0, T0 + MINUTE]
    assert T0 not in live.minutes
    live.put_back(failed)
    assert live.due(late + SECOND) == failed
    live.put_back(failed)
    live.count(counted(tick(4, T0 + 30 * SECOND, "9")), set())
    first, _ = live.due(late + 2 * SECOND)
    assert (first.open, first.low, first.close, first.trades, first.closed) == (
        Decimal(10),
        Decimal(9),
        Decimal(9),
        3,
        True,
    )


def test_no_minute_closes_while_older_trades_wait_to_be_stored() -> None:
    """``held``, the time of the oldest trade not stored yet (a backlog after an outage), keeps its minute and the
    ones after it open, whatever the clock says; they close, in order, once the backlog is written."""
    live = LiveCandles(GRACE)
    live.count(counted(tick(1, T0 + SECOND, "10"), tick(2, T0 + MINUTE + SECOND, "11")), set())
    now = T0 + 5 * MINUTE
    assert [(b.open_time, b.closed) for b in live.due(now, held=T0 + MINUTE + 30 * SECOND)] == [
        (T0, True),
        (T0 + MINUTE, False),
    ]
    live.count(counted(tick(3, T0 + MINUTE + 30 * SECOND, "12")), set())
    (bar,) = live.due(now)
    assert (bar.open_time, bar.closed, bar.trades) == (T0 + MINUTE, True, 2)
