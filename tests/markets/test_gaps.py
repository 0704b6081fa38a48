"""Trade-id gap arithmetic: holes are exactly the ids that are absent, whatever the input looks like."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from markets.gaps import hole_size, id_holes


def test_examples() -> None:
    """Holes at the start, middle and end; none when everything is there; all when nothing is."""
    assert id_holes([3, 4, 7, 8], 1, 10) == [(1, 2), (5, 6), (9, 10)]
    assert id_holes(range(1, 11), 1, 10) == []
    assert id_holes([], 5, 7) == [(5, 7)]
    assert id_holes([1, 1, 2, 2, 5], 1, 5) == [(3, 4)]


@given(st.sets(st.integers(0, 300)), st.integers(0, 300), st.integers(0, 300))
def test_holes_are_exactly_the_absent_ids(present: set[int], a: int, b: int) -> None:
    """Every id of the range is either present or in exactly one hole; holes are ordered and disjoint."""
    first, last = min(a, b), max(a, b)
    holes = id_holes(sorted(present), first, last)
    in_holes = [i for h0, h1 in holes for i in range(h0, h1 + 1)]
    assert in_holes == sorted(set(range(first, last + 1)) - present)
    assert hole_size(holes) == len(in_holes)
    assert all(h1 + 1 < n0 for (_, h1), (n0, _) in itertools.pairwise(holes))
