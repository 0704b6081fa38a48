"""The arithmetic of the periodic gap scan (``markets.scan``): holes found by counting stored ids, holes sorted by
what to do with them, and which closed minutes get their 1m candle rebuilt. Pure: no database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from markets.gaps import id_holes
from markets.scan import closed_until, hole_minutes, holes_by_count, minutes_to_rebuild, plan_holes, rebuild_until

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
GRACE = timedelta(seconds=2)


def counted(present: set[int]) -> tuple[Callable[[int, int], int], Callable[[int, int], list[int]], list[int]]:
    """``count`` and ``ids`` over a set of ids, and a log of the widths ``ids`` was asked to read."""
    reads: list[int] = []

    def count(a: int, b: int) -> int:
        return sum(1 for i in present if a <= i <= b)

    def ids(a: int, b: int) -> list[int]:
        reads.append(b - a + 1)
        return sorted(i for i in present if a <= i <= b)

    return count, ids, reads


@given(st.sets(st.integers(0, 2000)), st.integers(0, 2000), st.integers(0, 2000), st.integers(1, 64))
def test_holes_by_count_are_exactly_the_absent_ids(present: set[int], a: int, b: int, leaf: int) -> None:
    """Halving by counts finds the same holes as reading every id, merged across the halves."""
    first, last = min(a, b), max(a, b)
    count, ids, _ = counted(present)
    assert holes_by_count(count, ids, first, last, leaf=leaf) == id_holes(sorted(present), first, last)


def test_a_complete_range_costs_one_count_and_no_read() -> None:
    """A million contiguous ids: one count, nothing read; one hole in them: only small ranges are read."""
    calls: list[tuple[int, int]] = []

    def count(a: int, b: int) -> int:
        calls.append((a, b))
        return (b - a + 1) - max(0, min(b, 500_010) - max(a, 500_000) + 1) * hole

    hole = 0
    assert holes_by_count(count, lambda a, b: [], 1, 1_000_000) == []
    assert calls == [(1, 1_000_000)]
    hole = 1
    read: list[int] = []

    def ids(a: int, b: int) -> list[int]:
        read.append(b - a + 1)
        return [i for i in range(a, b + 1) if not 500_000 <= i <= 500_010]

    assert holes_by_count(count, ids, 1, 1_000_000, leaf=4096) == [(500_000, 500_010)]
    assert sum(read) <= 2 * 4096


def test_plan_leaves_busy_and_unrecoverable_holes() -> None:
    """A hole overlapping a range being filled is busy; one inside a range the exchange lacks is left."""
    plan = plan_holes([(10, 20), (30, 40), (50, 60), (70, 80)], busy=[(35, 90)], unrecoverable=[(8, 22), (50, 55)])
    assert plan.unrecoverable == [(10, 20)]
    assert plan.busy == [(30, 40), (50, 60), (70, 80)]
    assert plan.fill == []
    assert plan_holes([(1, 2)]).fill == [(1, 2)]


@pytest.mark.parametrize(
    ("now", "first_open"),
    [
        (T0 + timedelta(seconds=61), T0),  # 12:00 closes at 12:01:02
        (T0 + timedelta(seconds=62), T0 + MINUTE),
        (T0 + timedelta(seconds=119), T0 + MINUTE),
    ],
)
def test_a_minute_is_closed_one_minute_and_the_grace_after_it_opens(now: datetime, first_open: datetime) -> None:
    """``closed_until`` is the open time of the first minute still open."""
    assert closed_until(now, GRACE) == first_open


def test_minutes_to_rebuild_are_closed_with_ticks_without_a_closed_candle() -> None:
    """Minutes with ticks, closed, without a closed candle and not touched by a hole being filled."""
    ticks = [T0 + i * MINUTE for i in range(8)]
    got = minutes_to_rebuild(
        ticks,
        {T0, T0 + MINUTE},
        now=T0 + 7 * MINUTE + timedelta(seconds=1),
        grace=GRACE,
        exclude=hole_minutes([(T0 + 2 * MINUTE + timedelta(seconds=59), T0 + 3 * MINUTE + timedelta(seconds=1))]),
    )
    assert got == [T0 + 4 * MINUTE, T0 + 5 * MINUTE]


def test_the_rebuild_stops_where_the_checked_ids_stop() -> None:
    """Minutes after the last checked id wait; so does its own minute when ids are missing right after it."""
    now = T0 + 10 * MINUTE
    last = (100, T0 + 5 * MINUTE + timedelta(seconds=30))
    assert rebuild_until(now=now, grace=GRACE, last=last, after=None) == T0 + 9 * MINUTE
    assert (
        rebuild_until(now=now, grace=GRACE, last=last, after=(101, T0 + 5 * MINUTE + timedelta(seconds=40)))
        == T0 + 5 * MINUTE
    )
    assert rebuild_until(now=now, grace=GRACE, last=last, after=(101, T0 + 6 * MINUTE)) == T0 + 6 * MINUTE
    assert rebuild_until(now=now, grace=GRACE, last=last, after=(150, T0 + 6 * MINUTE)) == T0 + 5 * MINUTE


def test_holes_a_running_backfill_holds_are_left_to_it_and_named() -> None:
    """A hole the ``held`` check names is neither filled nor busy: it is listed with its holder."""
    held = {(30, 40): "manage.py backfill trades (h:1:ab)"}
    plan = plan_holes([(1, 5), (30, 40), (50, 60)], busy=[(55, 56)], held=lambda a, b: held.get((a, b)))
    assert plan.fill == [(1, 5)]
    assert plan.busy == [(50, 60)]
    assert plan.held == [(30, 40, "manage.py backfill trades (h:1:ab)")]
